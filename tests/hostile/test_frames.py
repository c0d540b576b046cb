"""Hostile WebSocket clients: floods of control frames and fragments, frames left unfinished,
JSON built to hurt the parser, invalid UTF-8, out-of-range publisher ids, and reads that pack
several requests together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import UNIT, client_frame, receive_json
from tests.hostile.harness import (
    CANARY_SECRET,
    CANARY_TOKEN,
    Arena,
    RawSocket,
    frame_head,
    size,
    upgrade_head,
)

pytestmark = pytest.mark.hostile

TEXT, BINARY, CONTINUATION, CLOSE, PING = 1, 2, 0, 8, 9
MiB = 1 << 20


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame with the all-zero mask (the payload is sent as it reads)."""
    return client_frame(opcode, payload, fin=fin, mask=b"\x00\x00\x00\x00")


def publish(container: str, number: int, message: str = "", **extra: object) -> bytes:
    return json.dumps(
        {
            "type": "log",
            "containerID": container,
            "id": number,
            "data": {"level": "info", "message": message or f"{container} {number}"},
            **extra,
        }
    ).encode()


async def authed(arena: Arena) -> RawSocket:
    return await RawSocket.websocket(arena.hub.port, "/", arena.auth)


async def replies(sock: RawSocket, count: int, arena: Arena) -> list[dict[str, Any]]:
    """The next ``count`` text frames as JSON (pings answered); error frames are observed."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        opcode, payload = await sock.frame()
        if opcode == PING:
            await sock.send_frame(10, payload)
            continue
        if opcode == CLOSE:
            raise AssertionError(f"closed after {len(out)} of {count} replies: {payload!r}")
        message = json.loads(payload.decode())
        if message.get("type") == "error":
            arena.observe("error frame", payload)
        out.append(message)
    return out


async def until_acked(
    sock: RawSocket, arena: Arena, container: str, number: int, errors: int = 0
) -> list[dict[str, Any]]:
    """Read replies until ``container``'s ack reaches ``number`` (acks are cumulative and
    may cover several messages) and ``errors`` error replies came; all replies read."""
    seen: list[dict[str, Any]] = []
    while True:
        done = sum(1 for m in seen if m["type"] == "error") >= errors
        if done and any(
            m["type"] == "ack" and m["containerID"] == container and int(m["id"]) >= number
            for m in seen
        ):
            return seen
        seen.extend(await replies(sock, 1, arena))


async def history(arena: Arena, container: str) -> list[dict[str, Any]]:
    """The container's whole history over HTTP, each line decoded as strict UTF-8 JSON."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{arena.hub.http}/api/sessions/{container}/logs", headers=arena.auth
        ) as response,
    ):
        body = await response.read()
    if response.status == 404:
        return []
    assert response.status == 200, body[:300]
    return [json.loads(line.decode("utf-8")) for line in body.splitlines()]


async def strict_replay(arena: Arena, container: str) -> int:
    """Read the container's history as a strict WebSocket client (aiohttp closes on invalid
    UTF-8 in a text frame); the number of messages read."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(arena.hub.url, headers=arena.auth) as ws,
    ):
        await ws.send_json({"type": "subscribe", "containerID": container, "since": 0})
        subscribed = await receive_json(ws)
        assert subscribed["type"] == "subscribed", subscribed
        for _ in range(subscribed["seq"]):
            message = await receive_json(ws)
            assert message["containerID"] == container
        return int(subscribed["seq"])


class TestControlFloods:
    async def test_ping_flood(self, tmp_path: Path) -> None:
        """Pings sent without reading pongs, with and without a token: memory stays bounded
        and the control pair is not disturbed."""
        budget = size(200 * MiB, 2000 * MiB)
        async with Arena(tmp_path, "ping flood", unit="pings") as arena:
            ping = frame(PING, CANARY_SECRET.encode().ljust(125, b"p"))
            batch = ping * 512

            async def flood(sock: RawSocket) -> None:
                sent = 0
                with contextlib.suppress(ConnectionError, TimeoutError):
                    async with asyncio.timeout(size(4, 20) * UNIT):
                        while sent < budget // 2:
                            await sock.send(batch)
                            sent += len(batch)
                            arena.tried += 512
                sock.close()

            token_less = await RawSocket.websocket(arena.hub.port)
            with_token = await authed(arena)
            await asyncio.gather(flood(token_less), flood(with_token))
            await arena.finish(peak_budget=64 * MiB)

    async def test_fragment_flood(self, tmp_path: Path) -> None:
        """Zero-length continuation frames: the message is cut off (no memory or loop time
        without bound) and other clients' latency stays low."""
        async with Arena(tmp_path, "fragment flood", unit="frames") as arena:
            empty = frame(CONTINUATION, b"", fin=False) * 4096
            ended: list[float] = []

            async def flood(sock: RawSocket) -> None:
                began = time.monotonic()
                await sock.send(frame(TEXT, b'{"type":', fin=False))
                with contextlib.suppress(ConnectionError, TimeoutError):
                    async with asyncio.timeout(size(10, 60) * UNIT):
                        while not sock.reader.at_eof():
                            await sock.send(empty)
                            arena.tried += 4096
                ended.append(time.monotonic() - began)
                sock.close()

            mark = len(arena.control.latencies)
            token_less = await RawSocket.websocket(arena.hub.port)
            await asyncio.gather(flood(token_less), flood(await authed(arena)))
            during = arena.control.latencies[mark:] or [0.0]
            arena.figures.notes.append(
                f"closes {arena.closes()} after {[round(t, 1) for t in ended]} s;"
                f" control p50 during the flood {statistics.median(during) * 1000:.1f} ms"
            )
            # Both cut off for their fragments (1009), long before the auth timeout.
            assert arena.closes() == [1009, 1009], arena.closes()
            assert statistics.median(during) < 0.1 * UNIT, during
            await arena.finish(peak_budget=64 * MiB)

    async def test_abandoned_partial_frames(self, tmp_path: Path) -> None:
        """Token-less connections that leave a 1 MiB frame unfinished and go: their memory is
        released when they close, not at some later garbage collection."""
        total = size(150, 3000)
        wave = 50
        async with Arena(tmp_path, "partial frames", unit="connections") as arena:
            head = frame_head(BINARY, MiB - 16)
            payload = os.urandom(MiB - 1024)

            async def abandon() -> None:
                try:
                    sock = await RawSocket.websocket(arena.hub.port)
                except ConnectionError as exc:
                    arena.observe("refusal", str(exc))
                    return
                with contextlib.suppress(ConnectionError):
                    await sock.send(head + payload)
                sock.close()

            for start in range(0, total, wave):
                await asyncio.gather(*(abandon() for _ in range(min(wave, total - start))))
                arena.tried += min(wave, total - start)
            await arena.finish(peak_budget=(wave * 2 + 64) * MiB)


class TestBadInput:
    async def test_deep_nesting(self, tmp_path: Path) -> None:
        """JSON nested 1,000 to 100,000 deep, anywhere in a message, over text and binary
        frames, with and without a token: an error reply, the connection stays usable."""
        depths = [1_000, 10_000, 100_000]
        async with Arena(tmp_path, "deep nesting", unit="messages") as arena:
            sock = await authed(arena)
            number = 0
            for depth in depths:
                deep = b"[" * depth + b"]" * depth
                bodies = [
                    deep,
                    b'{"type":"log","containerID":"deep","data":' + deep + b"}",
                    b'{"type":"log","containerID":"deep","data":{"level":"info","message":"m",'
                    b'"metadata":{"x":' + deep + b"}}}",
                    b'{"type":"subscribe","containerID":' + deep + b"}",
                    b'{"type":"log","containerID":"deep","data":{"level":"info","message":"m"},'
                    b'"unknown":' + deep + b"}",
                    b"{" * depth,
                ]
                for body in bodies:
                    for opcode in (TEXT, BINARY):
                        await sock.send_frame(opcode, body)
                        number += 1
                        await sock.send_frame(TEXT, publish("deep", number))
                        answer, ack = await replies(sock, 2, arena)
                        arena.tried += 1
                        assert answer["type"] == "error", answer
                        assert (ack["type"], ack["id"]) == ("ack", number), ack
                # Without a token, the first message is the attack: refused, closed with 4401.
                lone = await RawSocket.websocket(arena.hub.port)
                await lone.send_frame(TEXT, b'{"type":"auth","token":' + deep + b"}")
                assert await lone.close_code() == 4401
                lone.close()
                arena.tried += 1
            sock.close()
            assert [m["data"]["message"] for m in await history(arena, "deep")] == [
                f"deep {n}" for n in range(1, number + 1)
            ]
            await arena.finish()

    async def test_invalid_utf8(self, tmp_path: Path) -> None:
        """Invalid UTF-8 in binary frames, inside known and unknown fields and keys: refused
        at the door, so the history stays readable by a strict client."""
        bad = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"a\x80b"]
        async with Arena(tmp_path, "invalid UTF-8", unit="messages") as arena:
            viewer_ok = asyncio.Event()

            async def strict_viewer() -> None:
                async with (
                    aiohttp.ClientSession() as session,
                    session.ws_connect(arena.hub.url, headers=arena.auth) as ws,
                ):
                    await ws.send_json({"type": "subscribe", "containerID": "*"})
                    await receive_json(ws)
                    viewer_ok.set()
                    async for msg in ws:
                        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)

            viewer = asyncio.create_task(strict_viewer())
            await asyncio.wait_for(viewer_ok.wait(), 5 * UNIT)
            sock = await authed(arena)
            number = 0
            for raw in bad:
                templates = [
                    b'{"type":"log","containerID":"utf","data":{"level":"info","message":"%s"}}',
                    b'{"type":"log","containerID":"utf","data":{"level":"info","message":"m",'
                    b'"extra":"%s"}}',
                    b'{"type":"log","containerID":"utf","data":{"level":"info","message":"m",'
                    b'"%s":1}}',
                    b'{"type":"log","containerID":"utf","data":{"level":"info","message":"m",'
                    b'"metadata":{"k":["%s"]}}}',
                    b'{"type":"status","containerID":"utf","data":{"status":"running",'
                    b'"message":"%s"}}',
                    b'{"type":"error","containerID":"utf","data":{"error":"e","details":"%s"}}',
                    b'{"type":"log","containerID":"utf%s","data":{"level":"info","message":"m"}}',
                    b'{"type":"log","containerID":"utf","producer":"%s","id":1,'
                    b'"data":{"level":"info","message":"m"}}',
                ]
                for template in templates:
                    await sock.send_frame(BINARY, template % raw)
                    number += 1
                    await sock.send_frame(TEXT, publish("utf", number))
                    answer, ack = await replies(sock, 2, arena)
                    arena.tried += 1
                    assert answer["type"] == "error", (template % raw, answer)
                    assert (ack["type"], ack["id"]) == ("ack", number), ack
            sock.close()
            # An HTTP body with the same bytes: 400, nothing stored.
            async with aiohttp.ClientSession() as session:
                for raw in bad:
                    body = b'{"type":"log","data":{"level":"info","message":"%s"}}' % raw
                    async with session.post(
                        f"{arena.hub.http}/api/sessions/utf/messages",
                        data=body + b"\n" + body.replace(b"message", b"extra"),
                        headers=arena.auth,
                    ) as response:
                        arena.observe("HTTP error body", await response.read())
                        arena.tried += 1
                        assert response.status == 400
            assert not viewer.done(), viewer
            viewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await viewer
            assert await strict_replay(arena, "utf") == number
            await arena.finish()

    async def test_publisher_ids_out_of_range(self, tmp_path: Path) -> None:
        """Ids of 2^63 and more, and 0 or less, are refused with invalid_message; later
        ids of the same producer are stored, and the history has no gap."""
        async with Arena(tmp_path, "publisher ids >= 2^63", unit="messages") as arena:
            sock = await authed(arena)
            wrong = [2**63, 2**63 + 1, 2**64, 2**64 + 5, 10**30, 0, -1, -(2**63) - 1]
            for number in range(1, 6):
                for bad in wrong:
                    await sock.send_frame(TEXT, publish("ids", bad, producer="p"))
                    (answer,) = await replies(sock, 1, arena)
                    arena.tried += 1
                    assert answer["type"] == "error", answer
                    assert answer["data"]["code"] == "invalid_message", answer
                await sock.send_frame(TEXT, publish("ids", number, producer="p"))
                (ack,) = await replies(sock, 1, arena)
                assert (ack["type"], ack["id"]) == ("ack", number), ack
            sock.close()
            stored = await history(arena, "ids")
            assert [m["seq"] for m in stored] == [1, 2, 3, 4, 5]
            await arena.finish()

    async def test_many_requests_in_one_read(self, tmp_path: Path) -> None:
        """Two subscribes, or a subscribe then an unsubscribe, in one read: every backlog is
        whole and fresh, nothing arrives after an unsubscribe, no traceback; publishes before
        a bad frame in the same read are all kept."""
        rounds = size(30, 300)
        backlog = 300
        async with Arena(tmp_path, "several requests in one read", unit="reads") as arena:
            sock = await authed(arena)
            body = b"".join(
                frame(TEXT, publish(f"pack-{c}", n + 1, "x" * 200))
                for c in range(2)
                for n in range(backlog)
            )
            await sock.send(body)
            await until_acked(sock, arena, "pack-1", backlog)
            viewer = await authed(arena)
            for _ in range(rounds):
                sub = {"type": "subscribe", "since": 0}
                await viewer.send(
                    frame(TEXT, json.dumps({**sub, "containerID": "pack-0"}).encode())
                    + frame(TEXT, json.dumps({**sub, "containerID": "pack-0"}).encode())
                    + frame(TEXT, json.dumps({**sub, "containerID": "pack-1"}).encode())
                    + frame(
                        TEXT, json.dumps({"type": "unsubscribe", "containerID": "pack-1"}).encode()
                    )
                    + frame(TEXT, json.dumps({"type": "sessions"}).encode())
                )
                arena.tried += 1
                seen: list[dict[str, Any]] = []
                while not seen or seen[-1].get("type") != "sessions":
                    seen.extend(await replies(viewer, 1, arena))
                # Everything for pack-0 after its last subscribed reply: seq 1.. whole.
                pack0 = [i for i, m in enumerate(seen) if m.get("containerID") == "pack-0"]
                last = max(i for i in pack0 if seen[i]["type"] == "subscribed")
                after = [m["seq"] for m in seen[last + 1 :] if m.get("containerID") == "pack-0"]
                while len(after) < backlog:
                    (more,) = await replies(viewer, 1, arena)
                    assert more.get("containerID") == "pack-0", more
                    after.append(more["seq"])
                assert after == list(range(1, backlog + 1))
                gone = [i for i, m in enumerate(seen) if m.get("type") == "unsubscribed"]
                assert gone, seen[-5:]
                late = [m for m in seen[gone[-1] :] if m.get("containerID") == "pack-1"][1:]
                assert late == [], late[:3]
                await viewer.send(
                    frame(
                        TEXT, json.dumps({"type": "unsubscribe", "containerID": "pack-0"}).encode()
                    )
                )
                (done,) = await replies(viewer, 1, arena)
                assert done["type"] == "unsubscribed", done
            # Publishes, then a frame that hurts, in one read: every publish is acked and kept.
            for number in range(rounds):
                first = backlog + number * 5
                await sock.send(
                    b"".join(frame(TEXT, publish("pack-0", first + k + 1)) for k in range(5))
                    + frame(
                        BINARY,
                        b'{"type":"log","containerID":"pack-0","data":{"level":'
                        b'"info","message":"\xff"}}',
                    )
                    + frame(TEXT, b"[" * 5000 + b"]" * 5000)
                )
                got = await until_acked(sock, arena, "pack-0", first + 5, errors=2)
                assert {m["type"] for m in got} == {"ack", "error"}, got
            stored = await history(arena, "pack-0")
            assert [m["seq"] for m in stored] == list(range(1, backlog + rounds * 5 + 1))
            sock.close()
            viewer.close()
            await arena.finish()

    async def test_token_and_secret_never_echoed(self, tmp_path: Path) -> None:
        """Wrong tokens (the canary secret), tokens with stray bytes, non-UTF-8 tokens, at the
        handshake and in the first message: refused with 401 or 4401, never logged or echoed."""
        async with Arena(tmp_path, "bad tokens over WebSocket", unit="attempts") as arena:
            port = arena.hub.port
            secret = CANARY_SECRET
            paths = [
                f"/?token={secret}",
                f"/?token={CANARY_TOKEN}x",
                f"/?token={secret}%ff%fe",
                f"/ws?token={secret}&token={secret}",
            ]
            for path in paths:
                sock = await RawSocket.connect(port)
                head = await sock.request(upgrade_head(port, path))
                assert head.startswith(b"HTTP/1.1 401"), head
                arena.observe("handshake refusal", head + await sock.reader.read(4096))
                sock.close()
                arena.tried += 1
            for value in (f"Bearer {secret}", f"Bearer {secret}\udcff", "Bearer \udcff\udcfe"):
                sock = await RawSocket.connect(port)
                raw = upgrade_head(port, "/").replace(
                    b"\r\n\r\n",
                    b"\r\nAuthorization: " + value.encode("utf-8", "surrogateescape") + b"\r\n\r\n",
                )
                head = await sock.request(raw)
                assert head.split(b" ")[1] in (b"400", b"401"), head
                arena.observe("handshake refusal", head + await sock.reader.read(4096))
                sock.close()
                arena.tried += 1
            for first in (
                {"type": "auth", "token": secret},
                {"type": "subscribe", "containerID": "x", "auth": {"token": secret}},
                {"type": "log", "containerID": "x", "token": secret, "data": {}},
            ):
                sock = await RawSocket.websocket(port)
                await sock.send_frame(TEXT, json.dumps(first).encode())
                frames = []
                while not frames or frames[-1][0] != CLOSE:
                    frames.append(await sock.frame())
                    arena.observe("first-message refusal", frames[-1][1])
                assert frames[-1][1][:2] == b"\x11\x31", frames
                sock.close()
                arena.tried += 1
            await arena.finish()
