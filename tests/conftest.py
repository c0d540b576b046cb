"""Fixtures: a real hub process per test, and an aiohttp client session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import HubProcess

# The machine is small and shared: judge hypothesis tests by what they find, not their speed.
settings.register_profile(
    "tailhub", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("tailhub")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A running ``tailhub serve`` with the test token and a fresh data directory."""
    process = HubProcess(tmp_path / "hub").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for a whole module; its tests use their own container IDs and never stop it."""
    process = HubProcess(tmp_path_factory.mktemp("shared"), args=["--max-sessions", "1000"])
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
