"""The publish path in process: ``Node.publish_many`` over a LocalEngine, per grant.

One round is one run of 8 log messages for each of 50 containers, admitted (rate, history
lag and, with scoped tokens, the token's scope), stamped, stored in a MemoryStore and handed
to fan-out (framed once, no subscriber). Prints, for each kind of connection, the median over
repeats of microseconds per message (CPU time of the event loop thread):

- ``admin``: a connection that presented the shared token;
- ``scoped``: one that presented a publisher token for ``container-*`` (its scope is checked
  for every message: a cached lookup per container after the first).

Run: ``python bench/hot_path.py [--repeat 7] [--rounds 400]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from typing import Any

import msgspec
import structlog

from tailhub.config import Settings
from tailhub.core.node import Node
from tailhub.engine.local import LocalEngine
from tailhub.protocol import Publish
from tailhub.server.wire import text_frame
from tailhub.store.memory import MemoryStore

CONTAINERS = 50
RUN = 8


class _Peer:
    """A transport that takes everything (nothing is subscribed, so nothing is written)."""

    def write(self, data: bytes) -> None:
        return None

    def buffered(self) -> int:
        return 0

    def ping(self) -> None:
        return None

    def close(self, code: int, reason: str) -> None:
        return None


def _runs() -> list[list[Publish]]:
    data = msgspec.json.decode(
        b'{"d":{"message":"a log line of an agent at work, about this long","level":"info"}}',
        type=dict[str, msgspec.Raw],
    )["d"]
    return [[Publish("log", f"container-{c}", data) for _ in range(RUN)] for c in range(CONTAINERS)]


def _grant(kind: str) -> Any:
    """The grant for ``kind``, or None where this checkout has no grants (before them)."""
    try:
        from tailhub.grants import ADMIN, Grant
    except ImportError:
        return None
    return ADMIN if kind == "admin" else Grant.of("publisher", ["container-*"])


def _connect(node: Node, grant: Any) -> Any:
    if grant is None:
        return node.connect(_Peer(), remote="bench", authenticated=True)  # type: ignore[call-arg]
    return node.connect(_Peer(), remote="bench", grant=grant)


async def _measure(kind: str, rounds: int, runs: list[list[Publish]]) -> float:
    settings = Settings(max_sessions=1000, publish_rate=10**9, max_store_lag=10**9)
    node = Node(settings, LocalEngine(MemoryStore(), max_sessions=1000), text_frame)
    await node.start()
    conn = _connect(node, _grant(kind))
    for run in runs:  # every session active: the runs take the short path
        node.publish(conn, run[0])
    await asyncio.sleep(0)
    started = time.thread_time()
    for _ in range(rounds):
        for run in runs:
            node.publish_many(conn, run)
        await asyncio.sleep(0)
    took = time.thread_time() - started
    await node.stop()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="repeats per kind (median shown)")
    parser.add_argument("--rounds", type=int, default=400, help="rounds per repeat")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    runs = _runs()
    messages = args.rounds * CONTAINERS * RUN
    for kind in ("admin", "scoped"):
        times = [
            asyncio.run(_measure(kind, args.rounds, runs)) / messages * 1e6
            for _ in range(args.repeat)
        ]
        print(f"{kind:7} {statistics.median(times):6.2f} us/message (min {min(times):.2f})")


if __name__ == "__main__":
    main()
