"""WebSocket frames (RFC 6455, section 5) as bytes, in both directions. No I/O.

Server-to-client frames are not masked (section 5.1), so every subscriber of a message can be
sent the very same bytes: the hub builds one frame per message and writes it to each
receiver's transport, instead of framing it again for every receiver.

Client-to-server frames are read by :class:`FrameReader`, which turns the bytes of one socket
read into every complete message they hold, at once. It follows the RFC strictly (masking,
reserved bits and opcodes, control frame rules, fragmentation, UTF-8 of text and close
reasons, close codes) and refuses a message larger than its limit from the frame header,
before buffering the payload. No extension is negotiated, so no reserved bit may be set.

The reader bounds what one peer can make it hold and do: a fragmented message is charged each
frame's header as well as its payload, and may have only so many fragments (so empty
continuation frames cannot grow it for free), and one :meth:`FrameReader.feed` parses only so
many frames; the rest of the read waits for the next call, so that its caller can let other
connections' reads go first.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import struct
from collections.abc import Callable
from typing import Final

__all__ = [
    "BINARY",
    "CLOSE",
    "PING",
    "PING_FRAME",
    "PONG",
    "TEXT",
    "FrameError",
    "FrameReader",
    "accept_key",
    "binary_frame",
    "close_frame",
    "pong_frame",
    "text_frame",
    "valid_key",
]

CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

_SHORT: Final = struct.Struct("!BB")
_MEDIUM: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")
_FIN_TEXT: Final = 0x81
_FIN_BINARY: Final = 0x82
_MASKED: Final = 0x80
_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_PROTOCOL_ERROR: Final = 1002
_INVALID_DATA: Final = 1007
_TOO_BIG: Final = 1009
_CLOSE_CODES_RESERVED: Final = frozenset({1004, 1005, 1006, 1015})

PING_FRAME: Final = b"\x89\x00"
"""A final, unmasked ping frame with no payload."""


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying ``payload`` (UTF-8 JSON)."""
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_FIN_TEXT, size) + payload
    if size < 65536:  # most routed messages: without a second call
        return _MEDIUM.pack(_FIN_TEXT, 126, size) + payload
    return _LONG.pack(_FIN_TEXT, 127, size) + payload


def binary_frame(payload: bytes) -> bytes:
    """One final, unmasked binary frame carrying ``payload``."""
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_FIN_BINARY, size) + payload
    return _long_frame(_FIN_BINARY, payload)


def _long_frame(first: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 65536:
        return _MEDIUM.pack(first, 126, size) + payload
    return _LONG.pack(first, 127, size) + payload


def pong_frame(payload: bytes) -> bytes:
    """The answer to a ping: a pong carrying the ping's payload (at most 125 bytes)."""
    return _SHORT.pack(0x8A, len(payload)) + payload


def close_frame(code: int, reason: str) -> bytes:
    """A close frame with ``code`` and up to 123 bytes of ``reason`` (RFC 6455, 5.5.1)."""
    payload = code.to_bytes(2, "big") + reason.encode()[:123].decode(errors="ignore").encode()
    return _SHORT.pack(0x88, len(payload)) + payload


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455, 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def valid_key(key: str) -> bool:
    """Whether ``Sec-WebSocket-Key`` is base64 of 16 bytes, as section 4.1 requires."""
    try:
        return len(base64.b64decode(key.encode(), validate=True)) == 16
    except ValueError:
        return False


class FrameError(Exception):
    """The peer broke the WebSocket protocol; close the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _unmask_python(data: bytes, mask: bytes) -> bytes:
    size = len(data)
    key = int.from_bytes((mask * ((size + 3) >> 2))[:size], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(size, "little")


_unmask: Callable[[bytes, bytes], bytes]
try:  # websockets' C routine: 0.14 us for a 120-byte payload, against 0.9 us in Python
    from websockets.speedups import apply_mask

    _unmask = apply_mask
except ImportError:  # pragma: no cover - websockets ships wheels with it for every platform
    _unmask = _unmask_python


def _check_text(payload: bytes) -> None:
    """Raise :class:`FrameError` when a text message is not UTF-8 (callers skip ASCII)."""
    try:
        payload.decode()
    except UnicodeDecodeError:
        raise FrameError(_INVALID_DATA, "text message is not valid UTF-8") from None


def _utf8_decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")()


def _check_fragment(decoder: codecs.IncrementalDecoder, payload: bytes, *, final: bool) -> None:
    try:
        decoder.decode(payload, final)
    except UnicodeDecodeError:
        raise FrameError(_INVALID_DATA, "text message is not valid UTF-8") from None


def _check_close(payload: bytes) -> None:
    if not payload:
        return
    if len(payload) == 1:
        raise FrameError(_PROTOCOL_ERROR, "close frame with a one-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code < 1000 or code >= 5000 or code in _CLOSE_CODES_RESERVED or 1016 <= code < 3000:
        raise FrameError(_PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FrameError(_INVALID_DATA, "close reason is not valid UTF-8") from None


class FrameReader:
    """Client frames in, whole messages out: ``(opcode, payload)`` pairs.

    ``opcode`` is :data:`TEXT`, :data:`BINARY` (fragments already joined), :data:`PING`,
    :data:`PONG` or :data:`CLOSE` (its payload checked). Bytes that break the protocol set
    :attr:`error`; the messages before them are still returned, and nothing after them is
    read. :attr:`controls` says how many of the last :meth:`feed`'s messages were control
    frames, so that a caller can hand on a read of data messages only as it is.

    Args:
        max_size: the largest message accepted, in bytes: a frame's payload, or for a
            fragmented message the sum of its fragments' payloads and of every continuation
            frame's header.
        max_fragments: the most frames one message may come in.
        frames_per_feed: the most frames one :meth:`feed` parses; when a read holds more,
            :attr:`more` is set and ``feed(b"")`` goes on where it stopped.
    """

    __slots__ = (
        "_budget",
        "_chunks",
        "_fragments",
        "_fragments_op",
        "_fragments_size",
        "_have",
        "_held",
        "_held_at",
        "_max",
        "_max_fragments",
        "_need",
        "_utf8",
        "controls",
        "error",
    )

    def __init__(
        self, max_size: int, *, max_fragments: int = 1024, frames_per_feed: int = 1024
    ) -> None:
        self._max = max_size
        self._max_fragments = max_fragments
        self._budget = frames_per_feed
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0
        self._held = b""
        self._held_at = 0
        self._fragments: list[bytes] | None = None
        self._fragments_op = 0
        self._fragments_size = 0
        self._utf8: codecs.IncrementalDecoder | None = None
        self.error: FrameError | None = None
        """Set when the peer broke the protocol: close the connection with its code."""
        self.controls = 0
        """How many of the messages the last :meth:`feed` returned are control frames."""

    @property
    def more(self) -> bool:
        """Whether bytes already fed hold frames not parsed yet: call ``feed(b"")`` for them."""
        return bool(self._held)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The messages completed by ``data``, in order; what is left waits for more.

        At most ``frames_per_feed`` frames are parsed: see :attr:`more`.
        """
        out: list[tuple[int, bytes]] = []
        self.controls = 0
        if self.error is not None:
            return out
        try:
            self._parse(data, out)
        except FrameError as exc:
            # Without its traceback: the frames it names hold this reader and the read.
            self.error = exc.with_traceback(None)
            self.release()
        return out

    def release(self) -> int:
        """Drop every byte held (partial frames, fragments, unparsed reads): the peer is gone.

        Returns how many bytes that was. Whatever is fed afterwards starts from a clean
        state; a connection that has closed feeds nothing more.
        """
        size = self._have + len(self._held) + sum(map(len, self._fragments or ()))
        self._chunks = []
        self._have = 0
        self._need = 0
        self._held = b""
        self._held_at = 0
        self._fragments = None
        self._fragments_size = 0
        self._utf8 = None
        return size

    def _parse(self, data: bytes, out: list[tuple[int, bytes]]) -> None:
        pos = 0
        if self._held:  # frames a previous feed left for later: take them up first
            if data:
                data = self._held[self._held_at :] + data
            else:
                data, pos = self._held, self._held_at
            self._held = b""
            self._held_at = 0
        elif self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._chunks)
            self._chunks = []
            self._have = 0
        self._need = 0
        end = len(data)
        budget = self._budget
        while end - pos >= 2:
            if budget == 0:
                self._held = data
                self._held_at = pos
                return
            budget -= 1
            first = data[pos]
            second = data[pos + 1]
            if first == _FIN_TEXT and second > _MASKED and self._fragments is None:
                # The frame nearly every client sends: a whole, masked text message under
                # 64 KiB. Checked for what it is in a few steps; anything else (or a frame
                # not all here yet) takes the general path below.
                size = second - _MASKED
                if size < 126:
                    head = pos + 2
                elif size == 126 and end - pos >= 4:
                    size = data[pos + 2] << 8 | data[pos + 3]
                    head = pos + 4
                else:
                    head = 0  # a 64-bit length, or a length not all here yet
                stop = head + 4 + size
                if head and stop <= end and size <= self._max:
                    payload = _unmask(data[head + 4 : stop], data[head : head + 4])
                    if not payload.isascii():
                        _check_text(payload)
                    out.append((TEXT, payload))
                    pos = stop
                    continue
            if not second & 0x80:
                raise FrameError(_PROTOCOL_ERROR, "client frames must be masked")
            if first & 0x70:
                raise FrameError(_PROTOCOL_ERROR, "reserved bits set with no extension agreed")
            size = second & 0x7F
            head = pos + 2
            if size == 126:
                if end - head < 2:
                    break
                size = int.from_bytes(data[head : head + 2], "big")
                head += 2
            elif size == 127:
                if end - head < 8:
                    break
                size = int.from_bytes(data[head : head + 8], "big")
                if size >> 63:
                    raise FrameError(_PROTOCOL_ERROR, "frame length with its top bit set")
                head += 8
            opcode = first & 0x0F
            if opcode == CONTINUATION and self._fragments is not None:
                # A fragment costs its header too, so that empty ones are not free.
                size_charged = size + head + 4 - pos
                if len(self._fragments) >= self._max_fragments:
                    raise FrameError(
                        _TOO_BIG, f"message in more than {self._max_fragments} fragments"
                    )
            else:
                size_charged = size
            if opcode < CLOSE:
                if size_charged + self._fragments_size > self._max:
                    raise FrameError(_TOO_BIG, f"message larger than {self._max} bytes")
            elif size > 125 or not first & 0x80:
                raise FrameError(_PROTOCOL_ERROR, "control frames must be final and short")
            stop = head + 4 + size
            if stop > end:
                self._need = stop - pos
                break
            payload = _unmask(data[head + 4 : stop], data[head : head + 4]) if size else b""
            pos = stop
            if opcode in (TEXT, BINARY):
                if self._fragments is not None:
                    raise FrameError(_PROTOCOL_ERROR, "new message inside a fragmented one")
                if first & 0x80:
                    if opcode == TEXT and not payload.isascii():
                        _check_text(payload)
                    out.append((opcode, payload))
                else:
                    self._fragments = [payload]
                    self._fragments_op = opcode
                    self._fragments_size = size
                    if opcode == TEXT:  # check fragmented text as it comes (RFC 6455, 8.1)
                        self._utf8 = _utf8_decoder()
                        _check_fragment(self._utf8, payload, final=False)
            elif opcode == CONTINUATION:
                fragments = self._fragments
                if fragments is None:
                    raise FrameError(
                        _PROTOCOL_ERROR, "continuation frame with no message to continue"
                    )
                fragments.append(payload)
                self._fragments_size += size_charged
                final = bool(first & 0x80)
                if self._utf8 is not None:
                    _check_fragment(self._utf8, payload, final=final)
                if final:
                    out.append((self._fragments_op, b"".join(fragments)))
                    self._fragments = None
                    self._fragments_size = 0
                    self._utf8 = None
            elif opcode in (CLOSE, PING, PONG):
                if opcode == CLOSE:
                    _check_close(payload)
                out.append((opcode, payload))
                self.controls += 1
            else:
                raise FrameError(_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
        if pos < end:
            rest = data[pos:]
            self._chunks = [rest]
            self._have = len(rest)
