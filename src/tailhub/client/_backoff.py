"""Reconnect delays: exponential, capped, with jitter so a fleet does not reconnect at once."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnect attempts.

    Attempt ``n`` (from 0) waits a random time between half and all of
    ``min(maximum, initial * factor**n)`` seconds ("equal jitter"): never less than half the
    ceiling, so retries do back off, and spread out, so many clients restarted together do not
    hit a recovering hub in one burst.

    Args:
        initial: ceiling of the first delay, in seconds.
        maximum: largest ceiling, in seconds.
        factor: growth of the ceiling per attempt.
    """

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")

    def ceiling(self, attempt: int) -> float:
        """The largest delay of attempt ``attempt``."""
        exponent = min(attempt, 64)
        return float(min(self.maximum, self.initial * self.factor**exponent))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """A jittered delay for attempt ``attempt`` (0 for the first retry), in seconds."""
        top = self.ceiling(attempt)
        return top / 2 + (rng or random).uniform(0, top / 2)
