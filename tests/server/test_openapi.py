"""The OpenAPI document says what the hub does: it is valid, complete, and real responses fit it.

Every response a running hub gives in the scenarios below, successes and refusals alike, is
validated against the schema the document declares for that path, method, status and media
type; a status or media type the document does not declare fails the test, and so does a
declared status that no scenario produced (except the few listed that need a failing store).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from openapi_spec_validator import validate as validate_document

from tailhub.config import Settings
from tailhub.server.app import create_app
from tests.agents import streams
from tests.helpers import TOKEN, UNIT, HubProcess, receive_type

AUTH = {"Authorization": f"Bearer {TOKEN}"}
Json = dict[str, Any]
NOT_PRODUCED = {
    ("/readyz", "get", "503"),
    ("/api/sessions/{id}/logs", "get", "503"),
    ("/api/sessions", "get", "503"),
    ("/api/sessions/{id}", "get", "503"),
    ("/api/tokens/revoked", "post", "503"),
}
"""Documented statuses these tests cannot cause without breaking the engine."""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub that allows two sessions, so that a third is refused."""
    process = HubProcess(tmp_path_factory.mktemp("openapi"), args=["--max-sessions", "2"])
    yield process.start()
    process.stop()


class Checker:
    """Validates real responses against the document, and remembers what was exercised."""

    def __init__(self, document: Json) -> None:
        self.document = document
        self.seen: set[tuple[str, str, str]] = set()

    def schema_for(self, path: str, method: str, status: int, media: str) -> Json:
        operation = self.document["paths"][path][method]
        response = operation["responses"].get(str(status))
        assert response is not None, f"{method.upper()} {path} answered {status}, undocumented"
        if "$ref" in response:
            response = self.resolve(response["$ref"])
        content = response.get("content", {})
        assert media in content, f"{method.upper()} {path} {status}: {media} is undocumented"
        self.seen.add((path, method, str(status)))
        media_type: Json = content[media]
        return media_type

    def resolve(self, ref: str) -> Json:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        result: Json = node
        return result

    def validate(self, instance: Any, schema: Json) -> None:
        # The document's components ride along so that "#/components/..." resolves.
        root = {"allOf": [schema], "components": self.document["components"]}
        validator = jsonschema.Draft202012Validator(
            root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        validator.validate(instance)

    async def check(
        self, resp: aiohttp.ClientResponse, path: str, method: str = "get"
    ) -> tuple[int, Any]:
        """Validate one response; its status and decoded body."""
        media = self.schema_for(path, method, resp.status, resp.content_type)
        body = await resp.read()
        text = body.decode()
        if "x-itemSchema" in media:
            self.validate(text, media["schema"])
            items = [json.loads(item) for item in items_of(text, resp.content_type)]
            for item in items:
                self.validate(item, media["x-itemSchema"])
            return resp.status, items
        decoded = json.loads(body) if resp.content_type == "application/json" else text
        self.validate(decoded, media["schema"])
        return resp.status, decoded


def items_of(text: str, media: str) -> list[str]:
    """The JSON items of an NDJSON body, or the data of each server-sent event."""
    if media == "application/x-ndjson":
        return [line for line in text.split("\n") if line]
    return [line.removeprefix("data: ") for line in text.split("\n") if line.startswith("data: ")]


@pytest.fixture
async def checker(hub: HubProcess, http: aiohttp.ClientSession) -> AsyncIterator[Checker]:
    async with http.get(f"{hub.http}/openapi.json") as resp:
        yield Checker(await resp.json())


def log(message: str) -> bytes:
    return json.dumps({"type": "log", "data": {"level": "info", "message": message}}).encode()


class TestDocument:
    async def test_is_valid_openapi_31(self, checker: Checker) -> None:
        """The served document is a valid OpenAPI 3.1 document."""
        assert checker.document["openapi"] == "3.1.0"
        validate_document(checker.document)

    async def test_every_route_is_documented(self, tmp_path: Path, checker: Checker) -> None:
        """The app's API routes and the document's operations are the same set."""
        app = create_app(Settings(history="memory", data_dir=tmp_path), "token")
        routes = set()
        for route in app.router.routes():
            path = route.resource.canonical if route.resource is not None else ""
            mine = path.startswith("/api/") or path in (
                "/healthz",
                "/readyz",
                "/metrics",
                "/openapi.json",
            )
            if mine and route.method != "HEAD":
                routes.add((path, route.method.lower()))
        documented = {
            (path, method)
            for path, item in checker.document["paths"].items()
            for method in item
            if method != "parameters"
        }
        assert routes == documented


class TestResponsesMatch:
    async def test_every_response_fits(
        self, hub: HubProcess, http: aiohttp.ClientSession, checker: Checker, tmp_path: Path
    ) -> None:
        """Real responses, for every documented status, validate against the document."""
        h = hub.http
        one = "/api/sessions/{id}"
        logs = "/api/sessions/{id}/logs"
        messages = "/api/sessions/{id}/messages"
        commands = "/api/sessions/{id}/commands"

        async def request(path: str, url: str, method: str = "get", **kw: Any) -> Any:
            async with http.request(method.upper(), h + url, **kw) as resp:
                return await checker.check(resp, path, method)

        async def publish(container: str, body: Any, **headers: str) -> tuple[int, Any]:
            return await request(  # type: ignore[no-any-return]
                messages,
                f"/api/sessions/{container}/messages",
                "post",
                data=body,
                headers={**AUTH, **headers},
            )

        assert (await request("/healthz", "/healthz"))[0] == 200
        assert (await request("/readyz", "/readyz"))[0] == 200
        assert (await request("/openapi.json", "/openapi.json"))[0] == 200
        assert (await request("/metrics", "/metrics", headers=AUTH))[0] == 200
        assert (await request("/metrics", "/metrics"))[0] == 401

        status, reply = await publish("oa-1", log("a") + b"\n" + log("b") + b"\n")
        assert (status, reply["seq"]) == (200, [1, 2])
        assert (await publish("oa-2", log("c"), **{"Content-Type": "application/json"}))[0] == 200
        for event, words, level in streams.CLAUDE:
            data = {
                "level": level,
                "message": words,
                "metadata": {"agent": "claude", "event": event},
            }
            body = json.dumps({"type": "log", "data": data}).encode()
            assert (await publish("oa-2", body))[0] == 200
        assert (await publish("oa-3", log("refused")))[0] == 429
        assert (await publish("oa-1", b'{"type":"log"}'))[0] == 400
        status, _ = await request(messages, "/api/sessions/oa-1/messages", "post", data=b"")
        assert status == 401
        big = io.BytesIO(log("x" * (1 << 20)))
        assert (await publish("oa-1", big))[0] == 413
        lagging = HubProcess(tmp_path / "lag", args=["--max-store-lag", "1"]).start()
        try:
            url = f"{lagging.http}/api/sessions/oa-lag/messages"
            async with http.post(url, data=log("a") + b"\n" + log("b"), headers=AUTH) as resp:
                assert (await checker.check(resp, messages, "post"))[0] == 503
        finally:
            lagging.stop()

        assert (await request("/api/sessions", "/api/sessions", headers=AUTH))[0] == 200
        status, listed = await request(
            "/api/sessions", "/api/sessions", params={"active": "1"}, headers=AUTH
        )
        assert (status, len(listed["sessions"])) == (200, 2)
        assert (await request("/api/sessions", "/api/sessions", params={"active": "x"}))[0] == 401
        assert (
            await request("/api/sessions", "/api/sessions", params={"active": "x"}, headers=AUTH)
        )[0] == 400

        assert (await request(one, "/api/sessions/oa-1", headers=AUTH))[0] == 200
        status, agent = await request(one, "/api/sessions/oa-2", headers=AUTH)
        assert (status, agent["agent"]) == (200, streams.CLAUDE_SUMMARY)
        status, fleet = await request("/api/fleet", "/api/fleet", headers=AUTH)
        assert (status, fleet["costUsd"], fleet["agents"]) == (200, 0.042, 1)
        assert (await request("/api/fleet", "/api/fleet"))[0] == 401
        assert (await request(one, "/api/sessions/%2A", headers=AUTH))[0] == 400
        assert (await request(one, "/api/sessions/nobody", headers=AUTH))[0] == 404
        assert (await request(one, "/api/sessions/oa-1"))[0] == 401

        status, items = await request(logs, "/api/sessions/oa-1/logs", headers=AUTH)
        assert (status, [m["seq"] for m in items]) == (200, [1, 2])
        sse = {**AUTH, "Accept": "text/event-stream"}
        status, items = await request(
            logs, "/api/sessions/oa-1/logs", params={"follow": "0"}, headers=sse
        )
        assert (status, [m["seq"] for m in items]) == (200, [1, 2])
        assert (
            await request(logs, "/api/sessions/oa-1/logs", params={"tail": "-1"}, headers=AUTH)
        )[0] == 400
        assert (await request(logs, "/api/sessions/nobody/logs", headers=AUTH))[0] == 404
        assert (await request(logs, "/api/sessions/oa-1/logs"))[0] == 401

        url = "/api/sessions/oa-1/commands"
        assert (await request(commands, url, "post", json={"action": "cancel"}))[0] == 401
        status, _ = await request(commands, url, "post", json={"action": "cancel"}, headers=AUTH)
        assert status == 409
        status, _ = await request(commands, url, "post", json={"action": ""}, headers=AUTH)
        assert status == 400
        big = io.BytesIO(json.dumps({"action": "input", "text": "x" * (1 << 20)}).encode())
        assert (await request(commands, url, "post", data=big, headers=AUTH))[0] == 413
        container = await http.ws_connect(hub.ws_url())
        await container.send_str('{"type":"heartbeat","containerID":"oa-1"}')
        await receive_type(container, "heartbeat", timeout=5 * UNIT)
        status, reply = await request(
            commands, url, "post", json={"action": "cancel"}, headers=AUTH
        )
        assert (status, reply) == (200, {"action": "cancel", "delivered": 1})
        await container.close()

        tokens = "/api/tokens"
        status, minted = await request(
            tokens,
            tokens,
            "post",
            json={"role": "viewer", "containers": ["oa-1"], "ttl": 60, "sub": "oa"},
            headers=AUTH,
        )
        assert status == 201
        viewer = {"Authorization": f"Bearer {minted['token']}"}
        assert (await request(tokens, tokens, "post", json={"role": "viewer"}))[0] == 401
        assert (await request(tokens, tokens, "post", json={"role": "boss"}, headers=AUTH))[
            0
        ] == 400
        assert (await request(tokens, tokens, "post", json={"role": "admin"}, headers=viewer))[
            0
        ] == 403
        huge = b'{"role": "viewer", "sub": "' + b"x" * (1 << 17) + b'"}'
        assert (await request(tokens, tokens, "post", data=huge, headers=AUTH))[0] == 413
        status, grant = await request("/api/whoami", "/api/whoami", headers=viewer)
        assert (status, grant["role"], grant["containers"]) == (200, "viewer", ["oa-1"])
        assert (await request("/api/whoami", "/api/whoami"))[0] == 401
        assert (await request("/metrics", "/metrics", headers=viewer))[0] == 403
        assert (await request(one, "/api/sessions/oa-2", headers=viewer))[0] == 403
        assert (await request(logs, "/api/sessions/oa-2/logs", headers=viewer))[0] == 403
        assert (await publish("oa-1", log("no"), **viewer))[0] == 403
        assert (await request(commands, url, "post", json={"action": "cancel"}, headers=viewer))[
            0
        ] == 403

        revoked = "/api/tokens/revoked"
        jti = minted["claims"]["jti"]
        assert (await request(revoked, revoked, "post", json={"jti": jti}, headers=viewer))[
            0
        ] == 403
        assert (await request(revoked, revoked, "post", json={"jti": jti}))[0] == 401
        assert (await request(revoked, revoked, "post", json={"jti": ""}, headers=AUTH))[0] == 400
        assert (await request(revoked, revoked, "post", data=huge, headers=AUTH))[0] == 413
        status, reply = await request(
            revoked,
            revoked,
            "post",
            json={"jti": jti, "exp": minted["claims"]["exp"]},
            headers=AUTH,
        )
        assert (status, reply["revoked"]) == (200, True)
        assert (await request("/api/whoami", "/api/whoami", headers=viewer))[0] == 401

        documented = {
            (path, method, status)
            for path, item in checker.document["paths"].items()
            for method, operation in item.items()
            if method != "parameters"
            for status in operation["responses"]
        }
        assert documented - NOT_PRODUCED == checker.seen
