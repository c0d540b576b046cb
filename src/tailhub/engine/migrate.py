"""``tailhub migrate``: a stopped SQLite hub's history, sessions and records, copied into Redis.

What goes over, as the SQLite hub kept it:

- each container's messages, with their seqs, receive times and bytes;
- its epoch and last seq: a viewer that resumes with a position it had from the SQLite hub
  resumes where it was, and publishing goes on above that seq (past the container's
  reservation, after an unclean stop, as the SQLite hub itself would go on);
- each producer's last id, so that a resend of a message already stored is still dropped;
- its session (status, times, exit code, why it ended), listed and limited as any other, and
  the session's metadata (the agent summary, the attention state);
- the shared records (revoked token ids, the notification outbox), with what is left of their
  time to live. Claims (short leases between hub processes) are not copied: they lapse.

Nothing is written to Redis if it already holds anything (counter, history or session) of one
of those containers: a second run, or a run into a Redis in use, is refused before it writes.
A run that stops midway leaves Redis partly loaded: flush it (or its keys) and run again.

The history is opened as the hub opens it, which takes its lock: the hub must be stopped. Its
data directory is left as the hub would leave it, so going back to it stays possible.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tailhub.engine.base import EngineError, QuietHandler
from tailhub.engine.redis import RedisEngine
from tailhub.paths import HISTORY_FILE
from tailhub.store.base import StoreError, StoreSnapshot
from tailhub.store.sqlite import SqliteStore

__all__ = ["MigrateError", "Migrated", "migrate"]

_PAGE: Final = 1000
_SHOWN: Final = 5


class MigrateError(Exception):
    """Nothing (or, once writing began, not everything) was copied; the words say why."""


@dataclass(frozen=True, slots=True)
class Migrated:
    """What was copied: containers with history or a session, messages, sessions, metadata
    values and records."""

    containers: int
    messages: int
    sessions: int
    meta: int
    records: int


async def migrate(data_dir: Path, redis_url: str, *, prefix: str = "tailhub:") -> Migrated:
    """Copy the history kept in ``data_dir`` into the Redis at ``redis_url`` (see the module
    doc for what goes over).

    Raises:
        MigrateError: ``data_dir`` holds no history, the history cannot be opened (a hub
            still running on it, damage), Redis cannot be reached or already holds one of
            its containers, or a write failed.
    """
    path = data_dir / HISTORY_FILE
    if not path.is_file():
        raise MigrateError(f"no history to migrate: {path} does not exist")
    store = SqliteStore(path)
    try:
        snapshot = await store.open(lambda _pairs: None)
    except StoreError as exc:
        raise MigrateError(f"cannot open {path}: {exc}") from None
    try:
        engine = RedisEngine(redis_url, prefix=prefix)
        try:
            await engine.open(QuietHandler())
        except EngineError as exc:
            raise MigrateError(str(exc)) from None
        try:
            return await _copy(store, snapshot, engine)
        except (EngineError, StoreError) as exc:
            raise MigrateError(f"migration stopped: {exc}") from None
        finally:
            await engine.close()
    finally:
        await store.close()


async def _copy(store: SqliteStore, kept: StoreSnapshot, engine: RedisEngine) -> Migrated:
    sessions = {row.container_id: row for row in kept.sessions}
    containers = sorted({*kept.containers, *sessions, *(c for c, _ in kept.meta)})
    taken = await engine.occupied(containers)
    if taken:
        named = ", ".join(repr(c) for c in taken[:_SHOWN])
        more = f" and {len(taken) - _SHOWN} more" if len(taken) > _SHOWN else ""
        raise MigrateError(
            f"Redis at {engine.shown} already holds {len(taken)} of the containers to migrate"
            f" ({named}{more}): migrate into an empty Redis, nothing was written"
        )
    producers: dict[str, dict[str, int]] = {}
    for (container_id, producer), last_id in kept.producers.items():
        producers.setdefault(container_id, {})[producer] = last_id
    messages = 0
    for container_id in containers:
        info = kept.containers.get(container_id)
        after = 0
        while page := await store.read(container_id, after=after, limit=_PAGE):
            await engine.load_messages(container_id, page)
            messages += len(page)
            after = page[-1].seq
        last_seq = max(info.last_seq if info else 0, kept.skip_to.get(container_id, 0))
        await engine.load_container(
            container_id,
            epoch=store.epoch(container_id) or secrets.token_hex(8),
            last_seq=last_seq,
            stored=info.messages if info else 0,
            stored_bytes=info.bytes if info else 0,
            producers=producers.get(container_id, {}),
            session=sessions.get(container_id),
        )
    for (container_id, name), value in kept.meta.items():
        await engine.set_meta(container_id, name, value)
    records = 0
    wall = time.time()
    for (kind, key), (value, expires) in kept.records.items():
        if expires is not None and expires <= wall:
            continue  # lapsed already
        await engine.put_record(kind, key, value, ttl=None if expires is None else expires - wall)
        records += 1
    return Migrated(len(containers), messages, len(sessions), len(kept.meta), records)
