"""Who needs me: a waiting agent seen by the hub, and answered from the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.client.procs import finish, run_cli, start_cli
from tests.engine.redis_servers import RedisServer
from tests.helpers import TOKEN, UNIT, HubProcess, receive_type, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}

FAKE_CLAUDE = r"""
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
def emit(event):  # compact, as Claude Code writes it
    print(json.dumps(event, separators=(",", ":")), flush=True)

emit({"type": "system", "subtype": "init", "session_id": "s1", "model": "claude-x",
      "tools": ["Bash"]})
emit({"type": "control_request", "request_id": "req_1",
      "request": {"subtype": "can_use_tool", "tool_name": "Bash",
                  "input": {"command": "rm -rf build"}}})
first = sys.stdin.readline()  # blocks until the permission is answered
(out / "first").write_text(first)
if json.loads(first).get("type") != "control_response":
    sys.exit(3)
emit({"type": "assistant", "session_id": "s1", "message": {"id": "m1", "role": "assistant",
      "content": [{"type": "text", "text": "ran it"}]}})
second = sys.stdin.readline()  # the next user message
(out / "second").write_text(second)
emit({"type": "result", "subtype": "success", "is_error": False, "num_turns": 1,
      "session_id": "s1", "total_cost_usd": 0.01})
"""


async def _session(http: aiohttp.ClientSession, hub: HubProcess, cid: str) -> dict[str, Any]:
    async with http.get(f"{hub.http}/api/sessions/{cid}", headers=AUTH) as response:
        assert 200 == response.status
        body: dict[str, Any] = await response.json()
        return body


async def _next_attention(ws: aiohttp.ClientWebSocketResponse, cid: str) -> Any:
    while True:
        message = await receive_type(ws, "attention", 20 * UNIT)
        if message["containerID"] == cid:
            assert "seq" not in message
            return message["data"]


class TestAnswering:
    async def test_approve_deny_reply(
        self, hub: HubProcess, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """The agent's permission request makes the session wait; a deny for another request
        is refused and writes nothing; approve writes exactly the documented response, the
        agent goes on and the state clears; reply writes a user message."""
        script = tmp_path / "fake_claude.py"
        script.write_text(FAKE_CLAUDE)
        cid = "agent-approve"
        viewer = await http.ws_connect(hub.ws_url())
        await viewer.send_json({"type": "subscribe", "containerID": "*"})
        await receive_type(viewer, "subscribed")
        runner = await start_cli(
            hub,
            "run",
            "--container-id",
            cid,
            "--agent",
            "claude",
            "--stdin",
            "hub",
            "--quiet",
            "--",
            sys.executable,
            str(script),
            str(tmp_path),
        )
        try:
            waiting = await _next_attention(viewer, cid)
            assert "waiting" == waiting["state"]
            assert "permission" == waiting["reason"]
            assert {
                "id": "req_1",
                "kind": "permission",
                "tool": "Bash",
                "input": {"command": "rm -rf build"},
                "question": None,
                "options": None,
            } == waiting["request"]
            assert waiting == (await _session(http, hub, cid))["attention"]

            refused = await run_cli(hub, "deny", cid, "--request", "req_9")
            assert 0 != refused.status
            assert refused.stderr.startswith("tailhub: ")
            assert "not pending" in refused.stderr
            async with http.post(
                f"{hub.http}/api/sessions/{cid}/commands",
                headers=AUTH,
                json={"action": "approve", "requestId": "req_0"},
            ) as response:
                assert 409 == response.status
                assert "not_pending" == (await response.json())["data"]["code"]

            approved = await run_cli(hub, "approve", cid)
            assert 0 == approved.status, approved.stderr
            assert await _next_attention(viewer, cid) is None
            assert (await _session(http, hub, cid))["attention"] is None
            first = (tmp_path / "first").read_text()
            assert first.endswith("\n")
            assert {
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": "req_1",
                    "response": {"behavior": "allow", "updatedInput": {"command": "rm -rf build"}},
                },
            } == json.loads(first)

            again = await run_cli(hub, "approve", cid)
            assert 0 != again.status
            assert "waiting on no request; nothing was sent" in again.stderr

            replied = await run_cli(hub, "reply", cid, "use pytest -x")
            assert 0 == replied.status, replied.stderr
            result = await finish(runner)
            assert 0 == result.status, result.stderr
            second = json.loads((tmp_path / "second").read_text())
            assert {
                "type": "user",
                "message": {"role": "user", "content": "use pytest -x"},
            } == second
            done = await _next_attention(viewer, cid)
            assert ("done", "completed") == (done["state"], done["reason"])
        finally:
            if runner.returncode is None:
                runner.kill()
                await runner.wait()
            await viewer.close()


class TestTwoProcesses:
    async def test_approve_through_the_other_process(
        self, tmp_path: Path, http: aiohttp.ClientSession
    ) -> None:
        """Two hubs on Redis: the agent publishes to one; the other lists it waiting, takes
        the approve, and routes it to the agent; both then list the state cleared."""
        redis = RedisServer(tmp_path / "redis").start()
        hubs = [HubProcess(tmp_path / name, args=["--redis", redis.url]).start() for name in "ab"]
        one, two = hubs
        script = tmp_path / "fake_claude.py"
        script.write_text(FAKE_CLAUDE)
        cid = "agent-pair"
        runner = await start_cli(
            one,
            "run", "--container-id", cid, "--agent", "claude", "--stdin", "hub", "--quiet",
            "--", sys.executable, str(script), str(tmp_path),
        )  # fmt: skip
        try:

            async def state(hub: HubProcess) -> Any:
                async with http.get(f"{hub.http}/api/sessions/{cid}", headers=AUTH) as response:
                    # 404 until the runner's first message is stored.
                    return (await response.json()).get("attention")

            async def waiting_on_two() -> bool:
                listed = await state(two)
                return listed is not None and listed["state"] == "waiting"

            await wait_for(waiting_on_two, 20 * UNIT)
            assert await state(one) == await state(two)
            approved = await run_cli(two, "approve", cid)
            assert 0 == approved.status, approved.stderr
            await wait_for(lambda: (tmp_path / "first").exists(), 20 * UNIT)
            assert (
                "allow"
                == json.loads((tmp_path / "first").read_text())["response"]["response"]["behavior"]
            )

            async def cleared() -> bool:
                return await state(one) is None and await state(two) is None

            await wait_for(cleared, 10 * UNIT)
            replied = await run_cli(two, "reply", cid, "done")
            assert 0 == replied.status, replied.stderr
            assert 0 == (await finish(runner)).status
        finally:
            if runner.returncode is None:
                runner.kill()
                await runner.wait()
            for hub in hubs:
                hub.stop()
            redis.stop()


class TestStalls:
    async def test_stalled_then_output(self, tmp_path: Path, http: aiohttp.ClientSession) -> None:
        """A running session silent for --stall-after turns stalled; its next message clears it."""
        hub = HubProcess(tmp_path / "hub", args=["--stall-after", "300ms"]).start()
        try:
            viewer = await http.ws_connect(hub.ws_url(containerID="quiet"))
            await receive_type(viewer, "subscribed")
            publisher = await http.ws_connect(hub.ws_url())
            await publisher.send_json(
                {"type": "status", "containerID": "quiet", "data": {"status": "running"}}
            )
            stalled = await _next_attention(viewer, "quiet")
            assert "stalled" == stalled["state"]
            assert stalled["reason"].startswith("no output for ")

            async def listed() -> bool:
                session = await _session(http, hub, "quiet")
                return bool(session["attention"]) and session["attention"]["state"] == "stalled"

            await wait_for(listed, 5 * UNIT)
            await publisher.send_json(
                {"type": "log", "containerID": "quiet", "data": {"level": "info", "message": "hi"}}
            )
            assert await _next_attention(viewer, "quiet") is None
            await publisher.close()
            await viewer.close()
        finally:
            hub.stop()
