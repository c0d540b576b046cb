"""Hostile WebSocket clients against a real hub: what they make it hold, and what others feel.

Usage::

    python -m bench.ws_floods [--src DIR] [--only NAME ...] [--aiohttp]

Starts ``tailhub serve`` (from this checkout, or from the ``src`` directory of another one
given as ``--src``, to compare revisions) on a free loopback port with in-memory history, and
runs each attack against it, printing the hub's RSS (``/proc/PID/status``) before, at the
peak and after (with ``--aiohttp``, each WebSocket is opened after a first HTTP request on
its connection, so that aiohttp's reader serves it rather than the hub's own transport):

- ``pings``: 4 token-less clients send 125-byte pings for 5 s and never read;
- ``fragments``: 4 token-less clients send one fragmented message of empty continuation
  frames for 8 s;
- ``partial``: 300 token-less clients each send 1 MiB less 1 byte of a 1 MiB frame, then close;
- ``starve``: one client floods ``{}`` messages (each answered with an error, which it reads)
  for 5 s while another measures the round trip of a ``sessions`` request every 20 ms (p50
  and p99, and with no flood first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

TOKEN = "bench-token-0123456789"
AIOHTTP = False
"""Upgrade on a kept-alive HTTP connection, so that aiohttp's WebSocket reader serves it."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    return head + b"\x00\x00\x00\x00" + payload  # a zero mask: the payload as it is


class Hub:
    def __init__(self, src: Path | None) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ws-floods-"))
        env = dict(os.environ)
        env.update(
            PORT=str(self.port),
            HOST="127.0.0.1",
            AUTH_TOKEN=TOKEN,
            TAILHUB_DATA_DIR=str(self.dir),
            TAILHUB_HISTORY="memory",
            TAILHUB_AUTH_TIMEOUT="60000",
            LOG_LEVEL="warn",
        )
        if src is not None:
            env["PYTHONPATH"] = str(src)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tailhub", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "hub.log").open("wb"),
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the hub did not start")

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


async def _open(
    port: int, token: bool = False
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket on a new connection; after a first HTTP request with ``--aiohttp``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if AIOHTTP:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    path = f"/?token={TOKEN}" if token else "/"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def _flood(
    port: int,
    first: bytes,
    unit: bytes,
    seconds: float,
    clients: int,
    *,
    token: bool = False,
    reads: bool = False,
) -> None:
    """``clients`` connections that send ``first``, then ``unit`` over and over.

    With ``reads`` each also reads (and drops) what the hub answers, as a client that keeps
    up would, so that it is not closed as a slow reader.
    """

    async def drain(reader: asyncio.StreamReader) -> None:
        while await reader.read(1 << 16):
            pass

    async def one() -> None:
        reader, writer = await _open(port, token)
        drainer = asyncio.ensure_future(drain(reader)) if reads else None
        writer.write(first)
        chunk = unit * max(1, 65536 // len(unit))
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), max(0.01, end - time.monotonic()))
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.transport.abort()
            if drainer is not None:
                drainer.cancel()

    await asyncio.gather(*(one() for _ in range(clients)))


async def _peak(hub: Hub, attack: Awaitable[None]) -> int:
    peak = hub.rss()
    task = asyncio.ensure_future(attack)
    while not task.done():
        peak = max(peak, hub.rss())
        await asyncio.sleep(0.05)
    await task
    return peak


async def _settle(hub: Hub) -> int:
    """RSS once the attack's connections are gone (and a second more)."""
    await asyncio.sleep(2.5)
    return hub.rss()


async def pings(hub: Hub) -> str:
    before = hub.rss()
    peak = await _peak(hub, _flood(hub.port, b"", _frame(0x9, b"x" * 125), 5.0, 4))
    return _mb(before, peak, await _settle(hub))


async def fragments(hub: Hub) -> str:
    before = hub.rss()
    first = _frame(0x1, b"[", fin=False)
    peak = await _peak(hub, _flood(hub.port, first, _frame(0x0, b"", fin=False), 8.0, 4))
    return _mb(before, peak, await _settle(hub))


async def partial(hub: Hub) -> str:
    before = hub.rss()
    size = 1 << 20
    head = bytes([0x82, 0x80 | 127]) + size.to_bytes(8, "big") + b"\x00\x00\x00\x00"
    writers = []
    for _ in range(300):
        _reader, writer = await _open(hub.port)
        writer.write(head + bytes(size - 1))
        writers.append(writer)
    for writer in writers:
        await writer.drain()
    await asyncio.sleep(1.0)
    peak = hub.rss()
    for writer in writers:
        writer.close()
    return _mb(before, peak, await _settle(hub))


async def starve(hub: Hub) -> str:
    reader, writer = await _open(hub.port, token=True)
    request = _frame(0x1, json.dumps({"type": "sessions"}).encode())

    async def probe(seconds: float) -> list[float]:
        times = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.monotonic()
            writer.write(request)
            while True:
                head = await reader.readexactly(2)
                size = head[1] & 0x7F
                if size == 126:
                    size = int.from_bytes(await reader.readexactly(2), "big")
                elif size == 127:
                    size = int.from_bytes(await reader.readexactly(8), "big")
                payload = await reader.readexactly(size)
                if b'"sessions"' in payload:
                    break
            times.append(time.monotonic() - start)
            await asyncio.sleep(0.02)
        return times

    quiet = await probe(2.0)
    # Empty JSON objects: each is read, decoded and answered (invalid_message).
    flood = _flood(hub.port, b"", _frame(0x1, b"{}"), 5.0, 1, token=True, reads=True)
    loud, _ = await asyncio.gather(probe(5.0), flood)
    writer.close()
    return (
        f"quiet p50 {_ms(quiet, 50)} p99 {_ms(quiet, 99)}; "
        f"flooded p50 {_ms(loud, 50)} p99 {_ms(loud, 99)}"
    )


def _ms(times: list[float], pct: int) -> str:
    if not times:
        return "n/a"
    cut = statistics.quantiles(times, n=100)[pct - 1] if len(times) > 1 else times[0]
    return f"{cut * 1000:.1f} ms"


def _mb(before: int, peak: int, after: int) -> str:
    return f"RSS before {before >> 20} MB, peak {peak >> 20} MB, after {after >> 20} MB"


ATTACKS: dict[str, Callable[[Hub], Awaitable[str]]] = {
    "pings": pings,
    "fragments": fragments,
    "partial": partial,
    "starve": starve,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, help="the src directory of the hub to attack")
    parser.add_argument("--only", nargs="*", choices=sorted(ATTACKS), default=sorted(ATTACKS))
    parser.add_argument(
        "--aiohttp", action="store_true", help="attack the transport of kept-alive upgrades"
    )
    args = parser.parse_args()
    global AIOHTTP
    AIOHTTP = args.aiohttp
    for name in args.only:
        hub = Hub(args.src)
        try:
            print(f"{name:10} {asyncio.run(ATTACKS[name](hub))}", flush=True)
        finally:
            hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
