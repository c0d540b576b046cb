"""The engine of one hub process, over a history store: memory or SQLite.

Everything the engine must agree on lives in this process, so the engine is the one place
that decides it: ``seq`` counters, the producer ids already stored, sessions, metadata,
records and claims are held in dicts, and the history store (:mod:`tailhub.store`) keeps the
messages, and, for SQLite, everything else across restarts.

How it keeps the contract of :mod:`tailhub.engine.base`:

- **Publishing is synchronous.** :meth:`LocalEngine.publish` assigns the seqs, drops repeated
  ``(producer, id)`` pairs, encodes each stored message once
  (:func:`~tailhub.protocol.encode_published`), queues the run to the store
  (``append_run``: a few list operations, no I/O), calls :meth:`EngineHandler.deliver` once
  for the run and ``done`` before it returns. Its per-message work is one seq and one
  encoding.
- **Fan-out is in process.** ``deliver`` is called for every stored run, whether or not
  :meth:`LocalEngine.listen` was called (``listen``/``unlisten`` are no-ops here): the node
  knows its own subscribers and drops runs nobody wants.
- **Durability** comes from the store's ``on_durable`` callback, passed through to
  :meth:`EngineHandler.durable`.
- **A seq shown is never reused.** A store that keeps history (SQLite) commits, ahead of use,
  a reservation per container (see :mod:`tailhub.store.base`); a run with a seq above its
  container's committed reservation is held, with every run published after it (so the
  order of deliveries stays the order of publishing, across containers too), until the
  commit that covers it is reported. That is normally a container's first run only, for one
  commit: the reservation runs far ahead. While a container's runs are held, its position
  names the last seq handed on, so that no subscriber reads them as history before they are
  reserved. After an unclean stop the store names where each container continues, past
  anything that could have been shown, with a new epoch. The memory store reserves nothing:
  nothing survives its process anyway.
- **Sessions** follow :mod:`tailhub.engine.sessions`. They are saved to the store when they
  start, change status and end; ``last_activity`` is saved lazily, for every session whose
  activity moved, at each :meth:`LocalEngine.expire`, :meth:`LocalEngine.prune` and at close:
  never a write per message.
- **Commands** go to the local handler, if this process attached a connection of the
  container.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from msgspec import Raw

from tailhub.engine.base import (
    DUPLICATE,
    EngineError,
    EngineHandler,
    EntryLike,
    Position,
    PublishDone,
    Published,
    SessionInfo,
    SessionPage,
    StoredMessage,
)
from tailhub.engine.sessions import (
    Session,
    SessionRegistry,
    apply_message,
    limit_reason,
    run_messages,
)
from tailhub.protocol import TimeFormatter, encode_published
from tailhub.store.base import HistoryStore, SessionRow, StoreError

__all__ = ["LocalEngine"]

_MAX_SESSIONS: Final = "max_sessions"
_UNAVAILABLE: Final = "unavailable"
_DAY: Final = 86400.0


def _ignore(_result: Published) -> None:
    """A ``done`` for runs the engine publishes itself."""


def _row(session: Session) -> SessionRow:
    return SessionRow(
        session.container_id,
        session.status,
        session.started_at,
        session.last_activity,
        session.ended_at,
        session.end_reason,
        session.exit_code,
    )


class LocalEngine:
    """An :class:`~tailhub.engine.base.Engine` for one process, over ``store``.

    Args:
        store: where messages (and, for SQLite, sessions, metadata and records) are kept;
            opened by :meth:`open`, closed by :meth:`close`.
        max_sessions: most active sessions at once.
        keep_ended: most ended sessions listed and kept (None: all within
            ``session_retention``).
        session_retention: ended sessions are forgotten this many seconds after they ended
            (at :meth:`prune`).
        clock: wall time (Unix seconds) for record and claim expiry.
    """

    def __init__(
        self,
        store: HistoryStore,
        *,
        max_sessions: int,
        keep_ended: int | None = None,
        session_retention: float = 7 * _DAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._registry = SessionRegistry(max_sessions, keep_ended)
        self._stamp = TimeFormatter()
        """Formats a receive time for entries without a timestamp (one text per ``now``)."""
        self._session_retention = session_retention
        self._clock = clock
        self._handler: EngineHandler | None = None
        self._last_seq: dict[str, int] = {}
        """Per container, the last seq stored."""
        self._holding: dict[str, list[asyncio.Future[None]]] = {}
        """Containers with held runs, and who waits for them to be handed on."""
        self._floors: dict[str, int] = {}
        """Containers whose next seq must pass this one (an unclean stop may have shown it)."""
        self._producer_ids: dict[tuple[str, str], int] = {}
        self._reserved: dict[str, int] | None = None
        self._held: deque[tuple[str, int, str, list[bytes]]] = deque()
        self._saved_activity: dict[str, float] = {}
        self._attached: dict[str, int] = {}
        self._meta: dict[str, dict[str, bytes]] = {}
        self._records: dict[tuple[str, str], tuple[bytes, float | None]] = {}
        self._claims: dict[tuple[str, str], tuple[str, float]] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self, handler: EngineHandler) -> None:
        """Open the store and take back what it kept.

        Raises:
            EngineError: the store cannot be opened (the store's words).
        """
        try:
            snapshot = await self.store.open(self._on_durable, self._on_reserved)
        except StoreError as exc:
            raise EngineError(str(exc)) from None
        for container_id, info in snapshot.containers.items():
            self._last_seq[container_id] = info.last_seq
        self._floors = dict(snapshot.skip_to)
        self._producer_ids = dict(snapshot.producers)
        self._reserved = None if snapshot.reserved is None else dict(snapshot.reserved)
        self._registry.restore(
            Session(
                row.container_id,
                row.started_at,
                row.last_activity,
                row.status,
                row.ended_at,
                row.end_reason,
                row.exit_code,
                run_seq=-1,  # where the run began is not kept: count all its history
            )
            for row in snapshot.sessions
        )
        self._forget_dropped()
        self._saved_activity = {row.container_id: row.last_activity for row in snapshot.sessions}
        for (container_id, name), value in snapshot.meta.items():
            self._meta.setdefault(container_id, {})[name] = value
        self._records = dict(snapshot.records)
        self._claims = dict(snapshot.claims)
        self._handler = handler
        if self._last_seq:
            # What was kept is durable (and a seq skipped past names no message).
            handler.durable(list(self._last_seq.items()))

    async def close(self) -> None:
        """Save session activity, make every accepted run durable, close the store.

        Raises:
            EngineError: queued messages could not be written.
        """
        if self._handler is None:
            return
        self._save_activity()
        try:
            await self.store.close()
        except StoreError as exc:
            raise EngineError(str(exc)) from None
        finally:
            self._handler = None

    async def check(self) -> None:
        try:
            await self.store.check()
        except StoreError as exc:
            raise EngineError(str(exc)) from None

    # -- publishing ----------------------------------------------------------------------

    def publish(
        self,
        container_id: str,
        kind: str,
        entries: Sequence[EntryLike],
        now: float,
        done: PublishDone,
    ) -> None:
        """See :meth:`Engine.publish`. ``done`` is called before this returns."""
        handler = self._handler
        last = self._last_seq.get(container_id, 0)
        if handler is None:
            done(Published(container_id, [], last, "", _UNAVAILABLE, "the engine is closed"))
            return
        if kind == "heartbeat":  # heartbeats are not stored: they only refresh the session
            self.touch(container_id, now)
            done(Published(container_id, [], last, self.store.epoch(container_id)))
            return
        registry = self._registry
        session = registry.active.get(container_id)
        producer_ids = self._producer_ids
        if session is None and not registry.has_room_for(container_id):
            if all(
                e.id is not None and e.id <= producer_ids.get((container_id, e.producer), 0)
                for e in entries
            ):
                repeats = [DUPLICATE] * len(entries)
                done(Published(container_id, repeats, last, self.store.epoch(container_id)))
            else:
                reason = limit_reason(registry.max_sessions)
                epoch = self.store.epoch(container_id)
                done(Published(container_id, [], last, epoch, _MAX_SESSIONS, reason))
            return
        payloads: list[bytes] = []
        seqs: list[int] = []
        ids: list[tuple[str, int | None]] | None = None  # once a message has an id
        floor = self._floors.get(container_id, 0) if self._floors else 0
        before = last
        stamp = first = max(last, floor) + 1  # past an unclean stop's reservation, once
        text = ""
        for entry in entries:
            pub_id = entry.id
            if pub_id is not None:
                key = (container_id, entry.producer)
                if pub_id <= producer_ids.get(key, 0):
                    seqs.append(DUPLICATE)
                    continue
                producer_ids[key] = pub_id
                if ids is None:
                    ids = [("", None)] * len(payloads)
            if ids is not None:
                ids.append((entry.producer, pub_id))
            data = entry.data
            timestamp = entry.timestamp
            if timestamp is None:
                timestamp = text = text or self._stamp(now)
            payloads.append(
                encode_published(
                    kind, container_id, timestamp, stamp, data if type(data) is Raw else Raw(data)
                )
            )
            seqs.append(stamp)
            stamp += 1
        if not payloads:
            done(Published(container_id, seqs, last, self.store.epoch(container_id)))
            return
        self.store.append_run(container_id, first, now, payloads, ids)
        self._last_seq[container_id] = last = stamp - 1
        if floor:
            del self._floors[container_id]
        started = ended = False
        if session is None:
            session = registry.start(container_id, now)
            for name in self._meta.pop(container_id, ()):  # a new session starts bare
                self.store.save_meta(container_id, name, None)
            started = True
        session.last_activity = now
        if kind != "log":
            changed = False
            for entry in entries:
                changed = (
                    apply_message(session, kind, entry.status, entry.exit_code, now) or changed
                )
            if kind == "complete":
                registry.end(container_id, "complete", now)
                ended = True
            if changed or started:
                self._save(session)
            if ended:
                self._forget_dropped()
        elif started:
            self._save(session)
        if not session.run_seq:  # the first message of a run
            session.run_seq = next(seq for seq in seqs if seq)
        self._deliver(handler, container_id, kind, payloads, last, before)
        done(
            Published(
                container_id,
                seqs,
                last,
                self.store.epoch(container_id),
                started=started,
                ended=ended,
            )
        )

    def _deliver(
        self,
        handler: EngineHandler,
        container_id: str,
        kind: str,
        payloads: list[bytes],
        last: int,
        before: int,
    ) -> None:
        """Hand a stored run to the handler, or hold it until its seqs are reserved.

        ``last`` is the run's last seq, ``before`` the container's last seq before it.

        Held runs wait in one queue, in the order they were stored, and every run stored
        behind one waits too: subscribers of several containers (``*``) see runs in the
        order they were received. Only a container's first run (or one past a reservation
        that fell behind) is ever held, for one commit.
        """
        reserved = self._reserved
        held = self._held
        if reserved is None or (not held and last <= reserved.get(container_id, 0)):
            handler.deliver(container_id, kind, payloads)
            return
        self._holding.setdefault(container_id, [])
        held.append((container_id, last, kind, payloads))

    def _on_reserved(self, pairs: Sequence[tuple[str, int]]) -> None:
        """A commit raised reservations: deliver the held runs they now cover, in order."""
        reserved = self._reserved
        if reserved is None:
            reserved = self._reserved = {}
        for container_id, seq in pairs:
            if seq > reserved.get(container_id, 0):
                reserved[container_id] = seq
        held = self._held
        if not held:
            return
        handler = self._handler
        while held and held[0][1] <= reserved.get(held[0][0], 0):
            container_id, _, kind, payloads = held.popleft()
            if handler is not None:
                handler.deliver(container_id, kind, payloads)
        still = {run[0] for run in held}
        holding = self._holding
        for container_id in [c for c in holding if c not in still]:
            for waiter in holding.pop(container_id):
                if not waiter.done():
                    waiter.set_result(None)

    def _on_durable(self, pairs: Sequence[tuple[str, int]]) -> None:
        if self._handler is not None:
            self._handler.durable(pairs)

    def touch(self, container_id: str, now: float) -> None:
        session = self._registry.active.get(container_id)
        if session is not None:
            session.last_activity = now

    async def read(
        self,
        container_id: str,
        *,
        after: int = 0,
        tail: int | None = None,
        since_time: float | None = None,
        limit: int | None = None,
    ) -> list[StoredMessage]:
        try:
            return await self.store.read(
                container_id, after=after, tail=tail, since_time=since_time, limit=limit
            )
        except StoreError as exc:
            raise EngineError(str(exc)) from None

    def known_position(self, container_id: str) -> Position | None:
        """Known at once in this process, unless runs of the container are held (see
        :meth:`position`). See :meth:`Engine.known_position`."""
        if container_id in self._holding:
            return None
        info = self.store.info(container_id)
        return Position(
            self._last_seq.get(container_id, 0),
            info.first_seq if info is not None else 0,
            self.store.epoch(container_id),
        )

    def position(self, container_id: str) -> Awaitable[Position]:
        """The last seq as of this call, answered once no run of the container is held:
        every seq it counts has then been handed on, so a subscriber that reads history up
        to it misses nothing. See :meth:`Engine.position`.

        Raises (when awaited):
            EngineError: the engine closed while waiting.
        """
        return self._position_after(container_id, self._last_seq.get(container_id, 0))

    async def _position_after(self, container_id: str, last: int) -> Position:
        while True:
            holding = self._holding.get(container_id)
            if holding is None:
                position = self.known_position(container_id)
                assert position is not None
                return position._replace(last_seq=last)
            waiter = asyncio.get_running_loop().create_future()
            holding.append(waiter)
            await waiter
            if self._handler is None:
                raise EngineError("the engine is closed")

    async def prune(self, now: float) -> int:
        """Apply history retention, forget old ended sessions and expired records and claims.

        As the store does, a producer's de-duplication state goes with its container's last
        kept message (it only guards against repeats of kept messages).
        """
        try:
            removed = await self.store.prune(now)
        except StoreError as exc:
            raise EngineError(str(exc)) from None
        if removed:
            emptied: dict[str, bool] = {}
            for producer_key in list(self._producer_ids):
                container_id = producer_key[0]
                empty = emptied.get(container_id)
                if empty is None:
                    info = self.store.info(container_id)
                    empty = emptied[container_id] = info is None or info.messages == 0
                if empty:
                    del self._producer_ids[producer_key]
        gone = self._registry.forget_ended_before(now - self._session_retention)
        for container_id in gone:
            self._meta.pop(container_id, None)
            self._saved_activity.pop(container_id, None)
        if gone:
            self.store.forget_sessions(gone)
        wall = self._clock()
        for kind, key in [k for k, (_, exp) in self._records.items() if exp and exp <= wall]:
            del self._records[kind, key]
            self.store.save_record(kind, key, None, None)
        for kind, key in [k for k, (_, exp) in self._claims.items() if exp <= wall]:
            del self._claims[kind, key]
            self.store.save_claim(kind, key, None, 0.0)
        self._save_activity()
        return removed

    # -- fan-out and commands ------------------------------------------------------------

    def listen(self, container_id: str) -> None:
        """Nothing to do in one process: every stored run is delivered (see the module doc)."""

    def unlisten(self, container_id: str) -> None:
        """Nothing to do in one process (see :meth:`listen`)."""

    def attach(self, container_id: str) -> None:
        self._attached[container_id] = self._attached.get(container_id, 0) + 1

    def detach(self, container_id: str) -> None:
        count = self._attached.get(container_id, 0) - 1
        if count > 0:
            self._attached[container_id] = count
        else:
            self._attached.pop(container_id, None)

    async def command(self, container_id: str, payload: bytes) -> int:
        """The local handler's count, if this process attached ``container_id``; else 0."""
        handler = self._handler
        if handler is None or container_id not in self._attached:
            return 0
        return handler.command(container_id, payload)

    def notice(self, container_id: str, payload: bytes) -> None:
        """One process: there is no other to tell."""
        return

    # -- sessions ------------------------------------------------------------------------

    def _forget_dropped(self) -> None:
        """Forget, where they are kept, the ended sessions the registry stopped listing."""
        dropped = self._registry.dropped
        if dropped:
            for container_id in dropped:
                self._meta.pop(container_id, None)
                self._saved_activity.pop(container_id, None)
            self.store.forget_sessions(dropped)
            self._registry.dropped = []

    def _save(self, session: Session) -> None:
        self._saved_activity[session.container_id] = session.last_activity
        self.store.save_session(_row(session))

    def _save_activity(self) -> None:
        """Save every active session whose ``last_activity`` moved since it was saved."""
        saved = self._saved_activity
        for container_id, session in self._registry.active.items():
            if saved.get(container_id) != session.last_activity:
                self._save(session)

    def _info(self, session: Session) -> SessionInfo:
        container_id = session.container_id
        info = self.store.info(container_id)
        return SessionInfo(
            container_id,
            session.status,
            session.started_at,
            session.last_activity,
            session.ended_at,
            session.end_reason,
            session.exit_code,
            last_seq=self._last_seq.get(container_id, 0),
            first_seq=info.first_seq if info is not None else 0,
            messages=run_messages(
                session,
                self._last_seq.get(container_id, 0),
                info.messages if info is not None else 0,
            ),
            stored_bytes=info.bytes if info is not None else 0,
            publishers=self._attached.get(container_id, 0),
            epoch=self.store.epoch(container_id),
            meta=dict(self._meta.get(container_id, {})),
        )

    async def sessions(
        self, *, status: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> SessionPage:
        """See :meth:`Engine.sessions`.

        Raises:
            EngineError: ``cursor`` is not one this engine gave.
        """
        try:
            page, following = self._registry.page(status, limit, cursor)
        except ValueError:
            raise EngineError(f"{cursor!r} is not a session listing cursor") from None
        return SessionPage([self._info(s) for s in page], following)

    async def session(self, container_id: str) -> SessionInfo | None:
        session = self._registry.get(container_id)
        return None if session is None else self._info(session)

    async def expire(
        self, now: float, timeout: float, final: EntryLike | None = None
    ) -> list[SessionInfo]:
        """End timed-out sessions, each with ``final`` stored as its last message; save
        activity. See :meth:`Engine.expire`."""
        ended = []
        for session in self._registry.expired(now, timeout):
            container_id = session.container_id
            if final is None:
                session.status = "error"
            else:
                self.publish(container_id, "status", (final,), now, _ignore)
            done = await self.end_session(container_id, "timeout", now)
            if done is not None:
                ended.append(done)
        self._save_activity()
        return ended

    async def end_session(self, container_id: str, reason: str, now: float) -> SessionInfo | None:
        session = self._registry.end(container_id, reason, now)
        if session is None:
            return None
        self._save(session)
        self._forget_dropped()
        return self._info(session)

    # -- metadata and records ------------------------------------------------------------

    async def _sync(self) -> None:
        try:
            await self.store.sync()
        except StoreError as exc:
            raise EngineError(str(exc)) from None

    async def set_meta(self, container_id: str, name: str, value: bytes | None) -> None:
        """See :meth:`Engine.set_meta`; durable (as sessions are) when it returns.

        Raises:
            EngineError: it cannot be made durable now.
        """
        if value is None:
            meta = self._meta.get(container_id)
            if meta is not None:
                meta.pop(name, None)
                if not meta:
                    del self._meta[container_id]
        else:
            self._meta.setdefault(container_id, {})[name] = value
        self.store.save_meta(container_id, name, value)
        await self._sync()

    async def put_record(
        self, kind: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> None:
        """See :meth:`Engine.put_record`; durable when it returns.

        Raises:
            EngineError: it cannot be made durable now.
        """
        expires = None if ttl is None else self._clock() + ttl
        self._records[kind, key] = (value, expires)
        self.store.save_record(kind, key, value, expires)
        await self._sync()

    async def records(self, kind: str) -> dict[str, bytes]:
        wall = self._clock()
        return {
            key: value
            for (of, key), (value, expires) in self._records.items()
            if of == kind and (expires is None or expires > wall)
        }

    async def delete_record(self, kind: str, key: str) -> None:
        """See :meth:`Engine.delete_record`; durable when it returns.

        Raises:
            EngineError: it cannot be made durable now.
        """
        if self._records.pop((kind, key), None) is not None:
            self.store.save_record(kind, key, None, None)
            await self._sync()

    async def claim(self, kind: str, key: str, owner: str, ttl: float) -> bool:
        """See :meth:`Engine.claim`; the owner holding it may take it again (extending it).

        Raises:
            EngineError: the claim cannot be made durable now.
        """
        wall = self._clock()
        held = self._claims.get((kind, key))
        if held is not None and held[0] != owner and held[1] > wall:
            return False
        expires = wall + ttl
        self._claims[kind, key] = (owner, expires)
        self.store.save_claim(kind, key, owner, expires)
        await self._sync()
        return True
