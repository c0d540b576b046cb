"""SqliteStore with ``hold``: quiet containers' messages wait to be written together.

The whole store contract runs again with a hold, then what only the hold does: a quiet
container waits while a busy one is written, and a read, a close or the hold's end writes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tailhub.store import Retention, SqliteStore
from tailhub.store.sqlite import HOLD_FILL
from tests.store.contract import (
    AgainstModelContract,
    AppendContract,
    DurabilityContract,
    Harness,
    ReadContract,
    ReadYourWritesContract,
    ReopenContract,
    RetentionContract,
    append,
)

HOLD = 0.05


def _make(place: Path, retention: Retention | None) -> SqliteStore:
    return SqliteStore(place / "history.db", retention, hold=HOLD)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(_make, tmp_path, reopen_same=False)
    yield harness
    await harness.close()


class TestAppend(AppendContract):
    """The append contract, with a hold."""


class TestReadYourWrites(ReadYourWritesContract):
    """The read-your-writes contract, with a hold."""


class TestRead(ReadContract):
    """The read contract, with a hold."""


class TestDurability(DurabilityContract):
    """The durability contract, with a hold."""


class TestRetention(RetentionContract):
    """The retention contract, with a hold."""


class TestReopen(ReopenContract):
    """The reopen contract, with a hold."""


class TestAgainstModel(AgainstModelContract):
    """The model-based contract, with a hold."""


def _held(place: Path, retention: Retention | None) -> SqliteStore:
    """A hold far longer than any test: a quiet container is written only when forced."""
    return SqliteStore(place / "history.db", retention, hold=3600.0)


@pytest.fixture
def held(tmp_path: Path) -> Harness:
    return Harness(_held, tmp_path, reopen_same=False)


async def test_a_quiet_container_waits_while_a_busy_one_is_written(held: Harness) -> None:
    opened = await held.open()
    try:
        append(opened.store, "quiet", range(1, 2))
        append(opened.store, "busy", range(1, HOLD_FILL + 1))
        await opened.until_durable("busy", HOLD_FILL)
        assert "quiet" not in opened.durable
    finally:
        await held.close()


async def test_a_read_writes_what_waits_first(held: Harness) -> None:
    opened = await held.open()
    try:
        sent = append(opened.store, "quiet", range(1, 4))
        assert sent == await opened.store.read("quiet")
        await opened.until_durable("quiet", 3)
    finally:
        await held.close()


async def test_close_writes_what_waits_and_a_reopen_finds_it(held: Harness) -> None:
    opened = await held.open()
    sent = append(opened.store, "quiet", range(1, 3))
    reopened = await held.reopen(opened)
    try:
        assert {"quiet": 2} == opened.durable
        assert sent == await reopened.store.read("quiet")
    finally:
        await held.close()


async def test_the_hold_ends_by_itself(harness: Harness) -> None:
    """With a short hold, a lone message becomes durable with nothing else happening."""
    opened = await harness.open()
    append(opened.store, "lone", range(1, 2))
    await opened.until_durable("lone", 1)


def test_a_negative_hold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hold"):
        SqliteStore(tmp_path / "history.db", hold=-1.0)
