"""``tailhub migrate``: a real SQLite hub's history, sessions and records, copied into a real
``redis-server`` and then served by a hub on Redis as if nothing had moved."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from tests.agents import streams
from tests.engine.redis_servers import RedisServer
from tests.helpers import CANARY_SECRET, TOKEN, UNIT, HubProcess, receive_type

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def migrate(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tailhub", "migrate", "--redis", url, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        check=False,
    )


def log(container: str, n: int, producer: str = "p") -> str:
    data = {"level": "info", "message": f"line {n}"}
    return json.dumps(
        {"type": "log", "containerID": container, "id": n, "producer": producer, "data": data}
    )


async def acked(ws: aiohttp.ClientWebSocketResponse, last_id: int) -> dict[str, Any]:
    """Wait for the ack of ``last_id``; return it."""
    while True:
        ack = await receive_type(ws, "ack", 10 * UNIT)
        if ack["id"] == last_id:
            return dict(ack)


async def history(http: aiohttp.ClientSession, hub: HubProcess, container: str) -> list[bytes]:
    async with http.get(f"{hub.http}/api/sessions/{container}/logs", headers=AUTH) as resp:
        assert 200 == resp.status
        return (await resp.read()).splitlines()


async def session(http: aiohttp.ClientSession, hub: HubProcess, container: str) -> Any:
    async with http.get(f"{hub.http}/api/sessions/{container}", headers=AUTH) as resp:
        assert 200 == resp.status
        return await resp.json()


async def test_history_positions_sessions_and_records_carry_over(
    http: aiohttp.ClientSession, tmp_path: Path, redis: RedisServer
) -> None:
    old = HubProcess(tmp_path / "sqlite").start()
    ws = await http.ws_connect(old.ws_url())
    for n in range(1, 6):
        await ws.send_str(log("mig-a", n))
    await acked(ws, 5)
    await ws.send_str(
        json.dumps({"type": "complete", "containerID": "mig-b", "data": {"exitCode": 3}})
    )
    for n, (event, words, level) in enumerate(streams.CLAUDE, 1):  # an agent's session
        metadata = {"agent": "claude", "event": event}
        data = {"level": level, "message": words, "metadata": metadata}
        frame = {"type": "log", "containerID": "mig-c", "id": n, "data": data}
        await ws.send_str(json.dumps(frame))
    await acked(ws, len(streams.CLAUDE))
    subscriber = await http.ws_connect(old.ws_url())
    await subscriber.send_str(json.dumps({"type": "subscribe", "containerID": "mig-a"}))
    epoch = (await receive_type(subscriber, "subscribed"))["epoch"]
    until = int(time.time()) + 600
    revoked = jwt.encode(
        {"role": "viewer", "containers": ["*"], "exp": until, "jti": "gone"},
        CANARY_SECRET,
        algorithm="HS256",
    )
    async with http.post(
        f"{old.http}/api/tokens/revoked", json={"jti": "gone"}, headers=AUTH
    ) as resp:
        assert 200 == resp.status
    lines = await history(http, old, "mig-a")
    before = (await session(http, old, "mig-b"))["status"]
    await ws.close()
    await subscriber.close()
    assert 0 == old.stop()

    done = migrate(old.data_dir, redis.url)
    assert 0 == done.returncode, done.stderr
    messages = 6 + len(streams.CLAUDE)
    assert f"3 containers, {messages} messages, 3 sessions" in done.stdout

    hub = HubProcess(tmp_path / "redis-hub", args=["--redis", redis.url]).start()
    try:
        assert lines == await history(http, hub, "mig-a")
        ended = await session(http, hub, "mig-b")
        assert (before, 3, False) == (ended["status"], ended["exitCode"], ended["active"])
        assert streams.CLAUDE_SUMMARY == (await session(http, hub, "mig-c"))["agent"]
        resumed = await http.ws_connect(hub.ws_url())
        await resumed.send_str(
            json.dumps({"type": "subscribe", "containerID": "mig-a", "since": 3, "epoch": epoch})
        )
        reply = await receive_type(resumed, "subscribed")
        assert (5, epoch, False) == (reply["seq"], reply["epoch"], reply["truncated"])
        assert [4, 5] == [(await receive_type(resumed, "log"))["seq"] for _ in range(2)]
        again = await http.ws_connect(hub.ws_url())
        await again.send_str(log("mig-a", 5))  # a resend of a message already stored
        await again.send_str(log("mig-a", 6))
        await acked(again, 6)
        got = await receive_type(resumed, "log")
        assert (6, "line 6") == (got["seq"], got["data"]["message"])
        async with http.get(
            f"{hub.http}/api/whoami", headers={"Authorization": f"Bearer {revoked}"}
        ) as resp:
            assert 401 == resp.status
    finally:
        hub.stop()

    refused = migrate(old.data_dir, redis.url)
    assert 1 == refused.returncode
    assert "already holds 3 of the containers" in refused.stderr
    assert "nothing was written" in refused.stderr


async def test_a_running_hub_or_a_missing_history_is_refused_with_one_line(
    tmp_path: Path, redis: RedisServer
) -> None:
    missing = migrate(tmp_path / "nothing", redis.url)
    assert (1, 1) == (missing.returncode, len(missing.stderr.strip().splitlines()))
    assert "no history to migrate" in missing.stderr
    running = HubProcess(tmp_path / "running").start()
    try:
        busy = await asyncio.to_thread(migrate, running.data_dir, redis.url)
    finally:
        running.stop()
    assert (1, 1) == (busy.returncode, len(busy.stderr.strip().splitlines())), busy.stderr
    assert "cannot open" in busy.stderr
    assert b":0" == redis.command("DBSIZE").strip()  # nothing written
