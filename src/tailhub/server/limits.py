"""Connection budgets that keep one client, or clients without a token, from locking others out.

- :class:`Addresses` counts open TCP connections per client address (every connection of the
  port: WebSocket, HTTP, or not yet either) against ``max_connections_per_ip``.
- Token-less WebSocket connections are counted apart from authenticated ones (see
  :func:`tailhub.server.ws.refusal`): they wait for their token within ``auth_timeout``, against
  their own small budget ``max_unauthenticated``, so they never take the places of clients that
  brought one.
"""

from __future__ import annotations

import asyncio

__all__ = ["Addresses", "address_of"]


def address_of(transport: asyncio.BaseTransport) -> str:
    """The client's IP address of a connection ("" when the transport has none)."""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


class Addresses:
    """Open connections per client address, at most ``limit`` each (0: no limit, nothing counted).

    Every :meth:`admit` that returns True must be matched by one :meth:`release` of the same
    address when that connection ends.
    """

    __slots__ = ("_limit", "_open")

    def __init__(self, limit: int = 0) -> None:
        self._limit = limit
        self._open: dict[str, int] = {}

    def admit(self, address: str) -> bool:
        """Count a new connection from ``address``; False (and nothing counted) when it is full."""
        if not self._limit:
            return True
        count = self._open.get(address, 0)
        if count >= self._limit:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        """A connection counted by :meth:`admit` has ended."""
        if not self._limit:
            return
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def open(self, address: str) -> int:
        """How many connections from ``address`` are open (0 when nothing is counted)."""
        return self._open.get(address, 0)
