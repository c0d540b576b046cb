"""Give the memory that closed connections freed back to the operating system.

A connection can leave up to ``max_message_size`` of a partial frame behind when it goes.
Python frees those bytes at once, but glibc's allocator keeps freed memory for reuse and
returns it to the system only from the top of its heap, so the hub's RSS would stay at its
peak after a crowd of such connections has gone. When connections have released at least
:data:`THRESHOLD` bytes, one ``malloc_trim(0)`` a second at most hands the free pages back.
On a C library without ``malloc_trim`` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Final

__all__ = ["THRESHOLD", "MemoryTrim"]

THRESHOLD: Final = 1 << 20
"""Bytes released by closed connections that make a trim worth its cost."""
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

    __slots__ = ("_released", "_scheduled", "_trim")

    def __init__(self) -> None:
        self._trim = _find_trim()
        self._released = 0
        self._scheduled = False

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
        if self._trim is not None:
            self._trim(0)
