"""The arena every hostile test runs in: a real hub, a control pair, and the figures.

An :class:`Arena` starts a ``tailhub serve`` child process whose token is the canary token,
runs a control publisher and subscriber beside the attack (in a thread with its own event
loop, so an attack that keeps the test's loop busy cannot slow the control pair down), and at
the end checks and records what the attack did to the hub:

- crashes: the hub process exited by itself;
- tracebacks: ``Traceback`` anywhere in the hub's log;
- lost: control messages the hub acked that the control subscriber or the history did not
  get, in order and gapless;
- RSS: resident memory before the attack, its peak during the attack, and after the attack's
  connections are gone (waited for, never slept for: the hub's open file descriptors and its
  ``tailhub_connections`` gauge back to where they were);
- canary leaks: the canary token or the canary secret in the hub's log, in ``/metrics``, in
  the dashboard's HTML, or in any error body or error frame an attack observed.

Sizes: each attack has a bounded size, run by every ``pytest``, and a full size chosen with
``TAILHUB_HOSTILE_FULL=1`` (``scripts/hostile``). The figures of each attack are written to
``test-output/hostile/<attack>.json``; ``python -m tests.hostile.report`` prints the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import statistics
import struct
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from tests.helpers import UNIT, HubProcess, client_frame, wait_for

__all__ = [
    "CANARY_SECRET",
    "CANARY_TOKEN",
    "FULL",
    "OUTPUT",
    "Arena",
    "Control",
    "Figures",
    "RawSocket",
    "frame_head",
    "metric",
    "record",
    "size",
    "upgrade_head",
]

FULL = os.environ.get("TAILHUB_HOSTILE_FULL", "") not in ("", "0")
"""Run each attack at its full size (``scripts/hostile``) rather than the bounded CI size."""

OUTPUT = Path(
    os.environ.get(
        "TAILHUB_HOSTILE_OUTPUT", Path(__file__).resolve().parents[2] / "test-output" / "hostile"
    )
)

CANARY_TOKEN = "canarytoken" + secrets.token_hex(12)
"""The hub's own token in every hostile test: it must never be written anywhere it shows."""
CANARY_SECRET = "canarysecret" + secrets.token_hex(12)
"""A string attackers send as wrong tokens and inside bad input: it must never be echoed."""

RSS_GROWTH = 0.20
"""After an attack the hub's RSS must be back within this fraction of where it started."""
RSS_SETTLE = 5 * UNIT
"""Seconds the hub has, once the attack's connections are gone, to give memory back."""


def size(ci: int, full: int) -> int:
    """The attack's size: ``full`` under ``TAILHUB_HOSTILE_FULL=1``, else ``ci``."""
    return full if FULL else ci


def proc_status(pid: int, key: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak(pid: int) -> None:
    """Start the process' ``VmHWM`` (peak RSS) again from its current RSS (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample ``name`` in Prometheus text; 0 when absent."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


class RawSocket:
    """A client socket driven by hand: request heads, frames, and reading what comes back.

    Every one still open when its arena ends is closed then (an attack that fails half-way
    leaves no socket for the garbage collector to warn about)."""

    open: ClassVar[set[RawSocket]] = set()

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        RawSocket.open.add(self)

    @classmethod
    async def connect(cls, port: int) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        return cls(reader, writer)

    @classmethod
    async def websocket(
        cls, port: int, path: str = "/", headers: dict[str, str] | None = None
    ) -> RawSocket:
        """A socket upgraded to a WebSocket (the hub answered 101), else ConnectionError."""
        sock = await cls.connect(port)
        try:
            head = await sock.request(upgrade_head(port, path, headers))
        except BaseException:
            sock.close()
            raise
        if not head.startswith(b"HTTP/1.1 101"):
            sock.close()
            raise ConnectionError(head.decode(errors="replace"))
        return sock

    async def request(self, head: bytes) -> bytes:
        """Send ``head`` and read the response head (up to the blank line)."""
        self.writer.write(head)
        await self.writer.drain()
        return await self.reader.readuntil(b"\r\n\r\n")

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        await self.send(client_frame(opcode, payload, fin=fin, mask=b"\x00\x00\x00\x00"))

    async def frame(self, timeout: float = 5 * UNIT) -> tuple[int, bytes]:
        """The next frame from the hub: (opcode, payload); EOF raises IncompleteReadError."""
        async with asyncio.timeout(timeout):
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)

    async def close_code(self, timeout: float = 10 * UNIT) -> int | None:
        """Read until the hub's close frame: its code, or None if the socket just ended or
        nothing came within ``timeout``."""
        try:
            while True:
                opcode, payload = await self.frame(timeout)
                if opcode == 8:
                    return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else 1005
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return None

    async def closed_by_hub(self, timeout: float = 10 * UNIT) -> bool:
        """Read and drop everything until the hub ends the connection (True), or time out."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(1 << 16):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.transport.abort()
        RawSocket.open.discard(self)

    @classmethod
    def close_all(cls) -> None:
        for sock in list(cls.open):
            sock.close()


def frame_head(opcode: int, length: int, *, fin: bool = True) -> bytes:
    """The head of a client frame of ``length`` bytes, masked with the all-zero key (so the
    payload that follows is sent as it reads)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return struct.pack("!BB", first, 0x80 | length) + bytes(4)
    if length < 65536:
        return struct.pack("!BBH", first, 0x80 | 126, length) + bytes(4)
    return struct.pack("!BBQ", first, 0x80 | 127, length) + bytes(4)


def upgrade_head(port: int, path: str = "/", headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class ControlFigures:
    acked: int = 0
    received: int = 0
    in_history: int = 0
    refused: int = 0
    disconnects: int = 0
    latency_p50_ms: float = 0.0
    latency_max_ms: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(0, self.acked - self.received) + max(0, self.acked - self.in_history)


class Control:
    """A publisher and a subscriber of container ``control``, beside the attack.

    The publisher sends ``control N`` with producer id N, one at a time, and waits for its
    ack before the next (so the order is the send order even when the hub refuses one with
    ``unavailable`` and it is sent again). The subscriber checks that every message arrives
    once, in order, with a gapless ``seq``. Reconnects are counted; with ``restarts`` allowed
    (a test that kills the hub) both reconnect and resume as the SDK does, a message seen
    live before a crash may come again, and ``seq`` need only rise (the hub never reuses a
    seq it may have shown); without, a lost connection is a problem.
    """

    CONTAINER = "control"

    def __init__(self, hub: HubProcess, *, interval: float = 0.02, restarts: bool = False):
        self.hub = hub
        self.interval = interval
        self.restarts = restarts
        self.figures = ControlFigures()
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._progress = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-control", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(20 * UNIT):
            raise AssertionError(f"control pair did not start: {self.figures.problems}")

    def mark(self) -> int:
        """Messages received so far (the attack's figures start here)."""
        return self.figures.received

    def wait_received(self, count: int, timeout: float = 20 * UNIT) -> None:
        """Block until the subscriber has received ``count`` messages."""
        deadline = time.monotonic() + timeout
        while self.figures.received < count:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(
                    f"control pair stalled at {self.figures.received} of {count}: "
                    f"{self.figures.problems}"
                )
            time.sleep(0.01)

    def stop(self) -> ControlFigures:
        """Stop publishing, let the subscriber catch up with every acked message, and check
        the container's history over HTTP."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60 * UNIT)
        if self._thread.is_alive():
            self.figures.problems.append("control pair did not stop")
        figures = self.figures
        if self.latencies:
            ordered = sorted(self.latencies)
            figures.latency_p50_ms = round(statistics.median(ordered) * 1000, 1)
            figures.latency_max_ms = round(ordered[-1] * 1000, 1)
        return figures

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:
            self.figures.problems.append(f"control pair failed: {exc!r}")
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._progress = asyncio.Event()
        subscribed = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            subscriber = asyncio.create_task(self._subscribe(session, subscribed))
            try:
                async with asyncio.timeout(20 * UNIT):
                    await subscribed.wait()
            except TimeoutError:
                self.figures.problems.append("control subscriber never subscribed")
                subscriber.cancel()
                return
            publisher = asyncio.create_task(self._publish(session))
            await self._stop.wait()
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20 * UNIT):
                    while self.figures.received < self.figures.acked and not subscriber.done():
                        self._progress.clear()
                        await self._progress.wait()
            subscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await subscriber
            await self._check_history(session)

    async def _connect(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        deadline = time.monotonic() + 30 * UNIT
        while True:
            try:
                return await session.ws_connect(
                    self.hub.url,
                    headers={"Authorization": f"Bearer {self.hub.token}"},
                    heartbeat=None,
                    autoping=True,
                    max_msg_size=0,
                )
            except (aiohttp.ClientError, OSError):
                if not self.restarts or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def _lost_connection(self, who: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.figures.disconnects += 1
        if not self.restarts:
            self.figures.problems.append(f"control {who} lost its connection ({ws.close_code})")
            raise ConnectionError(who)

    async def _subscribe(self, session: aiohttp.ClientSession, subscribed: asyncio.Event) -> None:
        last = 0  # the last seq received
        while True:
            ws = await self._connect(session)
            await ws.send_json({"type": "subscribe", "containerID": self.CONTAINER, "since": last})
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                message = json.loads(msg.data)
                kind = message.get("type")
                if kind == "subscribed":
                    subscribed.set()
                    self._ready.set()
                    continue
                if kind != "log":
                    self.figures.problems.append(f"control subscriber got {msg.data[:200]}")
                    continue
                seq = message.get("seq")
                text = message.get("data", {}).get("message")
                number = self.figures.received + 1
                if self.restarts and _earlier(text, number):
                    # Seen live before a crash, not committed, sent again by the publisher
                    # and stored once: a repeat after a restart is what the hub promises.
                    continue
                # Gapless; across a hub crash strictly increasing (the hub never reuses a seq
                # it may have shown, and moves the container to a new epoch).
                in_order = seq == last + 1 or (
                    self.restarts and isinstance(seq, int) and seq > last
                )
                if not in_order or text != f"control {number}":
                    self.figures.problems.append(
                        f"control subscriber after seq {last} (control {number - 1}) got"
                        f" seq {seq} {text!r}"
                    )
                    if isinstance(seq, int):
                        last = max(last, seq)
                    continue
                last = seq
                self.figures.received = number
                self._progress.set()
                sent = self.sent_at.get(number)
                if sent is not None:
                    self.latencies.append(time.monotonic() - sent)
            self._progress.set()
            self._lost_connection("subscriber", ws)

    async def _publish(self, session: aiohttp.ClientSession) -> None:
        ws = await self._connect(session)
        number = 1
        while True:
            frame = {
                "type": "log",
                "containerID": self.CONTAINER,
                "id": number,
                "producer": "control",
                "data": {"level": "info", "message": f"control {number}"},
            }
            self.sent_at.setdefault(number, time.monotonic())
            try:
                await ws.send_json(frame)
                answer = await self._answer(ws, number)
            except (ConnectionError, aiohttp.ClientError):
                answer = None
            if answer is None:
                self._lost_connection("publisher", ws)
                ws = await self._connect(session)
                continue
            if answer == "unavailable":
                self.figures.refused += 1
                await asyncio.sleep(0.1)
                continue
            self.figures.acked = number
            number += 1
            await asyncio.sleep(self.interval)

    async def _answer(self, ws: aiohttp.ClientWebSocketResponse, number: int) -> str | None:
        """``ack`` or ``unavailable`` for message ``number``; None if the connection ended."""
        while True:
            msg = await ws.receive(timeout=60 * UNIT)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return None
            message = json.loads(msg.data)
            if message.get("id") != number:
                continue
            if message.get("type") == "ack":
                return "ack"
            code = message.get("data", {}).get("code")
            if code == "unavailable":
                return "unavailable"
            self.figures.problems.append(f"control publisher refused: {msg.data[:200]}")
            return "unavailable"

    async def _check_history(self, session: aiohttp.ClientSession) -> None:
        url = f"{self.hub.http}/api/sessions/{self.CONTAINER}/logs"
        headers = {"Authorization": f"Bearer {self.hub.token}"}
        try:
            async with session.get(url, headers=headers) as response:
                body = await response.read()
        except aiohttp.ClientError as exc:
            self.figures.problems.append(f"control history unreadable: {exc!r}")
            return
        count = last = 0
        for line in body.splitlines():
            message = json.loads(line)
            seq = message["seq"]
            in_order = seq == last + 1 or (self.restarts and seq > last)
            if not in_order or message["data"]["message"] != f"control {count + 1}":
                self.figures.problems.append(f"control history out of order at {line[:200]!r}")
                break
            count, last = count + 1, seq
        self.figures.in_history = count


def _earlier(text: object, number: int) -> bool:
    """Whether ``text`` is ``control N`` for an N before ``number``."""
    match = re.fullmatch(r"control (\d+)", text) if isinstance(text, str) else None
    return match is not None and int(match.group(1)) < number


@dataclass
class Figures:
    """What one attack did to the hub (one row of the table)."""

    attack: str
    mode: str
    tried: int = 0
    unit: str = ""
    crashes: int = 0
    tracebacks: int = 0
    lost: int = 0
    canary_leaks: int = 0
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    seconds: float = 0.0
    control: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    passed: bool = False


class Arena:
    """A hub under attack, with its control pair and its figures.

    Use as ``async with Arena(tmp_path, "name") as arena:``; the attack adds to
    ``arena.tried``, hands every error body or error frame it receives to
    :meth:`observe`, and ends with ``await arena.finish()``, which waits for the attack's
    connections to be gone, records the figures and asserts the hub held.
    """

    def __init__(
        self,
        tmp_path: Path,
        attack: str,
        *,
        unit: str = "",
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        data_dir: Path | None = None,
        restarts: bool = False,
    ) -> None:
        self.hub = HubProcess(data_dir or tmp_path / "hub", token=CANARY_TOKEN, env=env, args=args)
        self.hub.log_path = tmp_path / "hub.log"
        self.figures = Figures(attack=attack, mode="full" if FULL else "ci", unit=unit)
        self.control = Control(self.hub, restarts=restarts)
        self.restarts = restarts
        self.observed: list[tuple[str, bytes]] = []
        self._started = 0.0
        self._fds = 0
        self._finished = False

    @property
    def tried(self) -> int:
        return self.figures.tried

    @tried.setter
    def tried(self, value: int) -> None:
        self.figures.tried = value

    @property
    def pid(self) -> int:
        assert self.hub.proc is not None
        return self.hub.proc.pid

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {CANARY_TOKEN}"}

    async def __aenter__(self) -> Arena:
        await asyncio.to_thread(self.hub.start)
        try:
            await asyncio.to_thread(self.control.start)
            # Some traffic before the baseline, so what the control pair allocates is in it.
            await asyncio.to_thread(self.control.wait_received, 20)
            await self.settle_baseline()
        except BaseException:
            await self._teardown()
            raise
        return self

    async def settle_baseline(self) -> None:
        """Take the before figures: RSS, open files; and reset the peak RSS."""
        self.figures.rss_before = proc_status(self.pid, "VmRSS")
        self._fds = open_fds(self.pid)
        reset_peak(self.pid)
        self._started = time.monotonic()

    async def __aexit__(self, *exc: object) -> None:
        if not self._finished:
            self.figures.notes.append(f"test failed before its end: {exc[1]!r}"[:500])
            with contextlib.suppress(Exception):
                self._collect(await asyncio.to_thread(self.control.stop), "")
            self._write()
        await self._teardown()

    async def _teardown(self) -> None:
        RawSocket.close_all()
        await asyncio.to_thread(self.control.stop)
        if self.hub.proc is not None and self.hub.proc.poll() is None:
            await asyncio.to_thread(self.hub.stop)

    def observe(self, what: str, data: bytes | str) -> None:
        """Keep an error body, error frame or page for the canary check."""
        self.observed.append((what, data.encode() if isinstance(data, str) else data))

    def closes(self) -> list[int | None]:
        """Close codes of the connections the hub has logged as closed, oldest first, apart
        from the control pair's (the first two): what the hub sent, whether or not the client
        could read it (a socket closed with unread input is reset, which can drop the close
        frame on its way)."""
        return [
            event.get("code")
            for event in self.hub.log_events()
            if event.get("event") == "connection_closed" and event.get("conn") not in (1, 2)
        ]

    def alive(self) -> bool:
        return self.hub.proc is not None and self.hub.proc.poll() is None

    async def metrics(self) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.hub.http}/metrics", headers=self.auth) as response,
        ):
            return await response.text()

    async def connections(self) -> float:
        return metric(await self.metrics(), "tailhub_connections")

    async def quiet(self, timeout: float = 30 * UNIT) -> None:
        """Wait until the attack's connections are gone: only the control pair's remain
        (``tailhub_connections``) and the hub holds no more files than before."""

        async def gone() -> bool:
            if not self.alive():
                return True
            return open_fds(self.pid) <= self._fds and await self.connections() <= 2

        try:
            await wait_for(gone, timeout)
        except TimeoutError:
            self.figures.notes.append(
                f"attack connections not all closed after {timeout:.0f} s: "
                f"{open_fds(self.pid)} files (before {self._fds}), "
                f"{await self.connections()} connections"
            )

    async def finish(
        self,
        *,
        peak_budget: int | None = None,
        quiet_timeout: float = 30 * UNIT,
    ) -> Figures:
        """Wait for the attack's connections to be gone, take the figures, write them, and
        assert: no crash, no traceback, nothing lost, no canary leak, RSS back within
        :data:`RSS_GROWTH` (20%) of where it started, and (with ``peak_budget``) its peak at
        most that many bytes above the start."""
        self._finished = True
        if self.alive():
            await self.quiet(quiet_timeout)
        html = b""
        if self.alive():
            self.figures.rss_peak = proc_status(self.pid, "VmHWM")
            # The hub gives freed memory back within a second or so of the last connection
            # going (server/trim.py): wait for that, at most RSS_SETTLE seconds.
            bound = self.figures.rss_before * (1 + RSS_GROWTH)
            with contextlib.suppress(TimeoutError):
                await wait_for(lambda: proc_status(self.pid, "VmRSS") <= bound, RSS_SETTLE)
            self.figures.rss_after = proc_status(self.pid, "VmRSS")
            self.observe("/metrics", await self.metrics())
            async with aiohttp.ClientSession() as session:
                for path in ("/", "/readyz", "/healthz", "/openapi.json"):
                    async with session.get(f"{self.hub.http}{path}?token={CANARY_TOKEN}") as page:
                        html += await page.read()
        control = await asyncio.to_thread(self.control.stop)
        self._collect(control, html)
        self._write()
        figures = self.figures
        assert not figures.crashes, f"the hub exited: {self.hub.log()[-3000:]}"
        assert not figures.tracebacks, f"tracebacks in the hub's log: {self._tracebacks()[:3]}"
        assert not control.problems, f"control pair: {control.problems[:5]}"
        assert not figures.lost, f"control messages lost: {control}"
        assert not figures.canary_leaks, f"canary leaked: {figures.notes}"
        assert not [n for n in figures.notes if n.startswith("attack connections")], figures.notes
        bound = figures.rss_before * (1 + RSS_GROWTH)
        assert figures.rss_after <= bound, (
            f"RSS {figures.rss_before >> 20} MiB before, {figures.rss_after >> 20} MiB after"
        )
        if peak_budget is not None:
            assert figures.rss_peak - figures.rss_before <= peak_budget, (
                f"RSS peaked at {figures.rss_peak >> 20} MiB from {figures.rss_before >> 20} MiB"
                f" (budget {peak_budget >> 20} MiB)"
            )
        figures.passed = True
        self._write()
        return figures

    def _tracebacks(self) -> list[str]:
        log = self.hub.log()
        return [line[:300] for line in log.splitlines() if "Traceback" in line]

    def _collect(self, control: ControlFigures, html: bytes | str) -> None:
        figures = self.figures
        figures.seconds = round(time.monotonic() - self._started, 1)
        figures.crashes = 0 if self.alive() else 1
        figures.tracebacks = len(self._tracebacks())
        figures.lost = control.lost
        figures.control = {**asdict(control), "lost": control.lost}
        log = self.hub.log().encode()
        places = [("hub log", log), ("pages", html if isinstance(html, bytes) else html.encode())]
        places += self.observed
        leaks = 0
        for where, data in places:
            for canary in (CANARY_TOKEN, CANARY_SECRET):
                if canary.encode() in data:
                    leaks += 1
                    kind = "token" if canary == CANARY_TOKEN else "secret"
                    at = data.index(canary.encode())
                    shown = data[max(0, at - 150) : at + 50].decode(errors="replace")
                    figures.notes.append(f"canary {kind} in {where}: ...{shown}")
        figures.canary_leaks = leaks

    def _write(self) -> None:
        record(self.figures)


def record(figures: Figures) -> None:
    """Write one attack's figures to ``test-output/hostile/<attack>.json``."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z0-9]+", "-", figures.attack.lower()).strip("-")
    (OUTPUT / f"{name}.json").write_text(json.dumps(asdict(figures), indent=1) + "\n")
