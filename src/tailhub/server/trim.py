"""Give the memory that closed connections freed back to the operating system.

A connection can leave up to ``max_message_size`` of a partial frame behind when it goes.
Python frees those bytes at once, but glibc's allocator keeps freed memory for reuse and
returns it to the system only from the top of its heap, so the hub's RSS would stay at its
peak after a crowd of such connections has gone. When connections have released at least
:data:`THRESHOLD` bytes, one ``malloc_trim(0)`` a second at most hands the free pages back.
On a C library without ``malloc_trim`` (musl, macOS) that part does nothing.

HTTP connections that end leave reference cycles behind (aiohttp's request objects, a refused
request's exception and its traceback), which the hub's tuned garbage collector
(``server/app.py``, ``_tune_gc``) reaches only rarely, so their memory is not even free to
trim. After HTTP connections have ended, the next trim (still at most one a second) runs a
full collection first. Measured on a flood of refused request heads: RSS stayed at 138 MiB
from 62 without it, and came back with it. A collection walks only what was made since
start-up (the rest is frozen): a few milliseconds per thousand connections, and only while
HTTP connections end, which kept-alive clients and WebSockets do not.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from typing import Final

__all__ = ["HTTP_CLOSES", "THRESHOLD", "MemoryTrim"]

THRESHOLD: Final = 1 << 20
"""Bytes released by closed connections that make a trim worth its cost."""
HTTP_CLOSES: Final = 1
"""HTTP connections ended that make a garbage collection before the next trim."""
_DELAY: Final = 1.0


def _find_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class MemoryTrim:
    """Counts what closed connections released; trims once a second at most when worth it."""

    __slots__ = ("_closed", "_released", "_scheduled", "_trim")

    def __init__(self) -> None:
        self._trim = _find_trim()
        self._released = 0
        self._closed = 0
        self._scheduled = False

    def soon(self) -> None:
        """Much was freed at once (history caught up after a backlog): trim within a second."""
        if self._trim is not None and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(_DELAY, self._run)

    def http_closed(self) -> None:
        """An HTTP connection ended; after :data:`HTTP_CLOSES` of them, a collection and a
        trim follow within a second."""
        self._closed += 1
        if self._closed >= HTTP_CLOSES and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(_DELAY, self._run)

    def released(self, size: int) -> None:
        """A connection has let go of ``size`` bytes; a trim follows within a second."""
        if self._trim is None:
            return
        self._released += size
        if self._released >= THRESHOLD and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(_DELAY, self._run)

    def _run(self) -> None:
        self._scheduled = False
        self._released = 0
        if self._closed >= HTTP_CLOSES:
            self._closed = 0
            gc.collect()
        if self._trim is not None:
            self._trim(0)
