"""The HTTP API over real sockets against a real hub process: every route and every refusal."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.agents import streams
from tests.helpers import TOKEN, UNIT, HubProcess, receive_json, receive_type, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NDJSON = "application/x-ndjson"
Json = dict[str, Any]


@pytest.fixture
async def ws_client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def log(message: str, level: str = "info", **extra: Any) -> Json:
    return {"type": "log", "data": {"level": level, "message": message}, **extra}


def ndjson(*messages: Json) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


async def post(
    http: aiohttp.ClientSession, hub: HubProcess, container: str, *messages: Json
) -> Json:
    """Publish ``messages`` as NDJSON; the 200 reply."""
    async with http.post(
        f"{hub.http}/api/sessions/{container}/messages",
        data=ndjson(*messages),
        headers={**AUTH, "Content-Type": NDJSON},
    ) as resp:
        body: Json = await resp.json()
        assert resp.status == 200, body
        return body


async def error_of(resp: aiohttp.ClientResponse, status: int) -> Json:
    """Check ``resp`` is a JSON error with ``status``; its ``data``."""
    body = await resp.json()
    assert (status, "error") == (resp.status, body["type"]), body
    assert resp.content_type == "application/json"
    data: Json = body["data"]
    assert isinstance(data["code"], str)
    assert isinstance(data["error"], str)
    assert data["error"]
    return data


async def history(
    http: aiohttp.ClientSession, hub: HubProcess, container: str, **query: str
) -> list[Json]:
    async with http.get(
        f"{hub.http}/api/sessions/{container}/logs", params=query, headers=AUTH
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == NDJSON
        return [json.loads(line) for line in (await resp.read()).splitlines()]


async def next_line(resp: aiohttp.ClientResponse) -> Json:
    async with asyncio.timeout(5 * UNIT):
        line = await resp.content.readline()
    assert line.endswith(b"\n"), line
    message: Json = json.loads(line)
    return message


async def next_event(resp: aiohttp.ClientResponse) -> dict[str, str]:
    """The next server-sent event's fields (comments skipped)."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(5 * UNIT):
        while True:
            line = (await resp.content.readline()).decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value


async def container_ws(
    ws_client: aiohttp.ClientSession, hub: HubProcess
) -> aiohttp.ClientWebSocketResponse:
    return await ws_client.ws_connect(hub.ws_url())


async def send(ws: aiohttp.ClientWebSocketResponse, container: str, message: Json) -> None:
    await ws.send_str(json.dumps({**message, "containerID": container}))


async def session(http: aiohttp.ClientSession, hub: HubProcess, container: str) -> Json:
    async with http.get(f"{hub.http}/api/sessions/{container}", headers=AUTH) as resp:
        body: Json = await resp.json()
        assert resp.status == 200, body
        return body


class TestAuthentication:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/api/sessions"),
            ("GET", "/api/sessions/auth-1"),
            ("GET", "/api/sessions/auth-1/logs"),
            ("POST", "/api/sessions/auth-1/messages"),
            ("POST", "/api/sessions/auth-1/commands"),
            ("GET", "/metrics"),
        ],
    )
    async def test_no_token_is_401(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, method: str, path: str
    ) -> None:
        """Every API route, and /metrics, refuse a request without a token with 401 JSON."""
        async with http.request(method, shared_hub.http + path, data=b"{}") as resp:
            data = await error_of(resp, 401)
            assert data["code"] == "unauthorized"
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")

    async def test_wrong_token_is_401(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A wrong token is refused in either place, and the token is not echoed."""
        for kwargs in (
            {"headers": {"Authorization": "Bearer wrong-secret"}},
            {"params": {"token": "wrong-secret"}},
        ):
            async with http.get(f"{shared_hub.http}/api/sessions", **kwargs) as resp:  # type: ignore[arg-type]
                data = await error_of(resp, 401)
                assert data["error"] == "invalid token"
                assert "wrong-secret" not in await resp.text()

    async def test_token_in_query(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """``?token=`` is accepted where no header can be set (EventSource, a plain link)."""
        async with http.get(f"{shared_hub.http}/api/sessions", params={"token": TOKEN}) as resp:
            assert resp.status == 200

    async def test_health_needs_no_token(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """/healthz, /readyz and /openapi.json answer without a token."""
        async with http.get(f"{shared_hub.http}/healthz") as resp:
            assert (resp.status, (await resp.json())["status"]) == (200, "ok")
        async with http.get(f"{shared_hub.http}/readyz") as resp:
            assert (resp.status, (await resp.json())["status"]) == (200, "ready")
        async with http.get(f"{shared_hub.http}/openapi.json") as resp:
            assert (resp.status, (await resp.json())["openapi"]) == (200, "3.1.0")


class TestSessions:
    async def test_list_matches_websocket(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, ws_client: aiohttp.ClientSession
    ) -> None:
        """GET /api/sessions returns the very objects of the WebSocket ``sessions`` reply."""
        await post(http, shared_hub, "list-1", log("one"))
        ws = await ws_client.ws_connect(shared_hub.ws_url())
        await ws.send_str('{"type":"sessions"}')
        over_ws = (await receive_type(ws, "sessions"))["data"]
        async with http.get(f"{shared_hub.http}/api/sessions", headers=AUTH) as resp:
            over_http = await resp.json()
        assert over_ws == over_http
        assert "list-1" in {s["containerID"] for s in over_http["sessions"]}

    async def test_active_filter(self, shared_hub: HubProcess, http: aiohttp.ClientSession) -> None:
        """?active=1 lists active sessions only, ?active=0 ended ones only."""
        await post(http, shared_hub, "filter-live", log("running"))
        await post(http, shared_hub, "filter-done", {"type": "complete", "data": {"exitCode": 0}})

        async def ids(active: str) -> set[str]:
            async with http.get(
                f"{shared_hub.http}/api/sessions", params={"active": active}, headers=AUTH
            ) as resp:
                return {s["containerID"] for s in (await resp.json())["sessions"]}

        live, ended = await ids("1"), await ids("0")
        assert ("filter-live" in live, "filter-done" in live) == (True, False)
        assert ("filter-live" in ended, "filter-done" in ended) == (False, True)

    async def test_one(self, shared_hub: HubProcess, http: aiohttp.ClientSession) -> None:
        """GET /api/sessions/{id} describes one session; a percent-encoded '/' is part of it."""
        reply = await post(http, shared_hub, "team%2Fjob 7", log("a"), log("b"))
        assert reply["seq"] == [1, 2]
        got = await session(http, shared_hub, "team%2Fjob 7")
        assert (
            got["containerID"],
            got["active"],
            got["status"],
            got["lastSeq"],
            got["firstSeq"],
        ) == ("team/job 7", True, "running", 2, 1)

    async def test_unknown_is_404(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """An unknown containerID is 404 not_found."""
        async with http.get(f"{shared_hub.http}/api/sessions/never-seen", headers=AUTH) as resp:
            assert (await error_of(resp, 404))["code"] == "not_found"

    @pytest.mark.parametrize("query", [{"active": "maybe"}])
    async def test_bad_parameter_is_400(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, query: dict[str, str]
    ) -> None:
        """A parameter that is not understood is 400, naming it."""
        async with http.get(f"{shared_hub.http}/api/sessions", params=query, headers=AUTH) as resp:
            data = await error_of(resp, 400)
            assert (data["code"], "active" in data["error"]) == ("invalid_request", True)

    async def test_pattern_id_is_400(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A containerID with '*' is refused: the API works on one container."""
        async with http.get(f"{shared_hub.http}/api/sessions/build-%2A", headers=AUTH) as resp:
            assert (await error_of(resp, 400))["code"] == "invalid_request"


def agent_log(agent: str, event: Json, message: str = "summary", level: str = "info") -> Json:
    """A log as ``tailhub run`` publishes an agent event."""
    metadata = {"agent": agent, "event": event}
    return {"type": "log", "data": {"level": level, "message": message, "metadata": metadata}}


class TestAgents:
    async def test_summary_everywhere(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, ws_client: aiohttp.ClientSession
    ) -> None:
        """Events published over WebSocket sum up to the session's agent, on every view."""
        ws = await ws_client.ws_connect(shared_hub.ws_url())
        for number, (event, words, level) in enumerate(streams.CLAUDE, 1):
            frame = {**agent_log("claude", event, words, level), "containerID": "agent-ws"}
            await ws.send_str(json.dumps({**frame, "id": number}))
        async with asyncio.timeout(10 * UNIT):
            await ws_acked(ws, len(streams.CLAUDE))
        one = await session(http, shared_hub, "agent-ws")
        assert streams.CLAUDE_SUMMARY == one["agent"]
        async with http.get(f"{shared_hub.http}/api/sessions", headers=AUTH) as resp:
            listed = (await resp.json())["sessions"]
        assert streams.CLAUDE_SUMMARY == next(
            s["agent"] for s in listed if s["containerID"] == "agent-ws"
        )
        await ws.send_str('{"type":"sessions"}')
        replied = (await receive_type(ws, "sessions"))["data"]["sessions"]
        assert streams.CLAUDE_SUMMARY == next(
            s["agent"] for s in replied if s["containerID"] == "agent-ws"
        )
        await ws.close()

    async def test_plain_session_has_no_agent(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A session of plain logs (even ones saying "agent") shows agent null."""
        await post(http, shared_hub, "agent-none", log('the "agent" word'), log("x"))
        assert (await session(http, shared_hub, "agent-none"))["agent"] is None

    async def test_malformed_events_stored_not_counted(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A malformed event is stored like any log; the summary counts what it understood."""
        bad = agent_log("claude", {"type": "result", "total_cost_usd": "lots"})
        good = agent_log("claude", streams.CLAUDE[0][0])
        reply = await post(http, shared_hub, "agent-bad", bad, good)
        assert [1, 2] == reply["seq"]
        agent = (await session(http, shared_hub, "agent-bad"))["agent"]
        assert (agent["model"], agent["result"], agent["costUsd"]) == (streams.MODEL, None, None)

    async def test_new_session_starts_afresh(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """After complete, the container's next session has a summary of its own."""
        events = [agent_log("codex", event) for event, _, _ in streams.CODEX]
        await post(http, shared_hub, "agent-again", *events)
        assert streams.CODEX_SUMMARY == (await session(http, shared_hub, "agent-again"))["agent"]
        await post(http, shared_hub, "agent-again", {"type": "complete", "data": {"exitCode": 1}})
        await post(http, shared_hub, "agent-again", agent_log("codex", {"type": "turn.started"}))
        agent = (await session(http, shared_hub, "agent-again"))["agent"]
        assert (agent["turns"], agent["toolCalls"], agent["sessionId"]) == (1, {}, None)

    async def test_fleet(self, hub: HubProcess, http: aiohttp.ClientSession) -> None:
        """GET /api/fleet sums cost and tokens and counts sessions by status."""
        await post(http, hub, "a", *[agent_log("claude", e) for e, _, _ in streams.CLAUDE])
        await post(http, hub, "b", *[agent_log("codex", e) for e, _, _ in streams.CODEX])
        await post(http, hub, "b", {"type": "complete", "data": {"exitCode": 1}})
        await post(http, hub, "c", log("plain"))
        async with http.get(f"{hub.http}/api/fleet", headers=AUTH) as resp:
            assert 200 == resp.status
            fleet = await resp.json()
        claude, codex = streams.CLAUDE_SUMMARY["tokens"], streams.CODEX_SUMMARY["tokens"]
        assert {
            "sessions": 3,
            "byStatus": {"running": 2, "error": 1},
            "running": 2,
            "failed": 1,
            "agents": 2,
            "costUsd": 0.042,
            "tokens": {key: claude[key] + codex[key] for key in claude},
        } == fleet
        async with http.get(f"{hub.http}/api/fleet") as resp:
            assert (await error_of(resp, 401))["code"] == "unauthorized"


async def ws_acked(ws: aiohttp.ClientWebSocketResponse, last: int) -> None:
    """Read what the hub sent until the ack of id ``last``."""
    while True:
        reply = await receive_json(ws)
        if reply.get("type") == "ack" and reply.get("id") == last:
            return


class TestLogs:
    async def test_lines_are_the_subscribers_bytes(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, ws_client: aiohttp.ClientSession
    ) -> None:
        """Each NDJSON line is exactly the text a WebSocket subscriber receives."""
        await post(http, shared_hub, "bytes-1", log("a"), log("b", "warn", id=1), log("c"))
        ws = await ws_client.ws_connect(shared_hub.ws_url())
        await ws.send_str('{"type":"subscribe","containerID":"bytes-1","since":0}')
        await receive_type(ws, "subscribed")
        frames = [(await ws.receive(timeout=5 * UNIT)).data for _ in range(3)]
        async with http.get(f"{shared_hub.http}/api/sessions/bytes-1/logs", headers=AUTH) as resp:
            body = await resp.text()
        assert frames == body.splitlines()
        assert body.endswith("\n")

    async def test_since_tail_from_level(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """since, tail, from and level select the history as documented."""
        await post(
            http,
            shared_hub,
            "select-1",
            log("d", "debug"),
            log("i", "info"),
            log("w", "warn"),
            {"type": "status", "data": {"status": "running"}},
            log("e", "error"),
        )

        async def seqs(**query: str) -> list[int]:
            return [m["seq"] for m in await history(http, shared_hub, "select-1", **query)]

        assert await seqs() == [1, 2, 3, 4, 5]
        assert await seqs(since="2") == [3, 4, 5]
        assert await seqs(tail="2") == [4, 5]
        assert await seqs(tail="0") == []
        assert await seqs(**{"from": "2000-01-01T00:00:00Z"}) == [1, 2, 3, 4, 5]
        assert await seqs(**{"from": "2999-01-01T00:00:00Z"}) == []
        assert await seqs(level="warn") == [3, 4, 5], "status messages are not filtered out"
        assert await seqs(level="error", since="3") == [4, 5]

    @pytest.mark.parametrize(
        ("query", "named"),
        [
            ({"since": "-1"}, "since"),
            ({"since": "x"}, "since"),
            ({"tail": "1.5"}, "tail"),
            ({"since": "1", "tail": "2"}, "at most one"),
            ({"from": "yesterday"}, "from"),
            ({"level": "loud"}, "level"),
            ({"follow": "perhaps"}, "follow"),
        ],
    )
    async def test_bad_parameter_is_400(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, query: dict[str, str], named: str
    ) -> None:
        """Bad parameters are 400 invalid_request, in words that name them."""
        async with http.get(
            f"{shared_hub.http}/api/sessions/params-1/logs", params=query, headers=AUTH
        ) as resp:
            data = await error_of(resp, 400)
            assert (data["code"], named in data["error"]) == ("invalid_request", True)

    async def test_unknown_is_404(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """The history of an unknown container is 404 (without follow, which waits for it)."""
        async with http.get(f"{shared_hub.http}/api/sessions/nobody/logs", headers=AUTH) as resp:
            assert (await error_of(resp, 404))["code"] == "not_found"

    async def test_follow_gets_live_messages(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, ws_client: aiohttp.ClientSession
    ) -> None:
        """follow=1 sends the history, then a message published over WebSocket afterwards."""
        await post(http, shared_hub, "follow-1", log("before"))
        async with http.get(
            f"{shared_hub.http}/api/sessions/follow-1/logs", params={"follow": "1"}, headers=AUTH
        ) as resp:
            assert (resp.status, resp.content_type) == (200, NDJSON)
            assert (await next_line(resp))["data"]["message"] == "before"
            ws = await container_ws(ws_client, shared_hub)
            await send(ws, "follow-1", log("live"))
            got = await next_line(resp)
            assert (got["seq"], got["data"]["message"]) == (2, "live")

    async def test_follow_waits_for_a_new_container(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """Following a container not yet seen waits for its first message."""
        async with http.get(
            f"{shared_hub.http}/api/sessions/follow-new/logs",
            params={"follow": "1", "level": "warn"},
            headers=AUTH,
        ) as resp:
            assert resp.status == 200
            await post(http, shared_hub, "follow-new", log("quiet"), log("loud", "error"))
            got = await next_line(resp)
            assert (got["seq"], got["data"]["message"]) == (2, "loud")

    async def test_follow_has_no_gap_or_repeat(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, ws_client: aiohttp.ClientSession
    ) -> None:
        """A follower that starts while a container publishes gets every seq exactly once."""
        total = 300
        ws = await container_ws(ws_client, shared_hub)
        started = asyncio.Event()

        async def publish() -> None:
            for number in range(1, total + 1):
                await send(ws, "handover-1", log(f"m{number}"))
                if number == total // 3:
                    started.set()
                    await asyncio.sleep(0)

        publisher = asyncio.create_task(publish())
        await started.wait()
        async with http.get(
            f"{shared_hub.http}/api/sessions/handover-1/logs", params={"follow": "1"}, headers=AUTH
        ) as resp:
            seqs = [(await next_line(resp))["seq"] for _ in range(total)]
        await publisher
        assert list(range(1, total + 1)) == seqs

    async def test_follower_leaving_is_released(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """When the client goes away, its subscription is released."""
        await post(http, shared_hub, "leave-1", log("x"))
        resp = await http.get(
            f"{shared_hub.http}/api/sessions/leave-1/logs", params={"follow": "1"}, headers=AUTH
        )
        await next_line(resp)
        assert (await session(http, shared_hub, "leave-1"))["subscribers"] == 1
        resp.close()

        async def released() -> bool:
            return (await session(http, shared_hub, "leave-1"))["subscribers"] == 0

        await wait_for(released)

    async def test_sse_resumes_with_last_event_id(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, ws_client: aiohttp.ClientSession
    ) -> None:
        """SSE events carry id = seq; Last-Event-ID resumes after it, then stays live."""
        await post(http, shared_hub, "sse-1", *(log(f"m{n}") for n in range(1, 6)))
        sse = {**AUTH, "Accept": "text/event-stream"}
        url = f"{shared_hub.http}/api/sessions/sse-1/logs"
        async with http.get(url, params={"tail": "5"}, headers=sse) as resp:
            assert resp.content_type == "text/event-stream"
            first = [await next_event(resp) for _ in range(3)]
        assert [e["id"] for e in first] == ["1", "2", "3"]
        assert json.loads(first[2]["data"])["seq"] == 3
        async with http.get(
            url, params={"tail": "5"}, headers={**sse, "Last-Event-ID": "3"}
        ) as resp:
            resumed = [await next_event(resp) for _ in range(2)]
            ws = await container_ws(ws_client, shared_hub)
            await send(ws, "sse-1", log("m6"))
            resumed.append(await next_event(resp))
        assert [e["id"] for e in resumed] == ["4", "5", "6"]
        assert json.loads(resumed[2]["data"])["data"]["message"] == "m6"

    async def test_sse_without_follow_ends(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """SSE with follow=0 sends the history and ends; a bad Last-Event-ID is 400."""
        await post(http, shared_hub, "sse-2", log("a"), log("b"))
        sse = {**AUTH, "Accept": "text/event-stream"}
        url = f"{shared_hub.http}/api/sessions/sse-2/logs"
        async with http.get(url, params={"follow": "0"}, headers=sse) as resp:
            body = await resp.text()
        assert body.startswith("id: 1\ndata: {")
        assert body.count("\n\n") == 2
        async with http.get(url, headers={**sse, "Last-Event-ID": "x"}) as resp:
            assert (await error_of(resp, 400))["code"] == "invalid_request"


class TestPublish:
    async def test_ndjson_lines(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, ws_client: aiohttp.ClientSession
    ) -> None:
        """NDJSON lines are published in order and reach a WebSocket subscriber."""
        viewer = await ws_client.ws_connect(shared_hub.ws_url(containerID="pub-1"))
        await receive_type(viewer, "subscribed")
        reply = await post(
            http,
            shared_hub,
            "pub-1",
            log("one"),
            {"type": "STATUS", "data": {"status": "failed"}},
            {"type": "heartbeat"},
            log("two", containerID="pub-1"),
        )
        assert reply == {"accepted": 4, "seq": [1, 2, None, 3]}
        got = [await receive_json(viewer) for _ in range(3)]
        assert [(m["type"], m["seq"]) for m in got] == [("log", 1), ("status", 2), ("log", 3)]
        assert got[1]["data"]["status"] == "error", "normalised as over WebSocket"

    async def test_one_json_message(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """With Content-Type application/json the body is one message, even pretty-printed."""
        async with http.post(
            f"{shared_hub.http}/api/sessions/pub-2/messages",
            data=json.dumps(log("pretty"), indent=2),
            headers={**AUTH, "Content-Type": "application/json"},
        ) as resp:
            assert await resp.json() == {"accepted": 1, "seq": [1]}

    async def test_duplicate_id_is_not_stored_again(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A producer id already stored is taken but not stored again (seq null)."""
        first = await post(http, shared_hub, "pub-3", log("a", id=1, producer="p"))
        again = await post(http, shared_hub, "pub-3", log("a", id=1, producer="p"))
        assert (first["seq"], again["seq"]) == ([1], [None])
        assert (await session(http, shared_hub, "pub-3"))["lastSeq"] == 1

    async def test_bad_line_stores_nothing(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """One bad line refuses the whole request: 400 naming the line, nothing stored."""
        await post(http, shared_hub, "pub-4", log("kept"))
        body = ndjson(log("a"), log("b")) + b'{"type":"log","data":{"level":"info"}}\n'
        async with http.post(
            f"{shared_hub.http}/api/sessions/pub-4/messages", data=body, headers=AUTH
        ) as resp:
            data = await error_of(resp, 400)
        assert (data["code"], data["line"]) == ("invalid_message", 3)
        assert data["error"].startswith("line 3: ")
        assert [m["data"]["message"] for m in await history(http, shared_hub, "pub-4")] == ["kept"]

    @pytest.mark.parametrize(
        ("body", "code", "words"),
        [
            (b"", "invalid_request", "no message"),
            (b"\n  \n", "invalid_request", "no message"),
            (b"{not json\n", "invalid_json", "line 1"),
            (b'{"type":"shout","data":{}}', "unknown_type", "line 1"),
            (b'{"type":"subscribe"}', "invalid_message", "only log"),
            (b'[{"type":"log"}]', "invalid_message", "line 1"),
            (
                b'{"type":"log","containerID":"other","data":{"level":"info","message":"x"}}',
                "invalid_message",
                "URL's",
            ),
            (
                b'{"type":"log","data":{"level":"info","message":"x"},"timestamp":"soon"}',
                "invalid_message",
                "timestamp",
            ),
        ],
    )
    async def test_refused_bodies(
        self,
        shared_hub: HubProcess,
        http: aiohttp.ClientSession,
        body: bytes,
        code: str,
        words: str,
    ) -> None:
        """Bodies the WebSocket would refuse are 400 with the WebSocket's code, and words."""
        async with http.post(
            f"{shared_hub.http}/api/sessions/pub-5/messages", data=body, headers=AUTH
        ) as resp:
            data = await error_of(resp, 400)
        assert (code, True) == (data["code"], words in data["error"]), data
        async with http.get(f"{shared_hub.http}/api/sessions/pub-5", headers=AUTH) as resp:
            assert resp.status == 404, "nothing was stored"

    async def test_body_too_large_is_413(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A body over the limit (4 MiB by default) is 413 too_large."""
        body = io.BytesIO(ndjson(log("x" * 1000)) * 5000)
        async with http.post(
            f"{shared_hub.http}/api/sessions/pub-6/messages", data=body, headers=AUTH
        ) as resp:
            assert (await error_of(resp, 413))["code"] == "too_large"

    async def test_line_too_large_is_413(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A line over max-message-size (1 MiB by default) is 413, naming the line."""
        body = io.BytesIO(ndjson(log("fine"), log("x" * (1 << 20))))
        async with http.post(
            f"{shared_hub.http}/api/sessions/pub-7/messages", data=body, headers=AUTH
        ) as resp:
            data = await error_of(resp, 413)
        assert (data["code"], data["line"]) == ("too_large", 2)

    async def test_max_sessions_is_429(self, tmp_path: Path, http: aiohttp.ClientSession) -> None:
        """A publish that would open one session more than MAX_SESSIONS is 429, storing nothing."""
        hub = HubProcess(tmp_path / "hub", env={"MAX_SESSIONS": "1"}).start()
        try:
            await post(http, hub, "first", log("a"))
            async with http.post(
                f"{hub.http}/api/sessions/second/messages", data=ndjson(log("b")), headers=AUTH
            ) as resp:
                data = await error_of(resp, 429)
            assert (data["code"], "MAX_SESSIONS" in data["error"]) == ("max_sessions", True)
            await post(http, hub, "first", log("c"))
            async with http.get(f"{hub.http}/api/sessions/second/logs", headers=AUTH) as resp:
                assert resp.status == 404
        finally:
            hub.stop()


class TestCommands:
    async def test_delivered_to_the_container(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, ws_client: aiohttp.ClientSession
    ) -> None:
        """A command reaches the container's connection; the reply counts deliveries."""
        container = await container_ws(ws_client, shared_hub)
        await send(container, "cmd-1", {"type": "heartbeat"})
        await receive_type(container, "heartbeat")
        url = f"{shared_hub.http}/api/sessions/cmd-1/commands"
        for body, data in (
            ({"action": "cancel"}, {"action": "cancel"}),
            (
                {"type": "command", "data": {"action": "input", "text": "yes\n"}},
                {"action": "input", "text": "yes\n"},
            ),
        ):
            async with http.post(url, json=body, headers=AUTH) as resp:
                assert (200, {"action": data["action"], "delivered": 1}) == (
                    resp.status,
                    await resp.json(),
                )
            got = await receive_type(container, "command")
            assert ("cmd-1", data) == (got["containerID"], got["data"])

    async def test_no_container_is_409(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """With no connection publishing for the container: 409 no_container, nothing queued."""
        async with http.post(
            f"{shared_hub.http}/api/sessions/cmd-none/commands",
            json={"action": "cancel"},
            headers=AUTH,
        ) as resp:
            assert (await error_of(resp, 409))["code"] == "no_container"

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"{", "invalid_json"),
            (b'"cancel"', "invalid_message"),
            (b'{"action":""}', "invalid_message"),
            (b'{"action":"input"}', "invalid_message"),
            (
                b'{"type":"command","containerID":"other","data":{"action":"cancel"}}',
                "invalid_message",
            ),
            (b'{"type":"log","data":{"level":"info","message":"x"}}', "invalid_message"),
        ],
    )
    async def test_bad_command_is_400(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession, body: bytes, code: str
    ) -> None:
        """A command the WebSocket would refuse is 400 with the same code."""
        async with http.post(
            f"{shared_hub.http}/api/sessions/cmd-2/commands", data=body, headers=AUTH
        ) as resp:
            assert code == (await error_of(resp, 400))["code"]

    async def test_too_large_is_413(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A command body over max-message-size is 413."""
        body = io.BytesIO(json.dumps({"action": "input", "text": "x" * (1 << 20)}).encode())
        async with http.post(
            f"{shared_hub.http}/api/sessions/cmd-3/commands", data=body, headers=AUTH
        ) as resp:
            assert (await error_of(resp, 413))["code"] == "too_large"


class TestRouting:
    async def test_unknown_path_is_json_404(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """An unknown path under /api/ is a JSON 404."""
        async with http.get(f"{shared_hub.http}/api/nothing-here", headers=AUTH) as resp:
            assert (await error_of(resp, 404))["code"] == "not_found"

    async def test_wrong_method_is_json_405(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A wrong method is a JSON 405 that says which methods are allowed."""
        async with http.delete(f"{shared_hub.http}/api/sessions/x", headers=AUTH) as resp:
            assert (await error_of(resp, 405))["code"] == "method_not_allowed"
            assert "GET" in resp.headers["Allow"]
