"""The original protocol over real sockets against a real hub process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import (
    TOKEN,
    UNIT,
    HubProcess,
    raw_websocket,
    receive_json,
    receive_type,
    wait_for,
)

WS = aiohttp.ClientWebSocketResponse


async def connect(
    http: aiohttp.ClientSession, hub: HubProcess, *, autoping: bool = True, **query: str
) -> WS:
    return await http.ws_connect(hub.ws_url(**query), autoping=autoping)


def log(container: str, message: str, **extra: Any) -> str:
    return json.dumps(
        {
            "type": "log",
            "containerID": container,
            "data": {"level": "info", "message": message},
            **extra,
        }
    )


async def subscribe(ws: WS, container: str, **options: Any) -> dict[str, Any]:
    await ws.send_str(json.dumps({"type": "subscribe", "containerID": container, **options}))
    reply: dict[str, Any] = await receive_type(ws, "subscribed")
    return reply


async def closed_with(ws: WS, timeout: float = 5 * UNIT) -> int | None:
    """Read until the hub closes ``ws``; the close code."""
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
        ):
            return ws.close_code
        if msg.type is aiohttp.WSMsgType.ERROR:
            return ws.close_code


async def still_works(http: aiohttp.ClientSession, hub: HubProcess, ws: WS, tag: str) -> None:
    """``ws`` can still publish, and a subscriber receives it."""
    viewer = await connect(http, hub, containerID=tag)
    await receive_type(viewer, "subscribed")
    await ws.send_str(log(tag, "still here"))
    got = await receive_type(viewer, "log")
    # A container's first run is handed on once committed: it may come after the subscribe.
    while got["data"]["message"] != "still here" and got["seq"] == 1:
        got = await receive_type(viewer, "log")
    assert "still here" == got["data"]["message"]
    await viewer.close()


class TestRouting:
    async def test_subscriber_receives_in_order(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """Every log reaches the subscriber, in arrival order, stamped with gapless seq."""
        viewer = await connect(http, shared_hub)
        await subscribe(viewer, "order")
        pub = await connect(http, shared_hub)
        for i in range(500):
            await pub.send_str(log("order", str(i)))
        got = [await receive_type(viewer, "log") for _ in range(500)]
        assert [str(i) for i in range(500)] == [m["data"]["message"] for m in got]
        assert list(range(1, 501)) == [m["seq"] for m in got]
        assert all(m["containerID"] == "order" and m["timestamp"].endswith("Z") for m in got)

    async def test_only_subscribers_receive(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A message for A reaches A's subscribers and '*', never B's, never the sender."""
        a = await connect(http, shared_hub)
        await subscribe(a, "iso-a")
        b = await connect(http, shared_hub)
        await subscribe(b, "iso-b")
        star = await connect(http, shared_hub)
        await subscribe(star, "*")
        pub = await connect(http, shared_hub)
        await pub.send_str(log("iso-a", "for a"))
        await pub.send_str(log("iso-b", "for b"))
        assert "iso-a" == (await receive_json(a))["containerID"]
        assert "iso-b" == (await receive_json(b))["containerID"]
        got = {(await receive_json(star))["containerID"] for _ in range(2)}
        assert {"iso-a", "iso-b"} == got
        for ws in (a, b, pub):
            await ws.send_str(json.dumps({"type": "sessions"}))
            assert "sessions" == (await receive_json(ws))["type"]

    async def test_url_container_id_subscribes(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """?containerID=X in the URL subscribes from the start, as the original hub did."""
        viewer = await connect(http, shared_hub, containerID="url-sub")
        assert "subscribed" == (await receive_json(viewer))["type"]
        pub = await connect(http, shared_hub)
        await pub.send_str(log("url-sub", "hi"))
        assert "hi" == (await receive_json(viewer))["data"]["message"]

    async def test_upper_case_from_original_containers(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """'LOG', 'STATUS', 'COMPLETE' are routed, and sent on in lower case."""
        viewer = await connect(http, shared_hub, containerID="upper")
        await receive_type(viewer, "subscribed")
        pub = await connect(http, shared_hub)
        await pub.send_str(
            json.dumps(
                {"type": "LOG", "containerID": "upper", "data": {"level": "info", "message": "x"}}
            )
        )
        await pub.send_str(
            json.dumps({"type": "STATUS", "containerID": "upper", "data": {"status": "failed"}})
        )
        await pub.send_str(
            json.dumps(
                {"type": "ERROR", "containerID": "upper", "data": {"error": "boom", "code": "E1"}}
            )
        )
        await pub.send_str(
            json.dumps(
                {"type": "COMPLETE", "containerID": "upper", "data": {"exitCode": 1, "duration": 5}}
            )
        )
        got = [await receive_json(viewer) for _ in range(4)]
        assert ["log", "status", "error", "complete"] == [m["type"] for m in got]
        assert "error" == got[1]["data"]["status"]

    async def test_unsubscribe(self, http: aiohttp.ClientSession, shared_hub: HubProcess) -> None:
        """After unsubscribe nothing more arrives; unsubscribing twice is an error."""
        viewer = await connect(http, shared_hub)
        await subscribe(viewer, "unsub")
        await viewer.send_str(json.dumps({"type": "unsubscribe", "containerID": "unsub"}))
        assert {"type": "unsubscribed", "containerID": "unsub"} == await receive_json(viewer)
        pub = await connect(http, shared_hub)
        await pub.send_str(log("unsub", "gone"))
        await viewer.send_str(json.dumps({"type": "unsubscribe", "containerID": "unsub"}))
        reply = await receive_json(viewer)
        assert "not_subscribed" == reply["data"]["code"]

    async def test_heartbeat_is_answered_not_routed(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A container's heartbeat is answered with a heartbeat and reaches no subscriber."""
        viewer = await connect(http, shared_hub, containerID="beat")
        await receive_type(viewer, "subscribed")
        pub = await connect(http, shared_hub)
        await pub.send_str(log("beat", "first"))
        await pub.send_str(
            json.dumps({"type": "heartbeat", "containerID": "beat", "data": {"uptime": 3}})
        )
        reply = await receive_json(pub)
        assert ("heartbeat", "beat") == (reply["type"], reply["containerID"])
        assert reply["data"]["uptime"] >= 0
        await pub.send_str(log("beat", "second"))
        assert ["first", "second"] == [
            (await receive_json(viewer))["data"]["message"] for _ in range(2)
        ]

    async def test_command_reaches_the_container(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A command goes to the container's connection; the sender is told it was sent."""
        container = await connect(http, shared_hub)
        await container.send_str(log("cmd", "ready"))
        viewer = await connect(http, shared_hub)
        await viewer.send_str(
            json.dumps(
                {
                    "type": "command",
                    "containerID": "cmd",
                    "data": {"action": "input", "text": "yes\n"},
                }
            )
        )
        got = await receive_type(container, "command")
        assert {"action": "input", "text": "yes\n"} == got["data"]
        sent = await receive_json(viewer)
        assert ("command_sent", 1) == (sent["type"], sent["data"]["delivered"])

    async def test_command_without_container(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A command for a container with no connection is an error; nothing is queued."""
        viewer = await connect(http, shared_hub)
        await viewer.send_str(
            json.dumps({"type": "command", "containerID": "nobody", "data": {"action": "cancel"}})
        )
        assert "no_container" == (await receive_json(viewer))["data"]["code"]


class TestBadInput:
    @pytest.mark.parametrize(
        ("frame", "code"),
        [
            ("{not json", "invalid_json"),
            ("[1, 2, 3]", "invalid_message"),
            ('{"type": "log", "data": {"level": "info", "message": "m"}}', "invalid_message"),
            ('{"type": "log", "containerID": "c", "data": "text"}', "invalid_message"),
            ('{"type": "launch", "containerID": "c"}', "unknown_type"),
            (
                '{"type": "log", "containerID": "c", "data": {"level": "info", "message": 5}}',
                "invalid_message",
            ),
            ('{"type": "subscribe", "containerID": "*", "since": 3}', "invalid_message"),
        ],
    )
    async def test_error_reply_and_connection_stays(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, frame: str, code: str
    ) -> None:
        """Bad input gets an error with a code and words; the connection keeps working."""
        ws = await connect(http, shared_hub)
        await ws.send_str(frame)
        reply = await receive_json(ws)
        assert ("error", code) == (reply["type"], reply["data"]["code"])
        assert reply["data"]["error"]
        await still_works(http, shared_hub, ws, f"bad-{code}-{len(frame)}")

    async def test_error_names_the_refused_message(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A refused publish's error carries its containerID, id and producer."""
        ws = await connect(http, shared_hub)
        await ws.send_str(
            json.dumps(
                {
                    "type": "log",
                    "containerID": "named",
                    "id": 2,
                    "producer": "pp",
                    "data": {"level": "nope", "message": "a"},
                }
            )
        )
        reply = await receive_json(ws)
        assert ("invalid_message", "named", 2, "pp") == (
            reply["data"]["code"],
            reply["containerID"],
            reply["id"],
            reply["producer"],
        )

    async def test_oversized_message_closes_1009(
        self, http: aiohttp.ClientSession, hub_small: HubProcess
    ) -> None:
        """A frame above the size limit closes that connection with 1009, and only that one."""
        other = await connect(http, hub_small)
        ws = await connect(http, hub_small)
        await ws.send_str(log("big", "x" * 4096))
        assert 1009 == await closed_with(ws)
        await still_works(http, hub_small, other, "big-ok")


@pytest.fixture
def hub_small(tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path / "hub", args=["--max-message-size", "1KiB"]).start()
    yield hub
    hub.stop()


class TestAuthentication:
    async def test_wrong_token_refused_at_handshake(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A wrong token in the URL is refused with HTTP 401."""
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(shared_hub.url + "?token=wrong")
        assert 401 == caught.value.status

    async def test_bearer_header(self, http: aiohttp.ClientSession, shared_hub: HubProcess) -> None:
        """Authorization: Bearer is accepted."""
        ws = await http.ws_connect(shared_hub.url, headers={"Authorization": f"Bearer {TOKEN}"})
        await still_works(http, shared_hub, ws, "bearer")

    async def test_token_in_first_message(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A connection without a token may bring it in its first message's auth field."""
        viewer = await http.ws_connect(shared_hub.url)
        reply = await subscribe(viewer, "first-msg", auth={"token": TOKEN})
        assert "first-msg" == reply["containerID"]

    async def test_auth_message(self, http: aiohttp.ClientSession, shared_hub: HubProcess) -> None:
        """{"type": "auth"} authenticates the connection and is answered."""
        ws = await http.ws_connect(shared_hub.url)
        await ws.send_str(json.dumps({"type": "auth", "token": TOKEN}))
        assert {"type": "authenticated"} == await receive_json(ws)
        await still_works(http, shared_hub, ws, "auth-msg")

    async def test_invalid_first_message_with_token_authenticates(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A bad first message that carries a valid token gets its error and authenticates."""
        ws = await http.ws_connect(shared_hub.url)
        await ws.send_str(json.dumps({"type": "bogus", "token": TOKEN}))
        assert "unknown_type" == (await receive_json(ws))["data"]["code"]
        await still_works(http, shared_hub, ws, "bogus-first")

    async def test_first_message_without_token(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A first message with no token gets 'unauthorized' and a 4401 close."""
        ws = await http.ws_connect(shared_hub.url)
        await ws.send_str(log("nope", "x"))
        assert "unauthorized" == (await receive_json(ws))["data"]["code"]
        assert 4401 == await closed_with(ws)

    async def test_first_message_with_wrong_token(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """A wrong token in the first message gets a 4401 close and changes nothing."""
        ws = await http.ws_connect(shared_hub.url)
        await ws.send_str(log("nope", "x", auth={"token": "wrong"}))
        assert "unauthorized" == (await receive_json(ws))["data"]["code"]
        assert 4401 == await closed_with(ws)

    async def test_silent_connection_is_closed(
        self, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """A connection with no token that sends nothing is closed with 4401 in time."""
        hub = HubProcess(tmp_path / "h", args=["--auth-timeout", "300"]).start()
        try:
            ws = await http.ws_connect(hub.url)
            assert 4401 == await closed_with(ws)
        finally:
            hub.stop()


class TestSessions:
    async def test_listing(self, http: aiohttp.ClientSession, shared_hub: HubProcess) -> None:
        """sessions lists a container with its status, seq, counts and viewers."""
        viewer = await connect(http, shared_hub, containerID="listed")
        await receive_type(viewer, "subscribed")
        pub = await connect(http, shared_hub)
        await pub.send_str(
            json.dumps({"type": "status", "containerID": "listed", "data": {"status": "starting"}})
        )
        await pub.send_str(log("listed", "a"))
        await receive_type(viewer, "log")
        await pub.send_str(json.dumps({"type": "sessions"}))
        sessions = (await receive_type(pub, "sessions"))["data"]["sessions"]
        mine = next(s for s in sessions if s["containerID"] == "listed")
        assert ("starting", True, 2, 1, 1) == (
            mine["status"],
            mine["active"],
            mine["lastSeq"],
            mine["subscribers"],
            mine["publishers"],
        )

    async def test_max_sessions(self, http: aiohttp.ClientSession, tmp_path: Path) -> None:
        """One session beyond MAX_SESSIONS is refused; the others go on; complete frees one."""
        hub = HubProcess(tmp_path / "h", env={"MAX_SESSIONS": "2"}).start()
        try:
            pub = await connect(http, hub)
            await pub.send_str(log("s1", "a"))
            await pub.send_str(log("s2", "a"))
            await pub.send_str(log("s3", "a", id=1))
            reply = await receive_json(pub)
            assert ("max_sessions", "s3", 1) == (
                reply["data"]["code"],
                reply["containerID"],
                reply["id"],
            )
            await still_works(http, hub, pub, "s1")
            await pub.send_str(
                json.dumps({"type": "complete", "containerID": "s2", "data": {"exitCode": 0}})
            )
            await still_works(http, hub, pub, "s3")
        finally:
            hub.stop()

    async def test_timeout_ends_session(self, http: aiohttp.ClientSession, tmp_path: Path) -> None:
        """A silent session ends after SESSION_TIMEOUT with a final status to subscribers."""
        hub = HubProcess(tmp_path / "h", env={"SESSION_TIMEOUT": "300"}).start()
        try:
            viewer = await connect(http, hub, containerID="quiet")
            await receive_type(viewer, "subscribed")
            pub = await connect(http, hub)
            await pub.send_str(log("quiet", "only line"))
            await receive_type(viewer, "log")
            final = await receive_type(viewer, "status", timeout=10 * UNIT)
            assert ("error", "timeout", 2) == (
                final["data"]["status"],
                final["data"]["reason"],
                final["seq"],
            )
            await viewer.send_str(json.dumps({"type": "sessions"}))
            listed = (await receive_type(viewer, "sessions"))["data"]["sessions"]
            assert [(False, "timeout")] == [(s["active"], s["endReason"]) for s in listed]
        finally:
            hub.stop()

    async def test_complete_ends_session(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess
    ) -> None:
        """complete ends the session at once, with its exit code."""
        pub = await connect(http, shared_hub)
        await pub.send_str(
            json.dumps({"type": "complete", "containerID": "done", "data": {"exitCode": 3}})
        )
        await pub.send_str(json.dumps({"type": "sessions"}))
        listed = (await receive_type(pub, "sessions"))["data"]["sessions"]
        mine = next(s for s in listed if s["containerID"] == "done")
        assert (False, "complete", 3, "error") == (
            mine["active"],
            mine["endReason"],
            mine["exitCode"],
            mine["status"],
        )


class TestLiveness:
    async def test_silent_peer_is_closed(self, http: aiohttp.ClientSession, tmp_path: Path) -> None:
        """A peer that answers no ping is closed with 4408 after one missed round."""
        hub = HubProcess(tmp_path / "h", env={"HEARTBEAT_INTERVAL": "200"}).start()
        try:
            dead = await connect(http, hub, autoping=False)
            alive = await connect(http, hub)
            # aiohttp's client answers pings only while someone reads the connection.
            reader = asyncio.create_task(alive.receive())
            pings = 0
            while True:
                msg = await dead.receive(timeout=10 * UNIT)
                if msg.type is aiohttp.WSMsgType.PING:
                    pings += 1
                    continue
                break
            assert 4408 == dead.close_code
            assert pings >= 1
            assert not reader.done()
            await still_works(http, hub, alive, "alive")
            reader.cancel()
        finally:
            hub.stop()


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[HubProcess]:
    """A hub with small limits, one per test."""
    hub = HubProcess(
        tmp_path / "hub",
        args=[
            "--publish-rate",
            "5",
            "--max-subscriptions",
            "2",
            "--max-connections",
            "3",
            "--allowed-origins",
            "http://good.example",
        ],
    ).start()
    yield hub
    hub.stop()


class TestLimits:
    async def test_publish_rate(self, http: aiohttp.ClientSession, limited: HubProcess) -> None:
        """Past the rate, a publish is refused with rate_limited and its id; the rest go on."""
        viewer = await connect(http, limited, containerID="rated")
        await receive_type(viewer, "subscribed")
        pub = await connect(http, limited)
        for i in range(1, 9):
            await pub.send_str(log("rated", str(i), id=i))
        refused = await receive_type(pub, "error")
        assert ("rate_limited", "rated") == (refused["data"]["code"], refused["containerID"])
        assert refused["id"] > 5
        got = [(await receive_json(viewer))["data"]["message"] for _ in range(5)]
        assert [str(i) for i in range(1, 6)] == got

    async def test_subscriptions_per_connection(
        self, http: aiohttp.ClientSession, limited: HubProcess
    ) -> None:
        """One subscription beyond the limit is refused; resubscribing an ID is not one more."""
        ws = await connect(http, limited)
        await subscribe(ws, "s-1")
        await subscribe(ws, "s-2")
        await subscribe(ws, "s-1")
        await ws.send_str(json.dumps({"type": "subscribe", "containerID": "s-3"}))
        reply = await receive_json(ws)
        assert ("too_many_subscriptions", "s-3") == (reply["data"]["code"], reply["containerID"])

    async def test_connections(self, http: aiohttp.ClientSession, limited: HubProcess) -> None:
        """Past the most connections, a handshake gets HTTP 503; closing one frees a place."""
        held = [await connect(http, limited) for _ in range(3)]
        path = f"/?token={TOKEN}"
        with pytest.raises(ConnectionError, match="503"):
            raw_websocket(limited.port, path)
        await held[0].close()

        def accepted() -> bool:
            try:
                raw_websocket(limited.port, path).close()
            except ConnectionError:
                return False
            return True

        await wait_for(accepted)

    async def test_origin(self, http: aiohttp.ClientSession, limited: HubProcess) -> None:
        """A browser origin not allowed is closed with 1008; an allowed one works."""
        bad = await http.ws_connect(limited.ws_url(), origin="http://evil.example")
        assert 1008 == await closed_with(bad)
        good = await http.ws_connect(limited.ws_url(), origin="http://good.example")
        await good.send_str(json.dumps({"type": "sessions"}))
        assert "sessions" == (await receive_json(good))["type"]


class TestSlowReader:
    async def test_slow_reader_closed_others_unaffected(
        self, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """A reader that never reads is closed with 4429; publisher and others are not slowed."""
        hub = HubProcess(tmp_path / "h", args=["--max-queue", "1MiB"]).start()
        try:
            slow = raw_websocket(hub.port, f"/?token={TOKEN}&containerID=flood")
            fast = await connect(http, hub, containerID="flood")
            await receive_type(fast, "subscribed")
            pub = await connect(http, hub)
            # More than loopback's kernel buffers (several MiB each way) can absorb.
            count, received = 16000, 0

            async def drain_fast() -> None:
                nonlocal received
                while received < count:
                    if (await receive_json(fast))["type"] == "log":
                        received += 1

            reader = asyncio.create_task(drain_fast())
            for i in range(count):
                await pub.send_str(log("flood", f"{i} " + "x" * 1500))
                if i % 100 == 99:
                    # A reader that keeps up: never more than 100 messages behind.
                    await wait_for(lambda i=i: received > i - 100 or reader.done(), 30 * UNIT)
            await asyncio.wait_for(reader, 30 * UNIT)
            assert count == received

            async def subscribers() -> int:
                await pub.send_str(json.dumps({"type": "sessions"}))
                listed = (await receive_type(pub, "sessions"))["data"]["sessions"]
                return int(listed[0]["subscribers"])

            assert 1 == await subscribers()
            tail = await asyncio.to_thread(read_until_closed, slow)
            assert CLOSE_4429 in tail
        finally:
            slow.close()
            hub.stop()


CLOSE_4429 = (4429).to_bytes(2, "big")


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the hub still sends until it closes; the last few KiB of it."""
    tail = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionError:
            break
        if not chunk:
            break
        tail = (tail + chunk)[-4096:]
    sock.close()
    return tail


class TestProcess:
    async def test_sigterm_closes_1001_and_exits_0(
        self, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """SIGTERM closes every connection with 1001 and the process exits 0."""
        hub = HubProcess(tmp_path / "h").start()
        ws = await connect(http, hub)
        assert hub.proc is not None
        hub.proc.send_signal(signal.SIGTERM)
        assert 1001 == await closed_with(ws)
        assert 0 == await asyncio.to_thread(hub.wait)

    async def test_logs_are_json_and_never_hold_a_token(
        self, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        """Every log line is a JSON event; no token, good or bad, ever appears."""
        hub = HubProcess(tmp_path / "h", env={"LOG_LEVEL": "debug"}).start()
        try:
            ws = await connect(http, hub, containerID="logged")
            await receive_type(ws, "subscribed")
            await ws.send_str(log("logged", "x", auth={"token": TOKEN}))
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(hub.url + "?token=wrong-secret-zzz")
            bad = await http.ws_connect(hub.url)
            await bad.send_str(json.dumps({"type": "auth", "token": "other-secret-yyy"}))
            await closed_with(bad)
            await ws.close()
            await wait_for(lambda: "connection_closed" in hub.log())
        finally:
            hub.stop()
        text = hub.log()
        for secret in (TOKEN, "wrong-secret-zzz", "other-secret-yyy"):
            assert secret not in text
        events = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert all("event" in e and "level" in e and "timestamp" in e for e in events)
        names = {e["event"] for e in events}
        assert {
            "hub_started",
            "connection_opened",
            "connection_closed",
            "auth_failed",
            "session_started",
            "hub_stopped",
        } <= names

    async def test_generated_token(self, http: aiohttp.ClientSession, tmp_path: Path) -> None:
        """Without AUTH_TOKEN the hub makes a token in a 0600 file, says where, never logs it."""
        data = tmp_path / "h" / "data"  # made by the hub itself
        hub = HubProcess(tmp_path / "h", token=None, env={"TAILHUB_DATA_DIR": str(data)}).start()
        try:
            path = data / "token"
            await wait_for(path.exists)
            token = path.read_text().strip()
            assert 0o600 == stat.S_IMODE(os.stat(path).st_mode)
            ws = await http.ws_connect(hub.url + f"?token={token}")
            await ws.send_str(json.dumps({"type": "sessions"}))
            assert "sessions" == (await receive_json(ws))["type"]
            anonymous = await http.ws_connect(hub.url)
            await anonymous.send_str(json.dumps({"type": "sessions"}))
            assert 4401 == await closed_with(anonymous)
        finally:
            hub.stop()
        assert token not in hub.log()
        assert str(path) in hub.log()
        assert 0o700 == stat.S_IMODE(os.stat(path.parent).st_mode)
