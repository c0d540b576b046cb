"""Plain counters the hot path bumps; the metrics endpoint reads them when scraped.

Counting here costs an integer add, where a labelled Prometheus counter would take a lock
and a dict lookup per message.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

__all__ = ["LATENCY_BUCKETS", "Histogram", "Stats"]

LATENCY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


class Histogram:
    """Fixed-bucket histogram: ``counts[i]`` observations ``<= bounds[i]``, the last is +Inf."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.total += value * times
        self.count += times


@dataclass(slots=True)
class Stats:
    """What the node and hub have done since start."""

    messages_in: Counter[str] = field(default_factory=Counter)
    """Published messages accepted, by type."""
    messages_out: Counter[str] = field(default_factory=Counter)
    """Frames sent to connections, by type (a routed message counts once per receiver)."""
    bytes_in: int = 0
    bytes_out: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    """Error replies sent, by code."""
    duplicates: int = 0
    slow_closes: int = 0
    queue_drops: int = 0
    """Frames not sent because their connection was being closed as too slow."""
    sessions_started: int = 0
    sessions_ended: Counter[str] = field(default_factory=Counter)
    """Sessions ended, by reason (``complete``, ``timeout``)."""
    connections_opened: int = 0
    connections_closed: int = 0
    deliver_latency: Histogram = field(default_factory=Histogram)
    """Seconds from a publish being received to its frames being written to subscribers."""
