"""The engine contract against :class:`~tailhub.engine.local.LocalEngine` over each history
store, and what only the local engine over SQLite has to get right: reservations, epochs
and a SIGKILL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tailhub.engine import Engine
from tailhub.engine.local import LocalEngine
from tailhub.store import MemoryStore, Retention, SqliteStore
from tests.engine.contract import (
    CommandContract,
    Harness,
    HistoryContract,
    Options,
    PublishContract,
    RecordContract,
    RestartContract,
    SessionContract,
)


async def _memory(place: Path, options: Options) -> Engine:
    store = MemoryStore(Retention(options.max_messages, options.max_age))
    return LocalEngine(store, max_sessions=options.max_sessions)


async def _sqlite(place: Path, options: Options) -> Engine:
    store = SqliteStore(place / "history.db", Retention(options.max_messages, options.max_age))
    return LocalEngine(store, max_sessions=options.max_sessions)


class _OnMemory:
    @pytest.fixture
    async def engines(self, tmp_path: Path) -> AsyncIterator[Harness]:
        harness = Harness(_memory, tmp_path, keeps_state=False)
        yield harness
        await harness.close()


class _OnSqlite:
    @pytest.fixture
    async def engines(self, tmp_path: Path) -> AsyncIterator[Harness]:
        harness = Harness(_sqlite, tmp_path, keeps_state=True)
        yield harness
        await harness.close()


class TestMemoryPublish(_OnMemory, PublishContract):
    """The publish contract, over MemoryStore."""


class TestMemoryHistory(_OnMemory, HistoryContract):
    """The history contract, over MemoryStore."""


class TestMemorySessions(_OnMemory, SessionContract):
    """The session contract, over MemoryStore."""


class TestMemoryCommands(_OnMemory, CommandContract):
    """The command contract, over MemoryStore."""


class TestMemoryRecords(_OnMemory, RecordContract):
    """The metadata and records contract, over MemoryStore."""


class TestSqlitePublish(_OnSqlite, PublishContract):
    """The publish contract, over SqliteStore."""


class TestSqliteHistory(_OnSqlite, HistoryContract):
    """The history contract, over SqliteStore."""


class TestSqliteSessions(_OnSqlite, SessionContract):
    """The session contract, over SqliteStore."""


class TestSqliteCommands(_OnSqlite, CommandContract):
    """The command contract, over SqliteStore."""


class TestSqliteRecords(_OnSqlite, RecordContract):
    """The metadata and records contract, over SqliteStore."""


class TestSqliteRestart(_OnSqlite, RestartContract):
    """The restart contract, over SqliteStore."""
