"""A hub connection whose messages go to an HTTP streaming response instead of a WebSocket.

``GET /api/sessions/{id}/logs?follow=1`` does not re-implement backlog, hand-over to live and
slow-reader handling: it connects a :class:`StreamPeer` to the node like any WebSocket
connection and subscribes it, so the node's guarantee holds unchanged (backlog then live, in
``seq`` order, no gap and no duplicate between the two). The hub writes WebSocket frames to
every peer; this peer keeps them in a list (:meth:`StreamPeer.write` must never block) and the
request handler takes them, :data:`TAKE` bytes at a time, strips the framing
(:func:`split_frames`, without copying) and writes the payloads to the response at the pace the
HTTP client reads.

Backpressure: :meth:`StreamPeer.buffered` counts what the hub handed over and the handler has
not yet got into the socket, plus the socket's own buffer, so a follower that stops reading is
closed by the hub with 4429 exactly like a slow WebSocket reader, and the node waits for it to
drain while it sends backlog. Closing works as a WebSocket's does: what the follower is owed
is still written, and a follower that takes none of it within
:data:`~tailhub.server.ws.CLOSE_GRACE` is cut off (its connection aborted), so a stuck reader
holds no memory and no handler waits on it for ever.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from typing import Final

from tailhub.core.hub import Connection
from tailhub.server.ws import CLOSE_GRACE

__all__ = ["TAKE", "StreamPeer", "split_frames"]

TAKE: Final = 1 << 18
"""Bytes of frames a handler takes from its peer at a time: what a follower holds in flight,
over what the hub counts against ``max_queue``."""

_U16: Final = struct.Struct("!H")
_U64: Final = struct.Struct("!Q")
_TEXT: Final = 0x1
_BINARY: Final = 0x2


def split_frames(
    data: bytes, start: int = 0, budget: int | None = None
) -> tuple[list[memoryview], int]:
    """Read the payloads of unmasked server-to-client WebSocket frames.

    The hub frames each message as one final frame (RFC 6455 section 5.2: a 2, 4 or 10 byte
    header, no mask since the server sends it) and may write several of them at once.

    Args:
        data: concatenated frames; the last one may be incomplete.
        start: the offset of the first frame to read.
        budget: stop after the frame that brings the bytes read to at least this many
            (``None``: read every complete frame).

    Returns:
        The payloads of the complete text and binary frames read, in order, as views into
        ``data`` (no copy; control frames are dropped), and the offset just after the last
        frame read: where an incomplete frame, or the frames left over the budget, begin.
    """
    payloads: list[memoryview] = []
    view = memoryview(data)
    size = len(data)
    at = start
    stop = size if budget is None else start + budget
    while at < stop and size - at >= 2:
        opcode = view[at] & 0x0F
        length = view[at + 1] & 0x7F
        masked = view[at + 1] & 0x80
        begin = at + 2
        if length == 126:
            if size - at < 4:
                break
            (length,) = _U16.unpack_from(view, at + 2)
            begin = at + 4
        elif length == 127:
            if size - at < 10:
                break
            (length,) = _U64.unpack_from(view, at + 2)
            begin = at + 10
        if masked:
            begin += 4
        end = begin + length
        if end > size:
            break
        if opcode in (_TEXT, _BINARY):
            payloads.append(view[begin:end])
        at = end
    return payloads, at


class StreamPeer:
    """The :class:`~tailhub.core.hub.Peer` of one HTTP streaming response.

    Every method the hub calls returns at once. The handler that owns the response awaits
    :meth:`wait`, then calls :meth:`take` and, once the bytes are written, :meth:`written`.

    Args:
        transport: the HTTP connection's transport, for its write-buffer size and to tell
            whether the client is still there.
    """

    __slots__ = (
        "_at",
        "_chunks",
        "_cutoff",
        "_held",
        "_transport",
        "_wake",
        "close_code",
        "closed",
        "conn",
        "keepalive_due",
    )

    def __init__(self, transport: asyncio.Transport | None) -> None:
        self._transport = transport
        self._chunks: deque[bytes] = deque()
        self._at = 0
        """Where the next frame begins in ``_chunks[0]``."""
        self._held = 0
        self._wake = asyncio.Event()
        self._cutoff: asyncio.TimerHandle | None = None
        self.conn: Connection | None = None
        """Set by the owner right after connecting, so that pings can be answered."""
        self.closed = False
        self.close_code: int | None = None
        self.keepalive_due = False
        """A ping round passed: an SSE stream sends a comment so that proxies keep it open."""

    @property
    def gone(self) -> bool:
        """The HTTP client has disconnected (or its connection is being torn down)."""
        transport = self._transport
        return transport is None or transport.is_closing()

    # -- the hub's side ----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        self._chunks.append(data)
        self._held += len(data)
        self._wake.set()

    def buffered(self) -> int:
        transport = self._transport
        in_socket = 0 if transport is None else transport.get_write_buffer_size()
        return self._held + in_socket

    def ping(self) -> None:
        # There is no pong in HTTP: the follower counts as alive while its socket is open,
        # so the hub's liveness round closes it once the client has gone away.
        if self.gone or self.conn is None:
            return
        self.conn.alive = True
        self.keepalive_due = True
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        # What the hub wrote before closing is still sent (the owner drains it, then ends),
        # within the grace period: a client that takes nothing is cut off.
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._wake.set()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            self._cutoff = asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)

    def finish(self) -> None:
        """The owner is done with the response: drop what was not taken.

        A connection the hub closed is not kept alive by its owner (see ``_follow``), and is
        aborted at the end of the grace period if its last bytes are still not taken, since
        closing a transport waits for its buffer to drain, for ever if nobody reads.
        """
        self._chunks.clear()
        self._at = 0
        self._held = 0

    # -- the handler's side ------------------------------------------------------------

    async def wait(self, idle: float) -> None:
        """Return when there is something to do, or after ``idle`` seconds of nothing."""
        if self._chunks or self.closed or self.keepalive_due:
            return
        self._wake.clear()
        try:
            async with asyncio.timeout(idle):
                await self._wake.wait()
        except TimeoutError:
            pass

    def take(self, budget: int = TAKE) -> tuple[list[memoryview], int]:
        """The payloads of the next frames received, about ``budget`` bytes of them, and how
        many bytes of frames they took.

        The payloads are views into what the hub wrote (nothing is copied), and the handler
        writes them out before it takes more, so a follower holds at most about ``budget``
        bytes beyond what :meth:`buffered` counts. The bytes stay counted in
        :meth:`buffered` until :meth:`written` is called with that number, so the hub sees a
        follower that is slow to write as slow.
        """
        payloads: list[memoryview] = []
        taken = 0
        chunks = self._chunks
        while chunks and taken < budget:
            chunk = chunks[0]
            start = self._at
            got, end = split_frames(chunk, start, budget - taken)
            payloads += got
            taken += end - start
            if end == len(chunk):
                chunks.popleft()
                self._at = 0
            elif end > start:
                self._at = end
            elif len(chunks) > 1:
                # A frame split across two writes: join its start to the next write.
                chunks.popleft()
                chunks[0] = chunk[end:] + chunks[0]
                self._at = 0
            else:
                break
        return payloads, taken

    def written(self, taken: int) -> None:
        """``taken`` bytes from :meth:`take` have been handed to the socket."""
        self._held = max(0, self._held - taken)
