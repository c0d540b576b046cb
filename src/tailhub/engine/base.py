"""The engine: everything hub processes must agree on, behind one interface.

A hub process (the node, :mod:`tailhub.core.node`) decides policy: who may do what, rates,
sizes, how far history may lag. The engine keeps what must be the same whichever process is
asked: each container's ``seq``, the producer ids already stored, history, sessions and their
small metadata, shared records, and which process holds a container's connection. Three
implementations keep this contract, and ``tests/engine/contract.py`` checks each of them with
the same tests: in memory (one process, nothing kept), SQLite (one process, kept on disk; the
embedded default) and Redis (many processes on one Redis or Redis Cluster).

Guarantees every implementation gives:

Publishing
    - :meth:`Engine.publish` takes a run of messages of one container and one type, never
      blocks the event loop, and reports once, through its ``done`` callback on the event
      loop, what became of the run: for each message its ``seq``, or that it repeated a
      ``(producer, id)`` already stored (it is not stored again), or that the whole run was
      refused (session limit, engine unavailable) and nothing of it was stored.
    - ``seq`` is per container, starts at 1, and is gapless and strictly increasing over the
      messages stored, whichever process published them. Runs published by one process for
      one container are stored in the order they were published.
    - A ``seq`` that any subscriber has seen is never given to another message, also across a
      crash of a hub process or of the engine's server. Where an engine cannot keep history
      through a crash, it changes the container's ``epoch`` instead (see below).
    - ``done`` may run inside :meth:`Engine.publish` (the local engines do); callers must not
      rely on either.

Durability and acks
    - :meth:`EngineHandler.durable` names ``(container_id, seq)`` once that message and every
      earlier one of the container are as safe as the engine makes them: committed to SQLite;
      accepted by Redis (on disk only as its ``appendfsync`` setting makes it, see
      ``docs/scaling.md``); for the memory engine, at once. Publishers are acked from it.

Fan-out
    - Every process that :meth:`Engine.listen`\\ s to a container (or to ``"*"``) gets each of
      its stored runs through :meth:`EngineHandler.deliver`, exactly once and in ``seq``
      order. Between processes an engine may lose a message in transit (Redis Pub/Sub is
      at-most-once); it then fills the gap from history before delivering anything after it.
      A gap history can no longer fill is reported with :meth:`EngineHandler.gap`, never
      passed over in silence.

History
    - :meth:`Engine.read` returns stored messages in ``seq`` order, paged; a read started
      after a run's ``done`` sees that run. :meth:`Engine.position` gives the container's
      last and first kept ``seq`` and its ``epoch``: a string that changes whenever the
      container's history was lost or reset (a data directory wiped, Redis flushed, messages
      delivered but lost in a crash). Resuming clients compare it with the one they saw.
    - Retention (:meth:`Engine.prune`) removes old messages, never renumbers what is kept.

Sessions
    - A session is one container ID: started by its first stored message (a heartbeat does
      not start one), refreshed by every message and heartbeat, ended by ``complete`` or by
      :meth:`Engine.expire`. At most ``max_sessions`` are active across all processes: a run
      that would start one more is refused with ``max_sessions``, and nothing changes.
    - Sessions are kept: after a restart of every hub process, every session within
      retention is listed again, with its status, times, exit code, counts and metadata.
    - :meth:`Engine.expire` ends each timed-out session exactly once across all processes,
      storing the final ``status`` message it is given as the session's last message, and
      returns it only to the caller that ended it, so one process logs it.

Commands
    - A process that holds a publishing connection of a container calls
      :meth:`Engine.attach`; :meth:`Engine.command` reaches every such process (through
      :meth:`EngineHandler.command`) and returns how many took it, so "no container
      connected" is decided for the whole cluster.

Notices
    - :meth:`Engine.notice` hands a message that is not stored (no ``seq``, e.g. a session's
      new attention state) to every other process that listens to its container or to
      ``"*"``, through :meth:`EngineHandler.notice`, once each; the sender tells its own
      subscribers itself. At most once: a process not connected at the time never gets it
      (what it describes is also kept, as metadata, for whoever reads later).

Metadata and records
    - Small per-session values (:meth:`Engine.set_meta`, e.g. an agent summary or an
      attention state) and small shared records (:meth:`Engine.put_record`, e.g. revoked
      token ids or a notification outbox) are kept with the same durability as sessions, and
      read the same from every process. :meth:`Engine.claim` lets exactly one process take a
      record (e.g. to send a notification once).

Availability
    - An engine that loses its server keeps retrying with backoff; meanwhile publishes are
      refused with ``unavailable`` (never queued without bound), :meth:`Engine.check` raises,
      and :meth:`EngineHandler.availability` tells the node, once per change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol

import msgspec

from tailhub.store.base import StoredMessage

__all__ = [
    "DUPLICATE",
    "Engine",
    "EngineError",
    "EngineHandler",
    "Entry",
    "EntryLike",
    "Position",
    "PublishDone",
    "Published",
    "QuietHandler",
    "SessionInfo",
    "SessionPage",
    "StoredMessage",
    "next_page_size",
]


class EngineError(Exception):
    """The engine cannot be opened or used; the message says why, in words for an operator."""


DUPLICATE = 0
"""The ``seq`` reported for a message whose ``(producer, id)`` was already stored."""


class EntryLike(Protocol):
    """What the engine reads of one message of a run to publish, as the node checked it.

    ``data`` is the message's ``data`` as valid UTF-8 JSON (bytes, or the ``msgspec.Raw``
    the node decoded), kept as sent; ``timestamp`` the RFC 3339 text to stamp it with (None:
    the engine stamps the receive time ``now`` of :meth:`Engine.publish`); ``producer``/``id``
    the publisher's de-duplication key (``id`` None: not de-duplicated). ``status`` and
    ``exit_code`` are what a ``status`` or ``complete`` message says, for the session.

    The node hands its decoded messages (:class:`tailhub.protocol.Publish`) on as they are:
    building a tuple per message cost more than the rest of the node's work on it.
    """

    @property
    def data(self) -> bytes | msgspec.Raw: ...

    @property
    def timestamp(self) -> str | None: ...

    @property
    def producer(self) -> str: ...

    @property
    def id(self) -> int | None: ...

    @property
    def status(self) -> str | None: ...

    @property
    def exit_code(self) -> int | None: ...


class Entry(NamedTuple):
    """One message to publish, built by hand (an :class:`EntryLike`)."""

    data: bytes | msgspec.Raw
    timestamp: str | None
    producer: str = ""
    id: int | None = None
    status: str | None = None
    exit_code: int | None = None


@dataclass(slots=True)
class Published:
    """What became of a published run.

    Attributes:
        container_id: the run's container.
        seqs: per entry, in order, its ``seq``, or :data:`DUPLICATE` when its
            ``(producer, id)`` was already stored. Empty when the run was refused.
        last_seq: the container's last ``seq`` once the run was applied.
        epoch: the container's epoch.
        refused: None, or ``"max_sessions"`` or ``"unavailable"`` (protocol error codes):
            nothing of the run was stored.
        reason: words for a refusal, for the client.
        started: this run started the container's session.
        ended: this run (a ``complete``) ended the container's session.
    """

    container_id: str
    seqs: list[int]
    last_seq: int
    epoch: str
    refused: str | None = None
    reason: str = ""
    started: bool = False
    ended: bool = False


PublishDone = Callable[[Published], None]
"""Called once, on the event loop, with what became of a published run."""


PAGE_BYTES: Final = 4 << 20
"""About how many bytes of messages a reader that pages through history holds at a time."""


def next_page_size(page: Sequence[StoredMessage], most: int) -> int:
    """How many messages to ask :meth:`Engine.read` for next, after reading ``page``.

    A reader pages through history in pages of about :data:`PAGE_BYTES` of messages the
    size ``page``'s were, at least 16 and at most ``most`` of them; the first page (``page``
    empty) is 64. So small messages still come a thousand at a time, and 100 KB ones about
    forty at a time, where a thousand would have held 100 MB at once.
    """
    if not page:
        return min(most, 64)
    size = sum(len(message.payload) for message in page) // len(page) or 1
    return max(min(most, PAGE_BYTES // size), min(most, 16))


class Position(NamedTuple):
    """Where a container's history stands: the ``seq`` of the last message stored and of the
    first still kept (0: none), and the epoch. After an unclean stop the next ``seq`` may be
    well above ``last_seq``: seqs in between were never stored, and may have been shown."""

    last_seq: int
    first_seq: int
    epoch: str


@dataclass(slots=True)
class SessionInfo:
    """One session as every process lists it.

    Times are Unix seconds. ``meta`` holds what features attached (name to JSON bytes).
    ``messages`` and ``stored_bytes`` count what history keeps for the container.
    """

    container_id: str
    status: str
    started_at: float
    last_activity: float
    ended_at: float | None = None
    end_reason: str | None = None
    exit_code: int | None = None
    last_seq: int = 0
    first_seq: int = 0
    messages: int = 0
    stored_bytes: int = 0
    publishers: int = 0
    epoch: str = ""
    meta: dict[str, bytes] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(slots=True)
class SessionPage:
    """A page of the session listing; ``cursor`` continues it (None: this is the last)."""

    sessions: list[SessionInfo]
    cursor: str | None = None


class EngineHandler(Protocol):
    """What the engine calls back into the node. Every method runs on the event loop."""

    def deliver(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        """A stored run of ``container_id``, in ``seq`` order, for local subscribers.

        An engine may leave out runs of a container this process does not listen to
        (:meth:`Engine.listen`, for it or for ``"*"``): nobody here could receive them.
        """
        ...

    def durable(self, positions: Sequence[tuple[str, int]]) -> None:
        """Each ``(container_id, seq)``: that message and all before it are durable."""
        ...

    def gap(self, container_id: str, after: int, resumed: int, reason: str) -> None:
        """Messages ``after + 1 .. resumed - 1`` cannot be delivered (history lost them)."""
        ...

    def command(self, container_id: str, payload: bytes) -> int:
        """An encoded ``command`` for ``container_id``'s local publishing connections.

        Returns how many local connections took it.
        """
        ...

    def availability(self, available: bool, reason: str) -> None:
        """The engine's server became reachable (True) or unreachable (False)."""
        ...

    def notice(self, container_id: str, payload: bytes) -> None:
        """A notice another process sent (:meth:`Engine.notice`), for the local subscribers of
        ``container_id`` and of ``"*"``."""
        ...


class Engine(Protocol):
    """What hub processes agree on. See the module docstring for the guarantees."""

    async def open(self, handler: EngineHandler) -> None:
        """Connect or open, restore what is kept, and begin calling ``handler``.

        Raises:
            EngineError: the engine cannot be opened or reached.
        """
        ...

    async def close(self) -> None:
        """Make every accepted run durable, stop calling the handler, release everything."""
        ...

    async def check(self) -> None:
        """Return when the engine answers; raise :class:`EngineError` when it does not."""
        ...

    # -- publishing and history ---------------------------------------------------------

    def publish(
        self,
        container_id: str,
        kind: str,
        entries: Sequence[EntryLike],
        now: float,
        done: PublishDone,
    ) -> None:
        """Store a run of ``kind`` messages of ``container_id`` and fan it out.

        Each stored message is encoded once, with its ``seq``, as
        :func:`tailhub.protocol.encode_published` does; ``now`` is the receive time (Unix
        seconds) kept for ``from`` reads and retention. ``done`` is called once.
        """
        ...

    def touch(self, container_id: str, now: float) -> None:
        """A heartbeat: refresh ``container_id``'s active session, if it has one."""
        ...

    async def read(
        self,
        container_id: str,
        *,
        after: int = 0,
        tail: int | None = None,
        since_time: float | None = None,
        limit: int | None = None,
    ) -> list[StoredMessage]:
        """Kept messages of ``container_id`` in ``seq`` order.

        Args:
            after: only messages with ``seq > after``.
            tail: only the last ``tail`` of those.
            since_time: only messages received at or after this Unix time.
            limit: at most this many, the oldest first (applied after ``tail``).

        Raises:
            EngineError: history cannot be read now.
        """
        ...

    def known_position(self, container_id: str) -> Position | None:
        """The container's position when the engine knows it without I/O, else None.

        The local engines know it unless they hold a run of the container back (the node
        then subscribes without waiting); the Redis engine returns None, and the node
        awaits :meth:`position`.
        """
        ...

    def position(self, container_id: str) -> Awaitable[Position]:
        """The container's last and first kept ``seq`` and its epoch, as of this call.

        ``last_seq`` counts every run this process published before the call and none it
        publishes after it (the call fixes the point; awaiting only fetches the answer), so
        a subscriber that starts holding live deliveries before the call, reads history up
        to ``last_seq`` and drops held deliveries at or below it misses nothing and gets
        nothing twice, even the run of a publish read just after its subscribe. The answer
        comes once every run it counts has been handed on to listeners (:meth:`listen`): an
        engine that holds a stored run back for a moment (the SQLite engine holds a
        container's first run until its seqs are reserved on disk) answers after that.

        Raises (when awaited):
            EngineError: the engine cannot answer now.
        """
        ...

    async def prune(self, now: float) -> int:
        """Apply retention as of ``now``; return how many messages were removed."""
        ...

    # -- fan-out and commands -----------------------------------------------------------

    def listen(self, container_id: str) -> None:
        """This process has subscribers for ``container_id`` (``"*"``: every container)."""
        ...

    def unlisten(self, container_id: str) -> None:
        """This process has no subscriber left for ``container_id``."""
        ...

    def attach(self, container_id: str) -> None:
        """This process now holds a publishing connection of ``container_id``."""
        ...

    def detach(self, container_id: str) -> None:
        """This process holds no publishing connection of ``container_id`` any more."""
        ...

    async def command(self, container_id: str, payload: bytes) -> int:
        """Hand an encoded ``command`` to every process attached to ``container_id``.

        Returns how many connections took it (0: no container connected anywhere).
        """
        ...

    def notice(self, container_id: str, payload: bytes) -> None:
        """Hand ``payload`` (an encoded message that is not stored) to the other processes
        that listen to ``container_id`` or to ``"*"`` (see the module docstring). Returns at
        once; never raises."""
        ...

    # -- sessions -----------------------------------------------------------------------

    async def sessions(
        self, *, status: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> SessionPage:
        """Sessions: active ones first, then ended ones, the most recently ended first.

        Args:
            status: only sessions with this status (``running``, ``completed``, ``error``,
                ...); ``"active"`` and ``"ended"`` select by whether they ended.
            limit: at most this many in the page.
            cursor: where a previous page stopped.
        """
        ...

    async def session(self, container_id: str) -> SessionInfo | None:
        """The container's session (active, else its last ended one), or None."""
        ...

    async def expire(
        self, now: float, timeout: float, final: EntryLike | None = None
    ) -> list[SessionInfo]:
        """End active sessions with no traffic for ``timeout`` seconds, as of ``now``.

        Each ended session gets ``final`` (a ``status`` message saying why) stored as its last
        message with the next ``seq``, and fanned out like any run; its ``status`` becomes
        ``final.status`` (``error`` when no ``final`` is given, and nothing is stored) and its
        end reason ``"timeout"``. Returns only the sessions this call ended (each with
        ``last_seq`` the final message's ``seq``).
        """
        ...

    async def end_session(self, container_id: str, reason: str, now: float) -> SessionInfo | None:
        """End the container's active session; returns it, or None if none was active."""
        ...

    # -- metadata and records -----------------------------------------------------------

    async def set_meta(self, container_id: str, name: str, value: bytes | None) -> None:
        """Attach ``value`` (JSON bytes; None removes it) to the container's session."""
        ...

    async def put_record(
        self, kind: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> None:
        """Keep a shared record, replacing any with the same kind and key."""
        ...

    async def records(self, kind: str) -> dict[str, bytes]:
        """Every live record of ``kind``, by key."""
        ...

    async def delete_record(self, kind: str, key: str) -> None:
        """Remove a record; nothing happens if it is not there."""
        ...

    async def claim(self, kind: str, key: str, owner: str, ttl: float) -> bool:
        """Take ``(kind, key)`` for ``owner`` for ``ttl`` seconds; False if another holds it."""
        ...


class QuietHandler:
    """An :class:`EngineHandler` that takes everything and does nothing: for an engine opened
    only to check that it can be, or to load state into (``tailhub migrate``)."""

    def deliver(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        return None

    def durable(self, positions: Sequence[tuple[str, int]]) -> None:
        return None

    def gap(self, container_id: str, after: int, resumed: int, reason: str) -> None:
        return None

    def command(self, container_id: str, payload: bytes) -> int:
        return 0

    def availability(self, available: bool, reason: str) -> None:
        return None

    def notice(self, container_id: str, payload: bytes) -> None:
        return None
