"""History, replay and nothing lost, over real sockets against a real hub process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import UNIT, HubProcess, receive_json, receive_type, wait_for

WS = aiohttp.ClientWebSocketResponse


def log(container: str, message: str, **extra: Any) -> str:
    data = {"level": "info", "message": message}
    return json.dumps({"type": "log", "containerID": container, "data": data, **extra})


async def publish(ws: WS, container: str, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        await ws.send_str(log(container, str(i)))


async def backlog(
    http: aiohttp.ClientSession, hub: HubProcess, container: str, **options: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Subscribe with ``options``; the ``subscribed`` reply and the backlog it announces."""
    ws = await http.ws_connect(hub.ws_url())
    await ws.send_str(json.dumps({"type": "subscribe", "containerID": container, **options}))
    reply = await receive_type(ws, "subscribed")
    messages = []
    if reply["seq"]:
        while not messages or messages[-1]["seq"] < reply["seq"]:
            messages.append(await receive_json(ws))
    await ws.close()
    return reply, messages


async def sessions(ws: WS) -> list[dict[str, Any]]:
    await ws.send_str(json.dumps({"type": "sessions"}))
    listed: list[dict[str, Any]] = (await receive_type(ws, "sessions"))["data"]["sessions"]
    return listed


class TestBacklog:
    async def test_since_tail_from(self, http: aiohttp.ClientSession, hub: HubProcess) -> None:
        """since, tail and from select exactly the kept messages they name, in order."""
        pub = await http.ws_connect(hub.ws_url())
        await publish(pub, "hist", 9)
        await pub.send_str(log("hist", "9", id=1))
        await receive_type(pub, "ack")  # stored and shown: a subscriber now reads it as history
        reply, got = await backlog(http, hub, "hist", since=0)
        assert (10, 1, False) == (reply["seq"], reply["firstSeq"], reply["truncated"])
        assert list(range(1, 11)) == [m["seq"] for m in got]
        assert [str(i) for i in range(10)] == [m["data"]["message"] for m in got]
        _, got = await backlog(http, hub, "hist", since=7)
        assert [8, 9, 10] == [m["seq"] for m in got]
        _, got = await backlog(http, hub, "hist", tail=4)
        assert [7, 8, 9, 10] == [m["seq"] for m in got]
        cut = datetime.now(UTC).isoformat()
        await publish(pub, "hist", 2, start=10)
        _, got = await backlog(http, hub, "hist", **{"from": cut})
        assert [11, 12] == [m["seq"] for m in got]

    async def test_live_only_without_options(
        self, http: aiohttp.ClientSession, hub: HubProcess
    ) -> None:
        """A subscribe with no since/tail/from gets no backlog, then live messages."""
        pub = await http.ws_connect(hub.ws_url())
        await publish(pub, "live", 3)
        viewer = await http.ws_connect(hub.ws_url())
        await viewer.send_str(json.dumps({"type": "subscribe", "containerID": "live"}))
        assert 3 == (await receive_type(viewer, "subscribed"))["seq"]
        await publish(pub, "live", 1, start=3)
        assert 4 == (await receive_json(viewer))["seq"]

    async def test_subscribe_racing_a_publisher(
        self, http: aiohttp.ClientSession, hub: HubProcess
    ) -> None:
        """Subscribing while a container publishes at full speed: every seq exactly once."""
        total = 4000
        pub = await http.ws_connect(hub.ws_url())
        publisher = asyncio.create_task(publish(pub, "race", total))
        while True:  # join while the publisher is in full flow
            listed = await sessions(pub)
            if listed and listed[0]["lastSeq"] >= 200:
                break
        viewer = await http.ws_connect(hub.ws_url())
        await viewer.send_str(json.dumps({"type": "subscribe", "containerID": "race", "since": 0}))
        reply = await receive_type(viewer, "subscribed")
        assert 0 < reply["seq"]
        seqs = []
        while len(seqs) < total:
            message = await receive_json(viewer, timeout=20 * UNIT)
            assert "log" == message["type"]
            seqs.append(message["seq"])
        await publisher
        assert list(range(1, total + 1)) == seqs


class TestRestart:
    async def test_sigkill_keeps_history_and_seq(
        self, http: aiohttp.ClientSession, hub: HubProcess
    ) -> None:
        """After SIGKILL and a restart on the same data dir: all acked history; seq goes on
        past every seq that may have been shown, under a new epoch."""
        pub = await http.ws_connect(hub.ws_url())
        for i in range(1, 301):
            await pub.send_str(log("crash", str(i), id=i))
        while (await receive_type(pub, "ack"))["id"] < 300:
            pass
        before, _ = await backlog(http, hub, "crash", tail=1)
        hub.kill()
        hub.start()
        reply, got = await backlog(http, hub, "crash", since=0)
        assert 300 <= reply["seq"]
        assert before["epoch"] != reply["epoch"]
        assert list(range(1, 301)) == [m["seq"] for m in got]
        pub = await http.ws_connect(hub.ws_url())
        await pub.send_str(log("crash", "after"))
        after, got = await backlog(http, hub, "crash", since=300)
        assert ["after"] == [m["data"]["message"] for m in got]
        assert got[0]["seq"] > 300
        assert after["epoch"] != before["epoch"]

    async def test_repeated_id_stored_and_routed_once(
        self, http: aiohttp.ClientSession, hub: HubProcess
    ) -> None:
        """A resent id is acked again but neither stored nor routed twice, across a restart."""
        viewer = await http.ws_connect(hub.ws_url(containerID="dup"))
        await receive_type(viewer, "subscribed")
        pub = await http.ws_connect(hub.ws_url())
        for i in (1, 2, 2, 1, 3):
            await pub.send_str(log("dup", f"m{i}", id=i, producer="p1"))
        ids = []  # acks are cumulative: several may be folded into one
        while not ids or ids[-1] < 3:
            ids.append((await receive_type(pub, "ack"))["id"])
        assert ids == sorted(ids)
        assert ["m1", "m2", "m3"] == [
            (await receive_json(viewer))["data"]["message"] for _ in range(3)
        ]
        hub.kill()
        hub.start()
        pub = await http.ws_connect(hub.ws_url())
        await pub.send_str(log("dup", "m3 again", id=3, producer="p1"))
        await pub.send_str(log("dup", "m4", id=4, producer="p1"))
        await pub.send_str(log("dup", "other producer", id=1, producer="p2"))
        acked: dict[str, int] = {}  # cumulative acks: the repeat may be folded into id 4's
        while acked.get("p1", 0) < 4 or acked.get("p2", 0) < 1:
            ack = await receive_type(pub, "ack")
            acked[ack["producer"]] = max(ack["id"], acked.get(ack["producer"], 0))
        assert {"p1": 4, "p2": 1} == acked
        _, got = await backlog(http, hub, "dup", since=0)
        assert ["m1", "m2", "m3", "m4", "other producer"] == [m["data"]["message"] for m in got]


class TestRetention:
    async def test_truncated_is_said(self, http: aiohttp.ClientSession, tmp_path: Path) -> None:
        """A since older than retention is told so in 'subscribed', never a silent gap."""
        hub = HubProcess(
            tmp_path / "h", args=["--retention-messages", "5", "--retention-age", "10s"]
        ).start()
        try:
            pub = await http.ws_connect(hub.ws_url())
            await publish(pub, "kept", 12)

            async def pruned() -> bool:  # retention runs in the background
                return bool((await sessions(pub))[0]["firstSeq"] >= 8)

            await wait_for(pruned, 20 * UNIT)
            reply, got = await backlog(http, hub, "kept", since=2)
            assert (12, True) == (reply["seq"], reply["truncated"])
            assert reply["firstSeq"] == got[0]["seq"]
            assert list(range(reply["firstSeq"], 13)) == [m["seq"] for m in got]
            assert len(got) >= 5
            reply, _ = await backlog(http, hub, "kept", since=11)
            assert not reply["truncated"]
        finally:
            hub.stop()

    async def test_listing_shows_store_state(
        self, http: aiohttp.ClientSession, hub: HubProcess
    ) -> None:
        """sessions shows total messages, first and last seq and bytes kept."""
        pub = await http.ws_connect(hub.ws_url())
        await publish(pub, "counted", 4)
        listed = await sessions(pub)
        mine = next(s for s in listed if s["containerID"] == "counted")
        assert (4, 1, 4) == (mine["messages"], mine["firstSeq"], mine["lastSeq"])
        assert mine["bytes"] > 4 * 50


class TestDataDir:
    def run(self, data_dir: Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PORT", "AUTH_TOKEN")}
        env.update(TAILHUB_DATA_DIR=str(data_dir), AUTH_TOKEN="t", PORT="0", HOST="127.0.0.1")
        return subprocess.run(
            [sys.executable, "-m", "tailhub", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30 * UNIT,
            check=False,
        )

    def test_corrupt_database_stops_start_up(self, tmp_path: Path) -> None:
        """A corrupt history file stops start-up with one clear line naming it."""
        tmp_path.joinpath("history.db").write_bytes(b"this is not a database" * 100)
        result = self.run(tmp_path)
        assert 0 != result.returncode
        assert "history.db" in result.stderr
        assert "Traceback" not in result.stderr

    def test_second_hub_on_the_same_data_dir(self, hub: HubProcess) -> None:
        """A second hub on a data directory in use stops with one clear line."""
        result = self.run(hub.data_dir)
        assert 0 != result.returncode
        assert "in use by another tailhub hub" in result.stderr
        assert "Traceback" not in result.stderr

    def test_data_dir_that_is_a_file(self, tmp_path: Path) -> None:
        """A data directory that is a file stops start-up with a clear message."""
        path = tmp_path / "file"
        path.write_text("x")
        result = self.run(path)
        assert 0 != result.returncode
        assert "Traceback" not in result.stderr
        assert str(path) in result.stderr
