"""The history store: what every implementation guarantees.

A store keeps, per containerID, the messages the node stamped with ``seq``, exactly as they
were encoded for subscribers, and what it needs to deduplicate publisher ids after a restart.

Guarantees every implementation gives (``tests/store/contract.py`` checks them all):

- ``append`` never blocks the event loop and never fails the caller: it queues the message.
  Appends for one container arrive in ``seq`` order; the store keeps that order.
- Read your writes: a ``read`` started after an ``append`` returns that message, even while
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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

__all__ = [
    "ContainerInfo",
    "DurableCallback",
    "HistoryStore",
    "Retention",
    "StoreError",
    "StoreSnapshot",
    "StoredMessage",
]


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


@dataclass(slots=True)
class StoreSnapshot:
    """The store's state at ``open``: per container, and each producer's last stored id."""

    containers: dict[str, ContainerInfo] = field(default_factory=dict)
    producers: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history is kept: per container by count, and by age in seconds."""

    max_messages: int = 100_000
    max_age: float = 7 * 86400.0


DurableCallback = Callable[[Sequence[tuple[str, int]]], None]
"""Called on the event loop with ``(container_id, last durable seq)`` pairs after a commit."""


class HistoryStore(Protocol):
    """Where the node keeps each container's messages. See the module docstring."""

    async def open(self, on_durable: DurableCallback) -> StoreSnapshot:
        """Open (creating if needed) and return what is kept.

        Raises:
            StoreError: the store cannot be opened (corrupt, unwritable, ...).
        """
        ...

    def append(
        self,
        container_id: str,
        seq: int,
        time: float,
        payload: bytes,
        producer: str = "",
        pub_id: int | None = None,
    ) -> None:
        """Queue one message. ``pub_id`` is the publisher's id, kept for deduplication."""
        ...

    def info(self, container_id: str) -> ContainerInfo | None:
        """What is kept for ``container_id`` now (including queued appends), or None."""
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
