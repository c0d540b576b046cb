"""The history store: what every implementation guarantees.

A store keeps, per containerID, the messages the node stamped with ``seq``, exactly as they
were encoded for subscribers, and what it needs to deduplicate publisher ids after a restart.

Guarantees every implementation gives (``tests/store/contract.py`` checks them all):

- ``append_run`` never blocks the event loop and never fails the caller: it queues the messages.
  Appends for one container arrive in ``seq`` order; the store keeps that order.
- Read your writes: a ``read`` started after an ``append_run`` returns its messages, even while
  it is not yet durable.
- Durability: after the ``on_durable`` callback has named ``(container_id, seq)``, that
  message and every earlier one of that container survive a crash of the hub process (for the
  memory store: for the life of the process). The callback runs on the event loop.
- Retention: ``prune`` removes, per container, all but the newest ``max_messages`` and
  everything received before ``now - max_age``; nothing else. A container left with no
  message is forgotten, except for its last ``seq``, which stays so that ``seq`` never goes
  back. Its producer ids go with its last message (that is, once every message it had is
  older than ``max_age``): they deduplicate repeats of kept messages, and none is left. While
  a container keeps any message, every producer id it was given stays.
- ``open`` returns what was kept from the last run, so ``seq`` and producer ids continue.
- Epochs: each container has an ``epoch`` (:meth:`HistoryStore.epoch`), a random string made
  with its first message, that changes whenever its history was lost: a new file, a new
  process for the memory store, an unclean stop after which some delivered messages may be
  gone (see reservations).
- Reservations (stores that keep history across a crash): with each commit the store also
  commits, per container written, a ``reserved`` seq well ahead of the last committed one,
  and reports it through ``on_reserved``. A caller that shows subscribers only messages with
  ``seq`` at or below the reported reservation never shows a seq that could be handed out
  again: after an unclean stop, ``open`` tells (``StoreSnapshot.skip_to``) where each
  container's seqs continue, past its reservation, and gives it a new epoch. A store that
  keeps nothing across a restart reserves nothing (``StoreSnapshot.reserved`` is None).
- Sessions, per-session metadata, shared records and claims handed to the ``save_*`` methods
  are kept like messages (committed with the next batch) and returned by the next ``open``;
  :meth:`HistoryStore.sync` returns once everything handed over before it is committed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

__all__ = [
    "ContainerInfo",
    "DurableCallback",
    "HistoryStore",
    "Retention",
    "SessionRow",
    "StoreError",
    "StoreSnapshot",
    "StoredMessage",
    "new_epoch",
]


def new_epoch() -> str:
    """A fresh random epoch: 16 hex digits."""
    return secrets.token_hex(8)


class StoreError(Exception):
    """The store cannot be opened or used; the message says why, in words for an operator."""


class StoredMessage(NamedTuple):
    """One kept message: its ``seq``, the hub's receive time (Unix seconds) and its bytes."""

    seq: int
    time: float
    payload: bytes


@dataclass(slots=True)
class ContainerInfo:
    """What the store holds for one container. ``first_seq`` is 0 when nothing is kept."""

    last_seq: int = 0
    first_seq: int = 0
    messages: int = 0
    bytes: int = 0


class SessionRow(NamedTuple):
    """One kept session (the container's latest); times are Unix seconds."""

    container_id: str
    status: str
    started_at: float
    last_activity: float
    ended_at: float | None = None
    end_reason: str | None = None
    exit_code: int | None = None


@dataclass(slots=True)
class StoreSnapshot:
    """The store's state at ``open``.

    Attributes:
        containers: per container, its counters.
        producers: each ``(container, producer)``'s last stored publisher id.
        reserved: per container, its committed reservation; None when the store reserves
            nothing (it keeps nothing across a restart).
        skip_to: containers whose seqs must continue above this value, not above their last
            stored seq (an unclean stop: seqs up to it may have been shown).
        sessions: the kept sessions.
        meta: per ``(container, name)``, a session's metadata.
        records: per ``(kind, key)``, a record's value and expiry (Unix seconds or None).
        claims: per ``(kind, key)``, the claim's owner and expiry.
    """

    containers: dict[str, ContainerInfo] = field(default_factory=dict)
    producers: dict[tuple[str, str], int] = field(default_factory=dict)
    reserved: dict[str, int] | None = None
    skip_to: dict[str, int] = field(default_factory=dict)
    sessions: list[SessionRow] = field(default_factory=list)
    meta: dict[tuple[str, str], bytes] = field(default_factory=dict)
    records: dict[tuple[str, str], tuple[bytes, float | None]] = field(default_factory=dict)
    claims: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history is kept: per container by count, and by age in seconds."""

    max_messages: int = 100_000
    max_age: float = 7 * 86400.0


DurableCallback = Callable[[Sequence[tuple[str, int]]], None]
"""Called on the event loop with ``(container_id, last durable seq)`` pairs after a commit."""


class HistoryStore(Protocol):
    """Where the node keeps each container's messages. See the module docstring."""

    async def open(
        self, on_durable: DurableCallback, on_reserved: DurableCallback | None = None
    ) -> StoreSnapshot:
        """Open (creating if needed) and return what is kept.

        ``on_reserved`` is called on the event loop with ``(container_id, reserved)`` pairs
        whenever a commit raised containers' reservations, before the ``on_durable`` of that
        commit.

        Raises:
            StoreError: the store cannot be opened (corrupt, unwritable, ...).
        """
        ...

    def append_run(
        self,
        container_id: str,
        first_seq: int,
        time: float,
        payloads: Sequence[bytes],
        ids: Sequence[tuple[str, int | None]] | None = None,
    ) -> None:
        """Queue a run of messages received together: ``payloads`` with seqs ``first_seq``,
        ``first_seq + 1``, ...; ``ids`` gives each one's ``(producer, publisher id)`` (None:
        no message of the run has an id; a publisher id of None: not kept for
        deduplication)."""
        ...

    def info(self, container_id: str) -> ContainerInfo | None:
        """What is kept for ``container_id`` now (including queued appends), or None."""
        ...

    def epoch(self, container_id: str) -> str:
        """The container's epoch ("" before its first message)."""
        ...

    def save_session(self, row: SessionRow) -> None:
        """Keep ``row`` as its container's session (replacing the one kept)."""
        ...

    def forget_sessions(self, container_ids: Sequence[str]) -> None:
        """Stop keeping these containers' sessions and their metadata."""
        ...

    def save_meta(self, container_id: str, name: str, value: bytes | None) -> None:
        """Keep (None: remove) a session's metadata value."""
        ...

    def save_record(self, kind: str, key: str, value: bytes | None, expires: float | None) -> None:
        """Keep (value None: remove) a shared record; ``expires`` is a Unix time or None."""
        ...

    def save_claim(self, kind: str, key: str, owner: str | None, expires: float) -> None:
        """Keep (owner None: remove) a claim."""
        ...

    async def sync(self) -> None:
        """Return once everything handed to the store before this call is durable.

        Raises:
            StoreError: it cannot be made durable now.
        """
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
            StoreError: the store failed to read.
        """
        ...

    async def prune(self, now: float) -> int:
        """Apply retention as of ``now``; return how many messages were removed."""
        ...

    async def check(self) -> None:
        """Return when the store answers; raise :class:`StoreError` when it does not."""
        ...

    async def close(self) -> None:
        """Make every queued append durable, then release the store."""
        ...
