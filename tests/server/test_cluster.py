"""Two real ``tailhub serve --redis`` processes on one real ``redis-server`` act as one hub.

Publishers, subscribers and commands talk to either process over real sockets; what they see
must be what one hub would give them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.engine.redis_servers import RedisServer
from tests.helpers import TOKEN, UNIT, HubProcess, receive_type, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pair(
    redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, HubProcess]]:
    hubs = tuple(
        HubProcess(
            tmp_path_factory.mktemp(f"hub{i}"),
            args=["--redis", redis.url, "--max-sessions", "1000"],
        ).start()
        for i in range(2)
    )
    yield hubs  # type: ignore[misc]
    for hub in hubs:
        hub.stop()


@contextlib.contextmanager
def two_hubs(
    redis: RedisServer,
    factory: pytest.TempPathFactory,
    name: str,
    *args: str,
    url: str | None = None,
) -> Iterator[list[HubProcess]]:
    """Two hub processes on ``redis`` (reached at ``url``, default its own), given ``args``,
    each with a data directory of its own; at the end they and ``redis`` are stopped."""
    hubs: list[HubProcess] = []
    try:
        for i in range(2):
            directory = factory.mktemp(f"{name}{i}")
            hubs.append(HubProcess(directory, args=["--redis", url or redis.url, *args]).start())
        yield hubs
    finally:
        for hub in hubs:
            hub.stop()
        redis.stop()


def log(container: str, text: str, **extra: Any) -> str:
    return json.dumps(
        {"type": "log", "containerID": container, "data": {"level": "info", "message": text}}
        | extra
    )


async def subscribe(
    http: aiohttp.ClientSession, hub: HubProcess, container: str, **extra: Any
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await http.ws_connect(hub.ws_url())
    await ws.send_str(json.dumps({"type": "subscribe", "containerID": container} | extra))
    return ws, await receive_type(ws, "subscribed")


async def collect(
    ws: aiohttp.ClientWebSocketResponse, container: str, count: int
) -> list[dict[str, Any]]:
    """The next ``count`` log messages of ``container`` (others are skipped)."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(60 * UNIT):
        while len(got) < count:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            for line in msg.data.splitlines() or [msg.data]:
                data = json.loads(line)
                if data.get("type") == "log" and data.get("containerID") == container:
                    got.append(data)
    return got


async def publish(
    ws: aiohttp.ClientWebSocketResponse, container: str, numbers: range, producer: str = ""
) -> None:
    """Send every line, then wait for the ack of the last one."""
    extra = {"producer": producer} if producer else {}
    for start in range(numbers.start, numbers.stop, 500):
        batch = range(start, min(start + 500, numbers.stop))
        for n in batch:
            await ws.send_str(log(container, f"{producer}{n}", id=n, **extra))
        await asyncio.sleep(0)
    async with asyncio.timeout(60 * UNIT):
        while True:
            ack = await receive_type(ws, "ack", 60 * UNIT)
            if ack["id"] == numbers.stop - 1:
                return


async def test_every_subscriber_on_either_process_gets_each_message_once_in_order(
    http: aiohttp.ClientSession, pair: tuple[HubProcess, HubProcess]
) -> None:
    one, two = pair
    count = 10_000
    near, _ = await subscribe(http, one, "fleet-1")
    far, _ = await subscribe(http, two, "fleet-1")
    star, _ = await subscribe(http, two, "*")
    publisher = await http.ws_connect(one.ws_url())
    receivers = [collect(ws, "fleet-1", count) for ws in (near, far, star)]
    results = await asyncio.gather(publish(publisher, "fleet-1", range(1, count + 1)), *receivers)
    for got in results[1:]:
        assert list(range(1, count + 1)) == [m["seq"] for m in got]
        assert [f"{n}" for n in range(1, count + 1)] == [m["data"]["message"] for m in got]


async def test_two_publishers_of_one_container_on_two_processes(
    http: aiohttp.ClientSession, pair: tuple[HubProcess, HubProcess]
) -> None:
    one, two = pair
    each = 1000
    watcher, _ = await subscribe(http, two, "fleet-2")
    first = await http.ws_connect(one.ws_url())
    second = await http.ws_connect(two.ws_url())
    got, *_ = await asyncio.gather(
        collect(watcher, "fleet-2", 2 * each),
        publish(first, "fleet-2", range(1, each + 1), producer="a"),
        publish(second, "fleet-2", range(1, each + 1), producer="b"),
    )
    assert list(range(1, 2 * each + 1)) == [m["seq"] for m in got]
    for producer in ("a", "b"):
        mine = [m["data"]["message"] for m in got if m["data"]["message"].startswith(producer)]
        assert [f"{producer}{n}" for n in range(1, each + 1)] == mine
    async with http.get(f"{one.http}/api/sessions/fleet-2/logs", headers=AUTH) as response:
        history = [json.loads(line) for line in (await response.text()).splitlines()]
    assert [m["seq"] for m in got] == [m["seq"] for m in history]


async def test_a_message_read_after_a_live_subscribe_reaches_it(
    http: aiohttp.ClientSession, pair: tuple[HubProcess, HubProcess]
) -> None:
    """The hub reads a subscribe, then a log on the same connection: the subscriber gets the
    log live, though Redis stores it before the hub has the position it answers with."""
    one, _ = pair
    ws = await http.ws_connect(one.ws_url())
    for i in range(30):
        container = f"fleet-late-{i}"
        await ws.send_str(json.dumps({"type": "subscribe", "containerID": container}))
        await ws.send_str(log(container, "after"))
        reply = await receive_type(ws, "subscribed")
        got = await receive_type(ws, "log")
        assert (0, 1, "after") == (reply["seq"], got["seq"], got["data"]["message"])


async def test_resume_on_the_other_process_and_after_redis_lost_the_data(
    http: aiohttp.ClientSession, pair: tuple[HubProcess, HubProcess], redis: RedisServer
) -> None:
    one, two = pair
    publisher = await http.ws_connect(one.ws_url())
    await publish(publisher, "fleet-3", range(1, 6))
    first, reply = await subscribe(http, two, "fleet-3", since=2)
    assert (5, False) == (reply["seq"], reply["truncated"])
    assert [3, 4, 5] == [m["seq"] for m in await collect(first, "fleet-3", 3)]
    epoch = reply["epoch"]
    redis.command("FLUSHALL")
    again = await http.ws_connect(one.ws_url())
    await publish(again, "fleet-3", range(6, 8))
    resumed, told = await subscribe(http, two, "fleet-3", since=5, epoch=epoch)
    assert told["truncated"]
    assert told["epoch"] != epoch
    assert [1, 2] == [m["seq"] for m in await collect(resumed, "fleet-3", 2)]


async def test_a_command_through_one_process_reaches_the_container_on_the_other(
    http: aiohttp.ClientSession, pair: tuple[HubProcess, HubProcess]
) -> None:
    one, two = pair
    container = await http.ws_connect(one.ws_url())
    await publish(container, "fleet-4", range(1, 2))
    operator = await http.ws_connect(two.ws_url())
    command = {"type": "command", "containerID": "fleet-4", "data": {"action": "input"}}
    await operator.send_str(json.dumps(command | {"data": {"action": "input", "text": "hi"}}))
    sent = await receive_type(operator, "command_sent")
    received = await receive_type(container, "command")
    assert 1 == sent["data"]["delivered"]
    assert {"action": "input", "text": "hi"} == received["data"]
    await container.close()
    await operator.send_str(json.dumps(command | {"data": {"action": "input", "text": "x"}}))
    refused = await receive_type(operator, "error")
    assert "no connection" in refused["data"]["error"]


async def test_attention_is_pushed_to_subscribers_of_the_other_process(
    http: aiohttp.ClientSession, pair: tuple[HubProcess, HubProcess]
) -> None:
    """An agent on one process starts waiting for a person: viewers of its container and of
    "*" on the other process get the ``attention`` push, once."""
    one, two = pair
    viewer, _ = await subscribe(http, two, "fleet-att")
    everything, _ = await subscribe(http, two, "*")
    agent = await http.ws_connect(one.ws_url())
    # A first line that both viewers receive: their subscriptions on Redis are up.
    await publish(agent, "fleet-att", range(1, 2))
    for ws in (viewer, everything):
        await collect(ws, "fleet-att", 1)
    request = {
        "type": "control_request",
        "request_id": "req_7",
        "request": {"subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "ls"}},
    }
    data = {
        "level": "warn",
        "message": "permission request: Bash: ls",
        "metadata": {"agent": "claude", "event": request},
    }
    await agent.send_str(json.dumps({"type": "log", "containerID": "fleet-att", "data": data}))
    for ws in (viewer, everything):
        pushed = await receive_type(ws, "attention", 20 * UNIT)
        assert ("fleet-att", "waiting", "permission") == (
            pushed["containerID"],
            pushed["data"]["state"],
            pushed["data"]["reason"],
        )
    # Once: a later line arrives with no second push before it.
    await publish(agent, "fleet-att", range(2, 3))
    for ws in (viewer, everything):
        async with asyncio.timeout(20 * UNIT):
            seen: list[dict[str, Any]] = []
            while not any(m["type"] == "log" and m["data"]["message"] == "2" for m in seen):
                text = (await ws.receive()).data
                seen += [json.loads(line) for line in text.splitlines()]
            assert [] == [m for m in seen if m["type"] == "attention"]
    for ws in (viewer, everything, agent):
        await ws.close()


async def test_sessions_are_the_same_on_both_processes(
    http: aiohttp.ClientSession, pair: tuple[HubProcess, HubProcess]
) -> None:
    one, two = pair
    running = await http.ws_connect(one.ws_url())
    await publish(running, "fleet-5", range(1, 3))
    done = await http.ws_connect(two.ws_url())
    await publish(done, "fleet-6", range(1, 2))
    await done.send_str(
        json.dumps({"type": "complete", "containerID": "fleet-6", "data": {"exitCode": 0}})
    )

    def mine(listing: Any) -> dict[str, Any]:
        rows = listing["sessions"] if isinstance(listing, dict) else listing
        return {
            row["containerID"]: row for row in rows if row["containerID"] in ("fleet-5", "fleet-6")
        }

    async def settled() -> bool:
        async with http.get(f"{two.http}/api/sessions/fleet-6", headers=AUTH) as response:
            return (await response.json()).get("status") == "completed"

    await wait_for(settled)
    listings = []
    for hub in pair:
        async with http.get(f"{hub.http}/api/sessions?limit=1000", headers=AUTH) as response:
            listings.append(mine(await response.json()))
    assert listings[0] == listings[1]
    assert ("running", "completed") == (
        listings[0]["fleet-5"]["status"],
        listings[0]["fleet-6"]["status"],
    )


async def test_max_sessions_holds_across_processes(
    http: aiohttp.ClientSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    redis = RedisServer(tmp_path_factory.mktemp("limit-redis")).start()
    with two_hubs(redis, tmp_path_factory, "limit", "--max-sessions", "2") as hubs:
        one, two = hubs
        for hub, name in ((one, "s1"), (two, "s2")):
            ws = await http.ws_connect(hub.ws_url())
            await publish(ws, name, range(1, 2))
            await ws.close()
        for hub in hubs:
            ws = await http.ws_connect(hub.ws_url())
            await ws.send_str(log("s3", "one too many", id=1))
            refused = await receive_type(ws, "error")
            assert "max_sessions" == refused["data"]["code"]
            await ws.close()


async def test_redis_killed_and_restarted_mid_stream_loses_no_acked_line(
    http: aiohttp.ClientSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """AOF on: every acked line is kept once, and the subscriber on the other process gets
    every kept line once, in order, with no gap."""
    redis = RedisServer(tmp_path_factory.mktemp("aof-redis"), appendonly=True).start()
    with two_hubs(redis, tmp_path_factory, "aof") as hubs:
        one, two = hubs
        watcher, _ = await subscribe(http, two, "crash", since=0)
        publisher = await http.ws_connect(one.ws_url())
        acked: list[int] = []
        refused = 0
        n = 1
        while n <= 300:
            await publisher.send_str(log("crash", f"line {n}", id=n))
            reply = await answer_to(publisher, n)
            if reply["type"] == "ack":
                acked.append(n)
                n += 1
            else:
                assert "unavailable" == reply["data"]["code"], reply
                refused += 1
                if redis.process is not None and redis.process.poll() is not None:
                    redis.start()
                await wait_until_ready(http, one)
            if n == 100 and refused == 0:
                redis.kill()
        assert refused >= 1
        assert list(range(1, 301)) == acked
        async with http.get(f"{one.http}/api/sessions/crash/logs", headers=AUTH) as response:
            history = [json.loads(line) for line in (await response.text()).splitlines()]
        texts = [m["data"]["message"] for m in history]
        assert [f"line {n}" for n in range(1, 301)] == texts
        got = await collect(watcher, "crash", len(history))
        assert [m["seq"] for m in history] == [m["seq"] for m in got]
        await watcher.close()
        await publisher.close()


async def answer_to(ws: aiohttp.ClientWebSocketResponse, id: int) -> dict[str, Any]:
    """The (cumulative) ack covering ``id``, or the error refusing it; others are skipped."""
    async with asyncio.timeout(30 * UNIT):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data.get("type") == "ack" and data["id"] >= id:
                return dict(data)
            if data.get("type") == "error" and data.get("id") == id:
                return dict(data)


async def wait_until_ready(http: aiohttp.ClientSession, hub: HubProcess) -> None:
    async def ready() -> bool:
        async with http.get(f"{hub.http}/readyz") as response:
            return response.status == 200

    await wait_for(ready, 30 * UNIT)


async def test_the_redis_password_is_never_logged_and_readyz_tells_redis_is_gone(
    http: aiohttp.ClientSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With a password in the URL, no line of the hub's log holds it, even when Redis goes."""
    password = "pw-never-in-logs"
    redis = RedisServer(
        tmp_path_factory.mktemp("auth-redis"), extra=("--requirepass", password)
    ).start()
    url = f"redis://:{password}@127.0.0.1:{redis.port}/0"
    hub = HubProcess(tmp_path_factory.mktemp("auth-hub"), args=["--redis", url]).start()
    try:
        ws = await http.ws_connect(hub.ws_url())
        await publish(ws, "secret", range(1, 3))
        redis.kill()
        await ws.send_str(log("secret", "refused", id=3))
        refused = await answer_to(ws, 3)
        assert "unavailable" == refused["data"]["code"]
        assert password not in json.dumps(refused)
        async with http.get(f"{hub.http}/readyz", headers=AUTH) as response:
            body = await response.text()
        assert 503 == response.status
        assert password not in body
        await ws.close()
    finally:
        hub.stop()
        redis.stop()
    text = hub.log()
    assert "engine_unavailable" in text
    assert password not in text


async def test_two_processes_on_a_unix_socket_with_the_password_in_the_query(
    http: aiohttp.ClientSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``unix:///path?db=N&password=...``: two processes on Redis's Unix socket are one hub,
    and the password given as a query parameter is in no line of their logs either."""
    password = "pw-in-the-query"
    directory = tmp_path_factory.mktemp("unix-redis")
    socket_path = directory / "redis.sock"
    redis = RedisServer(
        directory,
        extra=(
            "--requirepass",
            password,
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
        ),
    ).start()
    url = f"unix://{socket_path}?db=0&password={password}"
    with two_hubs(redis, tmp_path_factory, "unix-hub", url=url) as hubs:
        one, two = hubs
        watcher, _ = await subscribe(http, two, "sock")
        publisher = await http.ws_connect(one.ws_url())
        got, _ = await asyncio.gather(
            collect(watcher, "sock", 50), publish(publisher, "sock", range(1, 51))
        )
        assert list(range(1, 51)) == [m["seq"] for m in got]
        await watcher.close()
        await publisher.close()
    for hub in hubs:
        text = hub.log()
        assert "hub_started" in text
        assert password not in text


async def test_a_timed_out_session_ends_once_across_processes(
    http: aiohttp.ClientSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Both processes look for timed-out sessions; one ends each, with one final message."""
    redis = RedisServer(tmp_path_factory.mktemp("timeout-redis")).start()
    with two_hubs(redis, tmp_path_factory, "timeout", "--session-timeout", "600") as hubs:
        one, two = hubs
        ws = await http.ws_connect(one.ws_url())
        await publish(ws, "quiet", range(1, 3))
        await ws.close()

        async def ended_everywhere() -> bool:
            for hub in hubs:
                async with http.get(f"{hub.http}/api/sessions/quiet", headers=AUTH) as response:
                    if (await response.json()).get("endReason") != "timeout":
                        return False
            return True

        await wait_for(ended_everywhere, 10 * UNIT)
        async with http.get(f"{two.http}/api/sessions/quiet/logs", headers=AUTH) as response:
            history = [json.loads(line) for line in (await response.text()).splitlines()]
        assert ["log", "log", "status"] == [m["type"] for m in history]
        assert [1, 2, 3] == [m["seq"] for m in history]


async def test_sessions_survive_a_restart_of_every_hub(
    http: aiohttp.ClientSession, pair: tuple[HubProcess, HubProcess]
) -> None:
    async def listing(hub: HubProcess) -> dict[str, Any]:
        async with http.get(f"{hub.http}/api/sessions?limit=1000", headers=AUTH) as response:
            body = await response.json()
        rows = body["sessions"] if isinstance(body, dict) else body
        # publishers counts connections now open: not something a restart keeps
        return {row["containerID"]: row | {"publishers": None} for row in rows}

    ws = await http.ws_connect(pair[0].ws_url())
    await publish(ws, "kept", range(1, 4))
    await ws.close()
    before = await listing(pair[0])
    for hub in pair:
        hub.stop()
    for hub in pair:
        hub.start()
    after = [await listing(hub) for hub in pair]
    assert before["kept"] == after[0]["kept"] == after[1]["kept"]
    assert before.keys() == after[0].keys() == after[1].keys()
