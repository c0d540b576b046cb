"""Hostile HTTP input over real sockets: no token in any log line or error body, no traceback.

A request the hub cannot parse gets a fixed body; a query parameter or header it cannot read
gets a 400 or 401 with words, never a 500. Every line of the hub's log, from its own code or
from a library's, goes through the same redaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.helpers import UNIT, HubProcess

CANARY = "canary-token-5f1e0c2d9b7a"


@pytest.fixture(scope="module")
def canary_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub whose token is the canary: it must appear in no log line and no response."""
    hub = HubProcess(tmp_path_factory.mktemp("canary"), token=CANARY)
    hub.start()
    yield hub
    hub.stop()


async def exchange(hub: HubProcess, request: bytes) -> tuple[int, bytes]:
    """Send one raw request; the response's status and everything read until the hub closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5 * UNIT)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), 5 * UNIT)
        return int(head.split()[1]), head + body
    finally:
        writer.close()


def logged(hub: HubProcess) -> str:
    return hub.log()


BAD_HEADS = [
    # A stray control byte after the token in the URL: the parser quotes the request line.
    b"GET /api/sessions?token=" + CANARY.encode() + b"\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    # A raw non-ASCII byte in the query.
    b"GET /api/sessions/a/logs?token=" + CANARY.encode() + b"&since=\xb2 HTTP/1.1\r\n\r\n",
    # A header name with a NUL, carrying the token as its value.
    b"GET / HTTP/1.1\r\nHost: x\r\nBad\x00Name: Bearer " + CANARY.encode() + b"\r\n\r\n",
    # A WebSocket upgrade with the token and a stray byte.
    b"GET /?token=" + CANARY.encode() + b"\x7f HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
]


class TestBadRequestHeads:
    @pytest.mark.parametrize("request_bytes", BAD_HEADS)
    async def test_a_bad_head_gets_a_fixed_400_and_no_token_is_logged(
        self, canary_hub: HubProcess, request_bytes: bytes
    ) -> None:
        """The 400's body is fixed, and neither it nor the log holds the token or a traceback."""
        status, response = await exchange(canary_hub, request_bytes)
        assert 400 == status
        assert response.endswith(b"\r\n\r\n400 Bad Request\n")
        assert CANARY.encode() not in response
        log = logged(canary_hub)
        assert "bad_request" in log
        assert CANARY not in log
        assert "Traceback" not in log


class TestUnreadableValues:
    async def test_a_non_utf8_authorization_header_is_refused_with_401(
        self, canary_hub: HubProcess
    ) -> None:
        """A bearer token with bytes that are not UTF-8 is an invalid token, not a crash."""
        status, response = await exchange(
            canary_hub,
            b"GET /api/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + CANARY.encode()
            + b"\xff\r\n\r\n",
        )
        assert 401 == status
        assert b'"code":"unauthorized"' in response
        assert CANARY.encode() not in response
        assert "Traceback" not in logged(canary_hub)

    async def test_a_non_utf8_token_on_an_upgrade_is_refused_with_401(
        self, canary_hub: HubProcess
    ) -> None:
        """The same header on a WebSocket upgrade is refused at the handshake."""
        status, _ = await exchange(
            canary_hub,
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Authorization: Bearer \xfe\xff\r\n\r\n",
        )
        assert 401 == status
        assert "Traceback" not in logged(canary_hub)

    @pytest.mark.parametrize(
        "query",
        [
            "since=%C2%B2",  # a superscript two: str.isdigit says yes, int says no
            "tail=%D9%A3",  # an Arabic-Indic three
            "since=" + "9" * 5000,  # more digits than int() reads
            "tail=99999999999999999999",  # past 2^63
            "from=%00",
        ],
    )
    async def test_an_unreadable_number_in_the_query_is_a_400(
        self, canary_hub: HubProcess, query: str
    ) -> None:
        """since, tail and from that are not numbers (or times) get a 400 with words."""
        status, response = await exchange(
            canary_hub,
            f"GET /api/sessions/c1/logs?{query} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {CANARY}\r\n\r\n".encode(),
        )
        assert 400 == status, response
        assert b'"code":"invalid_request"' in response
        assert "Traceback" not in logged(canary_hub)

    @pytest.mark.parametrize("value", ["\u00b2".encode(), b"\xb2", b"1" * 30])
    async def test_an_unreadable_last_event_id_is_a_400(
        self, canary_hub: HubProcess, value: bytes
    ) -> None:
        """An SSE client's Last-Event-ID that is not a seq gets a 400 with words."""
        status, response = await exchange(
            canary_hub,
            b"GET /api/sessions/c1/logs HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
            b"Authorization: Bearer "
            + CANARY.encode()
            + b"\r\nLast-Event-ID: "
            + value
            + b"\r\n\r\n",
        )
        assert 400 == status, response
        assert b"Last-Event-ID must be a seq" in response
        assert "Traceback" not in logged(canary_hub)


class TestUpgradeHeads:
    @pytest.mark.parametrize(
        ("path", "upgrade", "connection"),
        [
            ("/", b"websocket", b"\xff" + CANARY.encode()),
            ("/ws", b"\xffwebsocket", b"Upgrade"),
            ("/ws", b"websocket", b"Upgrade\xc2\xb2"),
        ],
    )
    async def test_a_broken_upgrade_head_gets_a_fixed_400(
        self, canary_hub: HubProcess, path: str, upgrade: bytes, connection: bytes
    ) -> None:
        """An upgrade aiohttp would refuse by quoting its headers gets fixed words instead."""
        status, response = await exchange(
            canary_hub,
            f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
            + b"Upgrade: "
            + upgrade
            + b"\r\nConnection: "
            + connection
            + b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Authorization: Bearer " + CANARY.encode() + b"\r\n\r\n",
        )
        assert 400 == status, response
        assert response.endswith(b"an upgrade needs Upgrade: websocket and Connection: Upgrade\n")
        assert CANARY.encode() not in response
        assert "Traceback" not in logged(canary_hub)


class TestDeepJson:
    @pytest.mark.parametrize(
        ("route", "body"),
        [
            ("messages", b'{"type":"log","data":{"level":"info","message":"m","metadata":'),
            ("commands", b'{"action":"go","then":'),
            ("commands", b""),
        ],
    )
    async def test_json_nested_too_deeply_is_a_400(
        self, canary_hub: HubProcess, route: str, body: bytes
    ) -> None:
        """A body nested 5,000 deep is refused as invalid JSON, not answered with a 500."""
        deep = b"[" * 5000 + b"]" * 5000
        payload = body + deep + b"}" * body.count(b"{") if body else deep
        status, response = await exchange(
            canary_hub,
            f"POST /api/sessions/deep/{route} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {CANARY}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload,
        )
        assert 400 == status, response
        assert b'"code":"invalid_json"' in response
        assert b"nested too deeply" in response
        assert "Traceback" not in logged(canary_hub)
