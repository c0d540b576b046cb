"""The hub's port: WebSocket upgrades to the hub's own transport, everything else to aiohttp.

Each new connection is read until its first request head is complete. An upgrade to a
WebSocket on ``/`` or ``/ws`` is answered here (RFC 6455, section 4.2) and the socket is handed
to a :class:`~tailhub.server.wsconn.WebSocketConnection`; any other request, and anything this
module cannot parse, is handed with the bytes read so far to aiohttp's request handler, which
serves the HTTP API, the dashboard and its own errors exactly as if it had read them itself.

The request head is parsed by aiohttp's C parser (``aiohttp.http.HttpRequestParser``). A
connection that sends no complete head within ``auth_timeout`` is dropped; one whose head
passes ``max_head`` bytes is answered 431 here and closed. A connection from an
address that already has ``max_connections_per_ip`` open is answered 503 at once and closed;
the protocol that serves a connection to its end gives its place back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Final, cast

from aiohttp.http import HttpRequestParser, RawRequestMessage

from tailhub.server.limits import address_of
from tailhub.server.state import ServerState
from tailhub.server.wire import accept_key
from tailhub.server.ws import Refusal, handshake_refusal, refusal, token_of
from tailhub.server.wsconn import WebSocketConnection

__all__ = ["Listener"]

_WS_PATHS: Final = frozenset({"/", "/ws"})
_LINGER: Final = 1.0
"""Seconds a refused connection is kept, reading and dropping, before it is closed."""


class Listener:
    """The protocol factory of the hub's listening socket.

    Args:
        state: the application's shared state.
        http: aiohttp's protocol factory (``AppRunner.server``), for every other request.
        connection: the class that serves an accepted WebSocket (a subclass may give its
            messages another meaning, as the conformance suite's echo server does).
    """

    def __init__(
        self,
        state: ServerState,
        http: Callable[[], asyncio.Protocol],
        connection: type[WebSocketConnection] = WebSocketConnection,
    ) -> None:
        self.state = state
        self.http = http
        self.connection = connection

    def __call__(self) -> asyncio.Protocol:
        return _FirstRequest(self)


class _FirstRequest(asyncio.Protocol):
    """A new connection until its first request head is read."""

    __slots__ = ("_address", "_head", "_listener", "_timer", "_transport")

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._head = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._address: str | None = None
        """The client's address while this protocol holds its place in the count."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)
        state = self._listener.state
        address = address_of(transport)
        if not state.addresses.admit(address):
            # Answered before the request is read; what the client sends meanwhile is read
            # and dropped for a moment, so that closing does not reset the connection (and
            # the answer with it) before the client has read it.
            self._transport = None
            _respond(
                transport,
                503,
                '{"error":"too many connections from this address'
                ' (TAILHUB_MAX_CONNECTIONS_PER_IP)"}',
                {},
                "application/json",
                linger=True,
            )
            return
        self._address = address
        self._timer = asyncio.get_running_loop().call_later(
            state.settings.auth_timeout, transport.abort
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self._address is not None:
            self._listener.state.addresses.release(self._address)
            self._address = None

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return  # refused: dropped
        head = self._head = self._head + data
        end = head.find(b"\r\n\r\n")
        limit = self._listener.state.settings.max_head
        if (end if end >= 0 else len(head)) > limit:
            self._too_large(limit)
            return
        if end < 0:
            return
        if not head.startswith(b"GET ") or b"websocket" not in head[:end].lower():
            self._to_http()
            return
        parser = HttpRequestParser(None, asyncio.get_running_loop(), limit)
        try:
            messages, _upgraded, tail = parser.feed_data(head)
        except Exception:
            self._to_http()  # aiohttp answers a malformed request with its own 400
            return
        request = messages[0][0]
        if request.url.path not in _WS_PATHS or not _is_upgrade(request):
            self._to_http()
            return
        self._upgrade(request, tail)

    # -- hand-offs ----------------------------------------------------------------------

    def _too_large(self, limit: int) -> None:
        """Refuse a head over ``limit`` bytes here: handed to aiohttp, a refused head stayed
        in memory (in its parse error's traceback) until the next garbage collection, about
        1 MB a request under a flood of them."""
        self._stop_timer()
        transport = self._transport
        assert transport is not None
        self._transport = None  # what follows is read and dropped
        self._head = b""
        _respond(
            transport,
            431,
            f'{{"error":"the request head is over {limit} bytes (TAILHUB_MAX_HEAD)"}}',
            {},
            "application/json",
            linger=True,
        )

    def _to_http(self) -> None:
        self._stop_timer()
        self._address = None  # the HTTP connection gives the place back when it ends
        transport = self._transport
        assert transport is not None
        protocol = self._listener.http()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(self._head)
        self._head = b""

    def _upgrade(self, request: RawRequestMessage, tail: bytes) -> None:
        self._stop_timer()
        transport = self._transport
        assert transport is not None
        headers = request.headers
        key = headers.get("Sec-WebSocket-Key", "")
        problem = handshake_refusal(headers, (request.version.major, request.version.minor))
        if problem is not None:
            _respond(transport, problem.status, problem.body, problem.headers, "text/plain")
            return
        state = self._listener.state
        query = request.url.query
        token = token_of(headers, query)
        peer = transport.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, tuple) else ""
        refused = refusal(state, token, remote)
        if isinstance(refused, Refusal):
            _respond(transport, refused.status, refused.body, refused.headers, "application/json")
            return
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(key).encode()
            + b"\r\n\r\n"
        )
        connection = self._listener.connection(
            state,
            remote=remote,
            grant=refused,
            url_container=query.get("containerID"),
            origin=headers.get("Origin"),
        )
        self._address = None  # the WebSocket connection gives the place back when it ends
        transport.set_protocol(connection)
        connection.connection_made(transport)
        if tail:
            connection.data_received(tail)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _is_upgrade(request: RawRequestMessage) -> bool:
    return (
        request.method == "GET"
        and request.upgrade
        and request.headers.get("Upgrade", "").lower() == "websocket"
    )


def _respond(
    transport: asyncio.Transport,
    status: int,
    body: str,
    headers: dict[str, str],
    content_type: str,
    *,
    linger: bool = False,
) -> None:
    """Answer a request with an HTTP error and close the connection.

    With ``linger``, the hub's side is shut down for writing at once and the connection is
    closed within :data:`_LINGER` seconds (sooner when the client closes), reading nothing.
    """
    payload = body.encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    transport.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    if linger and transport.can_write_eof():
        transport.write_eof()
        asyncio.get_running_loop().call_later(_LINGER, transport.close)
        return
    transport.close()
