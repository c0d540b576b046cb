"""Scoped tokens against a real hub: every role, every message type and endpoint.

Tokens are minted here with PyJWT directly, with the documented claims and the hub's secret
(the test canary), as an organisation's own service would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.engine.redis_servers import RedisServer
from tests.helpers import (
    CANARY_SECRET,
    TOKEN,
    UNIT,
    HubProcess,
    make_token,
    receive_json,
    receive_type,
)

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def hs256_by_hand(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 JWT signed with any bytes (PyJWT refuses a PEM key as an HMAC secret)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(json.dumps(claims).encode())
    return head + "." + part(hmac.new(key, head.encode(), hashlib.sha256).digest())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def scoped_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path_factory.mktemp("tokens"), args=["--max-sessions", "1000"])
    yield process.start()
    process.stop()


async def connect(
    http: aiohttp.ClientSession, hub: HubProcess, token: str
) -> aiohttp.ClientWebSocketResponse:
    return await http.ws_connect(hub.url, headers=bearer(token))


async def send(ws: aiohttp.ClientWebSocketResponse, **message: Any) -> None:
    await ws.send_str(json.dumps(message))


async def reply_to(ws: aiohttp.ClientWebSocketResponse, **message: Any) -> Any:
    """Send ``message``; the next reply that is not a heartbeat."""
    await send(ws, **message)
    while True:
        reply = await receive_json(ws)
        if reply["type"] != "heartbeat":
            return reply


def log(container: str, text: str, id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "log",
        "containerID": container,
        "data": {"level": "info", "message": text},
    }
    if id is not None:
        message["id"] = id
    return message


async def publish_as_admin(http: aiohttp.ClientSession, hub: HubProcess, container: str) -> None:
    url = f"{hub.http}/api/sessions/{container}/messages"
    body = json.dumps({"type": "log", "data": {"level": "info", "message": "hello"}})
    async with http.post(url, data=body, headers=ADMIN) as resp:
        assert resp.status == 200, await resp.text()


def assert_forbidden(reply: Any, container: str) -> None:
    assert ("error", "forbidden", container) == (
        reply["type"],
        reply["data"]["code"],
        reply.get("containerID"),
    )


@pytest.fixture
async def seeded(http: aiohttp.ClientSession, scoped_hub: HubProcess) -> str:
    """A prefix, with sessions ``<prefix>task-1``, ``task-2``, ``task-3`` and ``other-1``."""
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    for name in ("task-1", "task-2", "task-3", "other-1"):
        await publish_as_admin(http, scoped_hub, prefix + name)
    return prefix


class TestPublisher:
    async def test_publishes_only_its_container(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """A publisher for task-1 publishes there; task-2 gets forbidden and nothing changes."""
        mine, theirs = seeded + "task-1", seeded + "task-2"
        ws = await connect(http, scoped_hub, make_token("publisher", mine))
        assert_forbidden(await reply_to(ws, **log(theirs, "spoof", id=1)), theirs)
        assert_forbidden(await reply_to(ws, type="heartbeat", containerID=theirs), theirs)
        ack = await reply_to(ws, **log(mine, "mine", id=2))
        assert ("ack", 2) == (ack["type"], ack["id"])
        async with http.get(f"{scoped_hub.http}/api/sessions/{theirs}/logs", headers=ADMIN) as r:
            lines = [json.loads(line) for line in (await r.text()).splitlines()]
        assert ["hello"] == [line["data"]["message"] for line in lines]

    async def test_cannot_subscribe_elsewhere_or_command(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """A publisher cannot subscribe to task-2, nor cancel anything, even its own."""
        mine, theirs = seeded + "task-1", seeded + "task-2"
        ws = await connect(http, scoped_hub, make_token("publisher", mine))
        assert_forbidden(await reply_to(ws, type="subscribe", containerID=theirs), theirs)
        assert_forbidden(await reply_to(ws, type="unsubscribe", containerID=theirs), theirs)
        for target in (mine, theirs):
            reply = await reply_to(
                ws, type="command", containerID=target, data={"action": "cancel"}
            )
            assert_forbidden(reply, target)
        subscribed = await reply_to(ws, type="subscribe", containerID=mine)
        assert ("subscribed", mine) == (subscribed["type"], subscribed["containerID"])
        sessions = await reply_to(ws, type="sessions")
        assert [mine] == [s["containerID"] for s in sessions["data"]["sessions"]]

    async def test_http(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """Over HTTP too: publish for task-1 only, no commands, no other container's logs."""
        mine, theirs = seeded + "task-1", seeded + "task-2"
        headers = bearer(make_token("publisher", mine))
        body = json.dumps({"type": "log", "data": {"level": "info", "message": "x"}})
        base = f"{scoped_hub.http}/api/sessions"
        async with http.post(f"{base}/{mine}/messages", data=body, headers=headers) as resp:
            assert resp.status == 200
        async with http.post(f"{base}/{theirs}/messages", data=body, headers=headers) as resp:
            assert (403, "forbidden") == (resp.status, (await resp.json())["data"]["code"])
        cancel = {"action": "cancel"}
        async with http.post(f"{base}/{mine}/commands", json=cancel, headers=headers) as resp:
            assert resp.status == 403
        async with http.get(f"{base}/{theirs}/logs", headers=headers) as resp:
            assert resp.status == 403
        async with http.get(f"{base}/{theirs}", headers=headers) as resp:
            assert resp.status == 403

    async def test_receives_its_commands(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """An operator's command reaches the publisher of its container."""
        mine = seeded + "task-1"
        container = await connect(http, scoped_hub, make_token("publisher", mine))
        await send(container, type="heartbeat", containerID=mine)
        await receive_type(container, "heartbeat")
        operator = await connect(http, scoped_hub, make_token("operator", seeded + "task-*"))
        sent = await reply_to(operator, type="command", containerID=mine, data={"action": "cancel"})
        assert ("command_sent", 1) == (sent["type"], sent["data"]["delivered"])
        command = await receive_type(container, "command")
        assert {"action": "cancel"} == command["data"]


class TestViewer:
    async def test_lists_and_reads_only_its_containers(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """A viewer for task-* lists task-* only, over the WebSocket and HTTP."""
        token = make_token("viewer", seeded + "task-*")
        wanted = {seeded + name for name in ("task-1", "task-2", "task-3")}
        ws = await connect(http, scoped_hub, token)
        sessions = await reply_to(ws, type="sessions", limit=1000)
        listed = {s["containerID"] for s in sessions["data"]["sessions"]}
        assert wanted == {c for c in listed if c.startswith(seeded)}
        assert all(c.startswith(seeded + "task-") for c in listed)
        url = f"{scoped_hub.http}/api/sessions"
        async with http.get(url, headers=bearer(token), params={"limit": "1000"}) as resp:
            listed = {s["containerID"] for s in (await resp.json())["sessions"]}
        assert wanted == listed
        async with http.get(f"{url}/{seeded}task-3/logs", headers=bearer(token)) as resp:
            assert resp.status == 200
        async with http.get(f"{url}/{seeded}other-1/logs", headers=bearer(token)) as resp:
            assert resp.status == 403
        async with http.get(f"{url}/{seeded}other-1", headers=bearer(token)) as resp:
            assert resp.status == 403

    async def test_fleet_counts_only_its_sessions(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """GET /api/fleet totals only the sessions the token may read."""
        token = make_token("viewer", seeded + "task-*")
        async with http.get(f"{scoped_hub.http}/api/fleet", headers=bearer(token)) as resp:
            assert (200, 3) == (resp.status, (await resp.json())["sessions"])

    async def test_pattern_subscription_is_filtered(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """Subscribed to *, a viewer for task-* receives task-* messages only."""
        ws = await connect(http, scoped_hub, make_token("viewer", seeded + "task-*"))
        assert "subscribed" == (await reply_to(ws, type="subscribe", containerID="*"))["type"]
        denied = await reply_to(ws, type="subscribe", containerID=seeded + "other-1")
        assert_forbidden(denied, seeded + "other-1")
        await publish_as_admin(http, scoped_hub, seeded + "other-1")
        await publish_as_admin(http, scoped_hub, seeded + "task-2")
        message = await receive_type(ws, "log")
        assert seeded + "task-2" == message["containerID"]

    async def test_cannot_publish_or_command(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """A viewer may not publish, heartbeat or send commands, even in its scope."""
        target = seeded + "task-1"
        ws = await connect(http, scoped_hub, make_token("viewer", seeded + "task-*"))
        assert_forbidden(await reply_to(ws, **log(target, "no")), target)
        assert_forbidden(await reply_to(ws, type="heartbeat", containerID=target), target)
        cmd = await reply_to(ws, type="command", containerID=target, data={"action": "cancel"})
        assert_forbidden(cmd, target)
        assert "sessions" == (await reply_to(ws, type="sessions"))["type"]  # still open


class TestOperator:
    async def test_commands_but_does_not_publish(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, seeded: str
    ) -> None:
        """An operator commands its containers (no_container: none is connected), no others."""
        ws = await connect(http, scoped_hub, make_token("operator", seeded + "task-*"))
        reply = await reply_to(
            ws, type="command", containerID=seeded + "task-1", data={"action": "cancel"}
        )
        assert "no_container" == reply["data"]["code"]
        other = seeded + "other-1"
        cmd = await reply_to(ws, type="command", containerID=other, data={"action": "cancel"})
        assert_forbidden(cmd, other)
        assert_forbidden(await reply_to(ws, **log(seeded + "task-1", "no")), seeded + "task-1")


class TestRefusals:
    @pytest.mark.parametrize(
        "token",
        [
            make_token("viewer", "*", ttl=-60),
            make_token("viewer", "*", secret="another-secret-" + "x" * 40),
            jwt.encode({"role": "admin", "exp": int(time.time()) + 60}, None, algorithm="none"),
            make_token("emperor", "*"),
            make_token("viewer"),
        ],
        ids=["expired", "forged", "alg-none", "unknown-role", "no-containers"],
    )
    async def test_refused_at_handshake(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess, token: str
    ) -> None:
        """A bad token gets 401 at the WebSocket handshake and from the HTTP API."""
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(http, scoped_hub, token)
        assert 401 == refused.value.status
        async with http.get(f"{scoped_hub.http}/api/sessions", headers=bearer(token)) as resp:
            assert (401, "unauthorized") == (resp.status, (await resp.json())["data"]["code"])

    async def test_closed_at_exp_unless_renewed(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess
    ) -> None:
        """A connection is closed with 4401 at its token's exp; a fresh auth before keeps it."""
        short = make_token("viewer", "*", ttl=2)
        lapsing = await connect(http, scoped_hub, short)
        renewed = await connect(http, scoped_hub, short)
        reply = await reply_to(renewed, type="auth", token=make_token("operator", "x-*"))
        assert ("authenticated", "operator") == (reply["type"], reply["data"]["role"])
        error = await receive_json(lapsing, timeout=5 * UNIT)
        assert "unauthorized" == error["data"]["code"]
        closing = await lapsing.receive(timeout=5 * UNIT)
        assert (aiohttp.WSMsgType.CLOSE, 4401) == (closing.type, closing.data)
        # The renewed connection outlived the first token's exp: it still answers.
        assert "sessions" == (await reply_to(renewed, type="sessions"))["type"]

    async def test_reauth_replaces_the_grant(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess
    ) -> None:
        """A narrower token ends the subscriptions it does not cover, and its scope applies."""
        ws = await connect(http, scoped_hub, make_token("viewer", "*"))
        for container in ("narrow-a", "narrow-b"):
            assert (
                "subscribed"
                == (await reply_to(ws, type="subscribe", containerID=container))["type"]
            )
        await send(ws, type="auth", token=make_token("viewer", "narrow-b"))
        ended = await receive_json(ws)
        assert ("unsubscribed", "narrow-a") == (ended["type"], ended["containerID"])
        assert ("authenticated", ["narrow-b"]) == (
            (reply := await receive_json(ws))["type"],
            reply["data"]["containers"],
        )
        denied = await reply_to(ws, type="subscribe", containerID="narrow-a")
        assert_forbidden(denied, "narrow-a")

    async def test_reauth_with_a_bad_token_keeps_the_grant(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess
    ) -> None:
        """A refused re-auth is an error; the connection keeps what it had."""
        ws = await connect(http, scoped_hub, make_token("viewer", "*"))
        reply = await reply_to(ws, type="auth", token=make_token("admin", ttl=-5))
        assert "unauthorized" == reply["data"]["code"]
        assert "sessions" == (await reply_to(ws, type="sessions"))["type"]

    async def test_first_message_token(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess
    ) -> None:
        """A scoped token in the first message authenticates with its scope."""
        ws = await http.ws_connect(scoped_hub.url)
        reply = await reply_to(ws, type="auth", token=make_token("viewer", "a-*"))
        assert ("viewer", ["a-*"]) == (reply["data"]["role"], reply["data"]["containers"])
        assert_forbidden(await reply_to(ws, type="subscribe", containerID="b-1"), "b-1")


class TestRevocation:
    async def test_revoked_closed_refused_and_kept_across_restart(
        self, http: aiohttp.ClientSession, hub: HubProcess
    ) -> None:
        """Revoking closes open connections with 4401; the token stays refused after a restart."""
        claims = {"role": "viewer", "containers": ["*"], "exp": int(time.time()) + 600}
        token = jwt.encode({**claims, "jti": "to-revoke"}, CANARY_SECRET, algorithm="HS256")
        other = jwt.encode({**claims, "jti": "to-keep"}, CANARY_SECRET, algorithm="HS256")
        ws = await connect(http, hub, token)
        kept = await connect(http, hub, other)
        async with http.post(
            f"{hub.http}/api/tokens/revoked", json={"jti": "to-revoke"}, headers=ADMIN
        ) as resp:
            assert 200 == resp.status
            assert claims["exp"] == (await resp.json())["until"]
        assert "unauthorized" == (await receive_json(ws))["data"]["code"]
        closing = await ws.receive(timeout=5 * UNIT)
        assert (aiohttp.WSMsgType.CLOSE, 4401) == (closing.type, closing.data)
        assert "sessions" == (await reply_to(kept, type="sessions"))["type"]
        await kept.close()
        hub.restart()
        for presented, status in ((token, 401), (other, 200)):
            async with http.get(f"{hub.http}/api/whoami", headers=bearer(presented)) as resp:
                assert status == resp.status
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await connect(http, hub, token)


class TestForeignKeys:
    async def test_es256_with_public_key(self, http: aiohttp.ClientSession, tmp_path: Path) -> None:
        """--jwt-public-key: an ES256 token signed by another service's key is accepted."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (tmp_path / "key.pem").write_bytes(pem)
        hub = HubProcess(tmp_path / "hub", args=["--jwt-public-key", str(tmp_path / "key.pem")])
        hub.start()
        try:
            claims = {"role": "viewer", "containers": ["x-*"], "exp": int(time.time()) + 60}
            signed = jwt.encode(claims, key, algorithm="ES256")
            async with http.get(f"{hub.http}/api/whoami", headers=bearer(signed)) as resp:
                assert (200, "viewer") == (resp.status, (await resp.json())["role"])
            # The public key is no HMAC secret: an HS256 token "signed" with it is refused.
            confused = hs256_by_hand(claims, pem)
            async with http.get(f"{hub.http}/api/whoami", headers=bearer(confused)) as resp:
                assert 401 == resp.status
            other = ec.generate_private_key(ec.SECP256R1())
            forged = jwt.encode(claims, other, algorithm="ES256")
            async with http.get(f"{hub.http}/api/whoami", headers=bearer(forged)) as resp:
                assert 401 == resp.status
        finally:
            hub.stop()


class TestCanary:
    async def test_secret_never_shown(
        self, http: aiohttp.ClientSession, scoped_hub: HubProcess
    ) -> None:
        """The token secret appears in no response body: errors, metrics, HTML, documents."""
        bodies: list[str] = []
        forged = make_token("viewer", "*", secret=CANARY_SECRET + "-not")
        urls = ["/", "/metrics", "/readyz", "/healthz", "/openapi.json", "/api/whoami"]
        for url in urls:
            for headers in (ADMIN, bearer(forged), {}):
                async with http.get(scoped_hub.http + url, headers=headers) as resp:
                    bodies.append(await resp.text())
        async with http.post(
            f"{scoped_hub.http}/api/tokens", json={"role": "viewer"}, headers=ADMIN
        ) as resp:
            bodies.append(await resp.text())
        ws = await http.ws_connect(scoped_hub.url)
        await send(ws, type="auth", token=forged)
        bodies.append(json.dumps(await receive_json(ws)))
        assert not [body for body in bodies if CANARY_SECRET in body]
        assert CANARY_SECRET not in scoped_hub.log()


class TestRevocationAcrossProcesses:
    async def test_revoked_on_one_process_closed_and_refused_on_the_other(
        self, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """Two hub processes on one Redis: a token revoked through one is closed (4401) and
        refused by the other within the revocation interval."""
        redis = RedisServer(tmp_path / "redis").start()
        hubs = [
            HubProcess(
                tmp_path / f"hub{i}",
                args=["--redis", redis.url, "--revocation-interval", "200ms"],
            )
            for i in range(2)
        ]
        try:
            first, second = (hub.start() for hub in hubs)
            token = make_token("viewer", "*", jti="across")
            ws = await connect(http, second, token)
            async with http.post(
                f"{first.http}/api/tokens/revoked", json={"jti": "across"}, headers=ADMIN
            ) as resp:
                assert 200 == resp.status
            assert "unauthorized" == (await receive_json(ws, timeout=10 * UNIT))["data"]["code"]
            closing = await ws.receive(timeout=5 * UNIT)
            assert (aiohttp.WSMsgType.CLOSE, 4401) == (closing.type, closing.data)
            async with http.get(f"{second.http}/api/whoami", headers=bearer(token)) as resp:
                assert (401, "the token has been revoked") == (
                    resp.status,
                    (await resp.json())["data"]["error"],
                )
        finally:
            for hub in hubs:
                if hub.proc is not None:
                    hub.stop()
            redis.stop()
