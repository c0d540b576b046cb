"""The load generator: one process, pinned to its own core, that drives one server for one run.

It has to be faster than every server it drives, so the per-message work on its side is kept
near zero:

- picows (Cython) clients on uvloop; a subscriber's frame callback does one substring test
  (is this a routed ``log`` message?) and two integer increments;
- a publisher's frames are built and masked once, at set-up, and a refill writes ``n`` of them
  to the socket in one call, so publishing costs one syscall per batch, not one per message.

Load control (the one method used for every throughput scenario): **closed loop with a bounded
window**. Each container keeps at most ``window`` messages in flight, where in flight means
published but not yet delivered to all of its subscribers (counted as deliveries: ``sent *
fanout - delivered``). When half the window has been delivered, the publisher tops it up. The
server therefore always has work queued, yet never more than ``containers * window`` messages,
so what is measured is steady-state throughput, not how big a backlog a server can buffer.

Latency scenarios (C, F) are **open loop**: messages are published at a fixed rate on a 1 ms
tick, each carrying the generator's ``perf_counter_ns`` at the moment of sending; the
subscriber (same process, same clock) subtracts it from its own clock on receipt.

During each measurement window the generator reads the server's CPU time from
``/proc/<pid>/stat`` (the server and its threads and children) and its own from
``time.process_time``: a server near 100 % with a generator well below it shows that the
server, not the generator, is the bottleneck.

Run as ``python -m bench.loadgen '<json spec>'``; it prints one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import quote

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["Spec", "main", "run"]

ROUTED = b'"type":"log"'
"""A routed message: every message the generator publishes is a ``log``; acks, heartbeats and
``subscribed`` replies are not counted."""

ERROR = b'"type":"error"'
"""What the server answers a publisher with when it refuses a message."""

STAMP = b'"message":"bench '
"""Marker in front of the 19-digit send time (``perf_counter_ns``) in every published message."""

_TEXT = WSMsgType.TEXT
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Spec:
    """What one generator run does; built by the runner, passed as JSON."""

    scenario: str
    port: int
    token: str
    server_pid: int
    duration: float
    warmup: float
    containers: int = 1
    fanout: int = 1
    window: int = 16
    rate: float = 0.0
    connections: int = 0
    connect_concurrency: int = 100
    subscribe_port: int = 0  # where subscribers connect (0: ``port``); H's second hub
    extra_pids: tuple[int, ...] = ()  # measured with the server (its redis-server, 2nd hub)
    payload: str = "plain"  # what each message is: one of PAYLOADS


PAYLOADS: Final = ("plain", "agent", "agent-unread")
"""What a publisher sends (:func:`message`)."""

_AGENT_EVENT = (
    b'{"type":"assistant","message":{"id":"msg_01",'
    b'"type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":'
    b'[{"type":"tool_use","id":"toolu_01","name":"Bash","input":{"command":"pytest -q",'
    b'"description":"Run the tests"}}],"stop_reason":null,"usage":{"input_tokens":30,'
    b'"output_tokens":60,"cache_read_input_tokens":1500,"cache_creation_input_tokens":0,'
    b'"service_tier":"standard"}},"parent_tool_use_id":null,"session_id":'
    b'"0f9a4c1e-5b7d-4e2a-9c3b-1d2e3f4a5b6c","uuid":"3f1c0a55-7d0e-4a3e-9c55-8a7b1c2d3e4f"}'
)
_AGENT_SUMMARY = (
    b'{"kind":"claude","model":"claude-sonnet-4-5-20250929","sessionId":'
    b'"0f9a4c1e-5b7d-4e2a-9c3b-1d2e3f4a5b6c","turns":2,"toolCalls":{"Bash":1},"tokens":'
    b'{"input":40,"output":105,"cacheRead":2500,"cacheWrite":500},"costUsd":null,'
    b'"contextPct":null,"contextWindow":null,"activity":"Bash: pytest -q","lastText":'
    b'"I\'ll run the tests first.","result":null}'
)


def _metadata(agent: bytes, summary: bytes, attend: bytes, event: bytes) -> bytes:
    return (
        b',"metadata":{"'
        + agent
        + b'":"claude","'
        + summary
        + b'":'
        + _AGENT_SUMMARY
        + b',"'
        + attend
        + b'":false,"'
        + event
        + b'":'
        + _AGENT_EVENT
        + b"}"
    )


_AGENT_METADATA = {
    # As tailhub run sends a Claude Code tool call: the stream, the session's summary after
    # the event, whether it may change the attention state, the event.
    "agent": _metadata(b"agent", b"agentSummary", b"attend", b"event"),
    # The same bytes under other keys, which the hub does not read: the hub without agents.
    "agent-unread": _metadata(b"Agent", b"AgentSummary", b"Attend", b"Event"),
}


def message(container_id: str, sent_ns: int = 0, payload: str = "plain") -> bytes:
    """A log message stamped with ``sent_ns``.

    ``payload``: ``plain``, a small log as in PROTOCOL.md (about 120 bytes); ``agent``, a log
    as ``tailhub run`` publishes a Claude Code tool call (about 1,000 bytes: a one-line
    description, and in ``metadata`` the session's summary and the event); ``agent-unread``,
    the same bytes with the metadata's keys capitalised, so that the hub reads nothing of it.
    """
    if payload != "plain":
        return (
            b'{"type":"log","containerID":"'
            + container_id.encode()
            + b'","data":{"level":"info","message":"bench '
            + b"%019d" % sent_ns
            + b' Bash: pytest -q"'
            + _AGENT_METADATA[payload]
            + b"}}"
        )
    return (
        b'{"type":"log","containerID":"'
        + container_id.encode()
        + b'","data":{"level":"info","message":"bench '
        + b"%019d" % sent_ns
        + b' Repository cloned successfully"}}'
    )


def masked_text_frame(payload: bytes, key: bytes) -> bytes:
    """A complete client-to-server text frame (FIN, masked with ``key``) for ``payload``."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x81, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + length.to_bytes(8, "big")
    stream = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(
        length, "big"
    )
    return header + key + masked


# --------------------------------------------------------------------------- measurement


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    index = 0
    while index < len(pids):
        current = pids[index]
        index += 1
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pids.extend(int(child) for child in handle.read().split())
    return pids


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants (threads are included)."""
    total = 0
    for each in _process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{each}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


def server_wait_seconds(pid: int) -> float:
    """Time the threads of ``pid`` and its descendants spent runnable but waiting for a CPU.

    From ``/proc/<pid>/task/<tid>/schedstat`` (second field, ns). CPU time plus this wait is
    the time the server had work to do: when it is close to the whole window, the server was
    never idle waiting for the load generator, whatever share of the core it was given.
    """
    total = 0
    for each in _process_tree(pid):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{each}/task"):
                with open(f"/proc/{each}/task/{task}/schedstat") as handle:
                    total += int(handle.read().split()[1])
    return total / 1e9


def server_rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and its descendants, from ``/proc/<pid>/status``."""
    total = 0
    for each in _process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{each}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


class CpuMeter:
    """CPU use of the server and of this generator over one measurement window.

    The server is ``server_pid`` and its descendants, with the processes ``extra_pids`` (and
    theirs): the redis-server of a hub on Redis, the second hub of a pair.
    """

    def __init__(self, server_pid: int, extra_pids: tuple[int, ...] = ()) -> None:
        self.pids = (server_pid, *extra_pids)
        self.start()

    def _cpu(self, pids: tuple[int, ...] | None = None) -> float:
        return sum(server_cpu_seconds(pid) for pid in (self.pids if pids is None else pids))

    def _wait(self) -> float:
        return sum(server_wait_seconds(pid) for pid in self.pids)

    def start(self) -> None:
        self.wall = time.perf_counter()
        self.server = self._cpu()
        self.companions = self._cpu(self.pids[1:])
        self.server_wait = self._wait()
        self.own = time.process_time()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        cpu = (self._cpu() - self.server) / wall
        wait = (self._wait() - self.server_wait) / wall
        return {
            "seconds": wall,
            "server_cpu": cpu,
            # Of server_cpu, the share of the extra processes (redis-server, a second hub).
            "companion_cpu": (self._cpu(self.pids[1:]) - self.companions) / wall,
            "server_wait": wait,
            "server_busy": cpu + wait,
            "generator_cpu": (time.process_time() - self.own) / wall,
        }


# --------------------------------------------------------------------------- clients


class Stream:
    """One container: its publisher, its subscribers, and the closed-loop window."""

    __slots__ = (
        "container_id",
        "delivered",
        "fanout",
        "frame",
        "refill_at",
        "sent",
        "window",
        "writer",
    )

    def __init__(self, container_id: str, fanout: int, window: int, payload: str) -> None:
        self.container_id = container_id
        self.fanout = fanout
        self.window = window
        self.sent = 0
        self.delivered = 0
        self.refill_at = 1 << 62
        self.frame = masked_text_frame(message(container_id, 0, payload), os.urandom(4))
        self.writer: Callable[[bytes], object] | None = None

    def refill(self) -> None:
        """Top the window up: publish as many messages as are missing, in one write."""
        in_flight = -(-(self.sent * self.fanout - self.delivered) // self.fanout)
        missing = self.window - in_flight
        if missing > 0 and self.writer is not None:
            self.writer(self.frame * missing)
            self.sent += missing
        self.refill_at = (self.sent - self.window // 2) * self.fanout


class RawClient(asyncio.Protocol):
    """A WebSocket client with no per-message work: handshake, then count markers in bytes.

    After the upgrade it never parses a frame: each chunk the socket delivers is searched,
    in C, for ``marker`` (``bytes.count``), joined to the last ``len(marker) - 1`` bytes of
    the chunk before, so that a marker split across two reads is counted once. Server frames
    are unmasked, so the marker is visible as is. When ``stream`` is set, each count is
    credited to it and may top up its window.

    Pings are not answered: every run is shorter than a hub's ping round.
    """

    def __init__(self, request: bytes, marker: bytes, stream: Stream | None = None) -> None:
        self.request = request
        self.marker = marker
        self.overlap = len(marker) - 1
        self.stream = stream
        self.count = 0
        self.tail = b""
        self.head = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Without this, Nagle's algorithm holds a publisher's next batch until the
            # server's delayed ACK (up to 40 ms), since the server never writes back to it.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head[: self.head.find(b"\r\n")]
            data = self.head[end + 4 :]
            self.head = b""
            if b" 101 " not in status + b" ":
                self.ready.set_exception(ConnectionError(f"handshake refused: {status!r}"))
                if self.transport is not None:
                    self.transport.close()
                return
            self.upgraded = True
            self.ready.set_result(None)
            if not data:
                return
        # A marker found in ``tail + data`` ends inside ``data`` (``tail`` is too short to
        # hold one), so none is counted twice, and none that straddles the reads is missed.
        joined = self.tail + data
        found = joined.count(self.marker)
        self.tail = joined[-self.overlap :]
        if found:
            self.count += found
            stream = self.stream
            if stream is None:
                self.last = joined[-300:]
            else:
                stream.delivered += found
                if stream.delivered >= stream.refill_at:
                    stream.refill()


class Timer(WSListener):
    """A subscriber that records publish-to-deliver latency of each routed message."""

    def __init__(self, samples: list[int]) -> None:
        super().__init__()
        self.samples = samples
        self.count = 0
        self.since = 1 << 62
        self.until = 1 << 62

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        now = time.perf_counter_ns()
        payload = frame.get_payload_as_bytes()
        at = payload.find(STAMP)
        if at < 0:
            return
        self.count += 1
        start = at + len(STAMP)
        sent = int(payload[start : start + 19])
        if self.since <= sent < self.until:
            self.samples.append(now - sent)


class Publisher(WSListener):
    """A container connection of the latency scenarios; counts the errors it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.errors = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if ERROR in frame.get_payload_as_bytes():
            self.errors += 1


class Clients:
    """Every connection a run opened, with bounded concurrency while opening them."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.transports: list[WSTransport] = []
        self.raw: list[RawClient] = []
        self.gate = asyncio.Semaphore(spec.connect_concurrency)

    def target(self, container_id: str | None = None) -> str:
        target = f"/?token={quote(self.spec.token)}"
        if container_id is not None:
            target += f"&containerID={quote(container_id, safe='*')}"
        return target

    def url(self, container_id: str | None = None, port: int | None = None) -> str:
        return f"ws://127.0.0.1:{port or self.spec.port}{self.target(container_id)}"

    async def open_raw(
        self, marker: bytes, container_id: str | None = None, stream: Stream | None = None
    ) -> RawClient:
        """Open a :class:`RawClient` connection and wait (bounded) for its upgrade."""
        key = base64.b64encode(os.urandom(16))
        request = (
            f"GET {self.target(container_id)} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.spec.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        client = RawClient(request, marker, stream)
        async with self.gate:
            loop = asyncio.get_running_loop()
            await loop.create_connection(lambda: client, "127.0.0.1", self.spec.port)
            await asyncio.wait_for(asyncio.shield(client.ready), 30)
        self.raw.append(client)
        return client

    async def open(
        self, listener: WSListener, container_id: str | None = None, port: int | None = None
    ) -> WSTransport:
        async with self.gate:
            transport, _ = await ws_connect(
                lambda: listener,
                self.url(container_id, port),
                websocket_handshake_timeout=30,
                use_aiofastnet=False,
            )
        self.transports.append(transport)
        return transport

    async def close(self) -> None:
        for transport in self.transports:
            with contextlib.suppress(Exception):
                transport.disconnect()
        for client in self.raw:
            if client.transport is not None:
                client.transport.close()
        await asyncio.sleep(0.05)


async def _poll(condition: Callable[[], bool], seconds: float, step: float = 0.01) -> bool:
    """Check ``condition`` every ``step`` seconds, for at most ``seconds``; its last value."""
    for _ in range(max(1, round(seconds / step))):
        if condition():
            return True
        await asyncio.sleep(step)
    return condition()


def _percentiles(samples: list[int]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "p999_ms": float("nan")}
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "p999_ms": at(0.999), "max_ms": at(1.0)}


# --------------------------------------------------------------------------- scenarios


async def closed_loop(spec: Spec, clients: Clients) -> dict[str, Any]:
    """Throughput: ``containers`` publishers, ``fanout`` subscribers each, bounded window.

    Measures routed deliveries per second over the window, after every subscriber has been
    seen to receive messages and a warm-up at full load has passed.
    """
    streams = [
        Stream(f"c{i}", spec.fanout, spec.window, spec.payload) for i in range(spec.containers)
    ]
    counters = await asyncio.gather(
        *(
            clients.open_raw(ROUTED, stream.container_id, stream)
            for stream in streams
            for _ in range(spec.fanout)
        )
    )
    publishers = await asyncio.gather(*(clients.open_raw(ERROR) for _ in streams))
    for stream, publisher in zip(streams, publishers, strict=True):
        assert publisher.transport is not None
        stream.writer = publisher.transport.write

    # Subscriptions are live only, and a server may register one a little after the handshake:
    # publish one message at a time until every subscriber has seen one, then open the window.
    def probe() -> bool:
        if all(counter.count for counter in counters):
            return True
        for stream in streams:
            stream.refill_at = 1 << 62
            if stream.writer is not None:
                stream.writer(stream.frame)
                stream.sent += 1
        return False

    if not await _poll(probe, 30, step=0.05):
        raise TimeoutError("not every subscriber received a message within 30 s")
    for stream in streams:
        stream.refill()
    await asyncio.sleep(spec.warmup)

    meter = CpuMeter(spec.server_pid, tuple(spec.extra_pids))
    before = sum(stream.delivered for stream in streams)
    await asyncio.sleep(spec.duration)
    after = sum(stream.delivered for stream in streams)
    usage = meter.stop()
    for stream in streams:
        stream.writer = None
    delivered = after - before
    # Every message published must reach every subscriber exactly once: let the last window
    # drain and check the books, which also proves the byte-level counting exact.
    await _poll(lambda: all(s.delivered >= s.sent * s.fanout for s in streams), 5)
    errors = [p for p in publishers if p.count]
    return {
        "deliveries_per_s": delivered / usage["seconds"],
        # The server's CPU per delivery holds even where the generator, not the server, was
        # the wall (the fastest peers on a two-core machine): 1e6 / it is the server's rate
        # on a whole core.
        "server_us_per_delivery": (
            usage["server_cpu"] * usage["seconds"] / delivered * 1e6 if delivered else float("nan")
        ),
        # Of that, the extra processes' part (a hub on Redis: its redis-server's).
        "companion_us_per_delivery": (
            usage["companion_cpu"] * usage["seconds"] / delivered * 1e6
            if delivered
            else float("nan")
        ),
        "messages_per_s": delivered / spec.fanout / usage["seconds"],
        "undelivered": sum(s.sent * s.fanout - s.delivered for s in streams),
        "errors": sum(p.count for p in errors),
        "last_error": errors[0].last.decode(errors="replace") if errors else "",
        **usage,
    }


async def open_loop(spec: Spec, clients: Clients) -> dict[str, Any]:
    """Latency: publish ``rate`` messages/s in total, round-robin over ``containers``.

    ``fanout`` subscribers per container (scenario C), or, with ``fanout == 0``, one
    dashboard subscribed to ``*`` (scenario F). Records publish-to-deliver time of every
    message published during the window, waits for the stragglers, and reports percentiles,
    the delivered rate and how many deliveries did not arrive.
    """
    samples: list[int] = []
    ids = [f"c{i}" for i in range(spec.containers)]
    if spec.fanout:
        timers = [Timer(samples) for _ in ids for _ in range(spec.fanout)]
        targets = [ids[i // spec.fanout] for i in range(len(timers))]
    else:
        timers = [Timer(samples)]
        targets = ["*"]
    # Subscribers on the hub ``subscribe_port`` names (H: another process than the publishers').
    where = spec.subscribe_port or spec.port
    await asyncio.gather(*(clients.open(t, c, where) for t, c in zip(timers, targets, strict=True)))
    publishers = [Publisher() for _ in ids]
    transports = await asyncio.gather(*(clients.open(p) for p in publishers))
    fanout = spec.fanout or 1

    state = {"sent": 0, "stop": False}

    async def pace() -> None:
        start = time.perf_counter()
        sent = 0
        index = 0
        limit = max(1, int(spec.rate * 0.05))  # never more than 50 ms worth in one tick
        while not state["stop"]:
            due = min(limit, int((time.perf_counter() - start) * spec.rate) - sent)
            for _ in range(due):
                transports[index].send(
                    _TEXT, message(ids[index], time.perf_counter_ns(), spec.payload)
                )
                index = (index + 1) % len(ids)
            sent += max(due, 0)
            state["sent"] = sent
            await asyncio.sleep(0.001)

    pacer = asyncio.ensure_future(pace())
    try:
        if not await _poll(lambda: all(timer.count for timer in timers), 30):
            raise TimeoutError("not every subscriber received a message within 30 s")
        await asyncio.sleep(spec.warmup)
        meter = CpuMeter(spec.server_pid, tuple(spec.extra_pids))
        since = time.perf_counter_ns()
        for timer in timers:
            timer.since = since
        sent_before = state["sent"]
        received_before = sum(timer.count for timer in timers)
        await asyncio.sleep(spec.duration)
        until = time.perf_counter_ns()
        received = sum(timer.count for timer in timers) - received_before
        sent = state["sent"] - sent_before
        usage = meter.stop()
        # Messages sent after the window are not sampled; stragglers from it still are.
        for timer in timers:
            timer.until = until
        expected = sent * fanout
        await _poll(lambda: len(samples) >= expected, 1.0)
    finally:
        state["stop"] = True
        await pacer
    return {
        **_percentiles(samples),
        "published_per_s": sent / usage["seconds"],
        "deliveries_per_s": received / usage["seconds"],
        "samples": len(samples),
        "missing": max(0, expected - len(samples)),
        "errors": sum(p.errors for p in publishers),
        **usage,
    }


async def idle(spec: Spec, clients: Clients) -> dict[str, Any]:
    """Memory: the server's RSS growth per idle subscribed connection.

    Opens 100 connections first (so start-up allocations and lazy imports are not counted),
    reads the server's RSS, opens ``connections`` more, each subscribed by its URL to its own
    container, waits for RSS to settle, and reports the delta divided by the count.
    """
    await asyncio.gather(*(clients.open_raw(ROUTED, f"warm-{i}") for i in range(100)))
    await asyncio.sleep(0.5)
    baseline = server_rss_bytes(spec.server_pid)
    started = time.perf_counter()
    await asyncio.gather(*(clients.open_raw(ROUTED, f"idle-{i}") for i in range(spec.connections)))
    connect_seconds = time.perf_counter() - started
    readings = [server_rss_bytes(spec.server_pid)]

    def settled() -> bool:
        readings.append(server_rss_bytes(spec.server_pid))
        return abs(readings[-1] - readings[-2]) <= readings[-1] * 0.002

    await _poll(settled, 5.0, step=0.25)
    rss = readings[-1]
    open_now = sum(
        1 for c in clients.raw if c.transport is not None and not c.transport.is_closing()
    )
    if open_now < spec.connections + 100:
        raise RuntimeError(f"only {open_now} of {spec.connections + 100} connections stayed open")
    return {
        "bytes_per_connection": (rss - baseline) / spec.connections,
        "kb_per_connection": (rss - baseline) / spec.connections / 1024,
        "rss_baseline": baseline,
        "rss_loaded": rss,
        "connections_per_s": spec.connections / connect_seconds,
    }


SCENARIOS: dict[str, Callable[[Spec, Clients], Awaitable[dict[str, Any]]]] = {
    "closed_loop": closed_loop,
    "open_loop": open_loop,
    "idle": idle,
}


async def run(spec: Spec, kind: str) -> dict[str, Any]:
    """Open the connections ``spec`` asks for, drive the server, and close everything."""
    clients = Clients(spec)
    try:
        return await SCENARIOS[kind](spec, clients)
    finally:
        await clients.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m bench.loadgen '{"kind": ..., "spec": {...}}'``."""
    raw = json.loads((argv or sys.argv[1:])[0])
    spec = Spec(**raw["spec"])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    result = uvloop.run(run(spec, raw["kind"]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
