"""A closed connection frees what it held at once, with no help from the garbage collector.

And the hub gives that memory back to the system: its RSS returns to where it was.

The hub's real port (:class:`~tailhub.server.listener.Listener`, the handshake and the
connection protocol) runs in this process on a real loopback socket, with the cyclic garbage
collector off: whatever a closed connection still holds then stays, and is seen. Clients that
never sent a token each leave most of a large frame behind them; once they have gone, neither
their connection objects nor those bytes may remain.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import uvloop
from aiohttp import web

from tailhub.auth import Authenticator
from tailhub.config import Settings
from tailhub.core.hub import Connection
from tailhub.core.node import Node
from tailhub.engine.local import LocalEngine
from tailhub.server.listener import Listener
from tailhub.server.state import ServerState
from tailhub.server.wire import FrameReader, text_frame
from tailhub.server.wsconn import WebSocketConnection
from tailhub.store.memory import MemoryStore
from tests.helpers import UNIT, HubProcess, wait_for
from tests.server.test_transport import upgrade

CLIENTS = 20
CROWD = 250
"""Clients that leave a partial 1 MiB frame behind: enough for glibc to keep what they freed."""
LEFT_BEHIND = 512 * 1024
"""Bytes of a 1 MiB frame each client sends before it goes away."""


def _alive(kind: type) -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


async def _not_found(_request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(status=404)


async def _scenario() -> None:
    settings = Settings(history="memory", auth_token="t", auth_timeout=60.0)
    node = Node(
        settings, LocalEngine(MemoryStore(), max_sessions=settings.max_sessions), text_frame
    )
    state = ServerState(settings=settings, node=node, auth=Authenticator("t"))
    await node.start()
    http = web.Server(_not_found)
    server = await asyncio.get_running_loop().create_server(
        Listener(state, http=http), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        before = {kind: _alive(kind) for kind in (WebSocketConnection, Connection, FrameReader)}
        held_before = tracemalloc.get_traced_memory()[0]
        # The head of a 1 MiB masked binary frame, then half of its payload.
        head = bytes([0x82, 0x80 | 127]) + (1 << 20).to_bytes(8, "big") + b"mask"
        clients = []
        for _ in range(CLIENTS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(upgrade(path="/").encode())
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head + bytes(LEFT_BEHIND))
            clients.append(writer)
        await wait_for(
            lambda: tracemalloc.get_traced_memory()[0] - held_before > CLIENTS * LEFT_BEHIND,
            10 * UNIT,
        )
        assert CLIENTS == len(node.hub.connections)
        for writer in clients:
            writer.close()
        await wait_for(lambda: not node.hub.connections, 10 * UNIT)
        await asyncio.sleep(0)  # let the transports' own connection_lost calls finish
        after = {kind: _alive(kind) for kind in before}
        assert before == after, "closed connections are still held (a reference cycle)"
        held = tracemalloc.get_traced_memory()[0] - held_before
        assert held < CLIENTS * LEFT_BEHIND / 4, f"{held} bytes still held after closing"
    finally:
        server.close()
        await node.stop()
        await http.shutdown(1.0)


@pytest.mark.parametrize(
    "loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
def test_closed_connections_and_their_partial_frames_are_freed_without_gc(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(_scenario())
    finally:
        tracemalloc.stop()
        gc.enable()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_the_hubs_rss_comes_back_after_clients_leave_partial_frames(tmp_path: Path) -> None:
    """Token-less clients each leave 1 MiB of a frame, then go: the RSS goes back down."""
    hub = HubProcess(tmp_path / "hub", args=["--auth-timeout", "60000"]).start()
    assert hub.proc is not None
    pid = hub.proc.pid
    head = bytes([0x82, 0x80 | 127]) + (1 << 20).to_bytes(8, "big") + b"mask"
    try:
        start = _rss(pid)
        writers = []
        for _ in range(CROWD):
            reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
            writer.write(upgrade(path="/").encode())
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head + bytes((1 << 20) - 1))
            writers.append(writer)
        await wait_for(lambda: _rss(pid) > start + (CROWD - 20 << 20), 20 * UNIT)
        for writer in writers:
            writer.close()
        await wait_for(lambda: _rss(pid) < start + (20 << 20), 10 * UNIT)
    finally:
        hub.stop()
