"""Reconnecting: delays (exponential, capped, with jitter so a fleet does not reconnect at
once), and the rotation over a hub's URLs when it runs as several processes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Backoff", "Rotation"]


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


class Rotation:
    """Which of a hub's URLs to connect to next, and how long to wait before that.

    A hub may run as several processes sharing one engine, each with its own URL; any of
    them serves a client as well as another. So a client does not insist on one: every
    failed attempt and every lost connection moves on to the next URL, in the order given,
    cycling. A failed attempt is followed at once by the next URL; only when every URL has
    failed in a row does the client wait, for :class:`Backoff`'s delay of that round. A
    connection that ends waits the delay of the current round (round 0 again if it had
    held), so that a fleet whose hub process died spreads out over the others.

    With one URL this is exactly :class:`Backoff` between attempts on that URL.

    Args:
        urls: the URLs, at least one, in the order to try them (the first is tried first).
        backoff: the delays between rounds.
    """

    def __init__(self, urls: Sequence[str], backoff: Backoff) -> None:
        if not urls:
            raise ValueError("a rotation needs at least one URL")
        self.urls = tuple(urls)
        self.backoff = backoff
        self.index = 0
        self.failures = 0
        self.rounds = 0

    @property
    def url(self) -> str:
        """The URL to connect to now."""
        return self.urls[self.index]

    @property
    def exhausted(self) -> bool:
        """Every URL has failed at least once since the last connection."""
        return self.failures >= len(self.urls)

    def connected(self) -> None:
        """A connection to :attr:`url` is up: no URL has failed since."""
        self.failures = 0

    def failed(self) -> float:
        """The attempt on :attr:`url` failed: move on; returns the seconds to wait first."""
        self._advance()
        self.failures += 1
        if self.failures % len(self.urls):
            return 0.0
        delay = self.backoff.delay(self.rounds)
        self.rounds += 1
        return delay

    def lost(self, held: bool) -> float:
        """The connection to :attr:`url` ended: move on; returns the seconds to wait first.

        Args:
            held: the connection lasted long enough to count as a success: the backoff
                starts over. A hub that closes every connection at once is not hammered.
        """
        self._advance()
        self.failures = 0
        if held:
            self.rounds = 0
        delay = self.backoff.delay(self.rounds)
        self.rounds += 1
        return delay

    def _advance(self) -> None:
        self.index = (self.index + 1) % len(self.urls)
