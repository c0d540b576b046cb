"""Minimal relay on aiohttp + uvloop: tailhub's own transport with none of tailhub's features.

Not one of the default peers. It answers one question: how much of tailhub's cost is
aiohttp's? Run with ``python -m bench --servers tailhub,node,aiohttp``. Same semantics as the
other relays: decode each message once (msgspec) to find its ``containerID``, forward the
original text to the subscribers of that ID and of ``"*"``, never to the sender; subscribe by
``?containerID=X`` or ``{"type": "subscribe", "containerID": X}``.

Usage: ``python -m bench.peers.aiohttp_relay --port P [--host H]``.
"""

from __future__ import annotations

import argparse

import msgspec
from aiohttp import WSMsgType, web

__all__ = ["create_app", "main"]

_decode = msgspec.json.Decoder().decode


def create_app() -> web.Application:
    """The relay: one WebSocket route on ``/`` and its routing table."""
    subscribers: dict[str, set[web.WebSocketResponse]] = {}

    async def forward(text: str, container_id: str, sender: web.WebSocketResponse) -> None:
        for key in (container_id, "*") if container_id != "*" else ("*",):
            for socket in list(subscribers.get(key, ())):
                if socket is not sender and not socket.closed:
                    await socket.send_str(text)

    async def handle(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(compress=False, autoping=True)
        await socket.prepare(request)
        mine: set[str] = set()

        def subscribe(container_id: str) -> None:
            mine.add(container_id)
            subscribers.setdefault(container_id, set()).add(socket)

        initial = request.query.get("containerID")
        if initial:
            subscribe(initial)
        try:
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                try:
                    body = _decode(message.data)
                except msgspec.DecodeError:
                    continue
                if not isinstance(body, dict):
                    continue
                container_id = body.get("containerID")
                if not isinstance(container_id, str):
                    continue
                if body.get("type") == "subscribe":
                    subscribe(container_id)
                else:
                    await forward(message.data, container_id, socket)
        finally:
            for container_id in mine:
                group = subscribers.get(container_id)
                if group is not None:
                    group.discard(socket)
                    if not group:
                        del subscribers[container_id]
        return socket

    app = web.Application()
    app.router.add_get("/", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    web.run_app(
        create_app(),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        loop=loop_factory() if loop_factory else None,
    )


if __name__ == "__main__":
    main()
