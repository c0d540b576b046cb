"""TAILHUB_MAX_STORE_LAG: when history falls behind, publishes are refused, never queued."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import aiohttp
import pytest

from tests.helpers import TOKEN, UNIT, HubProcess, client_frame, receive_type

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture(scope="module")
def lagging_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub that refuses a message while one other is not yet durable."""
    hub = HubProcess(tmp_path_factory.mktemp("lag"), args=["--max-store-lag", "1"])
    hub.start()
    yield hub
    hub.stop()


def log(container: str, id: int) -> bytes:
    data = {"level": "info", "message": f"m{id}"}
    message = {"type": "log", "containerID": container, "id": id, "data": data}
    return json.dumps(message).encode()


async def next_reply(reader: asyncio.StreamReader) -> dict[str, object]:
    _, size = await asyncio.wait_for(reader.readexactly(2), 5 * UNIT)
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    reply: dict[str, object] = json.loads(await reader.readexactly(size))
    return reply


async def test_a_message_past_the_lag_is_refused_as_unavailable_and_the_next_accepted(
    lagging_hub: HubProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", lagging_hub.port)
    try:
        writer.write(
            f"GET /?token={TOKEN} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        # Two messages in one write: the second arrives while the first is not yet durable.
        writer.write(client_frame(0x1, log("lag-ws", 1)) + client_frame(0x1, log("lag-ws", 2)))
        replies = [await next_reply(reader), await next_reply(reader)]
        errors = [r for r in replies if r["type"] == "error"]
        acks = [r for r in replies if r["type"] == "ack"]
        assert [1] == [a["id"] for a in acks]
        assert 1 == len(errors)
        assert 2 == errors[0]["id"]
        assert "unavailable" == errors[0]["data"]["code"]  # type: ignore[index]
        assert "TAILHUB_MAX_STORE_LAG" in errors[0]["data"]["error"]  # type: ignore[index]
        # Once the first is durable, the refused one is accepted when sent again.
        writer.write(client_frame(0x1, log("lag-ws", 3)))
        reply = await next_reply(reader)
        assert ("ack", 3, 2) == (reply["type"], reply["id"], reply["seq"])
    finally:
        writer.close()


async def test_an_http_publish_past_the_lag_stores_nothing(
    lagging_hub: HubProcess, http: aiohttp.ClientSession
) -> None:
    url = f"{lagging_hub.http}/api/sessions/lag-http/messages"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = b"\n".join([b'{"type":"log","data":{"level":"info","message":"a"}}'] * 2)
    async with http.post(url, data=body, headers=headers) as response:
        assert 503 == response.status
        refusal = (await response.json())["data"]
        assert "unavailable" == refusal["code"]
        assert "nothing was stored" in refusal["error"]
    async with http.post(url, data=body[: body.index(b"\n")], headers=headers) as response:
        assert 200 == response.status
        assert [1] == (await response.json())["seq"]
    async with http.ws_connect(lagging_hub.ws_url()) as ws:
        await ws.send_str('{"type":"subscribe","containerID":"lag-http","since":0}')
        assert 1 == (await receive_type(ws, "subscribed"))["seq"]


@pytest.fixture(scope="module")
def byte_lagging_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub that refuses a message while 3,000 bytes of others are not yet durable."""
    hub = HubProcess(tmp_path_factory.mktemp("lag-bytes"), args=["--max-store-lag-bytes", "3000"])
    hub.start()
    yield hub
    hub.stop()


def big_log(container: str, id: int) -> bytes:
    data = {"level": "info", "message": "x" * 2000}
    return json.dumps({"type": "log", "containerID": container, "id": id, "data": data}).encode()


async def test_a_message_past_the_byte_lag_is_refused_as_unavailable(
    byte_lagging_hub: HubProcess,
) -> None:
    """The bound counts bytes too: two 2 KB messages read together, the second is refused."""
    reader, writer = await asyncio.open_connection("127.0.0.1", byte_lagging_hub.port)
    try:
        writer.write(
            f"GET /?token={TOKEN} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            client_frame(0x1, big_log("lag-bytes", 1)) + client_frame(0x1, big_log("lag-bytes", 2))
        )
        replies = [await next_reply(reader), await next_reply(reader)]
        assert ["ack", "error"] == sorted(str(r["type"]) for r in replies)
        error = next(r for r in replies if r["type"] == "error")
        assert 2 == error["id"]
        assert "unavailable" == error["data"]["code"]  # type: ignore[index]
        assert "TAILHUB_MAX_STORE_LAG_BYTES" in error["data"]["error"]  # type: ignore[index]
        writer.write(client_frame(0x1, big_log("lag-bytes", 3)))
        reply = await next_reply(reader)
        assert ("ack", 3, 2) == (reply["type"], reply["id"], reply["seq"])
    finally:
        writer.close()


async def test_an_http_publish_past_the_byte_lag_stores_nothing(
    byte_lagging_hub: HubProcess, http: aiohttp.ClientSession
) -> None:
    """An HTTP body whose messages would take history past the byte bound is refused whole."""
    url = f"{byte_lagging_hub.http}/api/sessions/lag-bytes-http/messages"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    line = json.dumps({"type": "log", "data": {"level": "info", "message": "x" * 2000}}).encode()
    async with http.post(url, data=line + b"\n" + line, headers=headers) as response:
        assert 503 == response.status
        refusal = (await response.json())["data"]
        assert "unavailable" == refusal["code"]
        assert "TAILHUB_MAX_STORE_LAG_BYTES" in refusal["error"]
        assert "nothing was stored" in refusal["error"]
    async with http.post(url, data=line, headers=headers) as response:
        assert 200 == response.status
        assert [1] == (await response.json())["seq"]
