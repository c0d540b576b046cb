"""Minimal relay on picows, the fastest raw Python WebSocket transport found here.

This is the ceiling for a naive Python design: the same hot path as the Node ``ws`` relay
(decode each incoming JSON message once to find its ``containerID``, forward the original
bytes to every subscriber of that ID and of ``"*"``), on a Cython WebSocket layer with uvloop.
It frames each delivery separately, as a naive design does; it has no seq, history, auth or
limits, and never echoes a message to its sender.

A connection is subscribed by ``?containerID=X`` in its URL or by sending
``{"type": "subscribe", "containerID": X}``.

Usage: ``python -m bench.peers.picows_relay --port P [--host H]``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from urllib.parse import parse_qs, urlsplit

import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

__all__ = ["Relay", "main"]

_TEXT = WSMsgType.TEXT
_decode = msgspec.json.Decoder().decode


class Relay:
    """The routing table: containerID (or ``"*"``) to the transports subscribed to it."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[WSTransport]] = {}

    def subscribe(self, transport: WSTransport, container_id: str) -> None:
        self.subscribers.setdefault(container_id, set()).add(transport)

    def unsubscribe(self, transport: WSTransport, container_id: str) -> None:
        group = self.subscribers.get(container_id)
        if group is not None:
            group.discard(transport)
            if not group:
                del self.subscribers[container_id]

    def forward(self, payload: bytes, container_id: str, sender: WSTransport) -> None:
        for key in (container_id, "*") if container_id != "*" else ("*",):
            group = self.subscribers.get(key)
            if group is None:
                continue
            for transport in group:
                if transport is not sender:
                    transport.send(_TEXT, payload)


class _Connection(WSListener):
    """One client: routes what it sends, remembers what it is subscribed to."""

    def __init__(self, relay: Relay, initial: str | None) -> None:
        super().__init__()
        self.relay = relay
        self.initial = initial
        self.subscriptions: set[str] = set()

    def on_ws_connected(self, transport: WSTransport) -> None:
        if self.initial:
            self._subscribe(transport, self.initial)

    def _subscribe(self, transport: WSTransport, container_id: str) -> None:
        self.subscriptions.add(container_id)
        self.relay.subscribe(transport, container_id)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not _TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        payload = frame.get_payload_as_bytes()
        try:
            message = _decode(payload)
        except msgspec.DecodeError:
            return
        if not isinstance(message, dict):
            return
        container_id = message.get("containerID")
        if not isinstance(container_id, str):
            return
        if message.get("type") == "subscribe":
            self._subscribe(transport, container_id)
            return
        self.relay.forward(payload, container_id, transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for container_id in self.subscriptions:
            self.relay.unsubscribe(transport, container_id)
        self.subscriptions.clear()


async def serve(host: str, port: int) -> None:
    """Run the relay until SIGTERM or SIGINT."""
    relay = Relay()

    def factory(request: WSUpgradeRequest) -> _Connection:
        query = parse_qs(urlsplit(request.path.decode("latin-1")).query)
        initial = query.get("containerID", [None])[0]
        return _Connection(relay, initial)

    server = await ws_create_server(factory, host, port, websocket_handshake_timeout=10)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"picows relay listening on {host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
