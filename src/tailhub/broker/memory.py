"""The in-process broker: one hub process, no network between publish and delivery."""

from __future__ import annotations

from tailhub.broker.base import BrokerHandler

__all__ = ["MemoryBroker"]


class MemoryBroker:
    """Calls the handler synchronously: delivery happens inside ``publish``."""

    def __init__(self) -> None:
        self._handler: BrokerHandler | None = None

    async def start(self, handler: BrokerHandler) -> None:
        self._handler = handler

    def publish(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        if self._handler is not None:
            self._handler(container_id, kind, payloads)

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        self._handler = None
