"""Reconnect delays."""

from __future__ import annotations

import random

import pytest

from tailhub.client import Backoff, Rotation


class TestBackoff:
    def test_grows_and_caps(self) -> None:
        """The ceiling doubles per attempt up to the maximum."""
        backoff = Backoff(initial=0.5, maximum=3.0)
        assert [backoff.ceiling(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]

    def test_jitter_between_half_and_ceiling(self) -> None:
        """Every delay is between half the ceiling and the ceiling, and they differ."""
        backoff = Backoff(initial=1.0, maximum=8.0)
        rng = random.Random(7)
        delays = [backoff.delay(3, rng) for _ in range(100)]
        assert all(4.0 <= d <= 8.0 for d in delays)
        assert len(set(delays)) > 90

    def test_huge_attempt_does_not_overflow(self) -> None:
        """A very long outage keeps the maximum, without float overflow."""
        assert Backoff().ceiling(10_000) == 10.0

    def test_invalid(self) -> None:
        """Nonsense settings are refused."""
        with pytest.raises(ValueError, match="backoff"):
            Backoff(initial=2.0, maximum=1.0)


class TestRotation:
    def test_failures_go_round_then_back_off(self) -> None:
        """A failed attempt moves to the next URL at once; a whole round of failures waits
        the round's backoff, the next round longer."""
        backoff = Backoff(initial=1.0, maximum=8.0)
        rotation = Rotation(["ws://a", "ws://b", "ws://c"], backoff)
        seen = [rotation.url]
        delays = []
        for _ in range(6):
            delays.append(rotation.failed())
            seen.append(rotation.url)
        assert seen == ["ws://a", "ws://b", "ws://c", "ws://a", "ws://b", "ws://c", "ws://a"]
        assert delays[:2] == [0.0, 0.0]
        assert delays[3:5] == [0.0, 0.0]
        assert 0.5 <= delays[2] <= 1.0
        assert 1.0 <= delays[5] <= 2.0

    def test_one_url_is_plain_backoff(self) -> None:
        """With one URL every failure waits, growing as Backoff does."""
        rotation = Rotation(["ws://a"], Backoff(initial=1.0, maximum=8.0))
        delays = [rotation.failed() for _ in range(4)]
        assert [rotation.url] == ["ws://a"]
        assert all(c / 2 <= d <= c for d, c in zip(delays, [1.0, 2.0, 4.0, 8.0], strict=True))

    def test_lost_moves_on_and_held_starts_over(self) -> None:
        """A lost connection moves to the next URL; one that held restarts the backoff, one
        that did not keeps growing it."""
        rotation = Rotation(["ws://a", "ws://b"], Backoff(initial=1.0, maximum=64.0))
        for _ in range(4):
            rotation.failed()
        assert rotation.url == "ws://a"
        assert 0.5 <= rotation.lost(held=True) <= 1.0
        assert rotation.url == "ws://b"
        assert 1.0 <= rotation.lost(held=False) <= 2.0
        assert rotation.url == "ws://a"
        assert 0.0 == rotation.failed()

    def test_exhausted_until_connected(self) -> None:
        """Exhausted once every URL failed since the last connection, not before."""
        rotation = Rotation(["ws://a", "ws://b"], Backoff())
        rotation.failed()
        assert not rotation.exhausted
        rotation.failed()
        assert rotation.exhausted
        rotation.connected()
        assert not rotation.exhausted

    def test_needs_a_url(self) -> None:
        """An empty list is refused."""
        with pytest.raises(ValueError, match="at least one URL"):
            Rotation([], Backoff())
