"""Connection budgets and HTTP timeouts, over real sockets: no client locks the others out.

Token-less WebSockets have their own budget, apart from ``--max-connections``; one address
may hold only so many connections; an idle or half-sent request head and a trickled body are
given up on.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import aiohttp
import pytest

from tests.helpers import TOKEN, UNIT, HubProcess, client_frame, raw_websocket, wait_for

UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def status_of(hub: HubProcess, request: bytes) -> tuple[int, bytes]:
    """The status and the body of the response to one raw request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5 * UNIT)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), 5 * UNIT)
        return int(head.split()[1]), body
    finally:
        writer.close()


async def ends(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the hub sends until it closes the connection (fails after ``timeout``)."""
    return await asyncio.wait_for(reader.read(), timeout)


@pytest.fixture
def budget_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(
        tmp_path_factory.mktemp("budget"),
        args=[
            "--max-connections",
            "4",
            "--max-unauthenticated",
            "3",
            "--auth-timeout",
            "60s",
        ],
    )
    hub.start()
    yield hub
    hub.stop()


class TestUnauthenticatedBudget:
    async def test_token_less_squatters_cannot_take_the_places_of_token_holders(
        self, budget_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """Past --max-unauthenticated a token-less upgrade gets 503; clients with it still fit."""
        squatters = [raw_websocket(budget_hub.port, "/") for _ in range(3)]
        try:
            status, body = await status_of(budget_hub, UPGRADE.format(path="/").encode())
            assert 503 == status
            assert b"TAILHUB_MAX_UNAUTHENTICATED" in body
            clients = [await http.ws_connect(budget_hub.ws_url()) for _ in range(4)]
            try:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(budget_hub.ws_url())
                assert 503 == refused.value.status
            finally:
                for client in clients:
                    await client.close()
        finally:
            for sock in squatters:
                sock.close()

    async def test_a_squatter_that_authenticates_leaves_the_token_less_budget(
        self, budget_hub: HubProcess
    ) -> None:
        """Once a token-less connection sends its token, another token-less one fits."""
        squatters = [raw_websocket(budget_hub.port, "/") for _ in range(3)]
        try:
            squatters[0].sendall(client_frame(0x1, f'{{"type":"auth","token":"{TOKEN}"}}'.encode()))
            squatters[0].recv(1024)  # {"type":"authenticated"}
            squatters.append(raw_websocket(budget_hub.port, "/"))
        finally:
            for sock in squatters:
                sock.close()


class TestPerAddress:
    async def test_one_address_holds_at_most_max_connections_per_ip(
        self, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """Every connection counts, idle or not; past the limit: 503 at once; a freed place
        is free again."""
        hub = HubProcess(
            tmp_path_factory.mktemp("per-ip"), args=["--max-connections-per-ip", "3"]
        ).start()
        try:
            held = [socket.create_connection(("127.0.0.1", hub.port)) for _ in range(3)]
            try:
                status, body = await status_of(hub, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert 503 == status
                assert b"TAILHUB_MAX_CONNECTIONS_PER_IP" in body
                held.pop().close()

                async def healthz_answers() -> bool:
                    status, _ = await status_of(hub, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    return status == 200

                await wait_for(healthz_answers)
            finally:
                for sock in held:
                    sock.close()
        finally:
            hub.stop()


class TestHttpTimeouts:
    @pytest.fixture
    def quick_hub(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
        hub = HubProcess(
            tmp_path_factory.mktemp("timeouts"),
            args=["--keepalive-timeout", "500ms", "--body-timeout", "500ms"],
        )
        hub.start()
        yield hub
        hub.stop()

    async def test_an_idle_kept_alive_connection_is_closed(self, quick_hub: HubProcess) -> None:
        """After a response, a connection that sends nothing is closed after the keep-alive."""
        reader, writer = await asyncio.open_connection("127.0.0.1", quick_hub.port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            rest = await ends(reader, 10 * UNIT)
            assert rest.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    async def test_a_slow_second_request_head_is_given_up_on(self, quick_hub: HubProcess) -> None:
        """A kept-alive connection that sends half a head is closed, not held for ever."""
        reader, writer = await asyncio.open_connection("127.0.0.1", quick_hub.port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.wait_for(reader.readuntil(b"}"), 5 * UNIT)
            writer.write(b"GET /healthz HTTP/1.1\r\nHo")
            assert b"" == await ends(reader, 10 * UNIT)
        finally:
            writer.close()

    async def test_a_trickled_body_gets_408_and_nothing_is_stored(
        self, quick_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A POST whose body does not arrive within --body-timeout gets 408 and is closed."""
        reader, writer = await asyncio.open_connection("127.0.0.1", quick_hub.port)
        try:
            writer.write(
                b"POST /api/sessions/slow-body/messages HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                b"Content-Length: 1000\r\n\r\n" + b'{"type":"log",'
            )
            response = await ends(reader, 10 * UNIT)
            assert response.startswith(b"HTTP/1.1 408")
            assert b'"code":"request_timeout"' in response
            assert b"TAILHUB_BODY_TIMEOUT" in response
        finally:
            writer.close()
        async with http.get(
            f"{quick_hub.http}/api/sessions/slow-body", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as resp:
            assert 404 == resp.status


class TestRequestMessages:
    async def test_a_body_with_too_many_messages_gets_413_and_stores_nothing(
        self, tmp_path_factory: pytest.TempPathFactory, http: aiohttp.ClientSession
    ) -> None:
        """Past --max-request-messages the whole request is refused with words; at it, taken."""
        hub = HubProcess(
            tmp_path_factory.mktemp("batch"), args=["--max-request-messages", "100"]
        ).start()
        try:
            url = f"{hub.http}/api/sessions/batch/messages"
            headers = {"Authorization": f"Bearer {TOKEN}"}
            line = b'{"type":"log","data":{"level":"info","message":"m"}}'
            async with http.post(url, data=b"\n".join([line] * 101), headers=headers) as resp:
                assert 413 == resp.status
                refusal = (await resp.json())["data"]
                assert ("too_large", 101) == (refusal["code"], refusal["line"])
                assert "TAILHUB_MAX_REQUEST_MESSAGES" in refusal["error"]
            async with http.get(f"{hub.http}/api/sessions/batch", headers=headers) as resp:
                assert 404 == resp.status
            async with http.post(url, data=b"\n".join([line] * 100), headers=headers) as resp:
                assert 200 == resp.status
                assert list(range(1, 101)) == (await resp.json())["seq"]
        finally:
            hub.stop()


class TestHeadSize:
    @pytest.fixture
    def small_head_hub(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
        hub = HubProcess(tmp_path_factory.mktemp("head"), args=["--max-head", "8KiB"])
        hub.start()
        yield hub
        hub.stop()

    @pytest.mark.parametrize("upgrade", [False, True], ids=["api", "upgrade"])
    async def test_a_first_head_over_max_head_gets_431(
        self, small_head_hub: HubProcess, upgrade: bool
    ) -> None:
        """A head over --max-head is refused with 431, complete or not; one under it is served."""
        hub = small_head_hub
        line = "X-Filler: " + "f" * 100 + "\r\n"
        start = UPGRADE.format(path="/")[:-2] if upgrade else "GET /healthz HTTP/1.1\r\nHost: x\r\n"
        for head in (start + line * 90 + "\r\n", start + line * 90):  # complete, and no end
            status, body = await status_of(hub, head.encode())
            assert status == 431, body
            assert b"TAILHUB_MAX_HEAD" in body
        if not upgrade:
            status, _ = await status_of(hub, (start + line * 60 + "\r\n").encode())
            assert status == 200
