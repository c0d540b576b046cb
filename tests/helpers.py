"""Shared test helpers: a real hub process on a free port, and waiting without fixed sleeps.

Every timeout in the tests is a multiple of ``UNIT`` (seconds), scaled by the environment
variable ``TAILHUB_TEST_TIMEOUT_FACTOR`` for slow machines.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt

UNIT = 1.0 * float(os.environ.get("TAILHUB_TEST_TIMEOUT_FACTOR", "1"))
TOKEN = "test-token-0123456789"
CANARY_SECRET = "canary-jwt-secret-5f0c1d2e3b4a69788796a5b4c3d2e1f0"
"""Every hub a test starts signs scoped tokens with this secret (unless the test sets its
own): it must never appear in a hub's log, which :meth:`HubProcess.stop` checks."""


def make_token(
    role: str,
    *containers: str,
    ttl: float = 600,
    secret: str = CANARY_SECRET,
    **extra: Any,
) -> str:
    """A scoped token signed as the test hubs' secret signs them, valid for ``ttl`` seconds
    (a fresh random ``jti`` unless ``extra`` names one)."""
    now = int(time.time())
    claims = {
        "role": role,
        "containers": list(containers),
        "iat": now,
        "exp": now + ttl,
        "sub": f"{role}-test",
        "jti": uuid.uuid4().hex,
        **extra,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HubProcess:
    """A ``tailhub serve`` child process on a free loopback port, with its own data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        token: str | None = TOKEN,
        port: int | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.token = token
        self.port = port or free_port()
        self.extra_env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "hub.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, **query: str) -> str:
        params = {"token": self.token or "", **query} if self.token else dict(query)
        text = "&".join(f"{k}={v}" for k, v in params.items())
        return self.url + ("?" + text if text else "")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tailhub", "serve", *self.args]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN", "PORT", "HOST")}
        env.update(
            PORT=str(self.port),
            HOST="127.0.0.1",
            TAILHUB_DATA_DIR=str(self.data_dir),
            LOG_LEVEL=env.get("TAILHUB_TEST_LOG_LEVEL", "info"),
            TAILHUB_TOKEN_SECRET=CANARY_SECRET,
        )
        if self.token:
            env["AUTH_TOKEN"] = self.token
        env.update(self.extra_env)
        return env

    def start(self) -> HubProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(), env=self.environment(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 20 * UNIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"hub did not start listening: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the hub; its exit status. Fails if its log ever held the canary secret."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout=20 * UNIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        assert CANARY_SECRET not in self.log(), "the token secret was written to the hub's log"
        return status

    def wait(self) -> int:
        """Wait for the process to exit by itself; its exit status."""
        assert self.proc is not None
        return self.proc.wait(timeout=20 * UNIT)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> HubProcess:
        self.kill()
        return self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events


def raw_websocket(port: int, path: str) -> socket.socket:
    """A WebSocket opened by hand on a plain socket, for a client that then never reads."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10 * UNIT)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode(errors="replace"))
    except BaseException:
        sock.close()
        raise
    return sock


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None
) -> bytes:
    """A frame as a client sends it: masked with ``mask`` (random by default)."""
    key = os.urandom(4) if mask is None else mask
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return head + key + masked


def increasing(seqs: list[int]) -> bool:
    """Whether ``seqs`` rise strictly: what holds across a hub crash.

    A hub SIGKILLed may have shown seqs it had not yet stored; it continues past every seq it
    could have shown (and changes the container's epoch), so seqs are gapless between
    crashes and strictly increasing always.
    """
    return all(a < b for a, b in itertools.pairwise(seqs))


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5 * UNIT
) -> None:
    """Poll ``predicate`` until it is true (for state with no event to await)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


async def receive_json(
    ws: aiohttp.ClientWebSocketResponse,
    timeout: float = 5 * UNIT,
    *,
    skip: tuple[str, ...] = ("attention",),
) -> Any:
    """The next text message as JSON, passing over hub messages of the types in ``skip``
    (the ``attention`` pushes, which interleave with a container's messages); fails on close
    or timeout."""
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(
                f"expected a text frame, got {msg.type!r} {msg.data!r} {msg.extra!r}"
            )
        message = json.loads(msg.data)
        if not (isinstance(message, dict) and message.get("type") in skip):
            return message


async def receive_type(
    ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5 * UNIT
) -> Any:
    """The next message of type ``kind``, skipping others."""
    while True:
        message = await receive_json(ws, timeout, skip=())
        if message.get("type") == kind:
            return message
