"""Local connections, their subscriptions, and fan-out with bounded per-connection queues.

The hub knows only the connections of this process. Fan-out never awaits: a frame is appended
to each receiver's pending list, and once per event-loop iteration every connection with
pending frames gets them in one write. What a connection has not yet taken stays in its
transport's buffer; when that exceeds ``max_queue`` bytes the connection is closed with 4429
and released, so one slow reader never holds memory or slows anyone else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from typing import Final, Protocol

from tailhub.core.stats import Stats
from tailhub.grants import Grant
from tailhub.protocol import CloseCode

__all__ = ["Connection", "Hub", "Peer"]


class Peer(Protocol):
    """What the hub needs of a client's transport. Every method returns at once."""

    def write(self, data: bytes) -> None:
        """Queue already-framed bytes for sending."""
        ...

    def buffered(self) -> int:
        """Bytes written but not yet taken by the network."""
        ...

    def ping(self) -> None:
        """Send a WebSocket ping."""
        ...

    def close(self, code: int, reason: str) -> None:
        """Start closing with ``code``; the transport is released even if the peer is stuck."""
        ...


class _Gone:
    """The peer of a connection that has gone: it takes nothing and holds nothing."""

    __slots__ = ()

    def write(self, data: bytes) -> None:
        pass

    def buffered(self) -> int:
        return 0

    def ping(self) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass


_GONE: Final = _Gone()


class Held(list[bytes]):
    """The live frames of one container held for a connection while its backlog is sent,
    and their bytes (``size``)."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        super().__init__()
        self.size = 0


class Connection:
    """One client connection as the hub sees it.

    ``grant`` is what its token allows (None until it has authenticated); ``expiry`` the
    timer that closes it when that token expires, if it does.
    """

    __slots__ = (
        "_allowance",
        "_rate",
        "_rate_at",
        "alive",
        "authenticated",
        "catching_up",
        "closed",
        "expiry",
        "grant",
        "id",
        "patterns",
        "peer",
        "pending",
        "published",
        "remote",
        "subscriptions",
        "tasks",
    )

    def __init__(
        self, id: int, peer: Peer, *, remote: str = "", grant: Grant | None, rate: int = 0
    ) -> None:
        self.id = id
        self.peer = peer
        self.remote = remote
        self.grant = grant
        self.authenticated = grant is not None
        self.expiry: asyncio.TimerHandle | None = None
        self.alive = True
        self.closed = False
        self.subscriptions: set[str] = set()
        self.patterns: set[str] = set()
        self.published: set[str] = set()
        self.catching_up: dict[str, Held] = {}
        self.pending: list[bytes] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self._rate = rate
        self._allowance = float(rate)
        self._rate_at = 0.0  # set by the first publish, on the caller's clock

    def allow_publish(self, mono: float, count: int = 1) -> bool:
        """Token bucket: ``rate`` messages a second, bursts of up to one second's worth.

        Takes ``count`` messages' worth, all or none. ``mono`` is the caller's monotonic
        clock (the event loop's); the bucket starts full.
        """
        if self._rate == 0:
            return True
        if mono > self._rate_at:
            if self._rate_at:
                refill = (mono - self._rate_at) * self._rate
                self._allowance = min(float(self._rate), self._allowance + refill)
            self._rate_at = mono
        if self._allowance < count:
            return False
        self._allowance -= count
        return True

    @property
    def subscription_count(self) -> int:
        return len(self.subscriptions) + len(self.patterns)


class Hub:
    """This process' connections and what each subscribed to."""

    def __init__(
        self,
        framer: Callable[[bytes], bytes],
        max_queue: int,
        stats: Stats,
        on_interest: Callable[[str, str, bool], None] | None = None,
    ) -> None:
        """``on_interest(role, key, present)`` is told when this process starts or stops
        having a subscriber (``role`` "listen"; ``key`` a container, or ``*`` for any
        pattern) or a publishing connection (``role`` "attach") of a container."""
        self._on_interest = on_interest
        self._listening: set[str] = set()
        self._attached: set[str] = set()
        self._frame = framer
        self._max_queue = max_queue
        self._stats = stats
        self.connections: dict[int, Connection] = {}
        self._subs: dict[str, set[Connection]] = {}
        self._catching: dict[str, set[Connection]] = {}
        self._patterns: dict[str, set[Connection]] = {}
        self._publishers: dict[str, set[Connection]] = {}
        self._dirty: list[Connection] = []
        self._received: dict[float, int] = {}
        """Loop times at which the messages now waiting for the flush were received."""
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_id = 0

    # -- connections -------------------------------------------------------------------

    def connect(self, peer: Peer, *, remote: str, grant: Grant | None, rate: int) -> Connection:
        self._next_id += 1
        conn = Connection(self._next_id, peer, remote=remote, grant=grant, rate=rate)
        self.connections[conn.id] = conn
        self._stats.connections_opened += 1
        return conn

    def disconnect(self, conn: Connection) -> None:
        """Forget a connection and release everything it held. Idempotent.

        The connection lets go of its peer too (the peer usually holds the connection), so
        that what they held is freed as soon as the transport lets go of them, without
        waiting for the garbage collector to find the cycle.
        """
        if self.connections.pop(conn.id, None) is None:
            return
        conn.closed = True
        self._stats.connections_closed += 1
        self.release(conn)
        if conn.expiry is not None:
            conn.expiry.cancel()
            conn.expiry = None
        conn.peer = _GONE
        for task in list(conn.tasks):
            task.cancel()

    def release(self, conn: Connection) -> None:
        """Drop every subscription and publisher role of ``conn``."""
        for container_id in conn.subscriptions:
            _discard(self._subs, container_id, conn)
        for container_id in conn.catching_up:
            _discard(self._catching, container_id, conn)
        for pattern in conn.patterns:
            _discard(self._patterns, pattern, conn)
        for container_id in conn.published:
            _discard(self._publishers, container_id, conn)
        if self._on_interest is not None:
            for container_id in (*conn.subscriptions, *conn.catching_up):
                self._check_listen(container_id)
            if conn.patterns:
                self._check_listen("*")
            for container_id in conn.published:
                self._check_attach(container_id)
        conn.subscriptions.clear()
        conn.catching_up.clear()
        conn.patterns.clear()
        conn.published.clear()
        conn.pending = None

    def _check_listen(self, key: str) -> None:
        """Tell ``on_interest`` when ``key`` (a container, or ``*``) gains or loses its last
        subscriber in this process."""
        if self._on_interest is None:
            return
        present = bool(self._patterns) if key == "*" else key in self._subs or key in self._catching
        if present != (key in self._listening):
            if present:
                self._listening.add(key)
            else:
                self._listening.discard(key)
            self._on_interest("listen", key, present)

    def _check_attach(self, container_id: str) -> None:
        if self._on_interest is None:
            return
        present = container_id in self._publishers
        if present != (container_id in self._attached):
            if present:
                self._attached.add(container_id)
            else:
                self._attached.discard(container_id)
            self._on_interest("attach", container_id, present)

    def close(self, conn: Connection, code: int, reason: str) -> None:
        """Send what ``conn`` is owed, release it, and start closing its transport."""
        if conn.closed:
            return
        conn.closed = True
        if conn.pending:
            conn.peer.write(b"".join(conn.pending))
        self.release(conn)
        conn.peer.close(code, reason)

    # -- subscriptions -----------------------------------------------------------------

    def subscribe_live(self, conn: Connection, container_id: str) -> None:
        """Deliver ``container_id``'s messages (or a pattern's) to ``conn`` from now on."""
        if "*" in container_id:
            conn.patterns.add(container_id)
            self._patterns.setdefault(container_id, set()).add(conn)
            self._check_listen("*")
            return
        self.stop_catch_up(conn, container_id)
        conn.subscriptions.add(container_id)
        self._subs.setdefault(container_id, set()).add(conn)
        self._check_listen(container_id)

    def start_catch_up(self, conn: Connection, container_id: str) -> None:
        """Hold ``container_id``'s live messages for ``conn`` while its backlog is sent."""
        self.unsubscribe(conn, container_id)
        conn.catching_up[container_id] = Held()
        self._catching.setdefault(container_id, set()).add(conn)
        self._check_listen(container_id)

    def finish_catch_up(self, conn: Connection, container_id: str) -> list[bytes]:
        """Switch ``conn`` to live delivery; returns the frames held meanwhile, in order."""
        held: list[bytes] = conn.catching_up.pop(container_id, [])
        _discard(self._catching, container_id, conn)
        conn.subscriptions.add(container_id)
        self._subs.setdefault(container_id, set()).add(conn)
        self._check_listen(container_id)
        return held

    def stop_catch_up(self, conn: Connection, container_id: str) -> None:
        if conn.catching_up.pop(container_id, None) is not None:
            _discard(self._catching, container_id, conn)
            self._check_listen(container_id)

    def unsubscribe(self, conn: Connection, container_id: str) -> bool:
        """End a subscription (or a pattern); False if ``conn`` held none."""
        if "*" in container_id:
            if container_id not in conn.patterns:
                return False
            conn.patterns.discard(container_id)
            _discard(self._patterns, container_id, conn)
            self._check_listen("*")
            return True
        held = container_id in conn.subscriptions or container_id in conn.catching_up
        conn.subscriptions.discard(container_id)
        _discard(self._subs, container_id, conn)
        self.stop_catch_up(conn, container_id)
        self._check_listen(container_id)
        return held

    def add_publisher(self, conn: Connection, container_id: str) -> None:
        if container_id not in conn.published:
            conn.published.add(container_id)
            self._publishers.setdefault(container_id, set()).add(conn)
            self._check_attach(container_id)

    def remove_publisher(self, conn: Connection, container_id: str) -> None:
        """``conn`` no longer publishes for ``container_id`` (its commands go elsewhere)."""
        if container_id in conn.published:
            conn.published.discard(container_id)
            _discard(self._publishers, container_id, conn)
            self._check_attach(container_id)

    def publishers(self, container_id: str) -> set[Connection]:
        return self._publishers.get(container_id, set())

    def subscriber_count(self, container_id: str) -> int:
        return len(self._subs.get(container_id, ())) + len(self._catching.get(container_id, ()))

    # -- sending -----------------------------------------------------------------------

    def deliver(self, container_id: str, frames: list[bytes], received: float) -> int:
        """Queue routed frames of ``container_id``, in order, for every subscriber of it.

        Returns how many deliveries that makes (frames times receivers). ``received`` is the
        loop time the messages arrived, for the delivery latency histogram.
        """
        subs = self._subs.get(container_id)
        if self._patterns:
            targets: Iterable[Connection] = self._with_patterns(container_id, subs)
        else:
            targets = subs or ()
        receivers = 0
        for conn in targets:
            pending = conn.pending
            if pending is None:
                conn.pending = frames.copy()
                self._dirty.append(conn)
            else:
                pending.extend(frames)
            receivers += 1
        catching = self._catching.get(container_id)
        if catching:
            self._hold(catching, container_id, frames)
        if receivers:
            # Messages read in one loop turn share the loop's time: one entry for them all.
            received_at = self._received
            received_at[received] = received_at.get(received, 0) + len(frames)
            if not self._flush_scheduled:
                self._schedule_flush()
        return receivers * len(frames)

    def _hold(self, catching: set[Connection], container_id: str, frames: list[bytes]) -> None:
        """Hold ``frames`` for each connection catching up with ``container_id``; close as
        too slow (4429) one that would then hold more than ``max_queue`` bytes of them, so
        that a backlog that cannot be sent (a slow reader, a store far behind) costs at most
        that much memory per reader."""
        size = sum(map(len, frames))
        over = []
        for conn in catching:
            held = conn.catching_up[container_id]
            held.extend(frames)
            held.size += size
            if held.size > self._max_queue:
                over.append(conn)
        for conn in over:
            self._stats.slow_closes += 1
            self.close(conn, CloseCode.TOO_SLOW, "reader too slow; resume with since")

    def _with_patterns(self, container_id: str, subs: set[Connection] | None) -> set[Connection]:
        """The subscribers of ``container_id`` and of every pattern that matches it.

        A pattern subscriber whose token does not cover the container is left out: a
        pattern reaches only what its connection may read.
        """
        targets = set(subs) if subs else set()
        for pattern, conns in self._patterns.items():
            if pattern == "*" or fnmatchcase(container_id, pattern):
                for conn in conns:
                    grant = conn.grant
                    if grant is not None and (grant.everything or grant.may_read(container_id)):
                        targets.add(conn)
        return targets

    def send(self, conn: Connection, payload: bytes) -> None:
        """Queue one reply for ``conn`` alone, behind what it is already owed."""
        self.send_frame(conn, self._frame(payload))

    def send_frame(self, conn: Connection, frame: bytes) -> None:
        if conn.closed:
            return
        if conn.pending is None:
            conn.pending = [frame]
            self._dirty.append(conn)
        else:
            conn.pending.append(frame)
        if not self._flush_scheduled:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._flush_scheduled = True
        self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what each connection is owed, one write per connection.

        A connection whose peer would then hold more than ``max_queue`` bytes is closed as
        too slow (4429) instead, and what it was owed in this flush is dropped.
        """
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        received, self._received = self._received, {}
        max_queue = self._max_queue
        stats = self._stats
        for conn in dirty:
            frames = conn.pending
            conn.pending = None
            if frames is None or conn.closed:
                if frames:
                    stats.queue_drops += len(frames)
                continue
            peer = conn.peer
            size = len(frames[0]) if len(frames) == 1 else sum(map(len, frames))
            if peer.buffered() + size > max_queue:
                # Closed without these: no connection ever holds more than max_queue, and the
                # reader resumes from the last seq it got.
                stats.slow_closes += 1
                stats.queue_drops += len(frames)
                self.close(conn, CloseCode.TOO_SLOW, "reader too slow; resume with since")
                continue
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            peer.write(data)
            stats.bytes_out += size
        if received:
            assert self._loop is not None
            now = self._loop.time()
            observe = stats.deliver_latency.observe
            for at, messages in received.items():
                observe(now - at, messages)

    def broadcast_ping(self) -> list[Connection]:
        """One liveness round: ping everyone; returns those that missed the last round."""
        missed = []
        for conn in list(self.connections.values()):
            if conn.closed:
                continue
            if not conn.alive:
                missed.append(conn)
                continue
            conn.alive = False
            conn.peer.ping()
        return missed


def _discard(index: dict[str, set[Connection]], key: str, conn: Connection) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(conn)
        if not members:
            del index[key]
