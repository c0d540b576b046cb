"""Fuzzed messages: every message type, well-formed or not, mutated at the byte level or
plain random bytes, over WebSocket text and binary frames and the HTTP publish endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import UNIT, client_frame, receive_json
from tests.hostile.harness import Arena, RawSocket, size
from tests.hostile.strategies import draw_frames, random_frames

pytestmark = pytest.mark.hostile

TEXT, BINARY, CLOSE, PING = 1, 2, 8, 9
BATCH = 20
ALLOWED_CLOSES = {1000, 1007, 1009}
"""Text frames that are not UTF-8 are closed with 1007 (RFC 6455), and each lane ends with a
close of its own (1000); nothing else may close a connection."""


class Lane:
    """One WebSocket client sending fuzzed payloads in one frame type, reconnecting after
    each close the protocol allows; every reply is read (and error frames observed)."""

    def __init__(self, arena: Arena, opcode: int) -> None:
        self.arena = arena
        self.opcode = opcode
        self.closes: list[int | None] = []
        self.replies = 0
        self.probe = ""
        self.answered = asyncio.Event()

    async def run(self, payloads: list[bytes]) -> None:
        """Send ``payloads`` BATCH at a time, each batch in one write and followed by a probe
        (an unsubscribe the hub answers with an error naming it), and wait for the probe's
        answer or the close before the next batch, so no batch is written into a closed
        socket."""
        sock, reader = await self._open()
        for start in range(0, len(payloads), BATCH):
            if reader.done():
                self.closes.append(reader.result())
                sock.close()
                sock, reader = await self._open()
            batch = payloads[start : start + BATCH]
            probe = json.dumps({"type": "unsubscribe", "containerID": f"probe-{start}"}).encode()
            self.answered = asyncio.Event()
            self.probe = f"probe-{start}"
            with contextlib.suppress(ConnectionError):
                await sock.send(
                    b"".join(client_frame(self.opcode, p, mask=b"\x00" * 4) for p in batch)
                    + client_frame(TEXT, probe, mask=b"\x00" * 4)
                )
            answered = asyncio.ensure_future(self.answered.wait())
            await asyncio.wait([answered, reader], timeout=30 * UNIT, return_when="FIRST_COMPLETED")
            answered.cancel()
            self.arena.tried += len(batch)
        # A close of our own: its answer shows that everything before it was handled.
        with contextlib.suppress(ConnectionError):
            await sock.send(client_frame(CLOSE, b"\x03\xe8", mask=b"\x00" * 4))
        self.closes.append(await reader)
        sock.close()

    async def _open(self) -> tuple[RawSocket, asyncio.Task[int | None]]:
        sock = await RawSocket.websocket(self.arena.hub.port, "/", self.arena.auth)
        return sock, asyncio.create_task(self._read(sock))

    async def _read(self, sock: RawSocket) -> int | None:
        """Read replies until the close frame (its code) or a cut (None)."""
        try:
            while True:
                opcode, payload = await sock.frame(timeout=60 * UNIT)
                if opcode == PING:
                    await sock.send(client_frame(10, payload, mask=b"\x00" * 4))
                    continue
                if opcode == CLOSE:
                    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.replies += 1
                try:
                    message = json.loads(payload.decode("utf-8"))
                except ValueError:
                    raise AssertionError(f"the hub sent what is not JSON: {payload!r}") from None
                # The hub's own errors; a container's published `error` carries a seq.
                if message.get("type") == "error" and "seq" not in message:
                    self.arena.observe("error frame", payload)
                    if message.get("containerID") == self.probe:
                        self.answered.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            return None


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def http_lane(arena: Arena, payloads: list[bytes], statuses: list[int]) -> None:
    """Fuzzed payloads as NDJSON bodies of BATCH lines, and one by one as JSON bodies."""
    async with aiohttp.ClientSession() as session:
        for start in range(0, len(payloads), BATCH):
            batch = payloads[start : start + BATCH]
            container = f"fuzz-{start // BATCH % 8}"
            bodies = [(b"\n".join(batch), "application/x-ndjson")]
            bodies += [(batch[0], "application/json")]
            for body, kind in bodies:
                async with session.post(
                    f"{arena.hub.http}/api/sessions/{container}/messages",
                    data=io.BytesIO(body),
                    headers={**arena.auth, "Content-Type": kind},
                ) as answer:
                    text = await answer.read()
                    statuses.append(answer.status)
                    if answer.status != 200:
                        arena.observe("HTTP error body", text)
            arena.tried += len(batch)


async def strict_history(arena: Arena) -> dict[str, int]:
    """Every listed container's history read by strict clients (HTTP lines decoded as UTF-8
    JSON, WebSocket text frames by aiohttp, which closes on invalid UTF-8): messages each."""
    counts: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{arena.hub.http}/api/sessions", headers=arena.auth) as answer:
            sessions = (await answer.json())["sessions"]
        for listed in sessions:
            container = listed["containerID"]
            url = f"{arena.hub.http}/api/sessions/{container.replace('/', '%2F')}/logs"
            async with session.get(
                url, headers=arena.auth, params={} if "%" not in container else None
            ) as answer:
                body = await answer.read()
            if answer.status != 200:
                continue
            for line in body.splitlines():
                try:
                    json.loads(line.decode("utf-8"))
                except ValueError:
                    raise AssertionError(f"{container}'s history holds {line!r}") from None
            lines = body.splitlines()
            async with session.ws_connect(arena.hub.url, headers=arena.auth) as ws:
                await ws.send_json({"type": "subscribe", "containerID": container, "since": 0})
                subscribed = await receive_json(ws)
                if subscribed.get("type") != "subscribed":
                    continue
                for _ in range(int(subscribed.get("seq") or 0)):
                    await receive_json(ws)
            counts[container] = len(lines)
    return counts


class TestFuzz:
    async def test_fuzzed_messages(self, tmp_path: Path) -> None:
        """10^5 (CI: a few thousand) fuzzed payloads over text frames, binary frames and
        HTTP: no crash, no traceback, no connection cut without a close code, every reply
        JSON, a strict `*` viewer never cut off, and every stored message valid UTF-8 JSON."""
        total = size(3_000, 100_000)
        seed = random.randrange(1 << 30)
        payloads = draw_frames(total * 6 // 10, seed, drawn=size(600, 10_000))
        payloads += random_frames(total - len(payloads), seed)
        random.Random(seed).shuffle(payloads)
        third = len(payloads) // 3
        args = ["--max-sessions", "1000"]
        async with Arena(tmp_path, "fuzzed messages", unit="messages", args=args) as arena:
            arena.figures.notes.append(f"seed {seed}")
            viewed = 0
            viewer_ready = asyncio.Event()

            async def strict_viewer() -> None:
                nonlocal viewed
                async with (
                    aiohttp.ClientSession() as session,
                    session.ws_connect(arena.hub.url, headers=arena.auth, max_msg_size=0) as ws,
                ):
                    await ws.send_json({"type": "subscribe", "containerID": "*"})
                    await receive_json(ws)
                    viewer_ready.set()
                    async for msg in ws:
                        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
                        try:
                            json.loads(msg.data)
                        except ValueError:
                            raise AssertionError(f"the viewer got {msg.data!r}") from None
                        viewed += 1

            viewer = asyncio.create_task(strict_viewer())
            await asyncio.wait_for(viewer_ready.wait(), 5 * UNIT)
            text, binary = Lane(arena, TEXT), Lane(arena, BINARY)
            statuses: list[int] = []
            # Text frames that are not UTF-8 are closed with 1007 before they are read: send
            # one batch of them as text, and the rest as binary frames, which are read.
            utf8 = [p for p in payloads[:third] if _is_utf8(p)]
            not_utf8 = [p for p in payloads[:third] if not _is_utf8(p)]
            await asyncio.gather(
                text.run(utf8 + not_utf8[:BATCH]),
                binary.run(payloads[third : 2 * third] + not_utf8[BATCH:]),
                http_lane(arena, payloads[2 * third :], statuses),
            )
            assert not viewer.done(), viewer
            viewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await viewer
            closes: dict[str, Any] = {"text": text.closes, "binary": binary.closes}
            arena.figures.notes.append(
                f"closes {closes}; HTTP statuses {sorted(set(statuses))}; viewer got {viewed}"
            )
            # What the hub says it sent (a client that keeps sending after a close may have
            # its socket reset, and the close frame with it).
            assert set(arena.closes()) <= ALLOWED_CLOSES, arena.closes()
            assert set(binary.closes) <= ALLOWED_CLOSES - {1007}, binary.closes
            assert set(statuses) <= {200, 400, 413, 429}, sorted(set(statuses))
            stored = await strict_history(arena)
            arena.figures.notes.append(f"{sum(stored.values())} messages stored, read back")
            await arena.finish()
