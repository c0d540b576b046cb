"""The store contract, run against :class:`~tailhub.store.memory.MemoryStore`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tailhub.store import MemoryStore, Retention
from tests.store.contract import (
    AgainstModelContract,
    AppendContract,
    DurabilityContract,
    Harness,
    ReadContract,
    ReadYourWritesContract,
    ReopenContract,
    RetentionContract,
)


def _make(_place: Path, retention: Retention | None) -> MemoryStore:
    return MemoryStore(retention)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """Memory stores; reopening one is closing and opening the same object (same process)."""
    harness = Harness(_make, tmp_path, reopen_same=True)
    yield harness
    await harness.close()


class TestAppend(AppendContract):
    """The append contract, on MemoryStore."""


class TestReadYourWrites(ReadYourWritesContract):
    """The read-your-writes contract, on MemoryStore."""


class TestRead(ReadContract):
    """The read contract, on MemoryStore."""


class TestDurability(DurabilityContract):
    """The durability contract, on MemoryStore."""


class TestRetention(RetentionContract):
    """The retention contract, on MemoryStore."""


class TestReopen(ReopenContract):
    """The reopen contract, on MemoryStore."""


class TestAgainstModel(AgainstModelContract):
    """The model-based contract, on MemoryStore."""
