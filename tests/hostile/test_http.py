"""Hostile HTTP clients and connection-level attacks: header floods, slowloris, connection
floods, idle keep-alives, followers that stop reading, requests built to make the parser or
the handlers fail, and publish bodies large enough to stall the loop."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import statistics
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import UNIT, client_frame, wait_for
from tests.hostile.harness import (
    CANARY_SECRET,
    CANARY_TOKEN,
    Arena,
    RawSocket,
    size,
    upgrade_head,
)

pytestmark = pytest.mark.hostile

MiB = 1 << 20
TEXT = 1


def head(method: str, path: str, *lines: str, port: int = 0) -> bytes:
    rows = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *lines]
    return ("\r\n".join(rows) + "\r\n\r\n").encode()


async def attacker(port: int, number: int) -> RawSocket:
    """A socket from another loopback address (127.0.0.2 and up), as another host would be."""
    address = f"127.0.{(number >> 8) % 250}.{2 + number % 250}"
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(address, 0), limit=1 << 22
    )
    return RawSocket(reader, writer)


async def response(sock: RawSocket, timeout: float = 10 * UNIT) -> tuple[int, bytes]:
    """Status and everything the hub sent until it closed or paused (at most 64 KiB)."""
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(timeout):
            data = await sock.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in data.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            data += await sock.reader.readexactly(length)
    status = int(data.split(b" ")[1]) if data.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")) else 0
    return status, data


class TestHeadsAndConnections:
    async def test_header_flood(self, tmp_path: Path) -> None:
        """Thousands of headers, a 1 MiB header, a 10 MiB head that never ends, on the API
        and on WebSocket upgrades: refused with 4xx or cut off, memory back where it was."""
        count = size(40, 400)
        async with Arena(tmp_path, "header flood", unit="requests") as arena:
            port = arena.hub.port
            many = [f"X-Flood-{i}: {CANARY_SECRET}" for i in range(10_000)]
            attacks = [
                head("GET", "/api/sessions", *many, port=port),
                head("GET", "/api/sessions", "X-Big: " + CANARY_SECRET * (MiB // 36), port=port),
                upgrade_head(port, "/", {f"X-Flood-{i}": CANARY_SECRET for i in range(5_000)}),
                head("GET", "/api/sessions", *many, port=port)[:-4] * 10,
            ]
            statuses: list[int] = []

            async def one(number: int) -> None:
                sock = await attacker(port, number)
                with contextlib.suppress(ConnectionError):
                    await sock.send(attacks[number % len(attacks)])
                status, body = await response(sock)
                arena.observe("header flood answer", body)
                statuses.append(status)
                assert await sock.closed_by_hub(), "the hub kept a flooding connection open"
                sock.close()

            for start in range(0, count, 20):
                await asyncio.gather(*(one(n) for n in range(start, min(count, start + 20))))
                arena.tried = len(statuses)
            assert all(s == 0 or 400 <= s < 500 for s in statuses), statuses
            # Each refused head is dropped at once (at most --max-head and one read held).
            await arena.finish(peak_budget=32 * MiB)

    async def test_slowloris(self, tmp_path: Path) -> None:
        """Sockets sending request heads, second request heads and bodies a byte at a time:
        each is cut off by its timeout, and other clients are served all along."""
        count = size(60, 500)
        timeout_ms = size(1500, 5000)
        env = {
            "TAILHUB_AUTH_TIMEOUT": str(timeout_ms),
            "TAILHUB_KEEPALIVE_TIMEOUT": str(timeout_ms),
            "TAILHUB_BODY_TIMEOUT": str(timeout_ms),
        }
        async with Arena(tmp_path, "slowloris", unit="sockets", env=env) as arena:
            port = arena.hub.port
            lasted: list[float] = []
            first = head("GET", "/api/sessions", f"X-Secret: {CANARY_SECRET}", port=port)
            complete = head("GET", "/healthz", port=port)
            post = head(
                "POST",
                "/api/sessions/slow/messages",
                f"Authorization: Bearer {CANARY_TOKEN}",
                "Content-Length: 100000",
                port=port,
            )

            async def trickle(number: int) -> None:
                sock = await attacker(port, number)
                kind = number % 4
                if kind == 2:  # a complete request, then the second one slowly
                    await sock.send(complete)
                    await response(sock)
                    slow = first
                elif kind == 3:  # a complete head, then the body slowly
                    await sock.send(post)
                    slow = b"x" * 100_000
                else:
                    slow = first
                began = time.monotonic()
                with contextlib.suppress(ConnectionError):
                    for byte in slow:
                        if sock.reader.at_eof():
                            break
                        sock.writer.write(bytes([byte]))
                        await sock.writer.drain()
                        await asyncio.sleep(0.05)
                # The hub may answer (408, 400) before it closes: read to the end.
                closed = await sock.closed_by_hub(timeout_ms / 1000 * 3 + 5 * UNIT)
                lasted.append(time.monotonic() - began)
                arena.tried += 1
                assert closed, f"slow socket {number} (kind {kind}) still open"
                sock.close()

            attack = asyncio.gather(*(trickle(n) for n in range(count)))
            # Meanwhile, clients that behave are served at once (asked from a thread: this
            # loop is busy with the attackers).
            for _ in range(5):
                status = await asyncio.to_thread(_get, f"{arena.hub.http}/healthz")
                assert status == 200
                await asyncio.sleep(timeout_ms / 5000)
            await attack
            arena.figures.notes.append(
                f"slow sockets lasted {min(lasted):.1f}-{max(lasted):.1f} s"
                f" (timeouts {timeout_ms} ms)"
            )
            assert max(lasted) < timeout_ms / 1000 * 2 + 3 * UNIT, lasted
            await arena.finish()

    async def test_connection_flood(self, tmp_path: Path) -> None:
        """Token-less WebSockets beyond --max-connections, and idle HTTP keep-alives: clients
        with the token still connect, and the squatters are closed by their timeouts."""
        squatters = size(300, 3000)
        idle = size(200, 1500)
        limit = size(100, 1000)
        env = {"TAILHUB_AUTH_TIMEOUT": "3000", "TAILHUB_KEEPALIVE_TIMEOUT": "3000"}
        args = ["--max-connections", str(limit)]
        async with Arena(tmp_path, "connection flood", unit="sockets", env=env, args=args) as arena:
            port = arena.hub.port
            held: list[RawSocket] = []

            refused = 0

            async def squat(number: int) -> None:
                nonlocal refused
                sock = await attacker(port, number)
                try:
                    answer = await sock.request(upgrade_head(port, "/"))
                except (asyncio.IncompleteReadError, ConnectionError):
                    answer = b""  # refused before an answer: over a budget
                arena.observe("squatter answer", answer)
                if not answer.startswith(b"HTTP/1.1 101"):
                    refused += 1
                held.append(sock)

            async def keep_alive(number: int) -> None:
                sock = await attacker(port, squatters + number)
                await sock.send(head("GET", "/healthz", port=port))
                status, _ = await response(sock)
                assert status == 200
                held.append(sock)

            for start in range(0, squatters, 100):
                end = min(squatters, start + 100)
                await asyncio.gather(*(squat(n) for n in range(start, end)))
            for start in range(0, idle, 100):
                await asyncio.gather(*(keep_alive(n) for n in range(start, min(idle, start + 100))))
            arena.tried = squatters + idle
            arena.figures.notes.append(f"{refused} of {squatters} token-less upgrades refused")
            # Every client with the token gets in and is served.
            async with aiohttp.ClientSession() as session:
                for number in range(20):
                    async with session.ws_connect(arena.hub.url, headers=arena.auth) as ws:
                        await ws.send_json(
                            {
                                "type": "log",
                                "containerID": "legit",
                                "id": number + 1,
                                "data": {"level": "info", "message": "in"},
                            }
                        )
                        ack = json.loads((await ws.receive(timeout=5 * UNIT)).data)
                        assert ack["type"] == "ack", ack
            closed = await asyncio.gather(*(s.closed_by_hub(20 * UNIT) for s in held))
            assert all(closed), f"{closed.count(False)} of {len(held)} idle sockets still open"
            for sock in held:
                sock.close()
            await arena.finish()

    async def test_abandoned_followers(self, tmp_path: Path) -> None:
        """HTTP followers (NDJSON and SSE) that stop reading while a container publishes
        fast: each is cut off once it is --max-queue behind, as a WebSocket reader is."""
        followers = size(10, 30)
        megabytes = size(40, 160)
        async with Arena(tmp_path, "abandoned follow and SSE", unit="followers") as arena:
            port = arena.hub.port
            socks = []
            for number in range(followers):
                sse = number % 2 == 1
                sock = await attacker(port, number)
                sock.writer.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
                )
                lines = [f"Authorization: Bearer {CANARY_TOKEN}"]
                if sse:
                    lines.append("Accept: text/event-stream")
                await sock.send(head("GET", "/api/sessions/flood/logs?follow=1", *lines, port=port))
                socks.append(sock)
            publisher = await RawSocket.websocket(port, "/", arena.auth)
            chunk = json.dumps(
                {
                    "type": "log",
                    "containerID": "flood",
                    "data": {"level": "info", "message": "f" * 60_000},
                }
            ).encode()
            frames = client_frame(TEXT, chunk, mask=b"\x00\x00\x00\x00") * 16
            sent = 0
            # Publish until every follower has been cut off (or the budget is spent).
            while sent < megabytes * MiB and await arena.connections() > 3:
                await publisher.send(frames)
                sent += len(frames)
            arena.tried = followers
            arena.figures.notes.append(f"published {sent >> 20} MiB")
            publisher.close()
            await arena.quiet(20 * UNIT)
            assert await arena.connections() <= 2, "followers still open"
            for sock in socks:
                sock.close()
            # Each follower holds at most --max-queue (8 MiB) and the 256 KiB its handler
            # takes at a time; history's lag (at most 64 MiB, and a 4 MiB transaction's two
            # copies) is held once, with room for the reads in flight.
            await arena.finish(peak_budget=(followers * 12 + 128) * MiB)

    async def test_abandoned_catch_up(self, tmp_path: Path) -> None:
        """A WebSocket reader that asks for a large backlog and never reads is closed as a
        slow reader (4429), not by liveness (4408)."""
        env = {"HEARTBEAT_INTERVAL": "1000"}
        async with Arena(tmp_path, "abandoned catch-up", unit="readers", env=env) as arena:
            port = arena.hub.port
            publisher = await RawSocket.websocket(port, "/", arena.auth)
            message = {"type": "log", "containerID": "big", "id": 0, "data": {}}
            for number in range(1, 201):
                message["id"] = number
                message["data"] = {"level": "info", "message": "b" * 60_000}
                await publisher.send(
                    client_frame(TEXT, json.dumps(message).encode(), mask=b"\x00" * 4)
                )
            # Wait for the last ack: the backlog is stored.
            while True:
                opcode, payload = await publisher.frame()
                if opcode == TEXT and json.loads(payload).get("id") == 200:
                    break
            publisher.close()
            codes = []
            for _ in range(size(1, 10)):
                reader = await RawSocket.websocket(port, "/", arena.auth)
                reader.writer.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
                )
                await reader.send(
                    client_frame(
                        TEXT,
                        json.dumps(
                            {"type": "subscribe", "containerID": "big", "since": 0}
                        ).encode(),
                        mask=b"\x00" * 4,
                    )
                )
                # Never reading: the hub must give up on it, and say why in its log.
                await wait_for(lambda: _closed(arena, len(codes) + 1), 20 * UNIT)
                codes.append(_close_codes(arena)[-1])
                reader.close()
                arena.tried += 1
            assert codes == [4429] * len(codes), codes
            await arena.finish()


class TestRequests:
    async def test_bad_requests(self, tmp_path: Path) -> None:
        """Request lines and headers that break the parser (with the token in them), values
        that are not numbers or not UTF-8, JSON nested deep: a 4xx with the API's error body,
        never a 500, a traceback or an echo of the request."""
        async with Arena(tmp_path, "bad HTTP requests", unit="requests") as arena:
            port = arena.hub.port
            token = CANARY_TOKEN
            bearer = f"Authorization: Bearer {token}"
            deep = b"[" * 100_000 + b"]" * 100_000
            bodies = [
                deep,
                b'{"type":"log","data":' + deep + b"}",
                b'{"type":"log","data":{"level":"info","message":"x","metadata":' + deep + b"}}",
                b"{" * 50_000,
                b'{"type":"log","data":{"level":"info","message":"\xff\xfe"}}',
                b'{"type":"log","data":{"level":"info","message":"x","\xc3":1}}',
                b'{"type":"log","data":{"level":"info","message":"' + CANARY_SECRET.encode() + b"",
                b'{"type":"log","id":9223372036854775808,"data":{"level":"info","message":"x"}}',
            ]
            raw: list[tuple[bytes, set[int]]] = [
                # The token plus a stray byte: the parser's error must not echo or log it.
                (f"GET /api/sessions?token={token}\x01 HTTP/1.1\r\n\r\n".encode(), {400}),
                (f"GET /?token={token}\x00x HTTP/1.1\r\n\r\n".encode(), {400}),
                (f"GET /api/sessions?token={token} HTTP/1.1\r\nBad\x01: x\r\n\r\n".encode(), {400}),
                (f"GET /api/sessions?token={token} HTTP/9.9\r\n\r\n".encode(), {400, 505}),
                (head("GET", "/api/sessions", f"{bearer}\x7f", port=port), {400, 401}),
                (f"G\x00T /api/sessions?token={token} HTTP/1.1\r\n\r\n".encode(), {400, 405, 501}),
                (
                    head(
                        "GET",
                        "/api/sessions",
                        "Authorization: Bearer \udcff\udcfe".encode(
                            "utf-8", "surrogateescape"
                        ).decode("latin-1"),
                        port=port,
                    ),
                    {400, 401},
                ),
                (
                    b"GET /api/sessions HTTP/1.1\r\nAuthorization: Bearer \xff\xfe"
                    + token.encode()
                    + b"\r\n\r\n",
                    {400, 401},
                ),
                (b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer \xc3\r\n\r\n", {400, 401}),
                (
                    head(
                        "GET",
                        "/api/sessions/x/logs?since=\xc2\xb2".encode().decode("latin-1"),
                        bearer,
                        port=port,
                    ),
                    {400},
                ),
            ]
            # Requests the API's handlers answer: with the API's JSON error body.
            api: list[tuple[bytes, set[int]]] = [
                (head("GET", "/api/sessions/x/logs?since=%C2%B2", bearer, port=port), {400}),
                (head("GET", "/api/sessions/x/logs?tail=%C2%B2", bearer, port=port), {400}),
                (head("GET", "/api/sessions/x/logs?since=-1", bearer, port=port), {400}),
                (head("GET", "/api/sessions/x/logs?since=1e999", bearer, port=port), {400}),
                (
                    head(
                        "GET",
                        "/api/sessions/x/logs?tail=99999999999999999999999999",
                        bearer,
                        port=port,
                    ),
                    {400},
                ),
                (head("GET", "/api/sessions/x/logs?from=%C2%B2", bearer, port=port), {400}),
                (
                    head(
                        "GET",
                        "/api/sessions/x/logs",
                        bearer,
                        "Accept: text/event-stream",
                        "Last-Event-ID: \xb2",
                        port=port,
                    ),
                    {400},
                ),
                (
                    head(
                        "GET",
                        "/api/sessions/x/logs",
                        bearer,
                        "Accept: text/event-stream",
                        "Last-Event-ID: \xc2\xb2",
                        port=port,
                    ),
                    {400},
                ),
                (
                    head("GET", "/api/sessions/x%ff/logs", bearer, port=port),
                    {400, 404},
                ),
                (head("GET", f"/api/sessions?token={CANARY_SECRET}", port=port), {401}),
                (head("GET", f"/metrics?token={CANARY_SECRET}", port=port), {401}),
                (
                    head("GET", "/metrics", f"Authorization: Bearer {CANARY_SECRET}", port=port),
                    {401},
                ),
            ]
            for body in bodies:
                for kind in ("application/json", "application/x-ndjson"):
                    api.append(
                        (
                            head(
                                "POST",
                                "/api/sessions/bad/messages",
                                bearer,
                                f"Content-Type: {kind}",
                                f"Content-Length: {len(body)}",
                                port=port,
                            )
                            + body,
                            {400, 413},
                        )
                    )
            failures = []
            for request, expected in [*raw, *api]:
                sock = await RawSocket.connect(port)
                with contextlib.suppress(ConnectionError):
                    await sock.send(request)
                status, answer = await response(sock)
                arena.observe("HTTP error answer", answer)
                arena.tried += 1
                if status not in expected:
                    failures.append((request[:120], status, answer[:300]))
                elif (request, expected) in api:
                    try:
                        error = json.loads(answer.split(b"\r\n\r\n", 1)[1])
                    except ValueError:
                        error = {}
                    if not isinstance(error, dict) or error.get("type") != "error":
                        failures.append((request[:120], status, b"no JSON error: " + answer[:300]))
                sock.close()
            assert not failures, failures
            assert (await _logs_status(arena, "bad")) == 404, "a refused body was stored"
            await arena.finish()

    async def test_big_ndjson_posts(self, tmp_path: Path) -> None:
        """4 MiB NDJSON publishes do not stall the loop: the control pair's latency stays
        low while they are decoded."""
        posts = size(4, 30)

        def body(text: int) -> bytes:
            line = json.dumps({"type": "log", "data": {"level": "info", "message": "n" * text}})
            return ("\n".join([line] * (4 * MiB // (len(line) + 1) - 1)) + "\n").encode()

        # Lines of 450 bytes (about 9,300 in 4 MiB) and of 100 (about 33,000: too many).
        bodies = [body(400), body(50)]
        async with Arena(tmp_path, "4 MiB NDJSON posts", unit="posts") as arena:
            mark = len(arena.control.latencies)
            statuses = []
            async with aiohttp.ClientSession() as session:
                for number in range(posts):
                    async with session.post(
                        f"{arena.hub.http}/api/sessions/bulk/messages",
                        data=io.BytesIO(bodies[number % 2]),
                        headers={**arena.auth, "Content-Type": "application/x-ndjson"},
                    ) as answer:
                        statuses.append(answer.status)
                        if answer.status != 200:
                            arena.observe("HTTP error body", await answer.read())
                        else:
                            await answer.read()
                    arena.tried += 1
            during = arena.control.latencies[mark:]
            arena.figures.notes.append(
                f"control latency during posts: p50 {statistics.median(during) * 1000:.1f} ms,"
                f" max {max(during) * 1000:.1f} ms"
            )
            assert set(statuses) <= {200, 413, 429}, statuses
            assert 200 in statuses, statuses
            assert max(during) < 0.25 * UNIT, f"the loop stalled {max(during):.2f} s"
            await arena.finish(peak_budget=256 * MiB)


def _get(url: str) -> int:
    """The status of a GET, from a plain blocking client."""
    with urllib.request.urlopen(url, timeout=2 * UNIT) as answer:
        return int(answer.status)


def _close_codes(arena: Arena) -> list[int | None]:
    """The close codes of the connections the hub logged as closed, oldest first."""
    return [e.get("code") for e in arena.hub.log_events() if e.get("event") == "connection_closed"]


async def _closed(arena: Arena, count: int) -> bool:
    return len(_close_codes(arena)) >= count and await arena.connections() <= 2


async def _logs_status(arena: Arena, container: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{arena.hub.http}/api/sessions/{container}/logs", headers=arena.auth) as r,
    ):
        return r.status
