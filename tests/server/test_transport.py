"""The hub's port over raw sockets: handshakes, hand-offs, frames and closing (RFC 6455)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import TOKEN, UNIT, HubProcess, client_frame, receive_type

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
CONTINUATION, TEXT, CLOSE, PING, PONG = 0x0, 0x1, 0x8, 0x9, 0xA


class Raw:
    """A client on a plain TCP stream that frames and reads by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, head: str, *, extra: bytes = b"") -> str:
        """Send a request head (and ``extra`` bytes with it); the response head."""
        self.writer.write(head.encode() + extra)
        data = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5 * UNIT)
        return data.decode()

    async def frame(self) -> tuple[int, bytes]:
        """The next server frame: opcode and payload (server frames are not masked)."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5 * UNIT)
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8), "big")
        assert not second & 0x80, "server frames are never masked"
        return first & 0x0F, await self.reader.readexactly(size)

    async def message(self, kind: str) -> dict[str, object]:
        while True:
            opcode, payload = await self.frame()
            if opcode == TEXT:
                message: dict[str, object] = json.loads(payload)
                if message.get("type") == kind:
                    return message

    async def closed(self) -> int:
        """Read to the close frame; its code, once the hub has also ended TCP."""
        while True:
            opcode, payload = await self.frame()
            if opcode == CLOSE:
                code = int.from_bytes(payload[:2], "big")
                self.writer.write(client_frame(CLOSE, payload[:2]))
                assert b"" == await asyncio.wait_for(self.reader.read(), 5 * UNIT)
                return code

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def close(self) -> None:
        self.writer.close()


def upgrade(path: str = f"/?token={TOKEN}", **headers: str) -> str:
    fields = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
        **headers,
    }
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items() if value)
    return f"GET {path} HTTP/1.1\r\n{lines}\r\n"


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    hub = HubProcess(tmp_path_factory.mktemp("transport"), args=["--auth-timeout", "2000"])
    hub.start()
    yield hub.port
    hub.stop()


@pytest.fixture
async def raw(port: int) -> AsyncIterator[Raw]:
    client = await Raw.open(port)
    yield client
    client.close()


async def test_the_handshake_answers_with_the_accept_key_of_rfc_6455(raw: Raw) -> None:
    head = await raw.request(upgrade())
    assert head.startswith("HTTP/1.1 101 ")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head


@pytest.mark.parametrize("path", ["/", "/ws"])
async def test_both_websocket_paths_serve_the_protocol(port: int, path: str) -> None:
    raw = await Raw.open(port)
    try:
        await raw.request(upgrade(f"{path}?token={TOKEN}"))
        raw.send(client_frame(TEXT, b'{"type":"sessions"}'))
        assert "sessions" == (await raw.message("sessions"))["type"]
    finally:
        raw.close()


async def test_a_connection_header_with_several_tokens_upgrades(raw: Raw) -> None:
    """Firefox sends ``Connection: keep-alive, Upgrade`` and a capitalised ``WebSocket``."""
    head = await raw.request(upgrade(Connection="keep-alive, Upgrade", Upgrade="WebSocket"))
    assert head.startswith("HTTP/1.1 101 ")
    raw.send(client_frame(TEXT, b'{"type":"sessions"}'))
    assert "sessions" == (await raw.message("sessions"))["type"]


async def test_an_unknown_websocket_version_gets_426_naming_version_13(raw: Raw) -> None:
    head = await raw.request(upgrade(**{"Sec-WebSocket-Version": "8"}))
    assert head.startswith("HTTP/1.1 426 ")
    assert "Sec-WebSocket-Version: 13\r\n" in head


@pytest.mark.parametrize("key", ["", "c2hvcnQ=", "not base64 at all!"])
async def test_a_bad_or_missing_key_gets_400(raw: Raw, key: str) -> None:
    head = await raw.request(upgrade(**{"Sec-WebSocket-Key": key}))
    assert head.startswith("HTTP/1.1 400 ")


async def test_a_wrong_token_gets_401_before_the_upgrade(raw: Raw) -> None:
    head = await raw.request(upgrade("/?token=wrong"))
    assert head.startswith("HTTP/1.1 401 ")
    assert 'WWW-Authenticate: Bearer realm="tailhub"' in head
    assert b'{"error":"invalid token"}' == await raw.reader.read()


async def test_a_head_arriving_in_pieces_and_frames_sent_with_it_are_read(raw: Raw) -> None:
    head = upgrade()
    for index in range(0, len(head) - 5, 7):
        raw.send(head[index : index + 7].encode())
        await raw.writer.drain()
    # The rest of the head, with the first frame in the same write.
    reply = await raw.request(head[index + 7 :], extra=client_frame(TEXT, b'{"type":"sessions"}'))
    assert reply.startswith("HTTP/1.1 101 ")
    assert "sessions" == (await raw.message("sessions"))["type"]


async def test_other_requests_are_served_by_the_http_application(raw: Raw) -> None:
    head = await raw.request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 ")
    # A websocket upgrade elsewhere than / and /ws is an ordinary (unknown) route.
    second = await Raw.open(raw.writer.get_extra_info("peername")[1])
    try:
        assert (await second.request(upgrade("/api/nowhere"))).startswith("HTTP/1.1 404 ")
    finally:
        second.close()


async def test_a_malformed_request_gets_aiohttps_400(raw: Raw) -> None:
    head = await raw.request("GET / HTTP/1.1\r\nUpgrade: websocket\r\nbroken header\r\n\r\n")
    assert "400" == head.split(" ")[1]


async def test_an_upgrade_on_a_kept_alive_connection_is_served_too(port: int) -> None:
    """aiohttp's client reuses a pooled connection for ``ws_connect``."""
    reused: list[object] = []

    async def on_reuse(*_args: object) -> None:
        reused.append(True)

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(on_reuse)
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            await response.read()
        async with http.ws_connect(f"ws://127.0.0.1:{port}/?token={TOKEN}") as ws:
            assert [True] == reused, "the pooled connection carries the upgrade"
            await ws.send_str('{"type":"sessions"}')
            assert "sessions" == (await receive_type(ws, "sessions"))["type"]
            await ws.send_str(
                '{"type":"log","containerID":"keepalive","id":1,'
                '"data":{"level":"info","message":"x"}}'
            )
            ack = await receive_type(ws, "ack")
            assert (1, 1) == (ack["id"], ack["seq"])


async def test_a_fragmented_message_is_read_as_one(raw: Raw) -> None:
    await raw.request(upgrade())
    message = b'{"type":"sessions"}'
    raw.send(client_frame(TEXT, message[:5], fin=False))
    raw.send(client_frame(PING, b"between"))
    raw.send(client_frame(CONTINUATION, message[5:12], fin=False))
    raw.send(client_frame(CONTINUATION, message[12:]))
    assert (PONG, b"between") == await raw.frame()
    assert "sessions" == (await raw.message("sessions"))["type"]


async def test_a_ping_is_answered_with_its_payload(raw: Raw) -> None:
    await raw.request(upgrade())
    raw.send(client_frame(PING, b"are you there"))
    assert (PONG, b"are you there") == await raw.frame()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bytes([0x81, 0x02]) + b"hi", 1002),  # not masked
        (client_frame(0x3, b"x"), 1002),  # reserved opcode
        (client_frame(TEXT, b"\xff\xfe"), 1007),  # not UTF-8
    ],
)
async def test_a_protocol_violation_closes_with_its_code(raw: Raw, frame: bytes, code: int) -> None:
    await raw.request(upgrade())
    raw.send(frame)
    opcode, payload = await raw.frame()
    assert CLOSE == opcode
    assert code == int.from_bytes(payload[:2], "big")
    assert b"" == await asyncio.wait_for(raw.reader.read(), 5 * UNIT)


async def test_messages_before_a_violation_in_the_same_read_are_kept(raw: Raw) -> None:
    await raw.request(upgrade())
    raw.send(client_frame(TEXT, b'{"type":"sessions"}') + bytes([0x81, 0x00]))
    assert "sessions" == (await raw.message("sessions"))["type"]
    opcode, payload = await raw.frame()
    assert (CLOSE, 1002) == (opcode, int.from_bytes(payload[:2], "big"))


async def test_a_client_close_is_answered_with_its_code_and_tcp_ends(raw: Raw) -> None:
    await raw.request(upgrade())
    raw.send(client_frame(CLOSE, (4000).to_bytes(2, "big") + b"done"))
    opcode, payload = await raw.frame()
    assert (CLOSE, (4000).to_bytes(2, "big")) == (opcode, payload[:2])
    assert b"" == await asyncio.wait_for(raw.reader.read(), 5 * UNIT)


async def test_a_silent_connection_is_dropped_after_the_auth_timeout(raw: Raw) -> None:
    raw.send(b"GET / HTTP/1.1\r\n")  # and never the rest of the head
    assert b"" == await asyncio.wait_for(raw.reader.read(), 10 * UNIT)


async def test_the_hub_closes_first_then_waits_for_the_answer(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub").start()
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        assert hub.proc is not None
        hub.proc.send_signal(signal.SIGTERM)
        assert 1001 == await raw.closed()
    finally:
        raw.close()
        assert 0 == hub.wait()


# -- messages read together ---------------------------------------------------------------
# A client's frames that arrive in one read are handled together (runs of publishes go to the
# node at once): every effect and reply must still be what sending them one by one gives.


def _log(container: str, text: str, **fields: object) -> bytes:
    body = {"type": "log", "containerID": container, "data": {"level": "info", "message": text}}
    return client_frame(TEXT, json.dumps({**body, **fields}).encode())


async def _watcher(port: int, container: str) -> Raw:
    """A raw client subscribed to ``container`` (or a pattern), its ``subscribed`` read."""
    watcher = await Raw.open(port)
    await watcher.request(upgrade())
    watcher.send(
        client_frame(TEXT, json.dumps({"type": "subscribe", "containerID": container}).encode())
    )
    await watcher.message("subscribed")
    return watcher


async def _routed(client: Raw, count: int) -> list[tuple[str, int, str]]:
    """The next ``count`` routed messages: container, seq and type (or log text)."""
    got = []
    while len(got) < count:
        opcode, payload = await client.frame()
        message = json.loads(payload)
        if opcode == TEXT and "seq" in message and message["type"] != "subscribed":
            data = message["data"]
            got.append(
                (message["containerID"], message["seq"], data.get("message", message["type"]))
            )
    return got


async def test_publishes_read_together_keep_their_order_seqs_and_replies(port: int) -> None:
    everything = await _watcher(port, "batch-*")
    raw = await Raw.open(port)
    try:
        await raw.request(upgrade())
        status = {"type": "status", "containerID": "batch-a", "data": {"status": "running"}}
        raw.send(
            _log("batch-a", "a1", id=1, producer="p")
            + _log("batch-a", "a2", id=2, producer="p")
            + client_frame(TEXT, b"{not json")
            + _log("batch-b", "b1")
            + client_frame(TEXT, json.dumps(status).encode())
            + _log("batch-a", "a2 again", id=2, producer="p")  # a repeat: acked, not stored
            + _log("batch-a", "a3", id=3, producer="p")
            + client_frame(TEXT, b'{"type":"log","containerID":"batch-a","data":{}}')
            + _log("batch-b", "b2")
        )
        assert [
            ("batch-a", 1, "a1"),
            ("batch-a", 2, "a2"),
            ("batch-b", 1, "b1"),
            ("batch-a", 3, "status"),
            ("batch-a", 4, "a3"),
            ("batch-b", 2, "b2"),
        ] == await _routed(everything, 6)
        replies = []
        while not any(r.get("type") == "ack" and r["id"] == 3 for r in replies):
            _opcode, payload = await raw.frame()
            replies.append(json.loads(payload))
        errors = [r["data"]["code"] for r in replies if r["type"] == "error"]
        assert ["invalid_json", "invalid_message"] == errors
        assert {
            "type": "ack",
            "containerID": "batch-a",
            "id": 3,
            "seq": 4,
            "producer": "p",
        } == replies[-1]
    finally:
        raw.close()
        everything.close()


async def test_a_ping_between_publishes_read_together_is_answered_in_place(port: int) -> None:
    watcher = await _watcher(port, "pinged")
    raw = await Raw.open(port)
    try:
        await raw.request(upgrade())
        raw.send(_log("pinged", "before") + client_frame(PING, b"mid") + _log("pinged", "after"))
        assert (PONG, b"mid") == await raw.frame()
        assert [("pinged", 1, "before"), ("pinged", 2, "after")] == await _routed(watcher, 2)
    finally:
        raw.close()
        watcher.close()


async def test_the_first_message_of_a_read_authenticates_the_rest(port: int) -> None:
    watcher = await _watcher(port, "late-token")
    raw = await Raw.open(port)
    try:
        await raw.request(upgrade(path="/"))
        auth = json.dumps({"type": "auth", "token": TOKEN}).encode()
        raw.send(client_frame(TEXT, auth) + _log("late-token", "one") + _log("late-token", "two"))
        assert "authenticated" == (await raw.message("authenticated"))["type"]
        assert [("late-token", 1, "one"), ("late-token", 2, "two")] == await _routed(watcher, 2)
    finally:
        raw.close()
        watcher.close()


async def test_nothing_after_a_refused_first_message_of_a_read_is_taken(port: int) -> None:
    raw = await Raw.open(port)
    try:
        await raw.request(upgrade(path="/"))
        auth = json.dumps({"type": "auth", "token": "wrong"}).encode()
        raw.send(client_frame(TEXT, auth) + _log("refused-read", "sneaked in"))
        assert "unauthorized" == (await raw.message("error"))["data"]["code"]
        assert 4401 == await raw.closed()
    finally:
        raw.close()
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/api/sessions/refused-read"
        async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert 404 == response.status


async def test_the_publish_rate_counts_each_message_of_a_read(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub", args=["--publish-rate", "5"]).start()
    try:
        watcher = await _watcher(hub.port, "rated-read")
        raw = await Raw.open(hub.port)
        await raw.request(upgrade())
        raw.send(b"".join(_log("rated-read", str(i), id=i) for i in range(1, 9)))
        assert [("rated-read", i, str(i)) for i in range(1, 6)] == await _routed(watcher, 5)
        refused = [await raw.message("error") for _ in range(3)]
        assert [6, 7, 8] == [r["id"] for r in refused]
        assert {"rate_limited"} == {r["data"]["code"] for r in refused}
        raw.close()
        watcher.close()
    finally:
        hub.stop()
