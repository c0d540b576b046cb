"""The node: one hub process's policy, between its connections and the engine.

Data flows one way. A container's message, already decoded and checked, is admitted here
(:meth:`Node.admit`: the publish rate and how far history may lag, one rule each, for every
transport), then handed to the engine (:mod:`tailhub.engine`) in runs: the engine assigns
``seq``, drops repeated publisher ids, keeps history and sessions, and fans the run out to
every process listening for the container, calling :meth:`Node.deliver` here, which frames
each message once and queues the same bytes for every local subscriber. Acks go out once the
engine reports a message durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Final

import msgspec
import structlog

from tailhub.agents import AgentBook, Attention, AttentionBook, Request
from tailhub.config import Settings
from tailhub.core.hub import Connection, Hub, Peer
from tailhub.core.stats import Stats
from tailhub.engine import (
    DUPLICATE,
    Engine,
    EngineError,
    Entry,
    Position,
    Published,
    SessionInfo,
    StoredMessage,
    next_page_size,
)
from tailhub.grants import Grant
from tailhub.protocol import (
    ClientMessage,
    CloseCode,
    Command,
    ErrorCode,
    Publish,
    SessionsRequest,
    Subscribe,
    TimeFormatter,
    Unsubscribe,
    encode,
    encode_ack,
    encode_error,
    format_time,
    published_seq,
)
from tailhub.store.base import StoreError

__all__ = ["CommandRefusedError", "Node", "PublishRefusedError", "refusal_words"]

_BACKLOG_PAGE: Final = 1000
_AGENT_META: Final = "agent"
"""The session metadata that keeps a session's agent summary (see :mod:`tailhub.agents`)."""
_ATTENTION_META: Final = "attention"
"""The session metadata that keeps a session's attention state (see :mod:`tailhub.agents`)."""
_ANSWERS: Final = frozenset({"approve", "deny"})
"""Command actions that answer an open request, refused when it is not open."""
_AGENT_KEEP_INTERVAL: Final = 1.0
_AGAIN: Final = "message refused, send it again later"
_DRAINED_WORTH_TELLING: Final = 4 << 20
"""Bytes history must have fallen behind for its catching up to be worth telling."""
_log = structlog.get_logger("tailhub.node")


def _prune_interval(settings: Settings) -> float:
    """Retention runs every minute, or more often when messages are kept for less than 10."""
    return min(max(settings.retention_age / 10, 1.0), 60.0)


class Node:
    """One hub process: local connections, the policy for what they send, and the engine.

    Args:
        settings: limits and timings.
        engine: what hub processes agree on; opened by :meth:`start`.
        framer: turns an encoded message into the bytes of one WebSocket frame, so that each
            message is framed once however many subscribers receive it.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        framer: Callable[[bytes], bytes],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.stats = Stats()
        self.hub = Hub(framer, settings.max_queue, self.stats, self._interest)
        self.started_at = time.time()
        self.agents = AgentBook(settings.max_sessions + 1000)
        """The agent summary of each session whose container publishes agent events."""
        self.attention = AttentionBook(settings.max_sessions + 1000)
        """The attention state of each session this process saw publishing."""
        self.watchers: list[Callable[[str, Attention | None], None]] = []
        """Called with each change of a session's attention state (notifications)."""
        self._unkept: set[str] = set()
        """Sessions whose attention state the engine could not keep yet."""
        self.log_watchers: list[Callable[[str, bytes], None]] = []
        """Called with the raw ``data`` of every stored ``log`` (set: ``--notify-match``)."""
        self.session_counts: Counter[tuple[str, str]] = Counter()
        """Sessions by (``active``/``ended``, status), as of the last :meth:`count_sessions`
        (at start, and at each scrape of the metrics: it lists every session)."""
        self._frame = framer
        self._stamp = TimeFormatter()
        self._durable: dict[str, int] = {}
        self._lag = 0
        """Messages handed to the engine but not yet durable: how far history is behind."""
        self._lag_bytes = 0
        """The bytes of those messages' ``data`` (what holding them costs in memory)."""
        self._lag_peak = 0
        """The most ``_lag_bytes`` has been since history last caught up."""
        self.on_drained: Callable[[], None] | None = None
        """Told when history catches up after falling far behind (see :meth:`durable`)."""
        self._stored: dict[str, int] = {}
        """Per container, the highest seq this process had stored."""
        self._in_flight: dict[str, deque[tuple[int, int, int]]] = {}
        """Per container, ``(last seq, messages, bytes)`` of stored runs not yet durable."""
        self._awaiting: dict[str, deque[tuple[int, Connection, str, int]]] = {}
        self._durable_waiters: dict[str, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: Callable[[], float] = self._mono
        """The event loop's clock (``loop.time``) once started: read per message."""
        self._tick = -1.0
        self._now = 0.0
        """The wall-clock time read at loop time ``_tick``, shared by that turn's messages."""
        self._timeout_entry = Entry(
            encode(
                {
                    "status": "error",
                    "message": f"session timed out after {round(settings.session_timeout * 1000)}"
                    " ms without traffic",
                    "reason": "timeout",
                }
            ),
            None,  # stamped by the engine with the time it ends the session
            status="error",
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the engine and start the background rounds.

        Raises:
            EngineError: the engine cannot be opened or reached.
            StoreError: the local history store cannot be opened.
        """
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time
        await self.engine.open(self)
        settings = self.settings
        for session in await self.all_sessions_info():
            kept = session.meta.get(_AGENT_META)
            if kept is not None:
                with contextlib.suppress(msgspec.DecodeError):
                    self.agents.restore(session.container_id, msgspec.json.decode(kept))
            kept = session.meta.get(_ATTENTION_META)
            if kept is not None:
                with contextlib.suppress(msgspec.DecodeError):
                    self.attention.restore(
                        session.container_id,
                        msgspec.json.decode(kept),
                        session.status,
                        session.active,
                    )
            if session.active:
                self.attention.track(session.container_id, session.status, session.last_activity)
        await self.count_sessions()
        self._tasks = [
            asyncio.create_task(self._every(settings.heartbeat_interval, self._liveness_round)),
            asyncio.create_task(
                self._every(min(max(settings.session_timeout / 4, 0.05), 5.0), self._expire)
            ),
            asyncio.create_task(self._every(_prune_interval(settings), self._prune)),
            asyncio.create_task(self._every(_AGENT_KEEP_INTERVAL, self._keep_agents)),
            asyncio.create_task(
                self._every(min(max(settings.stall_after / 4, 0.05), 5.0), self._stall_round)
            ),
        ]

    def close_connections(self) -> None:
        """Start closing every connection with 1001 (the hub is going away)."""
        for conn in list(self.hub.connections.values()):
            self.hub.close(conn, CloseCode.GOING_AWAY, "hub shutting down")

    async def stop(self) -> None:
        """Close what connections are left, stop the rounds, make history durable."""
        self.close_connections()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(EngineError, StoreError):
            await self._keep_agents()
        await self.engine.close()

    async def _every(self, interval: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                result = job()
                if asyncio.iscoroutine(result):
                    await result
            except (EngineError, StoreError) as exc:
                _log.warning("background_round_failed", job=job.__name__, error=str(exc))
            except Exception:
                _log.exception("background_round_failed", job=getattr(job, "__name__", "?"))

    def _liveness_round(self) -> None:
        for conn in self.hub.broadcast_ping():
            _log.info("connection_timed_out", conn=conn.id, remote=conn.remote)
            self.hub.close(conn, CloseCode.TIMED_OUT, "no answer to ping")

    async def _expire(self) -> None:
        ended = await self.engine.expire(
            time.time(), self.settings.session_timeout, self._timeout_entry
        )
        for session in ended:
            self._ended(session.container_id, "timeout", session.status, session.exit_code)

    async def _keep_agents(self) -> None:
        """Hand the agent summaries that changed to the engine, so that they are listed by
        every process and survive a restart (once a second, never per message)."""
        for container_id, summary in self.agents.take_changed().items():
            await self.engine.set_meta(container_id, _AGENT_META, encode(summary))
        self.attention.take_changed()  # kept as they change (_keep_attention)
        unkept, self._unkept = self._unkept, set()
        for container_id in unkept:
            await self._keep_attention(container_id)

    async def _keep_attention(self, container_id: str) -> None:
        """Hand a session's attention state to the engine at once (it changes seldom), so
        that every process lists the same; one that cannot be kept now is tried again by the
        keep round."""
        value = self.attention.to_json(container_id)
        try:
            await self.engine.set_meta(
                container_id, _ATTENTION_META, encode(value) if value is not None else None
            )
        except (EngineError, StoreError) as exc:
            self._unkept.add(container_id)
            _log.warning("attention_not_kept", container=container_id, error=str(exc))

    def _stall_round(self) -> None:
        for container_id in self.attention.stalls(time.time(), self.settings.stall_after):
            self._attention_changed(container_id)

    def _attention_changed(self, container_id: str) -> None:
        """Push a session's new attention state to its subscribers and those of ``*``, on
        this process and (through the engine) on the others, and tell the watchers. Not
        stored in history: no ``seq``."""
        attention = self.attention.get(container_id)
        self._answer(None, self._keep_attention(container_id))
        payload = encode(
            {
                "type": "attention",
                "containerID": container_id,
                "data": attention.to_json() if attention is not None else None,
            }
        )
        self.notice(container_id, payload)
        self.engine.notice(container_id, payload)  # for the subscribers of other processes
        for watcher in self.watchers:
            try:
                watcher(container_id, attention)
            except Exception:
                _log.exception("attention_watcher_failed", container=container_id)

    async def all_sessions_info(self) -> list[SessionInfo]:
        """Every session the engine lists, all pages.

        Raises:
            EngineError: the engine cannot answer now.
        """
        sessions: list[SessionInfo] = []
        cursor: str | None = None
        while True:
            page = await self.engine.sessions(limit=1000, cursor=cursor)
            sessions += page.sessions
            cursor = page.cursor
            if cursor is None:
                return sessions

    async def all_sessions(self, grant: Grant | None = None) -> list[dict[str, Any]]:
        """Every session as the API shows it (for totals over the fleet); with ``grant``,
        only those it may read.

        Raises:
            EngineError: the engine cannot answer now.
        """
        sessions = await self.all_sessions_info()
        if grant is not None and not grant.everything:
            sessions = [s for s in sessions if grant.may_read(s.container_id)]
        return [self.describe(session) for session in sessions]

    async def count_sessions(self) -> None:
        """Refresh :attr:`session_counts` from the engine.

        Raises:
            EngineError: the engine cannot answer now.
        """
        counts: Counter[tuple[str, str]] = Counter()
        for session in await self.all_sessions_info():
            counts["active" if session.active else "ended", session.status] += 1
        self.session_counts = counts

    async def _prune(self) -> None:
        removed = await self.engine.prune(time.time())
        if removed:
            _log.info("history_pruned", messages=removed)

    def _mono(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _turn(self) -> float:
        """The loop's time; at a new turn of the loop, also read the wall clock into ``_now``.

        Messages handled in one turn of the loop were received together: one wall-clock
        reading (and so one timestamp text) serves them all. uvloop's clock moves once per
        turn; asyncio's on every call, which only makes this cache miss.
        """
        mono = self._clock()
        if mono != self._tick:
            self._tick = mono
            self._now = time.time()
        return mono

    def _spawn(self, conn: Connection | None, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` for ``conn`` as a task; it is cancelled if the connection goes."""
        task = asyncio.create_task(work)
        if conn is not None:
            conn.tasks.add(task)
            task.add_done_callback(conn.tasks.discard)

    def _answer(self, conn: Connection | None, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (a reply to ``conn``) now, up to its first wait, then as a task.

        A local engine answers queries without waiting, so the reply goes out in the order
        of the messages, as if the query were synchronous (and before a protocol error later
        in the same read closes the connection); an engine that waits (Redis) answers later.
        """
        try:
            awaited = work.send(None)
        except StopIteration:
            return
        self._spawn(conn, _resume(work, awaited))

    # -- connections -------------------------------------------------------------------

    def connect(self, peer: Peer, *, remote: str, grant: Grant | None) -> Connection:
        """A new connection; ``grant`` is what its token allows, None until it sends one."""
        return self.hub.connect(peer, remote=remote, grant=grant, rate=self.settings.publish_rate)

    def disconnect(self, conn: Connection) -> None:
        self.hub.disconnect(conn)

    def _interest(self, role: str, key: str, present: bool) -> None:
        engine = self.engine
        if role == "listen":
            (engine.listen if present else engine.unlisten)(key)
        else:
            (engine.attach if present else engine.detach)(key)

    def error(
        self,
        conn: Connection,
        code: ErrorCode,
        words: str,
        *,
        container_id: str | None = None,
        id: int | None = None,
        producer: str | None = None,
    ) -> None:
        """Answer ``conn`` with an ``error``; the connection stays open."""
        self.stats.errors[code.value] += 1
        self.hub.send(
            conn,
            encode_error(code, words, container_id=container_id, id=id, producer=producer),
        )

    def _forbidden(self, conn: Connection, grant: Grant, action: str, container_id: str) -> None:
        """Answer ``forbidden``: ``conn``'s token may not do ``action`` on the container."""
        self.error(
            conn,
            ErrorCode.FORBIDDEN,
            refusal_words(grant, action, container_id),
            container_id=container_id,
        )

    def handle(self, conn: Connection, message: ClientMessage) -> None:
        """Act on one checked message from an authenticated connection."""
        if isinstance(message, Publish):
            self.publish(conn, message)
        elif isinstance(message, Subscribe):
            self.subscribe(conn, message)
        elif isinstance(message, Unsubscribe):
            self.unsubscribe(conn, message.container_id)
        elif isinstance(message, Command):
            self.forward_command(conn, message)
        elif isinstance(message, SessionsRequest):
            self._answer(conn, self._reply_sessions(conn, message))

    async def _reply_sessions(self, conn: Connection, request: SessionsRequest) -> None:
        try:
            sessions, cursor = await self.list_sessions(
                status=request.status,
                limit=request.limit,
                cursor=request.cursor,
                grant=conn.grant,
            )
        except (EngineError, StoreError) as exc:
            self.error(conn, ErrorCode.UNAVAILABLE, str(exc))
            return
        data: dict[str, Any] = {"sessions": sessions}
        if cursor is not None:
            data["cursor"] = cursor
        self.hub.send(conn, encode({"type": "sessions", "data": data}))

    # -- admission ---------------------------------------------------------------------

    def admit(
        self,
        conn: Connection | None,
        count: int,
        size: int,
        mono: float,
        containers: Iterable[str],
        grant: Grant | None = None,
    ) -> tuple[ErrorCode, str] | None:
        """The one admission rule for ``count`` messages (``size`` bytes of ``data`` in all)
        that a client publishes together, for ``containers`` (each message's containerID).

        ``conn`` is the publishing connection (None for the HTTP API, which has no rate);
        ``grant`` what the request's token allows, when there is no connection to hold it.
        A token that may not publish for one of the containers is refused with ``forbidden``
        (a cached lookup per container, skipped for tokens that publish everywhere). History
        may fall at most ``max_store_lag`` messages and ``max_store_lag_bytes`` bytes
        behind (accepted, not yet durable, held in memory meanwhile): past either, a publish
        is refused with ``unavailable``, so that a failing disk costs publishers an error and
        not the hub its memory. Returns None when they may be stored, and counts them as not
        yet durable; else the error code and words to answer with, and a refused message
        changes nothing. Session limits and repeated ids are the engine's to decide, since
        they must agree across processes.
        """
        if conn is not None:
            grant = conn.grant
        if grant is not None and not grant.publishes_everywhere:
            allowed = ""  # a read's messages are mostly of one container: checked once
            for container_id in containers:
                if container_id != allowed:
                    if not grant.may_publish(container_id):
                        words = refusal_words(grant, "publish for", container_id)
                        return ErrorCode.FORBIDDEN, words
                    allowed = container_id
        if conn is not None and not conn.allow_publish(mono, count):
            return (
                ErrorCode.RATE_LIMITED,
                f"more than {self.settings.publish_rate} messages a second; message dropped",
            )
        if count:
            settings = self.settings
            if self._lag + count > settings.max_store_lag:
                return (
                    ErrorCode.UNAVAILABLE,
                    f"history is {self._lag} messages behind (TAILHUB_MAX_STORE_LAG)",
                )
            if self._lag_bytes + size > settings.max_store_lag_bytes:
                return (
                    ErrorCode.UNAVAILABLE,
                    f"history is {self._lag_bytes} bytes behind (TAILHUB_MAX_STORE_LAG_BYTES)",
                )
        self._lag += count
        self._lag_bytes += size
        return None

    # -- publishing --------------------------------------------------------------------

    def publish(self, conn: Connection, msg: Publish) -> None:
        """Accept one container message from ``conn``: admit it, then hand it to the engine.

        ``conn`` gets errors, acks and the heartbeat answer, and becomes the container's
        connection for commands.
        """
        self.publish_many(conn, (msg,))

    def publish_many(self, conn: Connection, messages: Sequence[Publish]) -> None:
        """Accept the publishes ``conn`` sent together, in order.

        Consecutive ``log`` messages of one container go to the engine as one run, so that a
        burst read together is stored, handed on and delivered to each subscriber at once.
        Anything else (another container, another type, a refusal) ends the run first, so
        replies and deliveries keep the order of the messages. When :meth:`admit` takes all
        of them at once (the usual case) no message is admitted on its own.
        """
        mono = self._turn()
        now = self._now
        if len(messages) > 1 and self._publish_uniform(conn, messages, mono, now):
            return
        run: list[Publish] = []
        admitted = len(messages) > 1 and all(m.type != "heartbeat" for m in messages)
        if admitted:
            admitted = (
                self.admit(
                    conn,
                    len(messages),
                    sum(len(m.data) for m in messages),
                    mono,
                    (m.container_id for m in messages),  # read only for scoped tokens
                )
                is None
            )
        for msg in messages:
            kind = msg.type
            if kind == "heartbeat":
                if run:
                    self._submit(conn, run, now)
                    run = []
                grant = conn.grant
                if grant is not None and not grant.may_publish(msg.container_id):
                    self._forbidden(conn, grant, "publish for", msg.container_id)
                    continue
                self._heartbeat(conn, msg, now)
                continue
            refusal = (
                None if admitted else self.admit(conn, 1, len(msg.data), mono, (msg.container_id,))
            )
            if refusal is not None:
                if run:
                    self._submit(conn, run, now)
                    run = []
                code, words = refusal
                self.error(
                    conn,
                    code,
                    words if code is not ErrorCode.UNAVAILABLE else f"{words}; {_AGAIN}",
                    container_id=msg.container_id,
                    id=msg.id,
                    producer=msg.producer,
                )
                continue
            if run and (
                kind != "log" or run[0].type != "log" or msg.container_id != run[0].container_id
            ):
                self._submit(conn, run, now)
                run = []
            run.append(msg)
        if run:
            self._submit(conn, run, now)

    def _publish_uniform(
        self, conn: Connection, messages: Sequence[Publish], mono: float, now: float
    ) -> bool:
        """The usual read, one container's logs, admitted and handed on as one run with one
        look at each message; False (nothing done) for any other read, or a refused one.
        """
        container_id = messages[0].container_id
        size = 0
        bare = True  # no id, no metadata: nothing to ack or to read per message
        for msg in messages:
            if msg.type != "log" or msg.container_id != container_id:
                return False
            size += len(msg.data)
            if bare and (msg.id is not None or msg.metadata is not None):
                bare = False
        if self.admit(conn, len(messages), size, mono, (container_id,)) is not None:
            return False
        self._submit(conn, list(messages), now, bare_size=size if bare else None)
        return True

    def _heartbeat(self, conn: Connection | None, msg: Publish, now: float) -> None:
        container_id = msg.container_id
        self.engine.touch(container_id, now)
        if conn is None:
            return
        self.hub.add_publisher(conn, container_id)
        stamp = self._stamp(now)
        self.hub.send(
            conn,
            encode(
                {
                    "type": "heartbeat",
                    "containerID": container_id,
                    "timestamp": stamp,
                    "data": {"timestamp": stamp, "uptime": round(now - self.started_at, 3)},
                }
            ),
        )

    def _submit(
        self,
        conn: Connection | None,
        run: list[Publish],
        now: float,
        done: Callable[[Published], None] | None = None,
        *,
        bare_size: int | None = None,
    ) -> None:
        """Hand a run of one container's admitted messages of one type to the engine
        (``bare_size``: see :meth:`_published`)."""
        first = run[0]

        def published(result: Published) -> None:
            self._published(conn, run, result, bare_size)
            if done is not None:
                done(result)

        # The decoded messages are the entries: those without a timestamp get ``now``.
        self.engine.publish(first.container_id, first.type, run, now, published)

    def _published(
        self,
        conn: Connection | None,
        run: list[Publish],
        result: Published,
        bare_size: int | None = None,
    ) -> None:
        """Answer the publisher of a run the engine has applied, and count it.

        ``bare_size``: no message of the run has an id or metadata (so none is a repeat, and
        there is nothing to ack or to read per message), and this is the size of their data.
        """
        container_id = result.container_id
        if result.refused is not None:
            self._lag -= len(run)
            self._lag_bytes -= sum(len(msg.data) for msg in run)
            if conn is not None:
                code = ErrorCode(result.refused)
                for msg in run:
                    self.error(
                        conn,
                        code,
                        result.reason,
                        container_id=container_id,
                        id=msg.id,
                        producer=msg.producer,
                    )
            return
        stats = self.stats
        stored = 0
        size = 0
        attention = self.attention
        changed = False
        if result.started:
            self.agents.forget(container_id)  # a new session's summary starts from nothing
            changed = attention.forget(container_id)
        agents = self.agents if run[0].type == "log" else None
        metadatas: list[dict[str, msgspec.Raw]] = []  # the logs' metadata, for the agent books
        # The highest seq stored for the container as each message was taken: a repeat is
        # acked with it, once it is durable (the message it repeats may still be in flight).
        top = self._durable.get(container_id, 0)
        top = max(top, self._stored.get(container_id, 0))
        if bare_size is not None:
            stored, top, size = len(run), result.seqs[-1], bare_size
        else:
            for msg, seq in zip(run, result.seqs, strict=True):
                if seq == DUPLICATE:
                    stats.duplicates += 1
                    self._lag -= 1
                    self._lag_bytes -= len(msg.data)
                    if conn is not None and msg.id is not None:
                        self._ack_when_durable(conn, container_id, msg.producer, msg.id, top)
                    continue
                stored += 1
                top = seq
                size += len(msg.data)
                if agents is not None and msg.metadata is not None:
                    metadatas.append(msg.metadata)
                if conn is not None and msg.id is not None:
                    self._ack_when_durable(conn, container_id, msg.producer, msg.id, seq)
        if stored:
            if attention.output(container_id, self._now):
                changed = True
            if metadatas:
                assert agents is not None
                agents.observe(container_id, metadatas)
                if attention.observe_agent(container_id, metadatas, self._now):
                    changed = True
            if agents is None:
                changed = self._observe_other(container_id, run, result.seqs) or changed
            elif self.log_watchers:
                for msg, seq in zip(run, result.seqs, strict=True):
                    if seq != DUPLICATE:
                        for watcher in self.log_watchers:
                            watcher(container_id, msg.data)
            self._stored[container_id] = top
            stats.messages_in[run[0].type] += stored
            stats.bytes_in += size
            if top <= self._durable.get(container_id, 0):
                self._lag -= stored
                self._lag_bytes -= size
            else:
                queue = self._in_flight.get(container_id)
                if queue is None:
                    queue = self._in_flight[container_id] = deque()
                queue.append((top, stored, size))
                if self._lag_bytes > self._lag_peak:
                    self._lag_peak = self._lag_bytes
        if result.started:
            stats.sessions_started += 1
            _log.info("session_started", container=container_id)
        if conn is not None and container_id not in conn.published:
            self.hub.add_publisher(conn, container_id)
        if result.ended:
            last = run[-1]
            self._ended(container_id, "complete", last.status or "", last.exit_code)
        if changed:
            self._attention_changed(container_id)

    def _observe_other(self, container_id: str, run: list[Publish], seqs: list[int]) -> bool:
        """The attention state's view of a stored run that is not ``log``s."""
        attention = self.attention
        kind = run[0].type
        changed = False
        for msg, seq in zip(run, seqs, strict=True):
            if seq == DUPLICATE:
                continue
            if kind == "status" and msg.status is not None:
                changed = attention.observe_status(container_id, msg.status, self._now) or changed
            elif kind == "complete":
                changed = (
                    attention.observe_complete(container_id, msg.exit_code, self._now) or changed
                )
        return changed

    def _ended(self, container_id: str, reason: str, status: str, exit_code: int | None) -> None:
        self.stats.sessions_ended[reason] += 1
        if reason != "timeout":
            self.attention.ended(container_id)
        elif self.attention.timed_out(container_id, time.time()):
            self._attention_changed(container_id)
        _log.info(
            "session_ended",
            container=container_id,
            reason=reason,
            status=status,
            exit_code=exit_code,
        )

    async def publish_request(
        self, container_id: str, messages: Sequence[Publish], grant: Grant | None = None
    ) -> list[int | None]:
        """Accept the messages of one HTTP request, in order; returns each one's ``seq``.

        A heartbeat or a repeated id gives None. Returns once every stored message is
        durable. Messages are submitted together, before anything is awaited, so no other
        request's messages come between them.

        Raises:
            PublishRefusedError: the request was refused as a whole (``grant`` may not publish
                for the container, history too far behind, the session limit, the engine
                unavailable); nothing of it was stored.
        """
        mono = self._turn()
        now = self._now
        stored = [m for m in messages if m.type != "heartbeat"]
        refusal = self.admit(
            None, len(stored), sum(len(m.data) for m in stored), mono, (container_id,), grant
        )
        if refusal is not None:
            raise PublishRefusedError(*refusal)
        loop = asyncio.get_running_loop()
        results: list[asyncio.Future[Published]] = []
        runs: list[list[Publish]] = []
        run: list[Publish] = []

        def flush() -> None:
            future: asyncio.Future[Published] = loop.create_future()
            runs.append(list(run))
            results.append(future)
            self._submit(None, list(run), now, future.set_result)

        for msg in messages:
            if msg.type == "heartbeat":
                if run:
                    flush()
                    run = []
                self._heartbeat(None, msg, now)
                continue
            if run and (msg.type != "log" or run[0].type != "log"):
                flush()
                run = []
            run.append(msg)
        if run:
            flush()
        seqs: dict[int, int | None] = {}
        top = 0
        for part, future in zip(runs, results, strict=True):
            result = await future
            if result.refused is not None:
                raise PublishRefusedError(ErrorCode(result.refused), result.reason)
            for msg, seq in zip(part, result.seqs, strict=True):
                seqs[id(msg)] = None if seq == DUPLICATE else seq
                top = max(top, seq)
        if top:
            await self.wait_durable(container_id, top)
        return [seqs.get(id(msg)) for msg in messages]

    # -- what the engine calls back ---------------------------------------------------

    def deliver(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        """A stored run for local subscribers: frame each message once, queue it for all."""
        frame = self._frame
        frames = [frame(payload) for payload in payloads]
        count = self.hub.deliver(container_id, frames, self._clock())
        if count:
            self.stats.messages_out[kind] += count

    def durable(self, positions: Sequence[tuple[str, int]]) -> None:
        """Messages are durable up to each ``(container_id, seq)``: ack their publishers.

        When history catches up after having fallen :data:`_DRAINED_WORTH_TELLING` bytes
        behind, :attr:`on_drained` is told (the memory that held them can go back).
        """
        for container_id, seq in positions:
            before = self._durable.get(container_id, 0)
            if seq <= before:
                continue
            self._durable[container_id] = seq
            flight = self._in_flight.get(container_id)
            if flight:
                while flight and flight[0][0] <= seq:
                    _, count, size = flight.popleft()
                    self._lag -= count
                    self._lag_bytes -= size
                if not flight:
                    del self._in_flight[container_id]
            waiters = self._durable_waiters.get(container_id)
            if waiters:
                while waiters and waiters[0][0] <= seq:
                    future = waiters.popleft()[1]
                    if not future.done():
                        future.set_result(None)
                if not waiters:
                    del self._durable_waiters[container_id]
            queue = self._awaiting.get(container_id)
            if not queue:
                continue
            latest: dict[tuple[int, str], tuple[Connection, int, int]] = {}
            while queue and queue[0][0] <= seq:
                acked_seq, conn, producer, id = queue.popleft()
                best = latest.get((conn.id, producer))
                if best is None or id > best[1]:
                    latest[(conn.id, producer)] = (conn, id, acked_seq)
            if not queue:
                del self._awaiting[container_id]
            for (_, producer), (conn, id, acked_seq) in latest.items():
                if not conn.closed:
                    self.hub.send(conn, encode_ack(container_id, id, acked_seq, producer))
        if self._lag_peak >= _DRAINED_WORTH_TELLING and not self._lag_bytes:
            self._lag_peak = 0
            if self.on_drained is not None:
                self.on_drained()

    def gap(self, container_id: str, after: int, resumed: int, reason: str) -> None:
        """Tell the container's subscribers that ``after + 1 .. resumed - 1`` are lost."""
        _log.warning(
            "history_gap", container=container_id, after=after, resumed=resumed, reason=reason
        )
        payload = encode(
            {
                "type": "gap",
                "containerID": container_id,
                "data": {"after": after, "resumed": resumed, "reason": reason},
            }
        )
        self.hub.deliver(container_id, [self._frame(payload)], self._clock())

    def forward_command(self, conn: Connection | None, cmd: Command) -> None:
        """Send ``cmd`` on to its container, wherever it is connected; answer ``conn``.

        A connection whose token may not command the container gets ``forbidden`` and
        nothing is sent.
        """
        grant = conn.grant if conn is not None else None
        if conn is not None and grant is not None and not grant.may_command(cmd.container_id):
            self._forbidden(conn, grant, "send commands to", cmd.container_id)
            return
        self._answer(conn, self._command(conn, cmd))

    async def _command(self, conn: Connection | None, cmd: Command) -> None:
        try:
            delivered = await self.send_command(cmd)
        except (EngineError, StoreError) as exc:
            if conn is not None:
                self.error(conn, ErrorCode.UNAVAILABLE, str(exc), container_id=cmd.container_id)
            return
        except CommandRefusedError as exc:
            if conn is not None:
                self.error(conn, exc.code, exc.words, container_id=cmd.container_id)
            return
        if conn is None:
            return
        if not delivered:
            self.error(
                conn,
                ErrorCode.NO_CONTAINER,
                f"no connection publishes for {cmd.container_id!r}; the command was not sent",
                container_id=cmd.container_id,
            )
            return
        reply = {"action": cmd.action, "delivered": delivered}
        self.hub.send(
            conn, encode({"type": "command_sent", "containerID": cmd.container_id, "data": reply})
        )

    async def send_command(self, cmd: Command) -> int:
        """Hand ``cmd`` to every connection publishing for its container, in any process.

        Returns how many took it: 0 means no container is connected anywhere. ``approve`` and
        ``deny`` are sent only for the request the session is waiting on, with its
        ``requestId`` filled in when the command left it out.

        Raises:
            EngineError: the engine cannot be reached.
            CommandRefusedError: ``not_pending``: an answer to a request that is not open.
        """
        data: Any = cmd.data
        if cmd.action in _ANSWERS:
            given = msgspec.json.decode(cmd.data)
            wanted = given.get("requestId")
            request = await self.pending_request(cmd.container_id, wanted)
            if request is None:
                words = (
                    f"{cmd.container_id!r} is waiting on no request"
                    if wanted is None
                    else f"request {wanted!r} of {cmd.container_id!r} is not pending"
                )
                raise CommandRefusedError(ErrorCode.NOT_PENDING, f"{words}; nothing was sent")
            given["requestId"] = request.id
            data = given
        payload = encode(
            {
                "type": "command",
                "containerID": cmd.container_id,
                "timestamp": format_time(time.time()),
                "data": data,
            }
        )
        delivered = await self.engine.command(cmd.container_id, payload)
        if delivered:
            _log.info("command_sent", container=cmd.container_id, action=cmd.action)
        return delivered

    async def pending_request(self, container_id: str, request_id: str | None) -> Request | None:
        """The open request ``request_id`` of a session (None: the one it shows), or None.

        This process's view when it saw the session publish, else the state the engine keeps.

        Raises:
            EngineError: the engine cannot answer now.
        """
        if self.attention.knows(container_id):
            return self.attention.pending(container_id, request_id)
        session = await self.engine.session(container_id)
        kept = session.meta.get(_ATTENTION_META) if session is not None else None
        if kept is None:
            return None
        try:
            attention = Attention.from_json(msgspec.json.decode(kept))
        except msgspec.DecodeError:
            return None
        if attention is None or attention.state != "waiting" or attention.request is None:
            return None
        request = attention.request
        return request if request_id is None or request_id == request.id else None

    def command(self, container_id: str, payload: bytes) -> int:
        """An encoded command for this process's publishing connections of ``container_id``."""
        targets = [c for c in self.hub.publishers(container_id) if not c.closed]
        if targets:
            frame = self._frame(payload)
            for target in targets:
                self.hub.send_frame(target, frame)
        return len(targets)

    def notice(self, container_id: str, payload: bytes) -> None:
        """A notice (a session's attention state), this process's or another's: for the
        local subscribers of the container and of ``*``."""
        self.hub.deliver(container_id, [self._frame(payload)], self._clock())

    def availability(self, available: bool, reason: str) -> None:
        """The engine's server came back, or went away: log it, and tell every connection."""
        if available:
            _log.info("engine_available", reason=reason)
            return
        _log.warning("engine_unavailable", reason=reason)
        payload = encode_error(
            ErrorCode.UNAVAILABLE, f"the hub lost its engine ({reason}); publishes are refused"
        )
        frame = self._frame(payload)
        for conn in list(self.hub.connections.values()):
            if conn.authenticated:
                self.hub.send_frame(conn, frame)

    # -- acks --------------------------------------------------------------------------

    def _ack_when_durable(
        self, conn: Connection, container_id: str, producer: str, id: int, seq: int
    ) -> None:
        if seq <= self._durable.get(container_id, 0):
            self.hub.send(conn, encode_ack(container_id, id, seq, producer))
            return
        queue = self._awaiting.get(container_id)
        if queue is None:
            queue = self._awaiting[container_id] = deque()
        queue.append((seq, conn, producer, id))

    async def wait_durable(self, container_id: str, seq: int) -> None:
        """Return once ``seq`` and every earlier message of ``container_id`` are durable."""
        if seq <= self._durable.get(container_id, 0):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._durable_waiters.setdefault(container_id, deque()).append((seq, future))
        await future

    # -- subscribing -------------------------------------------------------------------

    def subscribe(self, conn: Connection, sub: Subscribe) -> None:
        """Start a subscription: reply ``subscribed``, then backlog, then live, no gap.

        A container the connection's token does not cover is refused with ``forbidden``; a
        pattern is accepted, and delivers only the containers the token covers.
        """
        hub = self.hub
        container_id = sub.container_id
        grant = conn.grant
        if grant is not None and not sub.is_pattern and not grant.may_read(container_id):
            self._forbidden(conn, grant, "subscribe to", container_id)
            return
        held = container_id in conn.subscriptions or container_id in conn.patterns
        held = held or container_id in conn.catching_up
        if not held and conn.subscription_count >= self.settings.max_subscriptions:
            self.error(
                conn,
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"a connection may hold {self.settings.max_subscriptions} subscriptions",
                container_id=container_id,
            )
            return
        if sub.is_pattern:
            if sub.since is not None or sub.tail is not None or sub.from_time is not None:
                self.error(
                    conn,
                    ErrorCode.INVALID_MESSAGE,
                    "a pattern subscription gets live messages only: drop since, tail and from",
                    container_id=container_id,
                )
                return
            hub.subscribe_live(conn, container_id)
            hub.send(conn, encode({"type": "subscribed", "containerID": container_id}))
            return
        position = self.engine.known_position(container_id)
        if position is not None:
            self._subscribed(conn, sub, position, holding=False)
            return
        # Hold live messages from now on, then ask where history stands, now (the engine
        # fixes the position at the call, so a publish read after this subscribe is never
        # counted in it): the held ones that the answer counts are dropped when catching up
        # ends.
        hub.start_catch_up(conn, container_id)
        self._answer(conn, self._subscribe_later(conn, sub, conn.catching_up[container_id]))

    async def _subscribe_later(self, conn: Connection, sub: Subscribe, mine: list[bytes]) -> None:
        container_id = sub.container_id
        try:
            position = await self.engine.position(container_id)
        except (EngineError, StoreError) as exc:
            if conn.catching_up.get(container_id) is mine:
                self.hub.stop_catch_up(conn, container_id)
                self.error(conn, ErrorCode.UNAVAILABLE, str(exc), container_id=container_id)
            return
        if conn.catching_up.get(container_id) is mine:
            self._subscribed(conn, sub, position, holding=True)

    def _subscribed(
        self, conn: Connection, sub: Subscribe, position: Position, *, holding: bool
    ) -> None:
        """Reply ``subscribed`` for ``position`` and start the backlog, or go live.

        ``holding``: live messages are already being held for ``conn`` (since before
        ``position`` was read); else any earlier subscription to the container is replaced.
        """
        hub = self.hub
        container_id = sub.container_id
        last, first, epoch = position
        since = sub.since
        stale = sub.epoch is not None and sub.epoch != epoch
        truncated = stale or (
            since is not None and since < last and since + 1 < (first or last + 1)
        )
        if stale and since is not None:
            since = 0
        hub.send(
            conn,
            encode(
                {
                    "type": "subscribed",
                    "containerID": container_id,
                    "seq": last,
                    "firstSeq": first,
                    "epoch": epoch,
                    "truncated": truncated,
                }
            ),
        )
        sub_after = Subscribe(container_id, since, sub.tail, sub.from_time)
        wants_backlog = since is not None or sub.from_time is not None or bool(sub.tail)
        if not wants_backlog or last == 0 or (since is not None and since >= last):
            if holding:
                for frame in _after(hub.finish_catch_up(conn, container_id), last):
                    hub.send_frame(conn, frame)
            else:
                hub.subscribe_live(conn, container_id)
            return
        if not holding:
            hub.start_catch_up(conn, container_id)
        # The backlog task owns this catch-up (its list of held live frames) from now, not
        # from when it first runs: a subscribe or unsubscribe read in the same turn replaces
        # or ends it before the task starts, and the task must then send nothing.
        mine = conn.catching_up[container_id]
        self._spawn(conn, self._send_backlog(conn, sub_after, last, mine))

    async def _send_backlog(
        self, conn: Connection, sub: Subscribe, last: int, mine: list[bytes]
    ) -> None:
        """Send ``sub``'s backlog up to ``last``, then switch to live.

        Stops, sending nothing more, as soon as ``mine`` is no longer the connection's
        catch-up of the container (a later subscribe or an unsubscribe replaced it).
        """
        hub = self.hub
        container_id = sub.container_id
        after = max(0, last - sub.tail) if sub.tail is not None else sub.since or 0
        budget = max(self.settings.max_queue // 4, 1)
        page: list[StoredMessage] = []
        try:
            while after < last:
                page = await self.engine.read(
                    container_id,
                    after=after,
                    since_time=sub.from_time,
                    limit=next_page_size(page, _BACKLOG_PAGE),
                )
                if conn.catching_up.get(container_id) is not mine:
                    return
                if not page:
                    break
                sent = 0
                for message in page:
                    if message.seq > last:
                        break
                    frame = self._frame(message.payload)
                    hub.send_frame(conn, frame)
                    sent += len(frame)
                    if sent >= budget:
                        if not await self._drained(conn, container_id, mine):
                            return
                        sent = 0
                after = page[-1].seq
                if not await self._drained(conn, container_id, mine):
                    return
        except (EngineError, StoreError) as exc:
            if conn.catching_up.get(container_id) is mine:
                hub.stop_catch_up(conn, container_id)
                self.error(conn, ErrorCode.UNAVAILABLE, str(exc), container_id=container_id)
            return
        for frame in _after(hub.finish_catch_up(conn, container_id), last):
            hub.send_frame(conn, frame)

    async def _drained(self, conn: Connection, container_id: str, mine: list[bytes]) -> bool:
        """Wait until ``conn`` has taken most of what it was sent; False if it went away.

        A reader that takes nothing of what it owes for :meth:`_stall_limit` seconds is
        closed as too slow (4429), as the hub closes one that holds more than ``max_queue``
        of live messages meanwhile.
        """
        limit = self.settings.max_queue
        await asyncio.sleep(0)
        last = conn.peer.buffered()
        since = self._clock()
        while True:
            if conn.closed or conn.catching_up.get(container_id) is not mine:
                return False
            buffered = conn.peer.buffered()
            now = self._clock()
            if buffered < last:
                since = now
            last = buffered
            if buffered > limit // 2 and now - since > self._stall_limit():
                self.stats.slow_closes += 1
                _log.info("catch_up_too_slow", conn=conn.id, container=container_id)
                self.hub.close(conn, CloseCode.TOO_SLOW, "reader too slow; resume with since")
                return False
            if buffered <= limit // 2:
                return True
            await asyncio.sleep(0.005)

    def _stall_limit(self) -> float:
        """Seconds a catching-up reader may take nothing before it is closed as too slow.

        Under half the heartbeat interval, so that a stuck reader is closed as slow (4429,
        resume with ``since``) before the liveness round would close it as gone (4408).
        """
        return min(max(self.settings.heartbeat_interval / 2, 0.05), 10.0)

    def unsubscribe(self, conn: Connection, container_id: str) -> None:
        grant = conn.grant
        if grant is not None and "*" not in container_id and not grant.may_read(container_id):
            self._forbidden(conn, grant, "unsubscribe from", container_id)
            return
        if self.hub.unsubscribe(conn, container_id):
            self.hub.send(conn, encode({"type": "unsubscribed", "containerID": container_id}))
        else:
            self.error(
                conn,
                ErrorCode.NOT_SUBSCRIBED,
                f"this connection holds no subscription to {container_id!r}",
                container_id=container_id,
            )

    # -- queries -----------------------------------------------------------------------

    def describe(self, session: SessionInfo) -> dict[str, Any]:
        """A session as the ``sessions`` reply and the HTTP API show it."""
        container_id = session.container_id
        return {
            "containerID": container_id,
            "status": session.status,
            "active": session.active,
            "startedAt": format_time(session.started_at),
            "lastActivity": format_time(session.last_activity),
            "endedAt": format_time(session.ended_at) if session.ended_at else None,
            "endReason": session.end_reason,
            "exitCode": session.exit_code,
            "lastSeq": session.last_seq,
            "firstSeq": session.first_seq,
            "epoch": session.epoch,
            "messages": session.messages,
            "bytes": session.stored_bytes,
            # The engine counts processes holding a publisher; this one counts connections.
            "publishers": max(len(self.hub.publishers(container_id)), session.publishers),
            "subscribers": self.hub.subscriber_count(container_id),
            "agent": self._agent(session),
            "attention": self._attention(session),
        }

    def _attention(self, session: SessionInfo) -> Any:
        """The session's attention state, as the engine keeps it (the same in every process:
        the process that derives it hands each change over at once)."""
        return _kept(session, _ATTENTION_META)

    def _agent(self, session: SessionInfo) -> Any:
        """The session's agent summary: this process's, else the one the engine keeps."""
        summary = self.agents.to_json(session.container_id)
        if summary is not None:
            return summary
        return _kept(session, _AGENT_META)

    async def list_sessions(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        grant: Grant | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of sessions as the API shows them, and the cursor to the next page.

        With ``grant``, only the sessions it may read are shown: a page may then hold fewer
        than ``limit`` (even none) and still have a cursor to the next.

        Raises:
            EngineError: the engine cannot answer now.
        """
        page = await self.engine.sessions(status=status, limit=limit or 1000, cursor=cursor)
        sessions = page.sessions
        if grant is not None and not grant.everything:
            sessions = [s for s in sessions if grant.may_read(s.container_id)]
        return [self.describe(session) for session in sessions], page.cursor

    def not_durable(self) -> int:
        """Messages accepted but not yet durable in history: how far the engine lags behind."""
        return self._lag

    def not_durable_bytes(self) -> int:
        """The bytes of ``data`` of the messages :meth:`not_durable` counts."""
        return self._lag_bytes


def _kept(session: SessionInfo, name: str) -> Any:
    """The session metadata ``name`` as JSON, or None when it has none (or none readable)."""
    kept = session.meta.get(name)
    if kept is None:
        return None
    try:
        return msgspec.json.decode(kept)
    except msgspec.DecodeError:
        return None


def refusal_words(grant: Grant, action: str, container_id: str) -> str:
    """What a ``forbidden`` reply says: the role, what it tried, and on which container."""
    return f"a {grant.role.value} token may not {action} {container_id[:128]!r}"


class CommandRefusedError(Exception):
    """A command the node refused: ``code`` and ``words`` for the reply; nothing was sent."""

    def __init__(self, code: ErrorCode, words: str) -> None:
        super().__init__(words)
        self.code = code
        self.words = words


class PublishRefusedError(Exception):
    """An HTTP publish the node refused as a whole: ``code`` and ``words`` for the reply."""

    def __init__(self, code: ErrorCode, words: str) -> None:
        super().__init__(words)
        self.code = code
        self.words = words


async def _resume(work: Coroutine[Any, Any, None], awaited: Any) -> None:
    """Go on with ``work``, a coroutine that was stepped once and is waiting for ``awaited``.

    Each step of a coroutine that awaits a future yields that future (or None for a bare
    yield to the loop); once it is done, the coroutine takes its result itself when resumed.
    """
    try:
        while True:
            if awaited is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait([awaited])
            try:
                awaited = work.send(None)
            except StopIteration:
                return
    except asyncio.CancelledError:
        work.close()
        raise


def _after(frames: list[bytes], last: int) -> list[bytes]:
    """The held frames whose ``seq`` is past ``last`` (the rest went with the backlog)."""
    return [frame for frame in frames if published_seq(frame) > last]
