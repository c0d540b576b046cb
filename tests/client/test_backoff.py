"""Reconnect delays."""

from __future__ import annotations

import random

import pytest

from tailhub.client import Backoff


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
