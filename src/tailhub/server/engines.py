"""Which engine a hub process runs on, chosen from its settings.

``--redis`` (``TAILHUB_REDIS_URL``) selects the Redis engine, so several hub processes act as
one hub; otherwise the local engine keeps everything in this process, over SQLite (the
default) or in memory (``--history memory``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from tailhub.config import Settings
from tailhub.engine import Engine
from tailhub.engine.base import QuietHandler
from tailhub.engine.local import LocalEngine
from tailhub.engine.redis import RedisEngine
from tailhub.paths import HISTORY_FILE
from tailhub.store.base import HistoryStore, Retention
from tailhub.store.memory import MemoryStore

__all__ = ["make_engine", "reach_redis"]


def make_engine(settings: Settings, on_batch: Callable[[int, float], None]) -> Engine:
    """The engine ``settings`` ask for, not yet opened: Redis, in memory, or SQLite.

    ``on_batch(messages, seconds)`` is told of each SQLite commit, for the metrics.
    """
    if settings.redis_url:
        return RedisEngine(
            settings.redis_url,
            max_requests=settings.redis_requests,
            max_sessions=settings.max_sessions,
            retention_messages=settings.retention_messages,
            retention_age=settings.retention_age,
        )
    retention = Retention(settings.retention_messages, settings.retention_age)
    store: HistoryStore
    if settings.history == "memory":
        store = MemoryStore(retention)
    else:
        from tailhub.store.sqlite import SqliteStore

        store = SqliteStore(
            settings.data_dir / HISTORY_FILE,
            retention,
            on_batch=on_batch,
            check_timeout=settings.startup_check_timeout,
        )
    # Ended sessions are kept as long as history: on disk all of them; in memory, as the hub
    # always did, the last 1,000.
    return LocalEngine(
        store,
        max_sessions=settings.max_sessions,
        keep_ended=1000 if settings.history == "memory" else None,
        session_retention=settings.retention_age,
    )


async def reach_redis(settings: Settings) -> None:
    """Connect to the configured Redis once and let go (before serving, or forking workers).

    Raises:
        EngineError: the URL cannot be used or the server cannot be reached; the words name
            the server without its password.
    """
    if not settings.redis_url:
        return
    engine = RedisEngine(settings.redis_url)
    await engine.open(QuietHandler())
    with contextlib.suppress(Exception):
        await engine.close()
