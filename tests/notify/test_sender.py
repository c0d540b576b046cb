"""Notifications from a real hub to a real HTTP receiver the test runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.engine.redis_servers import RedisServer
from tests.helpers import TOKEN, UNIT, HubProcess, free_port, receive_type, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "s3cr3t-hook-path-0123"


class Receiver:
    """An aiohttp server on a free port that records what it is sent.

    ``/ok/...`` answers 200; ``/flaky/N/...`` answers 500 to the first N requests;
    ``/hang/...`` never answers (until the client gives up).
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self._failed: dict[str, int] = {}
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        parts = request.path.strip("/").split("/")
        if parts[0] == "hang":
            await asyncio.Event().wait()
        if parts[0] == "flaky":
            seen = self._failed.get(request.path, 0)
            if seen < int(parts[1]):
                self._failed[request.path] = seen + 1
                return web.Response(status=500)
        self.got.append((request.path_qs, dict(request.headers), body))
        self.arrived.set()
        return web.Response(text="ok")

    def bodies(self, prefix: str = "/") -> list[Any]:
        return [json.loads(body) for path, _, body in self.got if path.startswith(prefix)]

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    yield running
    await running.stop()


def _hub(tmp_path: Path, *args: str) -> HubProcess:
    return HubProcess(tmp_path / "hub", args=["--public-url", "http://dash.example/", *args])


def _permission(request_id: str) -> dict[str, Any]:
    event = {
        "type": "control_request",
        "request_id": request_id,
        "request": {"subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "ls"}},
    }
    return {"level": "warn", "message": "permission request: Bash: ls",
            "metadata": {"agent": "claude", "event": event}}  # fmt: skip


def _answer(request_id: str) -> dict[str, Any]:
    event = {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": {}},
    }
    return {"level": "info", "message": "approved", "metadata": {"agent": "claude", "event": event}}


async def _publish(http: aiohttp.ClientSession, hub: HubProcess, cid: str, *data: Any) -> None:
    messages = [{"type": "log", "data": d} for d in data]
    body = "\n".join(json.dumps(m) for m in messages)
    async with http.post(
        f"{hub.http}/api/sessions/{cid}/messages",
        headers={**AUTH, "Content-Type": "application/x-ndjson"},
        data=body,
    ) as response:
        assert 200 == response.status, await response.text()


async def _metrics(http: aiohttp.ClientSession, hub: HubProcess) -> str:
    async with http.get(f"{hub.http}/metrics", headers=AUTH) as response:
        return await response.text()


def _count(text: str, result: str, destination: int = 0) -> float:
    for line in text.splitlines():
        if line.startswith("tailhub_notifications_total{") and (
            f'result="{result}"' in line and f'destination="{destination}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _counted(
    http: aiohttp.ClientSession, hub: HubProcess, result: str, n: float, dest: int = 0
) -> None:
    async def reached() -> bool:
        return _count(await _metrics(http, hub), result, dest) >= n

    await wait_for(reached, 15 * UNIT)


class TestDelivery:
    async def test_payload_metrics_and_no_secret(
        self, tmp_path: Path, receiver: Receiver, http: aiohttp.ClientSession
    ) -> None:
        """A waiting session notifies with container, state, reason, request, summary and the
        dashboard link; /metrics counts it by index; the URL is in no log line or metric."""
        hub = _hub(tmp_path, "--notify", receiver.url(f"/ok/{SECRET}")).start()
        try:
            await _publish(http, hub, "task-42", _permission("req_1"))
            await asyncio.wait_for(receiver.arrived.wait(), 10 * UNIT)
            [sent] = receiver.bodies()
            assert ("task-42", "waiting", "permission") == (
                sent["containerID"],
                sent["state"],
                sent["reason"],
            )
            assert "req_1" == sent["request"]["id"]
            assert {"command": "ls"} == sent["request"]["input"]
            assert "claude" == sent["summary"]["kind"]
            assert "http://dash.example/#view=task-42" == sent["link"]
            await _counted(http, hub, "sent", 1)
            text = await _metrics(http, hub)
            assert 'format="json"' in text
            assert SECRET not in text
        finally:
            hub.stop()
        assert SECRET not in hub.log()

    async def test_retry_after_500s(
        self, tmp_path: Path, receiver: Receiver, http: aiohttp.ClientSession
    ) -> None:
        """Two 500s, then delivery: sent once, retried twice."""
        hub = _hub(tmp_path, "--notify", receiver.url("/flaky/2/hook")).start()
        try:
            await _publish(http, hub, "flaky-1", _permission("req_1"))
            await asyncio.wait_for(receiver.arrived.wait(), 15 * UNIT)
            assert 1 == len(receiver.got)
            await _counted(http, hub, "sent", 1)
            assert 2 == _count(await _metrics(http, hub), "retried")
        finally:
            hub.stop()

    async def test_delivered_after_restart(
        self, tmp_path: Path, http: aiohttp.ClientSession
    ) -> None:
        """A notice the receiver could not take yet stays in the outbox through a hub restart
        and is delivered once the receiver is up."""
        later = Receiver()
        hub = _hub(tmp_path, "--notify", later.url("/ok/hook"), "--notify-attempts", "50")
        hub.start()
        try:
            await _publish(http, hub, "restart-1", _permission("req_1"))
            await wait_for(lambda: "notification_retry" in hub.log(), 10 * UNIT)
            hub.stop()
            await later.start()
            hub.start()
            await asyncio.wait_for(later.arrived.wait(), 15 * UNIT)
            [sent] = later.bodies()
            assert ("restart-1", "req_1") == (sent["containerID"], sent["request"]["id"])
        finally:
            hub.stop()
            await later.stop()

    async def test_cooldown(
        self, tmp_path: Path, receiver: Receiver, http: aiohttp.ClientSession
    ) -> None:
        """A session that waits again within the cooldown is not notified again; another
        session is."""
        hub = _hub(tmp_path, "--notify", receiver.url("/ok/hook"), "--notify-cooldown", "1h")
        hub.start()
        try:
            await _publish(http, hub, "flap", _permission("r1"))
            await _counted(http, hub, "sent", 1)
            await _publish(http, hub, "flap", _answer("r1"))
            await _publish(http, hub, "flap", _permission("r2"))
            await _counted(http, hub, "cooldown", 1)
            await _publish(http, hub, "other", _permission("r1"))
            await _counted(http, hub, "sent", 2)
            assert [("flap", "r1"), ("other", "r1")] == sorted(
                (b["containerID"], b["request"]["id"]) for b in receiver.bodies()
            )
        finally:
            hub.stop()

    async def test_hanging_receiver_cut(
        self, tmp_path: Path, receiver: Receiver, http: aiohttp.ClientSession
    ) -> None:
        """A receiver that never answers is cut at the timeout and recorded failed; the other
        destination got its notice meanwhile, without waiting for it."""
        hub = _hub(
            tmp_path,
            "--notify",
            receiver.url("/hang/hook"),
            "--notify",
            receiver.url("/ok/hook"),
            "--notify-timeout",
            "2s",
            "--notify-attempts",
            "1",
        ).start()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await _publish(http, hub, "hang-1", _permission("req_1"))
            await asyncio.wait_for(receiver.arrived.wait(), 10 * UNIT)
            assert loop.time() - started < 2.0, "the other destination waited for the hang"
            await _counted(http, hub, "failed", 1, dest=0)
            assert 1 == _count(await _metrics(http, hub), "sent", 1)
            failed = [e for e in hub.log_events() if e.get("event") == "notification_failed"]
            assert "no answer in 2 s" == failed[0]["error"]
        finally:
            hub.stop()

    async def test_formats_and_match(
        self, tmp_path: Path, receiver: Receiver, http: aiohttp.ClientSession
    ) -> None:
        """format=slack posts Slack's text to the URL without format=; --notify-match fires on
        a log line; --notify-on failed notifies of a non-zero exit."""
        hub = _hub(
            tmp_path,
            "--notify",
            receiver.url("/ok/slack?format=slack&keep=1"),
            "--notify-match",
            "disk (full|gone)",
            "--notify-on",
            "failed",
        ).start()
        try:
            viewer = await http.ws_connect(hub.ws_url(containerID="m-1"))
            await receive_type(viewer, "subscribed")
            await _publish(http, hub, "m-1", {"level": "error", "message": "oh: disk full"})
            await _publish(http, hub, "m-1", {"level": "info", "message": "all good"})
            async with http.post(
                f"{hub.http}/api/sessions/m-1/messages",
                headers=AUTH,
                json={"type": "complete", "data": {"exitCode": 2}},
            ) as response:
                assert 200 == response.status
            failed = await receive_type(viewer, "attention")
            assert ("failed", "exit code 2") == (failed["data"]["state"], failed["data"]["reason"])
            await _counted(http, hub, "sent", 2)
            paths = {path for path, _, _ in receiver.got}
            assert {"/ok/slack?keep=1"} == paths
            texts = sorted(body["text"] for body in receiver.bodies())
            assert texts[0].startswith("m-1 is failed: exit code 2")
            assert texts[1].startswith("m-1 is match: log line matched\noh: disk full")
            await viewer.close()
        finally:
            hub.stop()


class TestTwoHubs:
    async def test_one_delivery_with_two_hubs_on_redis(
        self, tmp_path: Path, http: aiohttp.ClientSession
    ) -> None:
        """A notice left in the shared outbox is taken by both hub processes as they start, and
        delivered once."""
        redis = RedisServer(tmp_path / "redis").start()
        later = Receiver()
        args = ["--redis", redis.url, "--notify", later.url("/ok/hook"), "--notify-attempts", "50"]
        first = _hub(tmp_path / "a", *args)
        second = _hub(tmp_path / "b", *args)
        try:
            first.start()
            await _publish(http, first, "pair-1", _permission("req_1"))
            await wait_for(lambda: "notification_retry" in first.log(), 10 * UNIT)
            first.stop()
            await later.start()
            first.start()
            second.start()
            await asyncio.wait_for(later.arrived.wait(), 15 * UNIT)
            outcomes = (
                "notification_sent",
                "notification_taken_elsewhere",
                "notification_already_done",
            )

            def settled(hub: HubProcess) -> bool:
                return any(e.get("event") in outcomes for e in hub.log_events())

            await wait_for(lambda: settled(first) and settled(second), 15 * UNIT)
            assert 1 == len(later.got)
            sent = [
                e
                for hub in (first, second)
                for e in hub.log_events()
                if e.get("event") == "notification_sent"
            ]
            assert 1 == len(sent)
        finally:
            for hub in (first, second):
                if hub.proc is not None:
                    hub.stop()
            await later.stop()
            redis.stop()


class TestSettings:
    @pytest.mark.parametrize(
        "url", [f"ftp://example.org/{SECRET}", f"https://example.org/{SECRET}?format=xml"]
    )
    def test_bad_url_stops_start_up(self, tmp_path: Path, url: str) -> None:
        """A --notify URL that cannot be used stops start-up with one line, secret unshown."""
        hub = HubProcess(tmp_path, args=["--notify", url])
        done = subprocess.run(
            [sys.executable, "-m", "tailhub", "serve", "--notify", url],
            env=hub.environment(),
            capture_output=True,
            timeout=30 * UNIT,
            check=False,
        )
        assert 0 != done.returncode
        lines = done.stderr.decode().strip().splitlines()
        assert 1 == len(lines), lines
        assert "--notify" in lines[0]
        assert SECRET not in lines[0]
