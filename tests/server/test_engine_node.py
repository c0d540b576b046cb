"""What the engine gives every client, end to end: epochs, the session listing, sessions kept
across restarts, and seqs never given twice, over real sockets to a real hub."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.client.procs import cli_env, finish, start_cli
from tests.helpers import TOKEN, UNIT, HubProcess, receive_json, receive_type, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def log(container: str, text: str, **extra: Any) -> str:
    return json.dumps(
        {"type": "log", "containerID": container, "data": {"level": "info", "message": text}}
        | extra
    )


async def connect(http: aiohttp.ClientSession, hub: HubProcess) -> aiohttp.ClientWebSocketResponse:
    return await http.ws_connect(hub.ws_url())


async def publish_acked(ws: aiohttp.ClientWebSocketResponse, container: str, count: int) -> None:
    for number in range(1, count + 1):
        await ws.send_str(log(container, f"line {number}", id=number))
    while True:
        ack = await receive_type(ws, "ack")
        if ack["id"] == count:
            return


class TestEpoch:
    async def test_subscribed_names_the_epoch(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """``subscribed`` carries the container's epoch, the same on every subscribe."""
        pub = await connect(http, shared_hub)
        await publish_acked(pub, "epoch-1", 3)
        viewer = await connect(http, shared_hub)
        await viewer.send_str(json.dumps({"type": "subscribe", "containerID": "epoch-1"}))
        first = await receive_type(viewer, "subscribed")
        await viewer.send_str(json.dumps({"type": "subscribe", "containerID": "epoch-1"}))
        second = await receive_type(viewer, "subscribed")
        assert isinstance(first["epoch"], str)
        assert first["epoch"]
        assert first["epoch"] == second["epoch"]
        assert (3, 1, False) == (first["seq"], first["firstSeq"], first["truncated"])

    async def test_an_unknown_epoch_gets_the_whole_backlog_and_truncated(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A resume naming another epoch is told (truncated) and gets history from firstSeq."""
        pub = await connect(http, shared_hub)
        await publish_acked(pub, "epoch-2", 4)
        viewer = await connect(http, shared_hub)
        await viewer.send_str(
            json.dumps({"type": "subscribe", "containerID": "epoch-2", "since": 3, "epoch": "gone"})
        )
        reply = await receive_type(viewer, "subscribed")
        backlog = [(await receive_type(viewer, "log"))["seq"] for _ in range(4)]
        assert (True, 4) == (reply["truncated"], reply["seq"])
        assert [1, 2, 3, 4] == backlog

    async def test_the_current_epoch_resumes_as_usual(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A resume naming the current epoch gets only what follows ``since``."""
        pub = await connect(http, shared_hub)
        await publish_acked(pub, "epoch-3", 4)
        viewer = await connect(http, shared_hub)
        await viewer.send_str(json.dumps({"type": "subscribe", "containerID": "epoch-3"}))
        epoch = (await receive_type(viewer, "subscribed"))["epoch"]
        await viewer.send_str(
            json.dumps({"type": "subscribe", "containerID": "epoch-3", "since": 2, "epoch": epoch})
        )
        reply = await receive_type(viewer, "subscribed")
        backlog = [(await receive_type(viewer, "log"))["seq"] for _ in range(2)]
        assert (False, [3, 4]) == (reply["truncated"], backlog)


class TestSessionListing:
    async def test_status_filter_limit_and_cursor(
        self, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """The listing filters by status and pages with a cursor, over HTTP and WebSocket."""
        hub = HubProcess(tmp_path / "h").start()
        try:
            pub = await connect(http, hub)
            for number in range(5):
                await publish_acked(pub, f"list-{number}", 1)
            for number in (0, 1):
                await pub.send_str(
                    json.dumps(
                        {
                            "type": "complete",
                            "containerID": f"list-{number}",
                            "data": {"exitCode": 0},
                        }
                    )
                )
            await pub.send_str(
                json.dumps({"type": "complete", "containerID": "list-2", "data": {"exitCode": 3}})
            )

            async def listing(**query: str) -> dict[str, Any]:
                async with http.get(f"{hub.http}/api/sessions", params=query, headers=AUTH) as r:
                    assert 200 == r.status, await r.text()
                    body: dict[str, Any] = await r.json()
                    return body

            async def ended() -> bool:
                return len((await listing(status="ended"))["sessions"]) == 3

            await wait_for(ended)
            assert {"list-0", "list-1"} == {
                s["containerID"] for s in (await listing(status="completed"))["sessions"]
            }
            assert ["list-2"] == [
                s["containerID"] for s in (await listing(status="error"))["sessions"]
            ]
            assert {"list-3", "list-4"} == {
                s["containerID"] for s in (await listing(status="active"))["sessions"]
            }
            seen: list[str] = []
            cursor: str | None = None
            pages = 0
            while True:
                query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
                page = await listing(**query)
                pages += 1
                assert len(page["sessions"]) <= 2
                seen += [s["containerID"] for s in page["sessions"]]
                cursor = page.get("cursor")
                if cursor is None:
                    break
            assert (3, 5) == (pages, len(seen))
            assert {f"list-{n}" for n in range(5)} == set(seen)

            await pub.send_str(json.dumps({"type": "sessions", "status": "error", "limit": 1}))
            reply = await receive_type(pub, "sessions")
            assert ["list-2"] == [s["containerID"] for s in reply["data"]["sessions"]]
            await pub.send_str(json.dumps({"type": "sessions", "limit": 0}))
            error = await receive_type(pub, "error")
            assert "invalid_message" == error["data"]["code"]
            async with http.get(
                f"{hub.http}/api/sessions", params={"limit": "0"}, headers=AUTH
            ) as resp:
                assert 400 == resp.status
        finally:
            hub.stop()

    async def test_sessions_are_kept_across_a_restart(
        self, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """After a restart every session is listed again: status, exit code, counts, times."""
        hub = HubProcess(tmp_path / "h").start()
        try:
            pub = await connect(http, hub)
            await publish_acked(pub, "kept-run", 2)
            await publish_acked(pub, "kept-done", 3)
            await pub.send_str(
                json.dumps(
                    {
                        "type": "complete",
                        "containerID": "kept-done",
                        "data": {"exitCode": 2},
                        "id": 4,
                    }
                )
            )
            while (await receive_type(pub, "ack"))["id"] != 4:
                pass
            async with http.get(f"{hub.http}/api/sessions", headers=AUTH) as resp:
                before = {s["containerID"]: s for s in (await resp.json())["sessions"]}
            await pub.close()
            hub.stop()
            hub.start()
            async with http.get(f"{hub.http}/api/sessions", headers=AUTH) as resp:
                after = {s["containerID"]: s for s in (await resp.json())["sessions"]}
            fields = ("status", "active", "startedAt", "endedAt", "endReason", "exitCode")
            counts = ("lastSeq", "firstSeq", "messages", "epoch")
            for container in ("kept-run", "kept-done"):
                assert {k: before[container][k] for k in fields + counts} == {
                    k: after[container][k] for k in fields + counts
                }
            assert ("error", 2, False) == (
                after["kept-done"]["status"],
                after["kept-done"]["exitCode"],
                after["kept-done"]["active"],
            )
        finally:
            hub.stop()


class TestSeqNeverReused:
    async def test_two_publishers_and_sigkill(
        self, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """SIGKILL mid-stream with two publishers: no seq a follower saw names two messages.

        The publishers (``tailhub run``) resend what was not acked after the restart; the
        follower resumes with ``since`` and its epoch. Every seq it saw keeps the message it
        saw, and history ends with every line of each publisher once, in that publisher's
        order.
        """
        hub = HubProcess(tmp_path / "h").start()
        lines = 400
        script = (
            "import sys, time\n"
            f"for i in range({lines}):\n"
            "    print(sys.argv[1] + '-' + str(i), flush=True)\n"
            "    time.sleep(0.003)\n"
        )
        seen: dict[int, str] = {}
        reused: list[tuple[int, str, str]] = []
        state: dict[str, Any] = {"last": 0, "epoch": None}
        stop = asyncio.Event()

        async def follow() -> None:
            while not stop.is_set():
                try:
                    ws = await http.ws_connect(hub.ws_url())
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
                    continue
                request: dict[str, Any] = {
                    "type": "subscribe",
                    "containerID": "twice",
                    "since": state["last"],
                }
                if state["epoch"]:
                    request["epoch"] = state["epoch"]
                await ws.send_str(json.dumps(request))
                try:
                    while not stop.is_set():
                        message = await receive_json(ws, timeout=30 * UNIT)
                        if message["type"] == "subscribed":
                            state["epoch"] = message["epoch"]
                        elif "seq" in message:
                            seq = message["seq"]
                            text = json.dumps(message["data"], sort_keys=True)
                            if seen.get(seq, text) != text:
                                reused.append((seq, seen[seq], text))
                            seen[seq] = text
                            state["last"] = max(state["last"], seq)
                except (AssertionError, aiohttp.ClientError, TimeoutError):
                    pass
                finally:
                    await ws.close()

        follower = asyncio.create_task(follow())
        env = cli_env(hub)
        runs = [
            await start_cli(
                hub,
                "run",
                "--container-id",
                "twice",
                "--reconnect-max",
                "0.2",
                "--ack-timeout",
                str(30 * UNIT),
                "--",
                "python3",
                "-c",
                script,
                name,
                env=env,
            )
            for name in ("a", "b")
        ]
        try:
            await wait_for(lambda: len(seen) >= lines, timeout=30 * UNIT)
            hub.kill()
            hub.start()
            results = [await finish(run, 60 * UNIT) for run in runs]
            assert [0, 0] == [r.status for r in results], results
            async with http.get(f"{hub.http}/api/sessions/twice/logs", headers=AUTH) as resp:
                history = [json.loads(line) for line in (await resp.text()).splitlines()]
            await wait_for(lambda: state["last"] >= history[-1]["seq"], timeout=10 * UNIT)
        finally:
            stop.set()
            follower.cancel()
            hub.stop()
        assert [] == reused
        texts = [m["data"]["message"] for m in history if m["type"] == "log"]
        for name in ("a", "b"):
            assert [f"{name}-{i}" for i in range(lines)] == [
                t for t in texts if t.startswith(f"{name}-")
            ]
        kept = {m["seq"]: json.dumps(m["data"], sort_keys=True) for m in history}
        assert [] == [
            (seq, text, kept[seq]) for seq, text in seen.items() if kept.get(seq, text) != text
        ]
