"""Bad input on every way in, over real sockets: refused with its code, nothing else lost.

Whatever the hub stores and sends is valid UTF-8 JSON: a text frame, a binary frame (on both
WebSocket transports) and an HTTP publish are checked at the door. Input that would once have
raised (JSON nested a thousand deep, invalid UTF-8 in a known field, an ``id`` history cannot
keep) gets its error code, the connection stays open, and the messages read with it are
still handled, in order.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.helpers import TOKEN, UNIT, HubProcess, client_frame, receive_type
from tests.server.test_transport import TEXT, Raw, upgrade

BINARY = 0x2
BAD_UTF8 = b'{"type":"log","containerID":"%s","data":{"level":"info","message":"ok","x":"\xff"}}'
DEEP = b"[" * 5000 + b"]" * 5000


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path_factory.mktemp("bad-input"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        yield session


def _log(container: str, text: str, **fields: object) -> bytes:
    body = {"type": "log", "containerID": container, "data": {"level": "info", "message": text}}
    return json.dumps({**body, **fields}).encode()


async def _history(http: aiohttp.ClientSession, hub: HubProcess, container: str) -> bytes:
    async with http.get(f"{hub.http}/api/sessions/{container}/logs") as response:
        assert 200 == response.status
        body = await response.read()
    body.decode("utf-8")  # strict: whatever history gives back is UTF-8
    return body


async def _history_messages(
    http: aiohttp.ClientSession, hub: HubProcess, container: str
) -> list[Any]:
    body = await _history(http, hub, container)
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def _no_traceback(hub: HubProcess) -> None:
    log = hub.log()
    assert "Traceback" not in log
    assert "RecursionError" not in log
    assert "DecodeError" not in log


async def test_binary_frames_with_invalid_utf8_are_refused_on_the_hubs_transport(
    hub: HubProcess, http: aiohttp.ClientSession
) -> None:
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        raw.send(client_frame(BINARY, BAD_UTF8 % b"utf8-binary"))
        error = await raw.message("error")
        assert "invalid_json" == error["data"]["code"]
        # The connection stays open, and a valid binary frame is still taken.
        raw.send(client_frame(BINARY, _log("utf8-binary", "fine", id=1)))
        assert 1 == (await raw.message("ack"))["seq"]
    finally:
        raw.close()
    assert ["fine"] == [
        m["data"]["message"] for m in await _history_messages(http, hub, "utf8-binary")
    ]
    _no_traceback(hub)


async def test_binary_frames_with_invalid_utf8_are_refused_on_aiohttps_transport(
    hub: HubProcess, http: aiohttp.ClientSession
) -> None:
    """An upgrade on a kept-alive HTTP connection is read by aiohttp: checked the same way."""
    reused: list[object] = []

    async def on_reuse(*_args: object) -> None:
        reused.append(True)

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(on_reuse)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with session.get(f"{hub.http}/healthz") as response:
            await response.read()
        async with session.ws_connect(hub.ws_url()) as ws:
            assert [True] == reused, "the upgrade went to aiohttp's transport"
            await ws.send_bytes(BAD_UTF8 % b"utf8-aiohttp")
            assert "invalid_json" == (await receive_type(ws, "error"))["data"]["code"]
            await ws.send_bytes(_log("utf8-aiohttp", "fine", id=1))
            assert 1 == (await receive_type(ws, "ack"))["seq"]
            await ws.send_bytes(DEEP)
            assert "invalid_message" == (await receive_type(ws, "error"))["data"]["code"]
    assert ["fine"] == [
        m["data"]["message"] for m in await _history_messages(http, hub, "utf8-aiohttp")
    ]
    _no_traceback(hub)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
async def test_an_http_publish_with_invalid_utf8_is_refused(
    hub: HubProcess, http: aiohttp.ClientSession, content_type: str
) -> None:
    container = "utf8-http-" + content_type.rsplit("/", 1)[1]
    body = BAD_UTF8 % container.encode()
    async with http.post(
        f"{hub.http}/api/sessions/{container}/messages",
        data=body,
        headers={"Content-Type": content_type},
    ) as response:
        assert 400 == response.status
        assert "invalid_json" == (await response.json())["data"]["code"]
    async with http.get(f"{hub.http}/api/sessions/{container}/logs") as response:
        assert 404 == response.status, "nothing was stored"
    _no_traceback(hub)


async def test_bad_messages_in_one_read_get_their_codes_and_the_rest_is_kept_in_order(
    hub: HubProcess, http: aiohttp.ClientSession
) -> None:
    """Deep nesting, invalid UTF-8 in a known field and an id of 2^63 between publishes."""
    container = "bad-in-a-read"
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        deep_in_data = (
            b'{"type":"log","containerID":"bad-in-a-read","data":{"level":"info",'
            b'"message":"deep","x":' + DEEP + b"}}"
        )
        raw.send(
            client_frame(TEXT, _log(container, "one", id=1))
            + client_frame(TEXT, deep_in_data)
            + client_frame(TEXT, _log(container, "two", id=2))
            + client_frame(
                BINARY,
                b'{"type":"log","containerID":"bad-in-a-read","id":3,'
                b'"data":{"level":"info","message":"\xc3\x28"}}',
            )
            + client_frame(TEXT, _log(container, "three", id=3))
            + client_frame(TEXT, _log(container, "huge id", id=2**63))
            + client_frame(TEXT, DEEP)
            + client_frame(TEXT, _log(container, "four", id=4))
        )
        replies: list[dict[str, Any]] = []
        while not any(r.get("type") == "ack" and r.get("id") == 4 for r in replies):
            _opcode, payload = await raw.frame()
            replies.append(json.loads(payload))
        errors = [(r["data"]["code"], r.get("id")) for r in replies if r["type"] == "error"]
        assert [
            ("invalid_message", None),
            ("invalid_json", None),  # not UTF-8: nothing in it is read
            ("invalid_message", 2**63),
            ("invalid_message", None),
        ] == errors
        assert 4 == replies[-1]["seq"], "a cumulative ack: every id up to 4 is stored"
    finally:
        raw.close()
    stored = await _history_messages(http, hub, container)
    assert [(1, "one"), (2, "two"), (3, "three"), (4, "four")] == [
        (m["seq"], m["data"]["message"]) for m in stored
    ]
    _no_traceback(hub)


async def test_an_id_of_2_63_leaves_no_gap_and_later_ids_still_count(
    hub: HubProcess, http: aiohttp.ClientSession
) -> None:
    container = "huge-ids"
    async with http.ws_connect(hub.ws_url()) as ws:
        await ws.send_str(_log(container, "too big", id=2**63, producer="p").decode())
        error = await receive_type(ws, "error", 5 * UNIT)
        assert ("invalid_message", 2**63) == (error["data"]["code"], error["id"])
        await ws.send_str(_log(container, "next", id=7, producer="p").decode())
        ack = await receive_type(ws, "ack")
        assert (7, 1) == (ack["id"], ack["seq"])
    stored = await _history_messages(http, hub, container)
    assert [(1, "next")] == [(m["seq"], m["data"]["message"]) for m in stored]


async def test_a_subscriber_gets_only_strict_utf8_after_hostile_publishes(
    hub: HubProcess, http: aiohttp.ClientSession
) -> None:
    """A strict client (aiohttp checks text frames) reads history and live with no 1007."""
    container = "strict-reader"
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        frames = [
            client_frame(BINARY, BAD_UTF8 % container.encode()),
            client_frame(BINARY, _log(container, "\u00e9t\u00e9 \U0001f600", id=1)),
            client_frame(
                BINARY,
                b'{"type":"log","containerID":"strict-reader","id":2,'
                b'"data":{"level":"info","message":"x","k":"\\ud800"}}',
            ),
            client_frame(
                TEXT,
                b'{"type":"log","containerID":"strict-reader","id":3,'
                b'"data":{"level":"info","message":"pair","k":"\\ud83d\\ude00"}}',
            ),
        ]
        raw.send(b"".join(frames))
        replies: list[dict[str, Any]] = []
        while not any(r.get("type") == "ack" and r.get("id") == 3 for r in replies):
            _opcode, payload = await raw.frame()
            replies.append(json.loads(payload))
        assert ["invalid_json", "invalid_json"] == [
            r["data"]["code"] for r in replies if r["type"] == "error"
        ]
        assert 2 == replies[-1]["seq"], "the ack of id 3 counts two stored messages"
    finally:
        raw.close()
    async with http.ws_connect(hub.ws_url()) as ws:
        await ws.send_str(json.dumps({"type": "subscribe", "containerID": container, "since": 0}))
        await receive_type(ws, "subscribed")
        got = [await receive_type(ws, "log") for _ in range(2)]
    assert ["\u00e9t\u00e9 \U0001f600", "pair"] == [m["data"]["message"] for m in got]
    assert "\U0001f600" == got[1]["data"]["k"]
