"""The hub's own WebSocket transport: one small ``asyncio.Protocol`` per connection.

After the handshake (:mod:`tailhub.server.listener`) a connection's socket is served by a
:class:`WebSocketConnection`, which is also the connection's :class:`~tailhub.core.hub.Peer`.
It costs no task and no coroutine: each socket read is parsed at once into every message it
holds (:class:`~tailhub.server.wire.FrameReader`) and the messages are handed to the endpoint
together and synchronously, so a burst of messages read together is routed, stored and
flushed together, in one turn of the event loop.

One connection cannot hold the loop: a read is parsed
:data:`~tailhub.server.ws.FRAMES_PER_TURN` frames at a time.
When a read holds more, the connection stops reading from its socket, and the rest is taken up
in a later turn of the loop (``call_soon``), after the other connections' reads; reading
resumes once the read is used up. Messages parsed together still go to the endpoint together.

Closing follows RFC 6455 (section 7): the side that closes sends a close frame, and the hub
ends the TCP connection once the peer answers with its own, or at once when the peer closed
first. The close frame is written behind whatever the connection is still owed, and a peer
that takes nothing within the grace period (:data:`~tailhub.server.ws.CLOSE_GRACE`) is cut
off, so a stuck reader holds no memory.
"""

from __future__ import annotations

import asyncio
from typing import Final, cast

import structlog

from tailhub.core.hub import Connection
from tailhub.grants import Grant
from tailhub.server.state import ServerState
from tailhub.server.wire import (
    BINARY,
    CLOSE,
    PING,
    PING_FRAME,
    PONG,
    TEXT,
    FrameReader,
    close_frame,
)
from tailhub.server.ws import (
    CLOSE_GRACE,
    FRAMES_PER_TURN,
    ControlAllowance,
    answer_ping,
    count_control,
    forget,
    handle_messages,
    open_connection,
    time_out_authentication,
)

__all__ = ["WebSocketConnection"]

_log = structlog.get_logger("tailhub.ws")

_OPEN: Final = 0
_ANSWERING: Final = 1  # the peer sent a close frame; ours goes out after what it is owed
_FAILING: Final = 2  # the peer broke the protocol; ours goes out, then TCP ends at once
_CLOSED: Final = 3  # our close frame is written; nothing more is


class WebSocketConnection(asyncio.Protocol):
    """One accepted WebSocket connection: frames in, the hub's pre-framed bytes out.

    Args:
        state: the application's shared state.
        remote: the peer's address, for logs.
        grant: what the upgrade request's token allows, or None when it carried none.
        url_container: the ``?containerID=`` of the upgrade request, if any.
        origin: the ``Origin`` header of the upgrade request, if any.
    """

    __slots__ = (
        "_closing",
        "_conn",
        "_origin",
        "_paused",
        "_pings",
        "_reader",
        "_state",
        "_timer",
        "_transport",
        "_url_container",
        "close_code",
        "opened",
    )

    def __init__(
        self,
        state: ServerState,
        *,
        remote: str,
        grant: Grant | None,
        url_container: str | None,
        origin: str | None,
    ) -> None:
        self._state = state
        self._url_container = url_container
        self._origin = origin
        settings = state.settings
        self._reader = FrameReader(
            settings.max_message_size,
            max_fragments=settings.max_fragments,
            frames_per_feed=FRAMES_PER_TURN,
        )
        self._pings = ControlAllowance(settings.max_pings)
        self._paused = False
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = _OPEN
        self._conn: Connection = state.node.connect(self, remote=remote, grant=grant)
        self.close_code: int | None = None
        """The code of the close frame sent (or answered), once closing has begun."""
        self.opened = 0.0

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        self.opened = loop.time()
        conn = self._conn
        open_connection(self._state, conn, self._origin, self._url_container)
        self._origin = None
        if not conn.authenticated and not conn.closed:
            self._timer = loop.call_later(
                self._state.settings.auth_timeout, time_out_authentication, self._state, conn
            )

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        messages = reader.feed(data)
        conn = self._conn
        conn.alive = True
        if not reader.controls:  # the common case: data messages only, handed on as read
            if messages and not conn.closed:
                self.received(messages)
        elif self._mixed(messages):
            return
        if reader.error is not None:
            self._fail(reader.error.code, reader.error.reason)
        elif reader.more:
            self._yield()
        elif self._paused:
            self._paused = False
            if self._transport is not None:
                self._transport.resume_reading()

    def _yield(self) -> None:
        """Stop reading, and take up the rest of this read in a later turn of the loop."""
        transport = self._transport
        if transport is None:
            return
        if not self._paused:
            self._paused = True
            transport.pause_reading()
        asyncio.get_running_loop().call_soon(self._go_on)

    def _go_on(self) -> None:
        if self._transport is not None and self._reader.more:
            self.data_received(b"")

    def _mixed(self, messages: list[tuple[int, bytes]]) -> bool:
        """A read with control frames: data runs go on in order around them.

        Returns True when a close frame ended the read (nothing after it counts).
        """
        conn = self._conn
        start = 0
        for i, (opcode, payload) in enumerate(messages):
            if opcode in (TEXT, BINARY):
                continue
            if start < i and not conn.closed:
                self.received(messages[start:i])
            start = i + 1
            if conn.closed:
                if opcode == CLOSE:  # the answer to our close frame: the handshake is done
                    self._end()
                    return True
            elif opcode == PING:
                answer_ping(
                    self._state, conn, self._pings, payload, asyncio.get_running_loop().time()
                )
            elif opcode == PONG:
                count_control(self._state, conn, self._pings, asyncio.get_running_loop().time())
            elif opcode == CLOSE:
                self._closing = _ANSWERING
                self._state.node.hub.close(
                    conn, int.from_bytes(payload[:2], "big") if payload else 1000, ""
                )
                return True
        if start < len(messages) and not conn.closed:
            self.received(messages[start:])
        return False

    def received(self, messages: list[tuple[int, bytes]]) -> None:
        """Whole text or binary messages read together, in order: the endpoint acts on them."""
        conn = self._conn
        was_authenticated = conn.authenticated
        handle_messages(self._state, conn, messages, self._url_container)
        if conn.authenticated and not was_authenticated:
            self._cancel_timer()

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone: release every byte held for it, and everything it held."""
        self._cancel_timer()
        conn = self._conn
        if self._transport is not None:
            self._state.addresses.release(conn.remote)
        self._transport = None
        self._state.trim.released(self._reader.release())
        forget(self._state, conn, self.close_code, asyncio.get_running_loop().time() - self.opened)

    # -- Peer: what the hub calls -------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and self._closing != _CLOSED and not transport.is_closing():
            transport.write(data)

    def buffered(self) -> int:
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def ping(self) -> None:
        self.write(PING_FRAME)

    def close(self, code: int, reason: str) -> None:
        """Send a close frame behind what is buffered; end TCP when the peer answers."""
        transport = self._transport
        if transport is None or self._closing == _CLOSED or transport.is_closing():
            return
        self._cancel_timer()
        answering = self._closing != _OPEN
        self._closing = _CLOSED
        self.close_code = code
        transport.write(close_frame(code, reason))
        if answering:
            transport.close()
        elif transport.can_write_eof():
            transport.write_eof()
        # A peer that takes nothing within the grace period is cut off, whatever it owes.
        self._timer = asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)

    # -- internals ----------------------------------------------------------------------

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol: close with ``code`` and read nothing more."""
        _log.info("protocol_error", conn=self._conn.id, code=code, reason=reason)
        if self._transport is not None:
            self._transport.pause_reading()
        if self._conn.closed:
            self._end()
            return
        self._closing = _FAILING
        self._state.node.hub.close(self._conn, code, reason)

    def _end(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
