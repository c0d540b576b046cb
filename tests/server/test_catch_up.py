"""Catch-up (a subscribe's backlog, then live) against requests read in the same turn.

Two subscribes for one container, or a subscribe then an unsubscribe, that arrive in one
socket read are handled before the first backlog task starts: the later one must replace or
end the earlier catch-up cleanly, with no stale page, no duplicate and no traceback. A
catching-up reader that takes nothing is closed as slow (4429), not as gone (4408).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import UNIT, HubProcess, client_frame, wait_for
from tests.server.test_transport import TEXT, Raw, upgrade


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path_factory.mktemp("catch-up"))
    process.start()
    yield process
    process.stop()


def _frame(**message: Any) -> bytes:
    return client_frame(TEXT, json.dumps(message).encode())


def _log(container: str, text: str, **fields: Any) -> bytes:
    return _frame(
        type="log", containerID=container, data={"level": "info", "message": text}, **fields
    )


async def _publish(hub: HubProcess, container: str, count: int, size: int = 0) -> None:
    """``count`` messages, stored (the last one acked) before this returns."""
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        pad = "x" * size
        raw.send(b"".join(_log(container, f"{i}{pad}", id=i) for i in range(1, count + 1)))
        while (await raw.message("ack"))["id"] != count:
            pass
    finally:
        raw.close()


async def _next(raw: Raw) -> dict[str, Any]:
    opcode, payload = await raw.frame()
    assert TEXT == opcode
    message: dict[str, Any] = json.loads(payload)
    return message


def _no_traceback(hub: HubProcess) -> None:
    log = hub.log()
    assert "Traceback" not in log
    assert "KeyError" not in log


async def test_a_second_subscribe_in_the_same_read_replaces_the_first_backlog(
    hub: HubProcess,
) -> None:
    container = "twice"
    await _publish(hub, container, 5)
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        raw.send(
            _frame(type="subscribe", containerID=container, since=0)
            + _frame(type="subscribe", containerID=container, since=3)
        )
        assert ("subscribed", 0) == ((m := await _next(raw))["type"], m["seq"] - 5)
        assert "subscribed" == (await _next(raw))["type"]
        await _publish_one(hub, container, "live")
        got = []
        while not got or got[-1] != 6:
            message = await _next(raw)
            got.append(message["seq"])
        assert [4, 5, 6] == got, "the second subscribe's backlog only, then live, once each"
        raw.send(_frame(type="sessions"))
        assert "sessions" == (await _next(raw))["type"], "nothing more came before it"
    finally:
        raw.close()
    _no_traceback(hub)


async def _publish_one(hub: HubProcess, container: str, text: str) -> None:
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        raw.send(_log(container, text) + _frame(type="sessions"))
        await raw.message("sessions")
    finally:
        raw.close()


async def test_an_unsubscribe_in_the_same_read_ends_the_backlog_before_it_starts(
    hub: HubProcess,
) -> None:
    container = "never-mind"
    await _publish(hub, container, 5)
    raw = await Raw.open(hub.port)
    try:
        await raw.request(upgrade())
        raw.send(
            _frame(type="subscribe", containerID=container, since=0)
            + _frame(type="unsubscribe", containerID=container)
        )
        assert "subscribed" == (await _next(raw))["type"]
        assert "unsubscribed" == (await _next(raw))["type"]
        await _publish_one(hub, container, "live")
        raw.send(_frame(type="sessions"))
        assert "sessions" == (await _next(raw))["type"], "no backlog and no live message"
    finally:
        raw.close()
    _no_traceback(hub)


async def test_a_catching_up_reader_that_takes_nothing_is_closed_as_slow(
    tmp_path: Path,
) -> None:
    """4429 (resume with since), before the liveness round would close it with 4408."""
    hub = HubProcess(
        tmp_path / "hub", args=["--max-queue", "64KiB", "--heartbeat-interval", "4000"]
    ).start()
    try:
        # About 6 MB of backlog: more than the kernel's socket buffers take.
        await _publish(hub, "deep", 750, size=8000)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", hub.port))
        sock.settimeout(None)
        sock.sendall(upgrade().encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        sock.sendall(_frame(type="subscribe", containerID="deep", since=0))
        # Take nothing until the hub has given up on this reader, then read to its close.
        await wait_for(
            lambda: "catch_up_too_slow" in hub.log() or "connection_timed_out" in hub.log(),
            20 * UNIT,
        )
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        raw = Raw(reader, writer)
        try:
            assert 4429 == await raw.closed()  # behind the backlog sent so far
        finally:
            raw.close()
    finally:
        hub.stop()
