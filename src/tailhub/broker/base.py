"""The broker: how a routed message reaches every hub process that has subscribers for it.

Guarantees every implementation gives:

- ``publish`` never blocks the event loop.
- The handler is called, on the event loop, once per ``publish`` in every process started on
  the broker (this one included), with the messages of one container in the order they were
  published. For the in-process broker this is immediate and synchronous.
- ``publish`` takes a run of messages of one container and one type, so that a burst read
  together is handed on, and delivered to each subscriber, at once.
- At-most-once between processes: a message lost between processes is not redelivered by the
  broker; readers recover it from history by ``seq``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Broker", "BrokerHandler"]

BrokerHandler = Callable[[str, str, list[bytes]], None]
"""Called with ``(container_id, type, payloads)`` for each published run of messages."""


class Broker(Protocol):
    """Fan-out between hub processes. See the module docstring for the guarantees."""

    async def start(self, handler: BrokerHandler) -> None:
        """Begin delivering published messages to ``handler``."""
        ...

    def publish(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        """Send encoded messages of one container and type, in order, to every handler.

        The list becomes the broker's: the caller does not change it afterwards.
        """
        ...

    async def check(self) -> None:
        """Return when the broker answers; raise when it does not."""
        ...

    async def close(self) -> None:
        """Stop delivering and release the broker."""
        ...
