"""The viewer commands (logs, sessions, cancel, send) as real processes against a real hub."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tailhub.client import Publisher
from tests.agents import streams
from tests.client.procs import Result, cli_env, finish, run_cli, start_cli
from tests.helpers import TOKEN, UNIT, HubProcess, make_token

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _publish_session(hub: HubProcess, container_id: str, exit_code: int = 3) -> None:
    async with Publisher(container_id, url=hub.url, token=TOKEN) as pub:
        await pub.status("running")
        await pub.log("debug detail", "debug")
        await pub.log("\x1b[32mgreen\x1b[0m info")
        await pub.log("careful", "warn")
        await pub.log("broken", "error")
        await pub.complete(exit_code, duration=1500)
        assert await pub.flush(timeout=10 * UNIT)


async def _publish_agent(hub: HubProcess, container_id: str, agent: str, stream: Any) -> None:
    """Publish a sample stream as ``tailhub run`` would, then complete with exit 0."""
    async with Publisher(container_id, url=hub.url, token=TOKEN) as pub:
        await pub.log("plain words")
        for event, words, level in stream:
            await pub.log(words, level, metadata={"agent": agent, "event": event})
        await pub.complete(0)
        assert await pub.flush(timeout=10 * UNIT)


def _one_line_error(result: Result) -> str:
    assert result.status != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


class TestLogs:
    async def test_backlog(self, shared_hub: HubProcess) -> None:
        """Without -f: the history, one line per message, then exit 0."""
        hub = shared_hub
        await _publish_session(hub, "v1")
        result = await run_cli(hub, "logs", "v1")
        assert result.status == 0, result.stderr
        assert result.lines == [
            "── status running",
            "DEBUG debug detail",
            "INFO  green info",
            "WARN  careful",
            "ERROR broken",
            "── complete, exit code 3 after 1.5 s",
        ]

    async def test_level_tail_since(self, shared_hub: HubProcess) -> None:
        """--level filters logs (not status/complete); --tail and --since pick the start."""
        hub = shared_hub
        await _publish_session(hub, "v2")
        warn = await run_cli(hub, "logs", "v2", "--level", "warn")
        assert warn.lines == [
            "── status running",
            "WARN  careful",
            "ERROR broken",
            "── complete, exit code 3 after 1.5 s",
        ]
        tail = await run_cli(hub, "logs", "v2", "--tail", "2")
        assert tail.lines == ["ERROR broken", "── complete, exit code 3 after 1.5 s"]
        since = await run_cli(hub, "logs", "v2", "--since", "3")
        assert since.lines == [
            "WARN  careful",
            "ERROR broken",
            "── complete, exit code 3 after 1.5 s",
        ]

    async def test_json_and_timestamps(self, shared_hub: HubProcess) -> None:
        """--json prints each protocol message as received; --timestamps prefixes the time."""
        hub = shared_hub
        await _publish_session(hub, "v3")
        result = await run_cli(hub, "logs", "v3", "--json")
        messages = [json.loads(line) for line in result.lines]
        assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5, 6]
        assert messages[2]["data"] == {"level": "info", "message": "\x1b[32mgreen\x1b[0m info"}
        stamped = await run_cli(hub, "logs", "v3", "--timestamps", "--tail", "1")
        assert stamped.lines[0].startswith(messages[-1]["timestamp"] + " ── complete")

    async def test_follow_live_until_complete(self, shared_hub: HubProcess, tmp_path: Path) -> None:
        """logs -f started before the container: every line live, exit with its exit code."""
        hub = shared_hub
        viewer = await start_cli(hub, "logs", "-f", "v4")
        go = tmp_path / "go"
        code = (
            "import os, time\n"
            "print('first', flush=True)\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
            "print('second', flush=True)\n"
            "raise SystemExit(7)\n"
        )
        runner = await start_cli(
            hub, "run", "-q", "--container-id", "v4", "--", sys.executable, "-c", code
        )
        assert viewer.stdout is not None
        seen: list[str] = []
        async with asyncio.timeout(20 * UNIT):
            while "INFO  first" not in seen:
                seen.append((await viewer.stdout.readline()).decode().rstrip("\n"))
        go.touch()
        assert (await finish(runner)).status == 7
        result = await finish(viewer)
        assert result.status == 7, result.stderr
        lines = seen + result.lines
        assert lines[:3] == [
            f"── status starting: starting {Path(sys.executable).name}",
            "── status running",
            "INFO  first",
        ]
        assert lines[3:] == [
            "INFO  second",
            "── status error: exited with code 7",
            lines[-1],
        ]
        assert lines[-1].startswith("── complete, exit code 7 after ")

    async def test_follow_on_a_token_file_through_a_revocation(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, tmp_path: Path
    ) -> None:
        """logs -f on TAILHUB_TOKEN_FILE: its token revoked, it waits for a new one in the
        file, then resumes where it was and exits at complete, every line once."""
        hub = shared_hub
        file = tmp_path / "token"
        jti = uuid.uuid4().hex
        file.write_text(make_token("viewer", "v-file", jti=jti))
        env = cli_env(hub, TAILHUB_TOKEN_FILE=str(file))
        del env["TAILHUB_TOKEN"]
        viewer = await start_cli(hub, "logs", "-f", "v-file", "--token-check", "0.02", env=env)
        async with Publisher("v-file", url=hub.url, token=TOKEN) as pub:
            await pub.log("before")
            assert viewer.stdout is not None
            line = await asyncio.wait_for(viewer.stdout.readline(), 20 * UNIT)
            assert "INFO  before" == line.decode().rstrip("\n")
            revoked = {"jti": jti}
            async with http.post(f"{hub.http}/api/tokens/revoked", json=revoked, headers=AUTH):
                pass
            await pub.log("while revoked")
            assert await pub.flush(timeout=10 * UNIT)
            renewed = tmp_path / "token.new"
            renewed.write_text(make_token("viewer", "v-file"))
            renewed.replace(file)
            await pub.complete(4)
        result = await finish(viewer)
        assert 4 == result.status, result.stderr
        assert ["INFO  while revoked"] == result.lines[:1]
        assert result.lines[1].startswith("── complete, exit code 4")

    async def test_follow_finished_container(self, shared_hub: HubProcess) -> None:
        """logs -f of a container that already completed prints it and exits with its code."""
        hub = shared_hub
        await _publish_session(hub, "v5", exit_code=0)
        result = await run_cli(hub, "logs", "-f", "v5")
        assert result.status == 0
        assert result.lines[-1] == "── complete, exit code 0 after 1.5 s"

    async def test_unknown_container(self, shared_hub: HubProcess) -> None:
        """A container the hub has nothing for: one line, exit 1."""
        hub = shared_hub
        line = _one_line_error(await run_cli(hub, "logs", "nobody"))
        assert line == "tailhub: the hub has no messages for container 'nobody'"

    async def test_usage_errors(self, shared_hub: HubProcess) -> None:
        """Conflicting options are usage errors (exit 2), one line, not tracebacks."""
        hub = shared_hub
        both = await run_cli(hub, "logs", "x", "--tail", "1", "--since", "1")
        assert both.status == 2
        assert _one_line_error(both) == (
            "tailhub: give --tail or --since, not both (see 'tailhub logs --help')"
        )
        pattern = await run_cli(hub, "logs", "x-*")
        assert pattern.status == 2

    async def test_since_time(self, shared_hub: HubProcess) -> None:
        """--since takes a duration back from now or an RFC 3339 time, as well as a seq."""
        hub = shared_hub
        await _publish_session(hub, "v6")
        recent = await run_cli(hub, "logs", "v6", "--since", "10m")
        assert len(recent.lines) == 6, recent.stderr
        future = await run_cli(hub, "logs", "v6", "--since", "2999-01-01T00:00:00Z")
        assert (future.status, future.lines) == (0, [])
        past = await run_cli(hub, "logs", "v6", "--since", "2000-01-01T00:00:00+01:00")
        assert len(past.lines) == 6
        bad = await run_cli(hub, "logs", "v6", "--since", "-10m")
        assert bad.status == 2
        assert _one_line_error(bad) == (
            "tailhub: Invalid value for '--since': '-10m' is negative: a duration must be "
            "positive (see 'tailhub logs --help')"
        )

    async def test_seq_column(self, shared_hub: HubProcess) -> None:
        """--seq shows each message's seq in front of it."""
        hub = shared_hub
        await _publish_session(hub, "v7")
        result = await run_cli(hub, "logs", "v7", "--seq", "--since", "4")
        assert result.lines == [
            "#5 ERROR broken",
            "#6 ── complete, exit code 3 after 1.5 s",
        ]

    async def test_run_marker(self, shared_hub: HubProcess) -> None:
        """Two runs of one container ID are separated by a marker line, in -f too."""
        hub = shared_hub
        await _publish_session(hub, "v8", exit_code=0)
        async with Publisher("v8", url=hub.url, token=TOKEN) as pub:
            await pub.status("starting")
            await pub.log("second run")
            await pub.complete(0, duration=500)
            assert await pub.flush(timeout=10 * UNIT)
        for args in (("logs", "v8", "--since", "5"), ("logs", "-f", "v8", "--since", "5")):
            result = await run_cli(hub, *args)
            assert result.lines[0] == "── complete, exit code 0 after 1.5 s"
            assert result.lines[1].startswith("════ new run · ")
            assert result.lines[2:] == [
                "── status starting",
                "INFO  second run",
                "── complete, exit code 0 after 0.5 s",
            ]
        listed = json.loads((await run_cli(hub, "sessions", "--json")).stdout)
        second = next(s for s in listed if s["containerID"] == "v8")
        assert (second["messages"], second["lastSeq"]) == (3, 9)  # this run's own count


class TestAgentLogs:
    async def test_summaries(self, shared_hub: HubProcess) -> None:
        """Agent events print as LEVEL, stream and summary; plain lines as before."""
        hub = shared_hub
        await _publish_agent(hub, "ag1", "claude", streams.CLAUDE)
        result = await run_cli(hub, "logs", "ag1")
        assert result.status == 0, result.stderr
        expected = ["INFO  plain words"]
        expected += [f"{level.upper():<5} claude {words}" for _, words, level in streams.CLAUDE]
        expected.append("── complete, exit code 0")
        assert expected == result.lines

    async def test_codex_and_level(self, shared_hub: HubProcess) -> None:
        """--level applies to agent events too."""
        hub = shared_hub
        await _publish_agent(hub, "ag2", "codex", streams.CODEX)
        result = await run_cli(hub, "logs", "ag2", "--level", "error")
        assert [
            "ERROR codex  shell: pytest -q → exit 1",
            "ERROR codex  error: stream disconnected; reconnecting 1/5",
            "ERROR codex  turn failed: stream disconnected",
            "── complete, exit code 0",
        ] == result.lines

    async def test_raw_and_json(self, shared_hub: HubProcess) -> None:
        """--raw prints the agent's own lines (and plain lines as they were); --json is as is."""
        hub = shared_hub
        await _publish_agent(hub, "ag3", "claude", streams.CLAUDE)
        raw = await run_cli(hub, "logs", "ag3", "--raw")
        assert ["plain words", *streams.lines(streams.CLAUDE)] == raw.lines
        as_json = await run_cli(hub, "logs", "ag3", "--json")
        messages = [json.loads(line) for line in as_json.lines]
        event, words, level = streams.CLAUDE[2]
        assert {
            "level": level,
            "message": words,
            "metadata": {"agent": "claude", "event": event},
        } == messages[3]["data"]
        both = await run_cli(hub, "logs", "ag3", "--raw", "--json")
        assert both.status == 2


class TestAgentSessions:
    async def test_columns_and_fleet(self, hub: HubProcess) -> None:
        """sessions shows model, cost, turns and what the agent does; fleet the totals."""
        await _publish_agent(hub, "a1", "claude", streams.CLAUDE)
        await _publish_session(hub, "p1")
        table = await run_cli(hub, "sessions", env=cli_env(hub, COLUMNS="250"))
        assert table.status == 0, table.stderr
        header = table.lines[0].split()
        assert ["MODEL", "COST", "TURNS", "DOING"] == header[-4:]
        rows = {line.split()[0]: line.split() for line in table.lines[1:]}
        assert [streams.MODEL, "$0.042", "5", "done:", "success"] == rows["a1"][-5:]
        assert ["-", "-", "-", "-"] == rows["p1"][-4:]

        fleet = await run_cli(hub, "fleet")
        assert fleet.status == 0, fleet.stderr
        assert [
            "sessions 2 (1 completed, 1 error)",
            "running  0",
            "failed   1",
            "agents   1",
            "cost     $0.042",
            "tokens   157 in · 182 out · 8,800 cache read · 650 cache write",
        ] == fleet.lines
        totals = json.loads((await run_cli(hub, "fleet", "--json")).stdout)
        assert (totals["costUsd"], totals["tokens"]) == (0.042, streams.CLAUDE_SUMMARY["tokens"])


class TestSessions:
    async def test_table_and_json(self, hub: HubProcess) -> None:
        """The table lists ID, status, times, messages and viewers; --json the raw list."""
        await _publish_session(hub, "s1")
        table = await run_cli(hub, "sessions", env=cli_env(hub, COLUMNS="200"))
        assert table.status == 0, table.stderr
        header, row = table.lines[0].split(), table.lines[1].split()
        assert header == ["ID", "STATUS", "STARTED", "LAST", "ACTIVITY", "MESSAGES", "VIEWERS"]
        assert (row[0], row[1], row[-2], row[-1]) == ("s1", "error", "6", "0")
        listed = json.loads((await run_cli(hub, "sessions", "--json")).stdout)
        assert [s["containerID"] for s in listed] == ["s1"]
        assert listed[0]["exitCode"] == 3

    async def test_empty(self, hub: HubProcess) -> None:
        """No sessions at all."""
        result = await run_cli(hub, "sessions")
        assert (result.status, result.lines) == (0, ["no sessions"])


class TestCommands:
    async def test_cancel_nobody(self, shared_hub: HubProcess) -> None:
        """cancel for a container with no connection: one line naming it, exit 1."""
        hub = shared_hub
        line = _one_line_error(await run_cli(hub, "cancel", "ghost"))
        assert "ghost" in line
        assert "no_container" in line

    async def test_send_nobody(self, shared_hub: HubProcess) -> None:
        """send for a container with no connection: the same."""
        hub = shared_hub
        line = _one_line_error(await run_cli(hub, "send", "ghost", "input", "--text", "x"))
        assert "no_container" in line

    async def test_send_input_needs_text(self, shared_hub: HubProcess) -> None:
        """input without --text or --eof is a usage error, one line."""
        hub = shared_hub
        result = await run_cli(hub, "send", "ghost", "input")
        assert result.status == 2
        assert _one_line_error(result) == (
            "tailhub: input needs --text, --eof or both (see 'tailhub send --help')"
        )


class TestFailures:
    @pytest.mark.parametrize(
        "args",
        [("logs", "x"), ("logs", "-f", "x"), ("sessions",), ("cancel", "x"), ("send", "x", "go")],
    )
    async def test_wrong_token(self, shared_hub: HubProcess, args: tuple[str, ...]) -> None:
        """A wrong token: one line saying so and where it came from, without it, exit 1."""
        hub = shared_hub
        env = cli_env(hub, TAILHUB_TOKEN="not-the-token")
        line = _one_line_error(await run_cli(hub, *args, env=env))
        assert "refused the token" in line
        assert line.endswith("; the token came from TAILHUB_TOKEN")
        assert "not-the-token" not in line

    async def test_wrong_token_sources(self, shared_hub: HubProcess, tmp_path: Path) -> None:
        """The refusal names the flag, or the token file's path, whichever was used."""
        hub = shared_hub
        flag = await run_cli(hub, "sessions", "--token", "flag-token")
        assert _one_line_error(flag) == (
            f"tailhub: the hub refused the token (HTTP 401 from {hub.url}); the token came "
            "from --token"
        )
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        (data_dir / "token").write_text("stale-file-token\n")
        env = cli_env(hub, TAILHUB_DATA_DIR=str(data_dir))
        del env["TAILHUB_TOKEN"]
        stale = await run_cli(hub, "sessions", env=env)
        assert _one_line_error(stale) == (
            f"tailhub: the hub refused the token (HTTP 401 from {hub.url}); the token came "
            f"from the token file {data_dir / 'token'}"
        )

    async def test_named_token_file(self, shared_hub: HubProcess, tmp_path: Path) -> None:
        """TAILHUB_TOKEN_FILE (or --token-file) gives the token; a refusal names the file;
        a token and a token file together, or a file that cannot be read, are usage errors."""
        hub = shared_hub
        good, stale = tmp_path / "good", tmp_path / "stale"
        good.write_text(TOKEN + "\n")
        stale.write_text("stale-token\n")
        env = cli_env(hub, TAILHUB_TOKEN_FILE=str(good))
        del env["TAILHUB_TOKEN"]
        listed = await run_cli(hub, "sessions", "--json", env=env)
        assert (0, list) == (listed.status, type(json.loads(listed.stdout)))
        refused = await run_cli(hub, "sessions", "--token-file", str(stale), env=env)
        assert _one_line_error(refused) == (
            f"tailhub: the hub refused the token (HTTP 401 from {hub.url}); the token came "
            f"from --token-file {stale}"
        )
        both = await run_cli(hub, "sessions", "--token-file", str(good))
        assert 2 == both.status
        assert "not both" in both.stderr
        gone = ("--token-file", str(tmp_path / "gone"))
        for args in (("sessions", *gone), ("logs", "x", *gone), ("run", *gone, "--", "true")):
            missing = await run_cli(hub, *args, env=env)
            assert (125 if args[0] == "run" else 2) == missing.status
            assert _one_line_error(missing).startswith(
                f"tailhub: cannot read the token file {tmp_path}/gone: "
            )
        await _publish_session(hub, "named-file")
        shown = await run_cli(hub, "logs", "named-file", "--json", env=env)
        assert (0, 6) == (shown.status, len(shown.lines))

    async def test_bad_container_id(self, shared_hub: HubProcess) -> None:
        """An ID the protocol refuses is one line too, for run (125) and the viewers (2)."""
        hub = shared_hub
        run = await run_cli(hub, "run", "--container-id", "bad*id", "--", "true")
        assert (run.status, _one_line_error(run)) == (
            125,
            "tailhub: containerID may contain '*' only in a subscribe",
        )
        logs = await run_cli(hub, "logs", "x" * 300)
        assert logs.status == 2
        assert _one_line_error(logs).startswith("tailhub: containerID ")

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (
                ("run", "--grace", "-1", "--", "true"),
                "tailhub: Invalid value for '--grace' (env var: 'TAILHUB_GRACE'): '-1' is "
                "negative: a duration must be positive (see 'tailhub run --help')",
            ),
            (
                ("run", "--heartbeat", "-5s", "--", "true"),
                "tailhub: Invalid value for '--heartbeat' (env var: 'TAILHUB_HEARTBEAT'): "
                "'-5s' is negative: a duration must be positive (see 'tailhub run --help')",
            ),
            (
                ("logs",),
                "tailhub: Missing argument 'ID'. (see 'tailhub logs --help')",
            ),
            (
                ("frobnicate",),
                "tailhub: No such command 'frobnicate'. (see 'tailhub --help')",
            ),
            (
                ("send", "x", "input", "--raw", "--eof"),
                "tailhub: --raw needs --text (see 'tailhub send --help')",
            ),
        ],
    )
    async def test_one_error_shape(self, args: tuple[str, ...], expected: str) -> None:
        """Usage errors are one line in the same shape as every other failure, exit 2."""
        result = await run_cli(None, *args)
        assert result.status == 2
        assert _one_line_error(result) == expected

    @pytest.mark.parametrize("args", [("logs", "x"), ("sessions",), ("cancel", "x")])
    async def test_hub_down(self, tmp_path: Path, args: tuple[str, ...]) -> None:
        """No hub listening: one line naming the URL, exit 1."""
        hub = HubProcess(tmp_path / "hub")
        line = _one_line_error(await run_cli(hub, *args))
        assert line.startswith(f"tailhub: cannot reach the hub at ws://127.0.0.1:{hub.port}")

    async def test_bad_url(self, shared_hub: HubProcess) -> None:
        """A URL that cannot be a hub's: one line."""
        hub = shared_hub
        line = _one_line_error(await run_cli(hub, "sessions", "--hub", "ftp://x"))
        assert "invalid hub URL" in line


class TestEnvironment:
    async def test_legacy_ws_server(self, shared_hub: HubProcess) -> None:
        """WS_SERVER (the original wrapper's variable) is honoured."""
        hub = shared_hub
        env = cli_env(hub)
        env["WS_SERVER"] = env.pop("TAILHUB_URL")
        assert (await run_cli(hub, "sessions", env=env)).status == 0

    async def test_token_file(self, tmp_path: Path) -> None:
        """With no token given, the token file of a hub on this machine is used."""
        hub = HubProcess(tmp_path / "hub", token=None).start()
        try:
            env = cli_env(hub, TAILHUB_DATA_DIR=str(hub.data_dir))
            assert "TAILHUB_TOKEN" not in env
            result = await run_cli(hub, "sessions", env=env)
            assert result.status == 0, result.stderr
        finally:
            hub.stop()

    async def test_no_token(self, tmp_path: Path) -> None:
        """No token anywhere: one line saying how to give one."""
        hub = HubProcess(tmp_path / "hub", token=None).start()
        try:
            line = _one_line_error(await run_cli(hub, "sessions"))
            assert "TAILHUB_TOKEN" in line
        finally:
            hub.stop()


class TestLocal:
    async def test_token_show(self, tmp_path: Path) -> None:
        """token show prints the token alone: TAILHUB_TOKEN, else the file TAILHUB_TOKEN_FILE
        names, else the hub's token file; a token file it cannot read is one line."""
        hub = HubProcess(tmp_path / "hub", token=None).start()
        try:
            env = cli_env(hub, TAILHUB_DATA_DIR=str(hub.data_dir))
            shown = await run_cli(hub, "token", "show", env=env)
            stored = (hub.data_dir / "token").read_text().strip()
            assert (shown.status, shown.stdout, shown.stderr) == (0, stored + "\n", "")
        finally:
            hub.stop()
        from_env = await run_cli(None, "token", "show", env=cli_env(None, TAILHUB_TOKEN="abc"))
        assert from_env.stdout == "abc\n"
        (tmp_path / "named").write_text("from-file\n")
        named = cli_env(None, TAILHUB_TOKEN_FILE=str(tmp_path / "named"))
        assert "from-file\n" == (await run_cli(None, "token", "show", env=named)).stdout
        gone = cli_env(None, TAILHUB_TOKEN_FILE=str(tmp_path / "gone"))
        unreadable = await run_cli(None, "token", "show", env=gone)
        assert 2 == unreadable.status
        assert _one_line_error(unreadable).startswith(
            f"tailhub: cannot read the token file {tmp_path}/gone: "
        )
        none = await run_cli(None, "token", "show")
        assert _one_line_error(none) == (
            "tailhub: no token: TAILHUB_TOKEN is not set and there is no token file at "
            "/nonexistent/cli/token (a hub started there without AUTH_TOKEN writes one)"
        )

    async def test_open(self, shared_hub: HubProcess) -> None:
        """open prints the dashboard's address with a login link that the hub serves."""
        hub = shared_hub
        result = await run_cli(hub, "open")
        assert (result.status, result.stderr) == (0, "")
        assert result.lines == [f"http://127.0.0.1:{hub.port}/?token={TOKEN}"]
        wss = await run_cli(None, "open", "--hub", "wss://hub.example:8443", "--token", "a b")
        assert wss.lines == ["https://hub.example:8443/?token=a%20b"]
        bare = await run_cli(None, "open")
        assert (bare.lines, bare.stderr) == (
            ["http://localhost:8080/"],
            "tailhub: no token found; the page will ask for it\n",
        )
