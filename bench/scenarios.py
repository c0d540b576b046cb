"""The scenarios of issue 6, what each measures, and the targets tailhub is held to.

Every scenario uses small JSON messages shaped like PROTOCOL.md's example (about 120 bytes):
``{"type":"log","containerID":"c1","data":{"level":"info","message":"bench ..."}}``.

A-B and E measure **throughput** (closed loop, bounded window: see :mod:`bench.loadgen`);
C and F measure **latency** at a fixed offered rate (open loop); D measures **memory**.
G and H run tailhub on the Redis engine (a redis-server the bench starts): G is B's load on
one process on SQLite, one on Redis (its redis-server on the generator's core, and again on
the hub's), and two workers on Redis; H is C's load published to one hub process and watched
on another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SCENARIOS", "Metric", "Scenario", "Target"]


@dataclass(frozen=True, slots=True)
class Target:
    """A pass/fail line from the issue: ``tailhub`` compared with a peer or a bound."""

    text: str
    against: str | None  # a peer's name (ratio target), or None (absolute bound)
    minimum: float | None = None
    maximum: float | None = None
    subject: str = "tailhub"  # the server held to it (G, H: a tailhub on Redis)

    def check(self, value: float) -> bool:
        if self.minimum is not None and not value >= self.minimum:
            return False
        return not (self.maximum is not None and not value <= self.maximum)


@dataclass(frozen=True, slots=True)
class Metric:
    """One number a scenario reports, as a row of the table."""

    field: str
    label: str
    unit: str
    higher_is_better: bool = True
    target: Target | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scenario: the generator's mode, its parameters (full and ``--quick``), its rows."""

    key: str
    title: str
    kind: str  # loadgen mode: closed_loop, open_loop or idle
    params: dict[str, Any]
    quick: dict[str, Any]
    metrics: tuple[Metric, ...]
    why: str
    history_pair: bool = False  # E: tailhub with SQLite history against in-memory history
    fresh_server_per_run: bool = False  # D: memory must start from a fresh process
    extra: dict[str, Any] = field(default_factory=dict)
    # Its own servers instead of --servers (G, H: tailhub on the Redis engine), and its own table.
    servers: tuple[str, ...] = ()
    needs_redis: bool = False


_THROUGHPUT = "deliveries_per_s"
_CPU_PER_DELIVERY = Metric("server_us_per_delivery", "server µs/delivery", "us", False)
"""The server's CPU time per delivery: what a server costs, whichever side was the wall."""

SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario(
            "A",
            "fan-out 1 -> 100",
            "closed_loop",
            {"containers": 1, "fanout": 100, "window": 16},
            {},
            (
                Metric(
                    _THROUGHPUT,
                    "deliveries/s",
                    "/s",
                    target=Target(">= 1.5x node", "node", minimum=1.5),
                ),
                _CPU_PER_DELIVERY,
            ),
            "one container watched by 100 viewers: the cost of one delivery, once per "
            "subscriber; encoding and framing once per message should show here",
        ),
        Scenario(
            "B",
            "fan-in 50 x (1 -> 1)",
            "closed_loop",
            {"containers": 50, "fanout": 1, "window": 16},
            {},
            (
                Metric(
                    _THROUGHPUT,
                    "deliveries/s",
                    "/s",
                    target=Target(">= 1.3x node", "node", minimum=1.3),
                ),
                _CPU_PER_DELIVERY,
            ),
            "50 containers each watched by one viewer: the per-message cost of receiving, "
            "decoding, validating, stamping and storing",
        ),
        Scenario(
            "C",
            "latency 2k msg/s, 1 -> 10",
            "open_loop",
            {"containers": 1, "fanout": 10, "rate": 2000.0},
            {},
            (
                Metric("p50_ms", "p50 ms", "ms", higher_is_better=False),
                Metric(
                    "p99_ms",
                    "p99 ms",
                    "ms",
                    higher_is_better=False,
                    target=Target("<= 1 ms", None, maximum=1.0),
                ),
                Metric("p999_ms", "p99.9 ms", "ms", higher_is_better=False),
            ),
            "publish-to-deliver time at a moderate, fixed rate: what a viewer feels",
        ),
        Scenario(
            "D",
            "idle connections",
            "idle",
            {"connections": 10_000},
            {"connections": 1_000},
            (
                Metric(
                    "kb_per_connection",
                    "KiB/conn",
                    "KiB",
                    higher_is_better=False,
                    target=Target("<= 10 KiB", None, maximum=10.0),
                ),
            ),
            "server RSS growth per idle, subscribed connection: how many viewers fit",
            fresh_server_per_run=True,
        ),
        Scenario(
            "E",
            "history sqlite vs memory",
            "closed_loop",
            {"containers": 50, "fanout": 1, "window": 16},
            {},
            (Metric(_THROUGHPUT, "deliveries/s", "/s"),),
            "scenario B's load on tailhub with SQLite history against in-memory history: "
            "what durability costs",
            history_pair=True,
            extra={"target": Target(">= 0.8x memory", None, minimum=0.8)},
        ),
        Scenario(
            "F",
            "fleet, 10 msg/s each -> *",
            "open_loop",
            {"containers": 1000, "fanout": 0, "rate": 10_000.0},
            {"containers": 200, "rate": 2_000.0},
            (
                Metric(_THROUGHPUT, "delivered/s", "/s"),
                Metric("p50_ms", "p50 ms", "ms", higher_is_better=False),
                Metric("p99_ms", "p99 ms", "ms", higher_is_better=False),
                Metric("p999_ms", "p99.9 ms", "ms", higher_is_better=False),
                Metric("server_cpu", "server CPU", "%", higher_is_better=False),
            ),
            "a realistic fleet: many slow publishers, one dashboard subscribed to '*'",
        ),
        Scenario(
            "G",
            "Redis engine, B's load",
            "closed_loop",
            {"containers": 50, "fanout": 1, "window": 16},
            {},
            (
                Metric(
                    _THROUGHPUT,
                    "deliveries/s",
                    "/s",
                    target=Target(
                        "redis >= 0.7x sqlite", "tailhub", minimum=0.7, subject="tailhub-redis"
                    ),
                ),
                Metric(
                    _CPU_PER_DELIVERY.field,
                    _CPU_PER_DELIVERY.label,
                    _CPU_PER_DELIVERY.unit,
                    higher_is_better=False,
                    target=Target(
                        "2 workers <= 1.15x 1",
                        "tailhub-redis-1core",
                        maximum=1.15,
                        subject="tailhub-redis-w2",
                    ),
                ),
            ),
            "one process on the Redis engine against one on SQLite, each with a core of its "
            "own (Redis on the generator's, as on a machine of its own), and with Redis on the "
            "hub's core; the CPU each delivery costs with --workers 2 against 1, all on core 0 "
            "with Redis (on two cores, compare CPU per message, not throughput)",
            servers=("tailhub", "tailhub-redis", "tailhub-redis-1core", "tailhub-redis-w2"),
            needs_redis=True,
        ),
        Scenario(
            "H",
            "cross-process latency 2k msg/s, 1 -> 10",
            "open_loop",
            {"containers": 1, "fanout": 10, "rate": 2000.0},
            {},
            (
                Metric("p50_ms", "p50 ms", "ms", higher_is_better=False),
                Metric(
                    "p99_ms",
                    "p99 ms",
                    "ms",
                    higher_is_better=False,
                    target=Target("<= 2 ms", None, maximum=2.0, subject="tailhub-redis-pair"),
                ),
                Metric("p999_ms", "p99.9 ms", "ms", higher_is_better=False),
            ),
            "publish-to-deliver time from a publisher on one hub process to subscribers on "
            "another, through Redis, beside one process on SQLite",
            servers=("tailhub", "tailhub-redis-pair"),
            needs_redis=True,
        ),
        Scenario(
            "I",
            "agent events, B's load",
            "closed_loop",
            {"containers": 50, "fanout": 1, "window": 16, "payload": "agent"},
            {},
            (
                Metric(
                    _THROUGHPUT,
                    "deliveries/s",
                    "/s",
                    target=Target(
                        "agents >= 0.95x unread",
                        "tailhub-unread",
                        minimum=0.95,
                        subject="tailhub",
                    ),
                ),
                _CPU_PER_DELIVERY,
            ),
            "B's load with Claude Code tool calls as tailhub run publishes them (about 750 "
            "bytes), against the same bytes under a key the hub does not read: what keeping "
            "the agent summaries and attention states costs",
            servers=("tailhub", "tailhub-unread"),
        ),
    )
}
