"""The node: where hub, session registry, history store and broker meet.

Data flows one way. A container's message, already decoded and checked, is deduplicated by
publisher id, counted against its session, stamped with the next ``seq`` (assigned here and
nowhere else), encoded once, queued to the store, and handed to the broker, which calls back
:meth:`Node._on_broker` in every process to fan it out to local subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec
import structlog

from tailhub.broker.base import Broker
from tailhub.config import Settings
from tailhub.core.hub import Connection, Hub, Peer
from tailhub.core.sessions import Session, SessionLimitError, SessionRegistry
from tailhub.core.stats import Stats
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
    encode_published,
    format_time,
)
from tailhub.store.base import HistoryStore, StoreError

__all__ = ["Node"]

_BACKLOG_PAGE: Final = 1000
_log = structlog.get_logger("tailhub.node")


def _prune_interval(settings: Settings) -> float:
    """Retention runs every minute, or more often when messages are kept for less than 10."""
    return min(max(settings.retention_age / 10, 1.0), 60.0)


class Node:
    """One hub process: local connections plus the shared store and broker.

    Args:
        settings: limits and timings.
        store: where history is kept; opened by :meth:`start`.
        broker: carries routed messages to every process (this one included).
        framer: turns an encoded message into the bytes of one WebSocket frame, so that each
            message is framed once however many subscribers receive it.
    """

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        broker: Broker,
        framer: Callable[[bytes], bytes],
    ) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.stats = Stats()
        self.hub = Hub(framer, settings.max_queue, self.stats)
        self.sessions = SessionRegistry(settings.max_sessions, settings.session_timeout)
        self.started_at = time.time()
        self._frame = framer
        self._stamp = TimeFormatter()
        self._last_seq: dict[str, int] = {}
        self._durable: dict[str, int] = {}
        self._lag = 0
        """Messages stored but not yet durable: how far the history store is behind."""
        self._lag_bytes = 0
        """The bytes of those messages (what holding them costs in memory)."""
        self._pending_bytes: dict[str, int] = {}
        """Per container, the bytes of its messages not yet durable."""
        self._producer_ids: dict[tuple[str, str], int] = {}
        self._awaiting: dict[str, deque[tuple[int, Connection, str, int]]] = {}
        self._durable_waiters: dict[str, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: Callable[[], float] = self._mono
        """The event loop's clock (``loop.time``) once started: read per message."""
        self._tick = -1.0
        self._now = 0.0
        """The wall-clock time read at loop time ``_tick``, shared by that turn's messages."""

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, restore ``seq`` and producer ids, start the background rounds.

        Raises:
            StoreError: the store cannot be opened.
        """
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time
        snapshot = await self.store.open(self._on_durable)
        for container_id, info in snapshot.containers.items():
            self._last_seq[container_id] = info.last_seq
            self._durable[container_id] = info.last_seq
        self._producer_ids = dict(snapshot.producers)
        await self.broker.start(self._on_broker)
        settings = self.settings
        self._tasks = [
            asyncio.create_task(self._every(settings.heartbeat_interval, self._liveness_round)),
            asyncio.create_task(
                self._every(min(max(settings.session_timeout / 4, 0.05), 5.0), self._expire)
            ),
            asyncio.create_task(self._every(_prune_interval(settings), self._prune)),
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
        await self.broker.close()
        await self.store.close()

    async def _every(self, interval: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                result = job()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                _log.exception("background_round_failed", job=getattr(job, "__name__", "?"))

    def _liveness_round(self) -> None:
        for conn in self.hub.broadcast_ping():
            _log.info("connection_timed_out", conn=conn.id, remote=conn.remote)
            self.hub.close(conn, CloseCode.TIMED_OUT, "no answer to ping")

    def _expire(self) -> None:
        now = time.time()
        timeout_ms = round(self.settings.session_timeout * 1000)
        for session in self.sessions.expired(self._clock()):
            words = f"session timed out after {timeout_ms} ms without traffic"
            data = encode({"status": "error", "message": words, "reason": "timeout"})
            session.status = "error"
            self._route(session.container_id, "status", msgspec.Raw(data), None, now)
            self._end(session.container_id, "timeout", now)

    async def _prune(self) -> None:
        removed = await self.store.prune(time.time())
        if removed:
            _log.info("history_pruned", messages=removed)
        # As the store does: a producer's dedupe state goes with its container's last message.
        store = self.store
        gone = [
            key
            for key in self._producer_ids
            if (info := store.info(key[0])) is None or info.messages == 0
        ]
        for key in gone:
            del self._producer_ids[key]

    def _mono(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    # -- connections -------------------------------------------------------------------

    def connect(self, peer: Peer, *, remote: str, authenticated: bool) -> Connection:
        return self.hub.connect(
            peer, remote=remote, authenticated=authenticated, rate=self.settings.publish_rate
        )

    def disconnect(self, conn: Connection) -> None:
        self.hub.disconnect(conn)

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

    def handle(self, conn: Connection, message: ClientMessage) -> None:
        """Act on one checked message from an authenticated connection."""
        if isinstance(message, Publish):
            self.publish(conn, message)
        elif isinstance(message, Subscribe):
            self.subscribe(conn, message)
        elif isinstance(message, Unsubscribe):
            self.unsubscribe(conn, message.container_id)
        elif isinstance(message, Command):
            self.command(conn, message)
        elif isinstance(message, SessionsRequest):
            self.hub.send(conn, encode({"type": "sessions", "data": {"sessions": self.list()}}))

    # -- publishing --------------------------------------------------------------------

    def publish(self, conn: Connection | None, msg: Publish) -> int | None:
        """Accept one container message; returns its ``seq``, or None if not stored.

        ``conn`` is the publishing connection (None for the HTTP API): it gets errors, acks
        and the heartbeat answer, and becomes the container's connection for commands.
        """
        container_id = msg.container_id
        kind = msg.type
        mono = self._turn()
        now = self._now
        if conn is not None and not conn.allow_publish(mono):
            self.error(
                conn,
                ErrorCode.RATE_LIMITED,
                f"more than {self.settings.publish_rate} messages a second; message dropped",
                container_id=container_id,
                id=msg.id,
                producer=msg.producer,
            )
            return None
        if kind == "heartbeat":
            self.sessions.on_publish(container_id, kind, now, mono)
            if conn is not None:
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
            return None
        pub_id = msg.id
        if pub_id is not None and pub_id <= self._producer_ids.get((container_id, msg.producer), 0):
            self.stats.duplicates += 1
            if conn is not None:
                self._ack_when_durable(
                    conn, container_id, msg.producer, pub_id, self._last_seq.get(container_id, 0)
                )
            return None
        behind = self.store_lag_refusal(1, len(msg.data))
        if behind is not None:
            if conn is not None:
                self.error(
                    conn,
                    ErrorCode.UNAVAILABLE,
                    f"{behind}; message refused, send it again later",
                    container_id=container_id,
                    id=msg.id,
                    producer=msg.producer,
                )
            return None
        try:
            session, started = self.sessions.on_publish(
                container_id, kind, now, mono, status=msg.status, exit_code=msg.exit_code
            )
        except SessionLimitError as exc:
            if conn is not None:
                self.error(
                    conn,
                    ErrorCode.MAX_SESSIONS,
                    str(exc),
                    container_id=container_id,
                    id=msg.id,
                    producer=msg.producer,
                )
            return None
        if started:
            self.stats.sessions_started += 1
            _log.info("session_started", container=container_id)
        seq = self._route(container_id, kind, msg.data, msg.timestamp, now, msg.producer, pub_id)
        if session is not None and not session.run_seq:
            session.run_seq = seq
        if pub_id is not None and conn is not None:
            self._ack_when_durable(conn, container_id, msg.producer, pub_id, seq)
        if conn is not None and container_id not in conn.published:
            self.hub.add_publisher(conn, container_id)
        if kind == "complete":
            self._end(container_id, "complete", now)
        return seq

    def publish_many(self, conn: Connection, messages: Sequence[Publish]) -> None:
        """Accept the publishes ``conn`` sent together, in order: :meth:`publish` for each.

        What it saves is per-message work, not checks. A ``log`` message for a container whose
        session is active, not a repeat, with history keeping up and within the connection's
        rate, is checked, stamped and stored as :meth:`publish` would, and joins a run of its
        container's messages that goes to the broker in one hand-off (so each subscriber gets
        the run in one delivery). Any other message ends the run first and goes through
        :meth:`publish`, so replies and deliveries keep the order of the messages.
        """
        mono = self._turn()
        now = self._now
        active = self.sessions.active
        producer_ids = self._producer_ids
        stamp = self._stamp(now)
        run_id = ""
        run: list[bytes] = []
        for msg in messages:
            container_id = msg.container_id
            pub_id = msg.id
            session = active.get(container_id)
            if (
                msg.type != "log"
                or session is None
                or (
                    pub_id is not None
                    and pub_id <= producer_ids.get((container_id, msg.producer), 0)
                )
                or self.store_lag_refusal(1, len(msg.data)) is not None
                or not conn.allow_publish(mono)
            ):
                if run:
                    self._route_run(run_id, run)
                    run = []
                self.publish(conn, msg)
                continue
            if container_id != run_id:
                if run:
                    self._route_run(run_id, run)
                    run = []
                run_id = container_id
                if container_id not in conn.published:
                    self.hub.add_publisher(conn, container_id)
            session.touch(now, mono)
            seq, payload = self._stored(
                container_id, "log", msg.data, msg.timestamp or stamp, now, msg.producer, pub_id
            )
            run.append(payload)
            if pub_id is not None:
                self._ack_when_durable(conn, container_id, msg.producer, pub_id, seq)
        if run:
            self._route_run(run_id, run)

    def _route_run(self, container_id: str, payloads: list[bytes]) -> None:
        """Count and hand to the broker a run of ``log`` messages already stamped and stored."""
        stats = self.stats
        stats.messages_in["log"] += len(payloads)
        stats.bytes_in += sum(map(len, payloads))
        self.broker.publish(container_id, "log", payloads)

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

    def _route(
        self,
        container_id: str,
        kind: str,
        data: msgspec.Raw,
        timestamp: str | None,
        now: float,
        producer: str = "",
        pub_id: int | None = None,
    ) -> int:
        seq, payload = self._stored(
            container_id, kind, data, timestamp or self._stamp(now), now, producer, pub_id
        )
        self.stats.messages_in[kind] += 1
        self.stats.bytes_in += len(payload)
        self.broker.publish(container_id, kind, [payload])
        return seq

    def _stored(
        self,
        container_id: str,
        kind: str,
        data: msgspec.Raw,
        timestamp: str,
        now: float,
        producer: str,
        pub_id: int | None,
    ) -> tuple[int, bytes]:
        """Stamp the next ``seq``, encode once, queue to the store, note the publisher id.

        Returns the seq and the encoded message, for the broker.
        """
        seq = self._last_seq.get(container_id, 0) + 1
        self._last_seq[container_id] = seq
        payload = encode_published(kind, container_id, timestamp, seq, data)
        self.store.append(container_id, seq, now, payload, producer, pub_id)
        self._lag += 1
        size = len(payload)
        self._lag_bytes += size
        pending = self._pending_bytes
        pending[container_id] = pending.get(container_id, 0) + size
        if pub_id is not None:
            self._producer_ids[container_id, producer] = pub_id
        return seq, payload

    def _end(self, container_id: str, reason: str, now: float) -> None:
        session = self.sessions.end(container_id, reason, now)
        if session is not None:
            self.stats.sessions_ended[reason] += 1
            _log.info(
                "session_ended",
                container=container_id,
                reason=reason,
                status=session.status,
                exit_code=session.exit_code,
            )

    def _on_broker(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        frame = self._frame
        frames = [frame(payload) for payload in payloads]
        count = self.hub.deliver(container_id, frames, self._clock())
        if count:
            self.stats.messages_out[kind] += count

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

    def _on_durable(self, durable: Sequence[tuple[str, int]]) -> None:
        for container_id, seq in durable:
            before = self._durable.get(container_id, 0)
            if seq > before:
                self._durable[container_id] = seq
                self._lag -= seq - before
                pending = self._last_seq.get(container_id, seq) - before
                self._settle_bytes(container_id, seq - before, pending)
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

    # -- subscribing -------------------------------------------------------------------

    def subscribe(self, conn: Connection, sub: Subscribe) -> None:
        """Start a subscription: reply ``subscribed``, then backlog, then live, no gap."""
        hub = self.hub
        container_id = sub.container_id
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
        last = self._last_seq.get(container_id, 0)
        info = self.store.info(container_id)
        first = info.first_seq if info is not None else 0
        truncated = (
            sub.since is not None and sub.since < last and sub.since + 1 < (first or last + 1)
        )
        hub.send(
            conn,
            encode(
                {
                    "type": "subscribed",
                    "containerID": container_id,
                    "seq": last,
                    "firstSeq": first,
                    "truncated": truncated,
                }
            ),
        )
        wants_backlog = sub.since is not None or sub.from_time is not None or bool(sub.tail)
        if not wants_backlog or last == 0 or (sub.since is not None and sub.since >= last):
            hub.subscribe_live(conn, container_id)
            return
        hub.start_catch_up(conn, container_id)
        task = asyncio.create_task(self._send_backlog(conn, sub, last))
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)

    async def _send_backlog(self, conn: Connection, sub: Subscribe, last: int) -> None:
        hub = self.hub
        container_id = sub.container_id
        mine = conn.catching_up[container_id]
        after = max(0, last - sub.tail) if sub.tail is not None else sub.since or 0
        budget = max(self.settings.max_queue // 4, 1)
        try:
            while after < last:
                page = await self.store.read(
                    container_id, after=after, since_time=sub.from_time, limit=_BACKLOG_PAGE
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
        except StoreError as exc:
            if conn.catching_up.get(container_id) is mine:
                hub.stop_catch_up(conn, container_id)
                self.error(conn, ErrorCode.UNAVAILABLE, str(exc), container_id=container_id)
            return
        for frame in hub.finish_catch_up(conn, container_id):
            hub.send_frame(conn, frame)

    async def _drained(self, conn: Connection, container_id: str, mine: list[bytes]) -> bool:
        """Wait until ``conn`` has taken most of what it was sent; False if it went away."""
        limit = self.settings.max_queue
        await asyncio.sleep(0)
        while True:
            if conn.closed or conn.catching_up.get(container_id) is not mine:
                return False
            if self.hub.held_bytes(conn, container_id) > limit:
                self.stats.slow_closes += 1
                self.hub.close(conn, CloseCode.TOO_SLOW, "reader too slow; resume with since")
                return False
            if conn.peer.buffered() <= limit // 2:
                return True
            await asyncio.sleep(0.005)

    def unsubscribe(self, conn: Connection, container_id: str) -> None:
        if self.hub.unsubscribe(conn, container_id):
            self.hub.send(conn, encode({"type": "unsubscribed", "containerID": container_id}))
        else:
            self.error(
                conn,
                ErrorCode.NOT_SUBSCRIBED,
                f"this connection holds no subscription to {container_id!r}",
                container_id=container_id,
            )

    # -- commands ----------------------------------------------------------------------

    def command(self, conn: Connection | None, cmd: Command) -> int:
        """Send ``cmd`` to the container's connections; returns how many got it (0: error)."""
        targets = [c for c in self.hub.publishers(cmd.container_id) if not c.closed]
        if not targets:
            if conn is not None:
                self.error(
                    conn,
                    ErrorCode.NO_CONTAINER,
                    f"no connection publishes for {cmd.container_id!r}; the command was not sent",
                    container_id=cmd.container_id,
                )
            return 0
        payload = encode(
            {
                "type": "command",
                "containerID": cmd.container_id,
                "timestamp": format_time(time.time()),
                "data": cmd.data,
            }
        )
        frame = self._frame(payload)
        for target in targets:
            self.hub.send_frame(target, frame)
        _log.info("command_sent", container=cmd.container_id, action=cmd.action)
        if conn is not None:
            reply = {"action": cmd.action, "delivered": len(targets)}
            self.hub.send(
                conn,
                encode({"type": "command_sent", "containerID": cmd.container_id, "data": reply}),
            )
        return len(targets)

    # -- queries -----------------------------------------------------------------------

    def describe(self, session: Session) -> dict[str, Any]:
        """A session as the ``sessions`` reply and the HTTP API show it."""
        container_id = session.container_id
        info = self.store.info(container_id)
        return {
            "containerID": container_id,
            "status": session.status,
            "active": session.active,
            "startedAt": format_time(session.started_at),
            "lastActivity": format_time(session.last_activity),
            "endedAt": format_time(session.ended_at) if session.ended_at else None,
            "endReason": session.end_reason,
            "exitCode": session.exit_code,
            "lastSeq": self._last_seq.get(container_id, 0),
            "firstSeq": info.first_seq if info else 0,
            "messages": self._run_messages(session, info.messages if info else 0),
            "bytes": info.bytes if info else 0,
            "publishers": len(self.hub.publishers(container_id)),
            "subscribers": self.hub.subscriber_count(container_id),
        }

    def _run_messages(self, session: Session, kept: int) -> int:
        """Messages of the session's run (from its first message), at most those kept."""
        if not session.run_seq:
            return kept
        return min(kept, self._last_seq.get(session.container_id, 0) - session.run_seq + 1)

    def list(self) -> list[dict[str, Any]]:
        """Every listed session: active first, then recently ended, newest first."""
        return [self.describe(session) for session in self.sessions.all()]

    def not_durable(self) -> int:
        """Messages accepted but not yet durable in history: how far the store lags behind."""
        return self._lag

    def not_durable_bytes(self) -> int:
        """The bytes of the messages :meth:`not_durable` counts."""
        return self._lag_bytes

    def store_lag_refusal(self, messages: int, size: int) -> str | None:
        """Why ``messages`` more messages of ``size`` bytes in all must be refused, or None.

        The one rule for every transport: history may fall at most ``max_store_lag``
        messages and ``max_store_lag_bytes`` bytes behind (messages accepted but not yet
        durable, held in memory meanwhile). A publish that would take it past either is
        refused with ``unavailable``, so that a failing disk costs publishers an error, not
        the hub its memory. ``size`` is the bytes of the messages' ``data``; the bound counts
        them as stored, envelope included.

        Returns:
            None to accept; else the reason, in words naming the setting.
        """
        settings = self.settings
        if self._lag + messages > settings.max_store_lag:
            return f"history is {self._lag} messages behind (TAILHUB_MAX_STORE_LAG)"
        if self._lag_bytes + size > settings.max_store_lag_bytes:
            return f"history is {self._lag_bytes} bytes behind (TAILHUB_MAX_STORE_LAG_BYTES)"
        return None

    def _settle_bytes(self, container_id: str, durable: int, pending: int) -> None:
        """``durable`` of the ``pending`` messages of ``container_id`` became durable.

        Their bytes are not kept per message: the container's pending bytes go down by the
        same share, exactly to zero once all of them are durable.
        """
        held = self._pending_bytes.get(container_id, 0)
        if durable >= pending:
            self._pending_bytes.pop(container_id, None)
            self._lag_bytes -= held
            return
        share = held * durable // pending
        self._pending_bytes[container_id] = held - share
        self._lag_bytes -= share

    def last_seq(self, container_id: str) -> int:
        return self._last_seq.get(container_id, 0)
