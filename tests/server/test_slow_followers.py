"""HTTP followers that stop reading are cut off as slow WebSocket readers are, over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator

import aiohttp
import pytest

from tests.helpers import TOKEN, UNIT, HubProcess, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def hub_sockets(hub: HubProcess) -> int:
    """How many sockets the hub process holds open (its listener, its clients, ...)."""
    assert hub.proc is not None
    fds = f"/proc/{hub.proc.pid}/fd"
    count = 0
    for fd in os.listdir(fds):
        try:
            count += os.readlink(f"{fds}/{fd}").startswith("socket:")
        except FileNotFoundError:
            continue  # closed meanwhile
    return count


@pytest.fixture
def small_queue_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("slow"), args=["--max-queue", "64KiB"])
    hub.start()
    yield hub
    hub.stop()


def follower(hub: HubProcess, container: str, sse: bool) -> socket.socket:
    """A follow request on a socket with a small receive buffer that is then never read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", hub.port))
    accept = "Accept: text/event-stream\r\n" if sse else ""
    sock.sendall(
        f"GET /api/sessions/{container}/logs?follow=1 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\n{accept}\r\n".encode()
    )
    return sock


@pytest.mark.parametrize("sse", [False, True], ids=["ndjson", "sse"])
async def test_a_follower_that_stops_reading_is_cut_off(
    small_queue_hub: HubProcess, http: aiohttp.ClientSession, sse: bool
) -> None:
    """Past --max-queue the hub closes the follower, and lets its connection go in the grace."""
    hub = small_queue_hub
    container = f"flood-{int(sse)}"
    line = json.dumps(
        {"type": "log", "containerID": container, "data": {"level": "info", "message": "x" * 1000}}
    )
    async with http.ws_connect(hub.ws_url()) as publisher:
        await publisher.send_str(line)
        baseline = hub_sockets(hub)
        followers = [follower(hub, container, sse) for _ in range(3)]
        try:
            async with asyncio.timeout(20 * UNIT):
                await wait_for(lambda: hub_sockets(hub) >= baseline + len(followers))
                # 200 KB at a time, three times the bound, until the hub holds none of them.
                while hub_sockets(hub) > baseline:
                    for _ in range(200):
                        await publisher.send_str(line)
                    await asyncio.sleep(0.1)
            async with http.get(f"{hub.http}/metrics", headers=AUTH) as response:
                text = await response.text()
        finally:
            for sock in followers:
                sock.close()
    closes = [line for line in text.splitlines() if line.startswith("tailhub_slow_closes_total")]
    assert ["tailhub_slow_closes_total 3.0"] == closes
