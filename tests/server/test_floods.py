"""Floods of control frames and fragments, over real sockets against a real hub process.

A client's pings are answered only once it has authenticated, at most ``--max-pings`` a
second (more closes it with 4429), and the pongs count against ``--max-queue`` like any reply.
A fragmented message may come in at most ``--max-fragments`` frames and is charged each
frame's header, so empty continuation frames cannot grow it for free (both close with 1009).
A read of more frames than the hub parses in one turn is still handled whole and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import TOKEN, UNIT, HubProcess, client_frame, receive_type, wait_for
from tests.server.test_transport import CLOSE, CONTINUATION, PING, PONG, TEXT, Raw, upgrade


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(
        tmp_path_factory.mktemp("floods"),
        args=["--max-pings", "10", "--max-fragments", "64", "--max-message-size", "4KiB"],
    )
    process.start()
    yield process
    process.stop()


async def _close_code(raw: Raw) -> tuple[int, list[tuple[int, bytes]]]:
    """Read to the close frame: its code, and the frames before it."""
    before = []
    while True:
        opcode, payload = await raw.frame()
        if opcode == CLOSE:
            return int.from_bytes(payload[:2], "big"), before
        before.append((opcode, payload))


async def test_no_pong_before_authentication(hub: HubProcess) -> None:
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade(path="/"))
        raw.send(client_frame(PING, b"early"))
        raw.send(client_frame(TEXT, json.dumps({"type": "auth", "token": TOKEN}).encode()))
        raw.send(client_frame(PING, b"late"))
        assert (TEXT, "authenticated") == (
            (opcode := (frame := await raw.frame())[0]),
            json.loads(frame[1])["type"] if opcode == TEXT else frame[1],
        )
        assert (PONG, b"late") == await raw.frame()
    finally:
        raw.close()


async def test_more_pings_a_second_than_allowed_close_with_4429(hub: HubProcess) -> None:
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        raw.send(b"".join(client_frame(PING, b"%d" % i) for i in range(50)))
        code, before = await _close_code(raw)
        assert 4429 == code
        assert [(PONG, b"%d" % i) for i in range(10)] == before
    finally:
        raw.close()


async def test_pings_without_a_token_are_capped_too(hub: HubProcess) -> None:
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade(path="/"))
        raw.send(b"".join(client_frame(PING, b"x" * 125) for _ in range(50)))
        code, before = await _close_code(raw)
        assert (4429, []) == (code, before)
    finally:
        raw.close()


async def test_unsolicited_pongs_count_with_pings(hub: HubProcess) -> None:
    """A pong may come unasked (a one-way heartbeat), but a flood of them closes with 4429."""
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        raw.send(client_frame(PONG, b"beat") + client_frame(TEXT, b'{"type":"sessions"}'))
        assert "sessions" == (await raw.message("sessions"))["type"]
        raw.send(b"".join(client_frame(PONG, b"") for _ in range(5000)))
        code, _ = await _close_code(raw)
        assert 4429 == code
    finally:
        raw.close()


async def test_aiohttps_transport_caps_pings_and_answers_none_before_the_token(
    hub: HubProcess,
) -> None:
    """An upgrade on a kept-alive connection (aiohttp's reader) follows the same rules."""
    reused: list[object] = []

    async def on_reuse(*_args: object) -> None:
        reused.append(True)

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(on_reuse)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with session.get(f"{hub.http}/healthz") as response:
            await response.read()
        async with session.ws_connect(hub.url, autoping=False) as ws:
            assert 1 == len(reused), "the upgrade went to aiohttp's transport"
            await ws.ping(b"early")
            await ws.send_str(json.dumps({"type": "auth", "token": TOKEN}))
            first = await ws.receive(timeout=5 * UNIT)
            assert aiohttp.WSMsgType.TEXT == first.type, "no pong before authentication"
            assert "authenticated" == json.loads(first.data)["type"]
            # The hub may close before the last pings are written: a busy machine reads them
            # as they come.
            with contextlib.suppress(ConnectionResetError):
                for i in range(30):
                    await ws.ping(b"%d" % i)
            pongs = []
            while True:
                msg = await ws.receive(timeout=5 * UNIT)
                if msg.type is not aiohttp.WSMsgType.PONG:
                    break
                pongs.append(msg.data)
            assert msg.type is aiohttp.WSMsgType.CLOSE
            assert 4429 == msg.data
            # 10 a second, the first of which went before the token.
            assert [b"%d" % i for i in range(9)] == pongs
        # Unsolicited pongs count too.
        async with session.get(f"{hub.http}/healthz") as response:
            await response.read()
        async with session.ws_connect(hub.ws_url(), autoping=False) as ws:
            assert 2 == len(reused), "the upgrade went to aiohttp's transport"
            with contextlib.suppress(ConnectionResetError):
                for _ in range(30):
                    await ws.pong(b"")
            msg = await ws.receive(timeout=5 * UNIT)
            if msg.type is not aiohttp.WSMsgType.CLOSE:
                # Closed with pongs still unread, the hub's socket may answer with a reset
                # that overtakes its close frame: its log says why it closed.
                await wait_for(
                    lambda: 2 == sum(e.get("event") == "too_many_pings" for e in hub.log_events())
                )
            else:
                assert 4429 == msg.data


async def test_pongs_count_against_the_outgoing_queue(tmp_path: Path) -> None:
    """A client that pings and never reads is closed as a slow reader is, not buffered for."""
    hub = HubProcess(
        tmp_path / "hub", args=["--max-pings", "1000000", "--max-queue", "64KiB"]
    ).start()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", hub.port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    raw = Raw(reader, writer)
    try:
        await raw.request(upgrade())
        ping = client_frame(PING, b"x" * 125)
        sent = 0
        for _ in range(40):  # 40,000 pings: 5 MB of pongs owed if nothing stopped them
            raw.send(ping * 1000)
            sent += 1000
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(writer.drain(), 0.5 * UNIT)
        code, before = await _close_code(raw)
        assert 4429 == code
        assert {PONG} == {opcode for opcode, _ in before}
        assert len(before) < sent, "the pongs stopped at the queue's bound (plus the kernel's)"
    finally:
        raw.close()
        hub.stop()


async def test_a_message_in_more_fragments_than_allowed_closes_with_1009(hub: HubProcess) -> None:
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        raw.send(client_frame(TEXT, b'{"type":', fin=False))
        raw.send(b"".join(client_frame(CONTINUATION, b"", fin=False) for _ in range(100)))
        code, _ = await _close_code(raw)
        assert 1009 == code
    finally:
        raw.close()


async def test_empty_continuation_frames_count_towards_the_message_size(tmp_path: Path) -> None:
    hub = HubProcess(
        tmp_path / "hub", args=["--max-fragments", "100000", "--max-message-size", "1000"]
    ).start()
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        raw.send(client_frame(TEXT, b'{"type":', fin=False))
        # 400 empty frames: 2,400 bytes on the wire, no payload.
        raw.send(b"".join(client_frame(CONTINUATION, b"", fin=False) for _ in range(400)))
        code, _ = await _close_code(raw)
        assert 1009 == code
    finally:
        raw.close()
        hub.stop()


async def test_a_fragmented_message_within_the_limits_is_read(hub: HubProcess) -> None:
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        message = b'{"type":"sessions"}'
        raw.send(client_frame(TEXT, message[:1], fin=False))
        raw.send(b"".join(client_frame(CONTINUATION, bytes([b]), fin=False) for b in message[1:-1]))
        raw.send(client_frame(CONTINUATION, message[-1:]))
        assert "sessions" == (await raw.message("sessions"))["type"]
    finally:
        raw.close()


async def test_a_read_of_more_frames_than_one_turn_takes_is_handled_whole_and_in_order(
    tmp_path: Path,
) -> None:
    """3,000 publishes in one write: handled over several turns, every one, in order."""
    hub = HubProcess(tmp_path / "hub").start()
    count = 3000
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(hub.ws_url()) as watcher,
        ):
            await watcher.send_str(json.dumps({"type": "subscribe", "containerID": "many"}))
            await receive_type(watcher, "subscribed")
            raw = await Raw.open(hub.port)
            try:
                await raw.request(upgrade())
                frames = b"".join(
                    client_frame(
                        TEXT,
                        json.dumps(
                            {
                                "type": "log",
                                "containerID": "many",
                                "id": i,
                                "data": {"level": "info", "message": str(i)},
                            }
                        ).encode(),
                    )
                    for i in range(1, count + 1)
                )
                raw.send(frames + client_frame(PING, b"after"))
                got = [await receive_type(watcher, "log") for _ in range(count)]
                assert [(i, str(i)) for i in range(1, count + 1)] == [
                    (m["seq"], m["data"]["message"]) for m in got
                ]
                while (frame := await raw.frame())[0] != PONG:
                    pass
                assert (PONG, b"after") == frame
            finally:
                raw.close()
    finally:
        hub.stop()
