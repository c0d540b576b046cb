"""``tailhub run``: line splitting, and real runs against a real hub."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tailhub.client import Message, Subscriber
from tailhub.runner import LineSplitter, Runner, RunOptions, exit_status, split_text
from tests.agents import streams
from tests.client.procs import cli_env, finish, run_cli, start_cli
from tests.helpers import TOKEN, UNIT, HubProcess, increasing, make_token

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RUN = ("run", "--reconnect-max", "0.3", "--ack-timeout", str(10 * UNIT))


async def _history(hub: HubProcess, container_id: str) -> list[Message]:
    async with Subscriber(container_id, url=hub.url, token=TOKEN, follow=False) as sub:
        return [message async for message in sub]


async def _wait_until(hub: HubProcess, container_id: str, wanted: dict[str, object]) -> None:
    """Follow the container from the start until a message whose data includes ``wanted``."""
    async with (
        asyncio.timeout(20 * UNIT),
        Subscriber(container_id, url=hub.url, token=TOKEN, since=0) as sub,
    ):
        async for message in sub:
            if wanted.items() <= message.data.items():
                return


def _logs(history: list[Message]) -> list[tuple[str, str]]:
    return [(m.data["level"], m.data["message"]) for m in history if m.type == "log"]


class TestLineSplitter:
    def test_lines_and_partial(self) -> None:
        """Complete lines come out as they end; the last partial one at finish."""
        splitter = LineSplitter()
        assert splitter.feed(b"one\ntw") == ["one"]
        assert splitter.feed(b"o\r\nthree") == ["two"]
        assert splitter.finish() == ["three"]
        assert splitter.finish() == []

    def test_empty_lines_kept(self) -> None:
        """An empty line is a message too."""
        assert LineSplitter().feed(b"\n\nx\n") == ["", "", "x"]

    def test_utf8_across_chunks(self) -> None:
        """A character split over two reads is decoded whole; bad bytes become U+FFFD."""
        splitter = LineSplitter()
        assert splitter.feed(b"caf\xc3") == []
        assert splitter.feed(b"\xa9 \xff\n") == ["café \ufffd"]

    def test_ansi_untouched(self) -> None:
        """Escape codes and carriage returns inside a line are kept."""
        assert LineSplitter().feed(b"\x1b[31mred\x1b[0m 50%\r100%\n") == [
            "\x1b[31mred\x1b[0m 50%\r100%"
        ]

    def test_long_line_cut_on_character_boundary(self) -> None:
        """A line over the limit is cut, never inside a character, and nothing is lost."""
        splitter = LineSplitter(max_bytes=10)
        pieces = splitter.feed(("é" * 12).encode() + b"\n")
        assert "".join(pieces) == "é" * 12
        assert all(len(p.encode()) <= 10 for p in pieces)

    def test_unterminated_long_stream_bounded(self) -> None:
        """A stream without newlines is emitted in pieces as it grows."""
        splitter = LineSplitter(max_bytes=100)
        pieces = splitter.feed(b"x" * 250)
        assert pieces == ["x" * 100, "x" * 100]
        assert splitter.finish() == ["x" * 50]


class TestSplitText:
    def test_fits(self) -> None:
        """Text that fits is one piece."""
        assert split_text("hello", 100) == ["hello"]

    @pytest.mark.parametrize("text", ["a" * 1000, "\x1b" * 300, 'é"\\\n' * 200])
    def test_pieces_fit_and_join(self, text: str) -> None:
        """Each piece's JSON encoding fits the budget; joined, they are the text."""
        pieces = split_text(text, 100)
        assert "".join(pieces) == text
        assert all(len(json.dumps(p, ensure_ascii=False)) - 2 <= 100 for p in pieces)


class TestExitStatus:
    def test_values(self) -> None:
        """An exit code as is; a signal as 128 + its number."""
        assert [exit_status(0), exit_status(3), exit_status(-15)] == [0, 3, 143]


class TestRun:
    async def test_both_streams_and_exit_code(self, shared_hub: HubProcess) -> None:
        """stdout at info, stderr as its own stream (at warn), the exit code passed through."""
        hub = shared_hub
        script = "echo to-stdout; echo to-stderr >&2; printf no-newline; exit 3"
        result = await run_cli(hub, *RUN, "--container-id", "r1", "--", "sh", "-c", script)
        assert result.status == 3
        assert "to-stdout" in result.stdout
        assert "to-stderr" in result.stderr
        logs = await run_cli(hub, "logs", "r1", "--json")
        assert logs.status == 0
        messages = [json.loads(line) for line in logs.lines]
        got = [(m["data"].get("level"), m["data"].get("message")) for m in messages]
        assert ("info", "to-stdout") in got
        assert ("info", "no-newline") in got
        stderr = [m["data"] for m in messages if m["data"].get("stream") == "stderr"]
        assert stderr == [{"level": "warn", "message": "to-stderr", "stream": "stderr"}]
        shown = await run_cli(hub, "logs", "r1", "--level", "warn")
        assert "STDERR to-stderr" in shown.lines
        kinds = [(m["type"], m["data"].get("status")) for m in messages]
        assert kinds[:2] == [("status", "starting"), ("status", "running")]
        assert kinds[-2:] == [("status", "error"), ("complete", None)]
        assert messages[-1]["data"]["exitCode"] == 3
        assert isinstance(messages[-1]["data"]["duration"], int)
        assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))

    async def test_success(self, shared_hub: HubProcess) -> None:
        """Exit 0: status completed, complete with exit code 0."""
        hub = shared_hub
        result = await run_cli(hub, *RUN, "-q", "--container-id", "r0", "--", "true")
        assert (result.status, result.stdout, result.stderr) == (0, "", "")
        history = await _history(hub, "r0")
        assert [m.data.get("status") for m in history if m.type == "status"] == [
            "starting",
            "running",
            "completed",
        ]
        assert history[-1].type == "complete"
        assert history[-1].data["exitCode"] == 0

    async def test_cancel_stops_sleep(self, shared_hub: HubProcess) -> None:
        """A cancel command stops `sleep 60` within seconds, exit 143 (SIGTERM)."""
        hub = shared_hub
        runner = await start_cli(hub, *RUN, "--container-id", "r2", "--", "sleep", "60")
        await _wait_until(hub, "r2", {"status": "running"})
        sent = await run_cli(hub, "cancel", "r2")
        assert sent.status == 0, sent.stderr
        result = await finish(runner, 10 * UNIT)
        assert result.status == 143
        history = await _history(hub, "r2")
        assert (history[-1].type, history[-1].data["exitCode"]) == ("complete", 143)
        assert history[-1].data["message"] == "cancelled"
        assert history[-1].data["cancelled"] is True
        assert history[-2].data == {
            "status": "cancelled",
            "message": "cancelled: sleep killed by SIGTERM",
        }
        listed = json.loads((await run_cli(hub, "sessions", "--json")).stdout)
        assert {s["containerID"]: s["status"] for s in listed}["r2"] == "cancelled"
        shown = await run_cli(hub, "logs", "r2", "--tail", "2")
        assert shown.lines[0] == "── status cancelled: cancelled: sleep killed by SIGTERM"
        assert shown.lines[1].startswith("── cancelled, exit code 143 after ")

    async def test_cancel_kills_after_grace(self, shared_hub: HubProcess) -> None:
        """A command that ignores SIGTERM gets SIGKILL after --grace seconds (exit 137)."""
        hub = shared_hub
        script = 'trap "" TERM; sleep 60'
        runner = await start_cli(
            hub, *RUN, "--grace", "0.2", "--container-id", "r3", "--", "sh", "-c", script
        )
        await _wait_until(hub, "r3", {"status": "running"})
        assert (await run_cli(hub, "cancel", "r3")).status == 0
        result = await finish(runner, 10 * UNIT)
        assert result.status == 137
        assert "SIGKILL" in result.stderr

    async def test_signal_forwarded(self, shared_hub: HubProcess) -> None:
        """SIGTERM to the runner reaches CMD; the runner exits as CMD did."""
        hub = shared_hub
        runner = await start_cli(hub, *RUN, "--container-id", "r4", "--", "sleep", "60")
        await _wait_until(hub, "r4", {"status": "running"})
        runner.send_signal(signal.SIGTERM)
        result = await finish(runner, 10 * UNIT)
        assert result.status == 143
        history = await _history(hub, "r4")
        assert history[-1].data == {
            "exitCode": 143,
            "message": "killed by SIGTERM",
            "duration": history[-1].data["duration"],
        }

    async def test_input_command(self, shared_hub: HubProcess) -> None:
        """With --stdin hub, `send ID input --text` is a line on CMD's stdin; --raw is exact;
        --eof alone closes it."""
        hub = shared_hub
        runner = await start_cli(
            hub, *RUN, "--stdin", "hub", "--container-id", "r5", "--", "od", "-c", "-A", "n"
        )
        await _wait_until(hub, "r5", {"status": "running"})
        line = await run_cli(hub, "send", "r5", "input", "--text", "yes")
        assert (line.status, line.stdout) == (0, "input sent to r5 (1 connection)\n")
        raw = await run_cli(hub, "send", "r5", "input", "--text", "ab", "--raw")
        assert raw.status == 0, raw.stderr
        eof = await run_cli(hub, "send", "r5", "input", "--eof")
        assert eof.status == 0, eof.stderr
        assert (await finish(runner, 10 * UNIT)).status == 0
        written = "".join(text for level, text in _logs(await _history(hub, "r5")))
        assert written.split() == ["y", "e", "s", "\\n", "a", "b"]

    async def test_stdin_empty_by_default(self, shared_hub: HubProcess) -> None:
        """Without --stdin, CMD's stdin is empty even when the runner's own stays open."""
        hub = shared_hub
        go = "import sys; data = sys.stdin.read(); print(f'read {len(data)} bytes')"
        result = await run_cli(hub, *RUN, "--container-id", "r12", "--", sys.executable, "-c", go)
        assert (result.status, result.stdout) == (0, "read 0 bytes\n")

    async def test_bytes_as_they_are(self, shared_hub: HubProcess) -> None:
        """ANSI codes kept, bad bytes replaced, a 1.5 MiB line cut into frames that fit."""
        hub = shared_hub
        code = (
            "import sys; out = sys.stdout.buffer; "
            "out.write(b'\\x1b[1;31mred\\x1b[0m\\n'); out.write(b'bad \\xff byte\\n'); "
            "out.write(b'y' * (3 << 19))"
        )
        result = await run_cli(
            hub, *RUN, "-q", "--container-id", "r6", "--", sys.executable, "-c", code
        )
        assert result.status == 0, result.stderr
        logs = [text for _, text in _logs(await _history(hub, "r6"))]
        assert logs[:2] == ["\x1b[1;31mred\x1b[0m", "bad \ufffd byte"]
        assert "".join(logs[2:]) == "y" * (3 << 19)
        assert len(logs) == 4

    async def test_hub_killed_mid_stream(self, hub: HubProcess) -> None:
        """Hub SIGKILLed while CMD streams, restarted on the same port and data dir:
        every line arrives exactly once, in order."""
        code = (
            "import time\n"
            "for n in range(600):\n"
            "    print(f'line {n}', flush=True)\n"
            "    time.sleep(0.003)\n"
        )
        runner = await start_cli(
            hub, *RUN, "-q", "--container-id", "r7", "--", sys.executable, "-c", code
        )
        await _wait_until(hub, "r7", {"message": "line 100"})
        hub.kill()
        hub.start()
        result = await finish(runner, 30 * UNIT)
        assert result.status == 0, result.stderr
        history = await _history(hub, "r7")
        assert [text for _, text in _logs(history)] == [f"line {n}" for n in range(600)]
        assert increasing([m.seq for m in history])
        assert history[-1].type == "complete"

    async def test_hub_down_then_up(self, tmp_path: Path) -> None:
        """CMD runs while the hub is down; its output is delivered once the hub is up."""
        hub = HubProcess(tmp_path / "hub")
        go = tmp_path / "go"
        code = (
            "import os, sys, time\n"
            "print('before', flush=True)\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
            "print('after', flush=True)\n"
        )
        runner = await start_cli(
            hub, *RUN, "--container-id", "r8", "--", sys.executable, "-c", code
        )
        assert runner.stdout is not None
        assert await asyncio.wait_for(runner.stdout.readline(), 20 * UNIT) == b"before\n"
        hub.start()
        try:
            go.touch()
            result = await finish(runner, 30 * UNIT)
            assert result.status == 0, result.stderr
            assert [t for _, t in _logs(await _history(hub, "r8"))] == ["before", "after"]
        finally:
            hub.stop()

    async def test_hub_unreachable_to_the_end(self, tmp_path: Path) -> None:
        """No hub at all: said at once while CMD runs on; at exit no long wait for acks that
        cannot come, CMD's exit code, and one line saying how CMD ended and what was lost."""
        hub = HubProcess(tmp_path / "hub")
        go = tmp_path / "go"
        code = (
            "import os, time\n"
            "print('hi', flush=True)\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
            "raise SystemExit(4)\n"
        )
        runner = await start_cli(
            hub,
            "run",
            "--ack-timeout",
            "60",
            "-q",
            "--container-id",
            "r9",
            "--",
            "python3",
            "-c",
            code,
        )
        assert runner.stderr is not None
        first = await asyncio.wait_for(runner.stderr.readline(), 10 * UNIT)
        refused = f"cannot reach the hub at {hub.url}: connection refused (is the hub running?)"
        assert first.decode() == (
            f"tailhub run: {refused}; python3 runs on, its output is kept and sent when the "
            "hub is back\n"
        )
        go.touch()
        started = asyncio.get_running_loop().time()
        result = await finish(runner, 20 * UNIT)
        assert asyncio.get_running_loop().time() - started < 10 * UNIT  # not --ack-timeout
        assert result.status == 4
        assert result.stderr == (
            f"tailhub run: python3 exited with code 4; 5 messages were not delivered ({refused})\n"
        )

    async def test_readme_agent_reads_stdin(self, shared_hub: HubProcess, tmp_path: Path) -> None:
        """The README's command, as written, with an agent that reads its stdin to the end
        before it starts (as `claude -p` does when stdin is not a terminal): it runs."""
        hub = shared_hub
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        agent = bin_dir / "claude"
        agent.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            "data = sys.stdin.read()\n"
            "print(f'read {len(data)} bytes of stdin; working on: {sys.argv[2]}', flush=True)\n"
        )
        agent.chmod(0o755)
        env = cli_env(hub, PATH=f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
        command = (
            f"TAILHUB_URL={hub.url} TAILHUB_TOKEN={TOKEN} tailhub run --container-id task-42 "
            '-- claude -p "fix the tests"'
        )
        shell = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            command,
            env=env,
            stdin=asyncio.subprocess.PIPE,  # the runner's own stdin stays open, as in docker -i
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        result = await finish(shell, 20 * UNIT)
        assert (result.status, result.stderr) == (0, "")
        assert result.stdout == "read 0 bytes of stdin; working on: fix the tests\n"
        history = await _history(hub, "task-42")
        assert ("info", "read 0 bytes of stdin; working on: fix the tests") in _logs(history)
        assert history[-1].data["exitCode"] == 0

    async def test_wrong_token(self, shared_hub: HubProcess) -> None:
        """A refused token: CMD still runs to its exit code; one line about the token."""
        hub = shared_hub
        env = cli_env(hub, TAILHUB_TOKEN="wrong-token")
        result = await run_cli(hub, "run", "-q", "--", "sh", "-c", "exit 5", env=env)
        assert result.status == 5
        assert "refused the token" in result.stderr
        assert "(the token came from TAILHUB_TOKEN); sh keeps running" in result.stderr
        assert "wrong-token" not in result.stderr
        assert "Traceback" not in result.stderr

    async def test_token_file_refused_then_renewed(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, tmp_path: Path
    ) -> None:
        """With TAILHUB_TOKEN_FILE, a token revoked mid-run is waited out: the run says so
        (naming the file), CMD runs on, and once the file holds a new token everything CMD
        wrote is sent, in order."""
        hub = shared_hub
        cid = "r-token-file"
        file, go = tmp_path / "token", tmp_path / "go"
        jti = uuid.uuid4().hex
        file.write_text(make_token("publisher", cid, jti=jti))
        script = f"echo one; while [ ! -e {go} ]; do sleep 0.02; done; echo two"
        env = cli_env(hub, TAILHUB_TOKEN_FILE=str(file))
        del env["TAILHUB_TOKEN"]
        args = (*RUN, "-q", "--token-check", "0.02", "--container-id", cid)
        runner = await start_cli(hub, *args, "--", "sh", "-c", script, env=env)
        await _wait_until(hub, cid, {"message": "one"})
        async with http.post(f"{hub.http}/api/tokens/revoked", json={"jti": jti}, headers=AUTH):
            pass
        assert runner.stderr is not None
        note = (await asyncio.wait_for(runner.stderr.readline(), 10 * UNIT)).decode()
        assert note.startswith("tailhub run: the hub closed the connection: not authenticated")
        assert f"(the token came from TAILHUB_TOKEN_FILE ({file}));" in note
        assert f"waiting for a new token in {file}; sh runs on" in note
        renewed = tmp_path / "token.new"
        renewed.write_text(make_token("publisher", cid))
        renewed.replace(file)
        go.touch()
        result = await finish(runner, 20 * UNIT)
        assert 0 == result.status, result.stderr
        history = await _history(hub, cid)
        assert [("info", "one"), ("info", "two")] == _logs(history)
        assert ("complete", 0) == (history[-1].type, history[-1].data["exitCode"])
        assert [m.seq for m in history] == list(range(1, len(history) + 1))

    async def test_command_not_found(self, shared_hub: HubProcess) -> None:
        """A command that does not exist: 127, one line, and a complete saying so."""
        hub = shared_hub
        result = await run_cli(hub, *RUN, "--container-id", "r10", "--", "/nonexistent/cmd")
        assert result.status == 127
        assert result.stderr.strip().startswith("tailhub run: cannot run /nonexistent/cmd")
        history = await _history(hub, "r10")
        assert (history[-1].type, history[-1].data["exitCode"]) == ("complete", 127)

    async def test_heartbeats_keep_session(self, tmp_path: Path) -> None:
        """Heartbeats keep a quiet CMD's session alive past the hub's session timeout."""
        hub = HubProcess(tmp_path / "hub", env={"SESSION_TIMEOUT": "400"}).start()
        try:
            code = "import time; time.sleep(1.2)"
            result = await run_cli(
                hub,
                *RUN,
                "--heartbeat",
                "0.1",
                "--container-id",
                "r11",
                "--",
                sys.executable,
                "-c",
                code,
            )
            assert result.status == 0, result.stderr
            history = await _history(hub, "r11")
            assert [m.data.get("reason") for m in history if m.type == "status"] == [None] * 3
            assert history[-1].type == "complete"
        finally:
            hub.stop()


def _fake_agent(tmp_path: Path, name: str, stream: list[str]) -> list[str]:
    """A command that prints ``stream`` line by line as an agent would, plus a plain line
    and a line on stderr."""
    events = tmp_path / f"{name}.jsonl"
    events.write_text("\n".join(stream) + "\n")
    script = (
        "import sys\n"
        "print('plain words before the stream', flush=True)\n"
        f"for line in open({str(events)!r}):\n"
        "    sys.stdout.write(line)\n"
        "    sys.stdout.flush()\n"
        "print('a note on stderr', file=sys.stderr, flush=True)\n"
    )
    return [sys.executable, "-c", script]


class TestAgentStreams:
    @pytest.mark.parametrize(
        ("name", "stream"), [("claude", streams.CLAUDE), ("codex", streams.CODEX)]
    )
    async def test_events_become_summaries(
        self, shared_hub: HubProcess, tmp_path: Path, name: str, stream: list[Any]
    ) -> None:
        """Each event is a log with its summary and level, and the event itself, unchanged."""
        hub = shared_hub
        container = f"agent-{name}"
        argv = _fake_agent(tmp_path, name, streams.lines(stream))
        result = await run_cli(hub, *RUN, "-q", "--container-id", container, "--", *argv)
        assert result.status == 0, result.stderr
        logs = [m for m in await _history(hub, container) if m.type == "log"]
        expected: list[dict[str, Any]] = [
            {"level": "info", "message": "plain words before the stream"}
        ]
        expected += [
            {"level": level, "message": line, "metadata": {"agent": name, "event": event}}
            for event, line, level in stream
        ]
        expected.append({"level": "warn", "message": "a note on stderr", "stream": "stderr"})
        summary = streams.CLAUDE_SUMMARY if name == "claude" else streams.CODEX_SUMMARY
        # With each event, the session's summary when it changed (the last one is the
        # stream's), and whether it may change the attention state (a result does).
        sent = [m.data["metadata"].pop("agentSummary") for m in logs[1:-1]]
        attend = [m.data["metadata"].pop("attend") for m in logs[1:-1]]
        assert expected == [m.data for m in logs]
        assert None in sent
        assert summary == [tally for tally in sent if tally is not None][-1]
        assert all(isinstance(value, bool) for value in attend)
        ends = {"result", "turn.completed", "turn.failed"}
        assert [event["type"] in ends for event, _, _ in stream if event["type"] in ends] == [
            flag
            for flag, (event, _, _) in zip(attend, stream, strict=True)
            if event["type"] in ends
        ]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{hub.http}/api/sessions/{container}", headers=AUTH) as resp,
        ):
            assert summary == (await resp.json())["agent"]

    async def test_the_summary_is_kept_across_a_restart(
        self, hub: HubProcess, tmp_path: Path
    ) -> None:
        """The session's agent summary is listed again, the same, after the hub restarts."""
        argv = _fake_agent(tmp_path, "claude", streams.lines(streams.CLAUDE))
        result = await run_cli(hub, *RUN, "-q", "--container-id", "kept", "--", *argv)
        assert result.status == 0, result.stderr

        async def summary() -> Any:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{hub.http}/api/sessions/kept", headers=AUTH) as resp,
            ):
                return (await resp.json())["agent"]

        assert streams.CLAUDE_SUMMARY == await summary()
        hub.stop()
        hub.start()
        assert streams.CLAUDE_SUMMARY == await summary()

    async def test_agent_none_and_fixed(self, shared_hub: HubProcess, tmp_path: Path) -> None:
        """--agent none keeps every line plain; --agent codex takes a Codex-only error first."""
        hub = shared_hub
        argv = _fake_agent(tmp_path, "none", streams.lines(streams.CLAUDE[:2]))
        result = await run_cli(
            hub, *RUN, "-q", "--agent", "none", "--container-id", "agent-none", "--", *argv
        )
        assert result.status == 0, result.stderr
        logs = [m.data for m in await _history(hub, "agent-none") if m.type == "log"]
        assert all("metadata" not in data for data in logs)
        assert streams.lines(streams.CLAUDE[:2]) == [d["message"] for d in logs[1:3]]

        error = '{"type":"error","message":"quota exceeded"}'
        argv = _fake_agent(tmp_path, "fixed", [error])
        result = await run_cli(
            hub, *RUN, "-q", "--agent", "codex", "--container-id", "agent-fixed", "--", *argv
        )
        assert result.status == 0, result.stderr
        logs = [m.data for m in await _history(hub, "agent-fixed") if m.type == "log"]
        assert {
            "level": "error",
            "message": "error: quota exceeded",
            "metadata": {
                "agent": "codex",
                "agentSummary": {  # the first event always gives one, so the hub has one
                    "kind": "codex",
                    "model": None,
                    "sessionId": None,
                    "turns": 0,
                    "toolCalls": {},
                    "tokens": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                    "costUsd": None,
                    "contextPct": None,
                    "contextWindow": None,
                    "activity": None,
                    "lastText": None,
                    "result": None,
                },
                "attend": False,
                "event": {"type": "error", "message": "quota exceeded"},
            },
        } == logs[1]

    async def test_unknown_and_malformed_lines(
        self, shared_hub: HubProcess, tmp_path: Path
    ) -> None:
        """JSON that is no event stays plain; a malformed known event is kept, shown raw."""
        hub = shared_hub
        malformed = '{"type":"assistant","message":{"id":5}}'
        stream = [
            '{"level":"info","msg":"some JSON logger"}',
            streams.lines(streams.CLAUDE)[0],
            malformed,
            '{"type":"brand_new_event","x":1}',
        ]
        argv = _fake_agent(tmp_path, "odd", stream)
        result = await run_cli(hub, *RUN, "-q", "--container-id", "agent-odd", "--", *argv)
        assert result.status == 0, result.stderr
        logs = [m.data for m in await _history(hub, "agent-odd") if m.type == "log"]
        assert {"level": "info", "message": stream[0]} == logs[1]
        assert "claude" == logs[2]["metadata"]["agent"]
        assert {
            "level": "info",
            "message": malformed,
            "metadata": {
                "agent": "claude",
                "agentSummary": None,  # shown raw, not counted
                "attend": False,
                "event": {"type": "assistant", "message": {"id": 5}},
            },
        } == logs[3]
        assert ("brand_new_event", {"type": "brand_new_event", "x": 1}) == (
            logs[4]["message"],
            logs[4]["metadata"]["event"],
        )

    async def test_event_too_large_sent_plain(self, shared_hub: HubProcess, tmp_path: Path) -> None:
        """An event that does not fit one message with its summary is sent as plain pieces;
        the session's summary after it goes with the next event."""
        hub = shared_hub
        text = "x" * 1700  # the line fits a message (2,048 bytes), not with its summaries
        big = json.dumps(
            {
                "type": "assistant",
                "message": {"id": "m", "content": [{"type": "text", "text": text}]},
            }
        )
        after = json.dumps({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}})
        stream = [streams.lines(streams.CLAUDE)[0], big, after]
        argv = _fake_agent(tmp_path, "big", stream)
        options = RunOptions(
            url=hub.url,
            token=TOKEN,
            container_id="agent-big",
            max_message_size=2048,
            echo=False,
            ack_timeout=10 * UNIT,
        )
        assert 0 == await Runner(argv, options, notes=io.StringIO()).run()
        logs = [m.data for m in await _history(hub, "agent-big") if m.type == "log"]
        assert "metadata" in logs[1]
        pieces = [d for d in logs[2:-1] if "metadata" not in d]
        assert big == "".join(d["message"] for d in pieces)
        last = logs[-2]["metadata"]
        assert "rate_limit_event" == last["event"]["type"]
        assert (1, "x" * 199 + "…") == (
            last["agentSummary"]["turns"],
            last["agentSummary"]["lastText"],
        )
