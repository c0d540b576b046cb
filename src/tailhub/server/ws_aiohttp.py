"""WebSocket upgrades that arrive on a kept-alive HTTP connection, served through aiohttp.

The hub's port hands a connection to aiohttp after its first request (see
:mod:`tailhub.server.listener`); an upgrade that comes later on the same connection reaches
aiohttp's router, and is served here with aiohttp's ``WebSocketResponse`` for reading and the
hub's pre-framed bytes for writing. Every decision is :mod:`tailhub.server.ws`'s, as for the
hub's own transport.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from aiohttp import WSMsgType, web

from tailhub.core.hub import Connection
from tailhub.server.state import STATE, ServerState
from tailhub.server.wire import PING_FRAME, close_frame
from tailhub.server.ws import (
    CLOSE_GRACE,
    FRAMES_PER_TURN,
    ControlAllowance,
    Refusal,
    answer_ping,
    count_control,
    forget,
    handle_frame,
    handshake_refusal,
    open_connection,
    refusal,
    request_token,
    time_out_authentication,
)

__all__ = ["AiohttpPeer", "handle_websocket"]

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
            async with asyncio.timeout(CLOSE_GRACE):
                # A transport announces drains to its protocol (aiohttp's), not to us: poll.
                while transport.get_write_buffer_size():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        except TimeoutError:
            transport.abort()


async def handle_websocket(request: web.Request) -> web.StreamResponse:
    """Upgrade, authenticate and serve one WebSocket connection until it closes."""
    state = request.app[STATE]
    node = state.node
    problem = handshake_refusal(request.headers, (request.version.major, request.version.minor))
    if problem is not None:
        # Checked here, in fixed words: aiohttp's own refusals quote the request's headers.
        return web.Response(
            status=problem.status, text=problem.body, headers=problem.headers or None
        )
    token = request_token(request)
    remote = request.remote or ""
    refused = refusal(state, token, remote)
    if isinstance(refused, Refusal):
        raise _http_error(refused)
    transport = request.transport
    if transport is None:
        raise web.HTTPBadRequest()
    ws = web.WebSocketResponse(
        autoping=False,
        compress=False,
        max_msg_size=state.settings.max_message_size,
        timeout=CLOSE_GRACE,
    )
    await ws.prepare(request)
    peer = AiohttpPeer(ws, transport, state)
    conn = node.connect(peer, remote=remote, grant=refused)
    opened = time.monotonic()
    try:
        url_container = request.query.get("containerID")
        open_connection(state, conn, request.headers.get("Origin"), url_container)
        await _read_loop(state, ws, conn, url_container)
        if peer.closing is not None:
            # The hub closed this connection: let its close code, not aiohttp's 1000, go out.
            await asyncio.shield(peer.closing)
    finally:
        forget(state, conn, peer.close_code or ws.close_code, time.monotonic() - opened)
    return ws


def _http_error(refused: Refusal) -> web.HTTPException:
    error: type[web.HTTPException] = (
        web.HTTPUnauthorized if refused.status == 401 else web.HTTPServiceUnavailable
    )
    return error(text=refused.body, content_type="application/json", headers=refused.headers)


async def _read_loop(
    state: ServerState, ws: web.WebSocketResponse, conn: Connection, url_container: str | None
) -> None:
    """Act on each message as it comes, yielding to the loop every ``FRAMES_PER_TURN``.

    aiohttp's ``receive`` returns at once while messages it has read are waiting, so without
    the yield one connection's flood would hold the loop for as long as it lasts.
    """
    auth_timeout = state.settings.auth_timeout
    controls = ControlAllowance(state.settings.max_pings)
    loop = asyncio.get_running_loop()
    turn = FRAMES_PER_TURN
    while not conn.closed:
        turn -= 1
        if turn == 0:
            turn = FRAMES_PER_TURN
            await asyncio.sleep(0)
            continue
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
            answer_ping(state, conn, controls, msg.data, loop.time())
        elif kind is WSMsgType.PONG:
            count_control(state, conn, controls, loop.time())
        else:
            return
