"""Which engine a hub runs on, chosen from its settings."""

from __future__ import annotations

from collections.abc import Callable

from tailhub.config import Settings
from tailhub.engine import Engine
from tailhub.engine.local import LocalEngine
from tailhub.store.base import HistoryStore, Retention
from tailhub.store.memory import MemoryStore

__all__ = ["make_engine"]


def make_engine(settings: Settings, on_batch: Callable[[int, float], None]) -> Engine:
    """The engine ``settings`` ask for: in memory, or SQLite in the data directory.

    ``on_batch(messages, seconds)`` is told of each SQLite commit, for the metrics.
    """
    retention = Retention(settings.retention_messages, settings.retention_age)
    store: HistoryStore
    if settings.history == "memory":
        store = MemoryStore(retention)
    else:
        from tailhub.store.sqlite import SqliteStore

        store = SqliteStore(
            settings.data_dir / "history.db",
            retention,
            on_batch=on_batch,
            check_timeout=settings.startup_check_timeout,
        )
    return LocalEngine(store, max_sessions=settings.max_sessions)
