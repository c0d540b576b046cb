"""WebSocket frames the hub writes itself, so that each message is framed once.

Server-to-client frames are not masked (RFC 6455, section 5.1), so every subscriber of a
message can be sent the very same bytes: the hub builds one frame per message and writes it to
each receiver's transport, instead of asking the WebSocket library to frame it again for every
receiver. Everything else (handshake, reading, masking, control frames, close) stays with
aiohttp.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["PING_FRAME", "close_frame", "text_frame"]

_SHORT: Final = struct.Struct("!BB")
_MEDIUM: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")
_FIN_TEXT: Final = 0x81
PING_FRAME: Final = b"\x89\x00"
"""A final, unmasked ping frame with no payload."""


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying ``payload`` (UTF-8 JSON)."""
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_FIN_TEXT, size) + payload
    if size < 65536:
        return _MEDIUM.pack(_FIN_TEXT, 126, size) + payload
    return _LONG.pack(_FIN_TEXT, 127, size) + payload


def close_frame(code: int, reason: str) -> bytes:
    """A close frame with ``code`` and up to 123 bytes of ``reason`` (RFC 6455, 5.5.1)."""
    payload = code.to_bytes(2, "big") + reason.encode()[:123]
    return _SHORT.pack(0x88, len(payload)) + payload
