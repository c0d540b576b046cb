"""The WebSocket endpoint: admission, authentication, and what a connection's messages do.

Two transports carry WebSocket connections, and both end here:

- :mod:`tailhub.server.wsconn`, the hub's own lean protocol, serves every connection that
  opens with its upgrade request (all browsers, ``ws``, picows, ...);
- aiohttp's ``WebSocketResponse`` (:func:`handle_websocket`) serves an upgrade that arrives
  as a later request on a kept-alive HTTP connection (aiohttp's client reuses pooled ones).

Authentication state lives here; everything after it (routing, sessions, history) is the
node's. Writing never happens here: the hub writes pre-framed bytes straight to the transport
(see :mod:`tailhub.server.wire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Final, NamedTuple

import structlog
from aiohttp import WSMsgType, web

from tailhub.auth import bearer_token
from tailhub.core.hub import Connection
from tailhub.protocol import (
    Auth,
    CloseCode,
    ErrorCode,
    ProtocolError,
    Subscribe,
    decode_client,
    encode,
    validate_container_id,
)
from tailhub.server.state import STATE, ServerState
from tailhub.server.wire import PING_FRAME, close_frame

__all__ = [
    "AiohttpPeer",
    "Refusal",
    "forget",
    "handle_frame",
    "handle_websocket",
    "open_connection",
    "refusal",
    "request_token",
    "time_out_authentication",
]

_log = structlog.get_logger("tailhub.ws")
_CLOSE_GRACE: Final = 5.0
_DATA: Final = (WSMsgType.TEXT, WSMsgType.BINARY)


class AiohttpPeer:
    """The hub's view of one aiohttp WebSocket: raw writes to its transport."""

    __slots__ = ("_state", "_transport", "_ws", "close_code", "closing")

    def __init__(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport, state: ServerState
    ) -> None:
        self._ws = ws
        self._transport = transport
        self._state = state
        self.closing: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def ping(self) -> None:
        self.write(PING_FRAME)

    def close(self, code: int, reason: str) -> None:
        if self.closing is not None:
            return
        self.close_code = code
        task = self.closing = asyncio.create_task(self._close(code, reason))
        self._state.tasks.add(task)
        task.add_done_callback(self._state.tasks.discard)

    async def _close(self, code: int, reason: str) -> None:
        """Send the close frame behind what is buffered, then close; abort if it cannot drain.

        The close frame is written straight to the transport, so it needs no room in a full
        buffer and no answer from the peer: a slow reader gets it after at most ``max_queue``
        bytes, and one that takes nothing within the grace period is cut off, freeing its memory.
        """
        transport = self._transport
        if transport.is_closing():
            return
        transport.write(close_frame(code, reason))
        transport.close()
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                # A transport announces drains to its protocol (aiohttp's), not to us: poll.
                while transport.get_write_buffer_size():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        except TimeoutError:
            transport.abort()


def request_token(request: web.Request) -> str | None:
    """The token of a request: ``Authorization: Bearer`` first, then ``?token=``."""
    return bearer_token(request.headers.get("Authorization")) or request.query.get("token")


class Refusal(NamedTuple):
    """An upgrade request the hub answers with an HTTP error instead of a WebSocket."""

    status: int
    body: str
    headers: dict[str, str]


def refusal(state: ServerState, token: str | None, remote: str) -> Refusal | None:
    """Why an upgrade must be refused before the handshake, or None to accept it.

    A wrong token is refused at once (401); a missing one may still come in the first
    message. A hub at ``max_connections`` refuses with 503.
    """
    if token is not None and not state.auth.check(token):
        _log.warning("auth_failed", remote=remote, where="handshake")
        return Refusal(
            401, '{"error":"invalid token"}', {"WWW-Authenticate": 'Bearer realm="tailhub"'}
        )
    if len(state.node.hub.connections) >= state.settings.max_connections:
        return Refusal(503, '{"error":"too many connections (TAILHUB_MAX_CONNECTIONS)"}', {})
    return None


def open_connection(
    state: ServerState, conn: Connection, origin: str | None, url_container: str | None
) -> None:
    """A connection's first steps after the handshake: its origin, its URL subscription."""
    _log.info(
        "connection_opened", conn=conn.id, remote=conn.remote, authenticated=conn.authenticated
    )
    allowed = state.settings.allowed_origins
    if allowed and origin and origin not in allowed:
        _log.warning("origin_refused", conn=conn.id, origin=origin)
        state.node.hub.close(conn, CloseCode.POLICY, "origin not allowed")
    elif url_container and conn.authenticated:
        _subscribe_from_url(state, conn, url_container)


def forget(state: ServerState, conn: Connection) -> None:
    """A connection has gone: release what it held; at shutdown, note when it was the last."""
    state.node.disconnect(conn)
    if state.drained is not None and not state.node.hub.connections:
        state.drained.set()


def time_out_authentication(state: ServerState, conn: Connection) -> None:
    """Close a connection that sent no token within ``auth_timeout``."""
    if conn.authenticated or conn.closed:
        return
    state.node.error(conn, ErrorCode.UNAUTHORIZED, "no token sent in time")
    state.node.hub.close(conn, CloseCode.NOT_AUTHENTICATED, "authentication timed out")


async def handle_websocket(request: web.Request) -> web.StreamResponse:
    """Upgrade, authenticate and serve one WebSocket connection until it closes.

    Only upgrades on a kept-alive connection come here; see the module's docstring.
    """
    state = request.app[STATE]
    node = state.node
    token = request_token(request)
    remote = request.remote or ""
    refused = refusal(state, token, remote)
    if refused is not None:
        raise _http_error(refused)
    transport = request.transport
    if transport is None:
        raise web.HTTPBadRequest()
    ws = web.WebSocketResponse(
        autoping=False,
        compress=False,
        max_msg_size=state.settings.max_message_size,
        timeout=_CLOSE_GRACE,
    )
    await ws.prepare(request)
    peer = AiohttpPeer(ws, transport, state)
    conn = node.connect(peer, remote=remote, authenticated=token is not None)
    opened = time.monotonic()
    try:
        url_container = request.query.get("containerID")
        open_connection(state, conn, request.headers.get("Origin"), url_container)
        await _read_loop(state, ws, conn, url_container)
        if peer.closing is not None:
            # The hub closed this connection: let its close code, not aiohttp's 1000, go out.
            await asyncio.shield(peer.closing)
    finally:
        forget(state, conn)
        _log.info(
            "connection_closed",
            conn=conn.id,
            code=peer.close_code or ws.close_code,
            seconds=round(time.monotonic() - opened, 3),
        )
    return ws


def _http_error(refused: Refusal) -> web.HTTPException:
    error: type[web.HTTPException] = (
        web.HTTPUnauthorized if refused.status == 401 else web.HTTPServiceUnavailable
    )
    return error(text=refused.body, content_type="application/json", headers=refused.headers)


def _subscribe_from_url(state: ServerState, conn: Connection, container_id: str) -> None:
    try:
        validate_container_id(container_id, pattern=True)
    except ProtocolError as exc:
        state.node.error(conn, exc.code, f"?containerID: {exc.words}")
        return
    state.node.subscribe(conn, Subscribe(container_id=container_id))


async def _read_loop(
    state: ServerState, ws: web.WebSocketResponse, conn: Connection, url_container: str | None
) -> None:
    auth_timeout = state.settings.auth_timeout
    while not conn.closed:
        try:
            msg = await ws.receive(timeout=None if conn.authenticated else auth_timeout)
        except TimeoutError:
            time_out_authentication(state, conn)
            return
        conn.alive = True
        kind = msg.type
        if kind in _DATA:
            handle_frame(state, conn, msg.data, url_container)
        elif kind is WSMsgType.PING:
            with contextlib.suppress(ConnectionError):
                await ws.pong(msg.data)
        elif kind is not WSMsgType.PONG:
            return


def handle_frame(
    state: ServerState, conn: Connection, data: str | bytes, url_container: str | None
) -> None:
    """Act on one data message of ``conn``: authenticate it, or hand it to the node."""
    node = state.node
    try:
        message = decode_client(data)
    except ProtocolError as exc:
        if not conn.authenticated:
            if not state.auth.check(exc.token):
                node.error(conn, exc.code, exc.words)
                _refuse(state, conn, "the first message must carry a token")
                return
            _authenticate(state, conn, url_container)
        node.error(
            conn,
            exc.code,
            exc.words,
            container_id=exc.container_id,
            id=exc.id,
            producer=exc.producer,
        )
        return
    if not conn.authenticated:
        if not state.auth.check(message.token):
            _refuse(state, conn, "invalid token" if message.token else "no token")
            return
        _authenticate(state, conn, url_container)
    elif isinstance(message, Auth) and not state.auth.check(message.token):
        node.error(conn, ErrorCode.UNAUTHORIZED, "invalid token")
        return
    if isinstance(message, Auth):
        node.hub.send(conn, encode({"type": "authenticated"}))
        return
    node.handle(conn, message)


def _authenticate(state: ServerState, conn: Connection, url_container: str | None) -> None:
    conn.authenticated = True
    if url_container:
        _subscribe_from_url(state, conn, url_container)


def _refuse(state: ServerState, conn: Connection, words: str) -> None:
    _log.warning("auth_failed", conn=conn.id, remote=conn.remote, where="first message")
    state.node.error(conn, ErrorCode.UNAUTHORIZED, words)
    state.node.hub.close(conn, CloseCode.NOT_AUTHENTICATED, "not authenticated")
