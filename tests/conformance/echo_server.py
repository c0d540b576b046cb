"""An echo server on the hub's own WebSocket transport, for the Autobahn|Testsuite.

Everything but the meaning of a message is the hub's real code: the port's protocol factory
(:class:`~tailhub.server.listener.Listener`, which does the RFC 6455 handshake), the
per-connection protocol (:class:`~tailhub.server.wsconn.WebSocketConnection`, which reads
frames with :class:`~tailhub.server.wire.FrameReader`, answers pings and runs the closing
handshake) and the node behind it. Only :meth:`EchoConnection.received` differs: it sends
each whole text or binary message back, as the fuzzing client expects of its testee.

Run it as ``python tests/conformance/echo_server.py [--port 0] [--token x]``: it prints the
port once it listens, then serves until SIGTERM or SIGINT. Autobahn must connect with
``ws://127.0.0.1:PORT/?token=TOKEN`` so that connections are authenticated at the handshake
(otherwise the hub closes them when ``auth_timeout`` runs out).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Final

from aiohttp import web

from tailhub.auth import Authenticator
from tailhub.config import Settings
from tailhub.core.node import Node
from tailhub.engine.local import LocalEngine
from tailhub.log import configure_logging
from tailhub.server.listener import Listener
from tailhub.server.state import ServerState
from tailhub.server.wire import BINARY, TEXT, binary_frame, text_frame
from tailhub.server.wsconn import WebSocketConnection
from tailhub.store.memory import MemoryStore

MAX_MESSAGE_SIZE: Final = 64 << 20
"""Autobahn's largest messages (case 9.x) are 16 MiB: leave them room."""


class EchoConnection(WebSocketConnection):
    """The hub's connection protocol, with every whole message echoed as it came."""

    __slots__ = ()

    def received(self, messages: list[tuple[int, bytes]]) -> None:
        # Queued as the hub queues any reply, so that echoes and pongs keep their order.
        hub = self._state.node.hub
        for opcode, payload in messages:
            if opcode == TEXT:
                hub.send_frame(self._conn, text_frame(payload))
            elif opcode == BINARY:
                hub.send_frame(self._conn, binary_frame(payload))


async def _not_found(_request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(status=404, text="this is the conformance echo server\n")


async def serve(host: str, port: int, token: str) -> None:
    settings = Settings(
        host=host,
        port=port,
        auth_token=token,
        history="memory",
        max_message_size=MAX_MESSAGE_SIZE,
        # Case 9.3.1 sends a 4 MiB message in fragments of 64 bytes.
        max_fragments=1 << 20,
        max_queue=4 * MAX_MESSAGE_SIZE,
        # The node's liveness pings would show up in the traces of the cases; keep them out.
        heartbeat_interval=3600.0,
        auth_timeout=30.0,
    )
    node = Node(
        settings, LocalEngine(MemoryStore(), max_sessions=settings.max_sessions), text_frame
    )
    state = ServerState(settings=settings, node=node, auth=Authenticator(token))
    await node.start()
    http = web.Server(_not_found)
    listener = Listener(state, http=http, connection=EchoConnection)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(listener, host, port, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(bound, flush=True)
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        server.close()
        await node.stop()
        await http.shutdown(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--token", default="x")
    parser.add_argument("--log-level", default="warn", help="trace ... fatal (to stderr)")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port, args.token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
