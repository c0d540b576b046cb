"""``tailhub token create``, ``inspect`` and ``revoke``, and scoped tokens in the viewer
commands, as real processes against a real hub."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import aiohttp
import jwt

from tests.client.procs import cli_env, run_cli
from tests.helpers import CANARY_SECRET, TOKEN, HubProcess


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


async def _publish(http: aiohttp.ClientSession, hub: HubProcess, container: str) -> None:
    body = json.dumps({"type": "log", "data": {"level": "info", "message": "hi"}})
    url = f"{hub.http}/api/sessions/{container}/messages"
    async with http.post(url, data=body, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200


class TestTokenCommands:
    async def test_create_inspect_revoke(self, shared_hub: HubProcess) -> None:
        """A created token is accepted; inspect says so; once revoked, inspect exits 1."""
        env = cli_env(shared_hub, TAILHUB_TOKEN_SECRET=CANARY_SECRET, TAILHUB_TOKEN=TOKEN)
        created = await run_cli(
            shared_hub,
            *["token", "create", "--role", "viewer", "--container", "cli-*", "--ttl", "1h"],
            *["--sub", "alice"],
            env=env,
        )
        assert (0, "") == (created.status, created.stderr)
        token = created.stdout.strip()
        claims = jwt.decode(token, CANARY_SECRET, algorithms=["HS256"])
        assert ("viewer", ["cli-*"], "alice") == (
            claims["role"],
            claims["containers"],
            claims["sub"],
        )
        assert 3600 == claims["exp"] - claims["iat"]

        shown = await run_cli(shared_hub, "token", "inspect", token, env=env)
        assert 0 == shown.status, shown.stderr
        assert "signature:  valid (signed with the local secret)" in shown.lines
        assert "hub:        accepts it: viewer over cli-*" in shown.lines

        revoked = await run_cli(shared_hub, "token", "revoke", token, env=env)
        assert (0, f"revoked {claims['jti']}") == (
            revoked.status,
            revoked.stdout.split(" (")[0],
        )
        shown = await run_cli(shared_hub, "token", "inspect", token, env=env)
        assert 1 == shown.status
        assert "hub:        refuses it: the token has been revoked" in shown.lines

    async def test_revoke_needs_an_admin(self, shared_hub: HubProcess) -> None:
        """A scoped token cannot revoke: one line naming why."""
        viewer = jwt.encode(
            {"role": "viewer", "containers": ["*"], "exp": int(time.time()) + 60},
            CANARY_SECRET,
            algorithm="HS256",
        )
        result = await run_cli(
            shared_hub, "token", "revoke", "some-jti", env=cli_env(shared_hub, TAILHUB_TOKEN=viewer)
        )
        assert 1 == result.status
        assert "a viewer token may not use /api/tokens/revoked" in _one_line(result.stderr)

    async def test_create_without_a_secret(self, tmp_path: Path) -> None:
        """No secret anywhere: one line saying where one would be."""
        env = cli_env(None, TAILHUB_DATA_DIR=str(tmp_path))
        result = await run_cli(
            None, "token", "create", "--role", "viewer", "--container", "x", env=env
        )
        assert 1 == result.status
        assert _one_line(result.stderr).startswith("tailhub: no token secret:")

    async def test_create_refuses_bad_input(self, tmp_path: Path) -> None:
        """A role without containers, or a bad ttl, is a usage error (status 2)."""
        env = cli_env(None, TAILHUB_TOKEN_SECRET=CANARY_SECRET)
        for args in (["--role", "viewer"], ["--role", "viewer", "--container", "x", "--ttl", "-1"]):
            result = await run_cli(None, "token", "create", *args, env=env)
            assert 2 == result.status, result.stderr
            assert _one_line(result.stderr).startswith("tailhub: ")


class TestViewerCommands:
    async def test_viewer_lists_its_sessions_and_cannot_cancel(
        self, shared_hub: HubProcess
    ) -> None:
        """tailhub sessions with a viewer token lists its containers; cancel is not allowed."""
        prefix = f"v{uuid.uuid4().hex[:6]}-"
        async with aiohttp.ClientSession() as http:
            for name in ("mine", "other"):
                await _publish(http, shared_hub, prefix + name)
        viewer = jwt.encode(
            {"role": "viewer", "containers": [prefix + "m*"], "exp": int(time.time()) + 60},
            CANARY_SECRET,
            algorithm="HS256",
        )
        env = cli_env(shared_hub, TAILHUB_TOKEN=viewer)
        listed = await run_cli(shared_hub, "sessions", "--json", env=env)
        assert 0 == listed.status, listed.stderr
        assert [prefix + "mine"] == [s["containerID"] for s in json.loads(listed.stdout)]
        cancel = await run_cli(shared_hub, "cancel", prefix + "mine", env=env)
        assert 1 == cancel.status
        assert "not allowed: a viewer token may not send commands to" in _one_line(cancel.stderr)
