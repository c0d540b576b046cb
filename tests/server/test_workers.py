"""``--workers N``: several hub processes on one port, supervised, stopped together."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.engine.redis_servers import RedisServer
from tests.helpers import UNIT, HubProcess, receive_type, wait_for


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def _workers(hub: HubProcess) -> dict[int, int]:
    """Worker index -> pid of its latest start, from the supervisor's log."""
    latest: dict[int, int] = {}
    for event in hub.log_events():
        if event.get("event") == "worker_started":
            latest[int(event["worker"])] = int(event["pid"])
    return latest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_workers_share_the_port_restart_and_stop_together(
    tmp_path: Path, redis: RedisServer
) -> None:
    hub = HubProcess(
        tmp_path / "hub", args=["--redis", redis.url, "--workers", "2", "--history", "memory"]
    ).start()
    try:
        await wait_for(lambda: len(_workers(hub)) == 2, 20 * UNIT)
        async with aiohttp.ClientSession() as http:

            async def answers() -> bool:
                try:
                    async with http.get(hub.http + "/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(answers, 20 * UNIT)
            first = _workers(hub)
            os.kill(first[0], signal.SIGKILL)
            await wait_for(lambda: _workers(hub).get(0) not in (None, first[0]), 20 * UNIT)
            await wait_for(answers, 20 * UNIT)
            # Connections land on either worker; both are one hub through Redis.
            watchers = []
            for _ in range(6):
                ws = await http.ws_connect(hub.ws_url())
                await ws.send_str(json.dumps({"type": "subscribe", "containerID": "w"}))
                await receive_type(ws, "subscribed")
                watchers.append(ws)
            publisher = await http.ws_connect(hub.ws_url())
            for n in range(1, 51):
                await publisher.send_str(
                    json.dumps(
                        {
                            "type": "log",
                            "containerID": "w",
                            "id": n,
                            "data": {"level": "info", "message": str(n)},
                        }
                    )
                )
            for ws in watchers:
                got = [(await receive_type(ws, "log"))["seq"] for _ in range(50)]
                assert list(range(1, 51)) == got
                await ws.close()
            await publisher.close()
        pids = list(_workers(hub).values())
        started = time.monotonic()
        assert 0 == hub.stop()
        assert time.monotonic() - started < 15 * UNIT
        assert not any(_alive(pid) for pid in pids)
        assert any(e.get("event") == "worker_exited" for e in hub.log_events())
    finally:
        if hub.proc is not None and hub.proc.poll() is None:
            hub.kill()
