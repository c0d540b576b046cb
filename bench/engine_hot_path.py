"""The publish hot path in process: the node's own run path against LocalEngine.publish.

One round is one run of 8 log messages for each of 50 containers, stamped, encoded, queued
to the history store and handed to fan-out (framed once, no subscriber). ``node`` is
``Node.publish_many`` as the WebSocket transports call it (broker and store behind it);
``engine`` is what the node does per run over an engine: build the entries, then
``LocalEngine.publish`` (its handler frames the run as the node's fan-out does). Both over a
fresh MemoryStore or SqliteStore (whose writer thread runs meanwhile, as in a hub). Prints
the median over repeats of microseconds per message (CPU time of the event loop thread).

Run: ``python -m bench.engine_hot_path [--store memory|sqlite] [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import structlog

from tailhub.config import Settings
from tailhub.core.node import Node
from tailhub.protocol import Publish, TimeFormatter
from tailhub.server.wire import text_frame
from tailhub.store import HistoryStore, MemoryStore, SqliteStore

try:
    from tailhub.engine import Entry
    from tailhub.engine.local import LocalEngine
except ImportError:  # a revision from before the engine: the node path only
    LocalEngine = None  # type: ignore[assignment,misc]

CONTAINERS = 50
RUN = 8
ROUNDS = 400


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


def _messages() -> list[list[Publish]]:
    data = msgspec.json.decode(
        b'{"d":{"line":"a log line of an agent at work, about this long","level":"info"}}',
        type=dict[str, msgspec.Raw],
    )["d"]
    return [[Publish("log", f"container-{c}", data) for _ in range(RUN)] for c in range(CONTAINERS)]


def _store(kind: str, place: Path) -> HistoryStore:
    return MemoryStore() if kind == "memory" else SqliteStore(place / "history.db")


async def _node(kind: str, place: Path, runs: list[list[Publish]]) -> float:
    settings = Settings(max_sessions=1000, publish_rate=10**9)
    if LocalEngine is None:
        from tailhub.broker.memory import MemoryBroker  # type: ignore[import-not-found]

        node = Node(settings, _store(kind, place), MemoryBroker(), text_frame)  # type: ignore[call-arg,arg-type]
    else:
        engine = LocalEngine(_store(kind, place), max_sessions=1000)
        node = Node(settings, engine, text_frame)
    await node.start()
    try:
        from tailhub.grants import ADMIN
    except ImportError:  # a revision from before scoped tokens
        conn = node.connect(_Peer(), remote="bench", authenticated=True)  # type: ignore[call-arg]
    else:
        conn = node.connect(_Peer(), remote="bench", grant=ADMIN)
    for run in runs:  # every session active: the runs take the short path
        node.publish(conn, run[0])
    started = time.thread_time()
    for _ in range(ROUNDS):
        for run in runs:
            node.publish_many(conn, run)
        await asyncio.sleep(0)
    took = time.thread_time() - started
    await node.stop()
    return took


class _Handler:
    def __init__(self, frame: Callable[[bytes], bytes]) -> None:
        self.frame = frame
        self.frames = 0

    def deliver(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        frame = self.frame
        self.frames += len([frame(p) for p in payloads])

    def durable(self, positions: Sequence[tuple[str, int]]) -> None:
        return None

    def gap(self, container_id: str, after: int, resumed: int, reason: str) -> None:
        return None

    def command(self, container_id: str, payload: bytes) -> int:
        return 0

    def availability(self, available: bool, reason: str) -> None:
        return None

    def notice(self, container_id: str, payload: bytes) -> None:
        return None


def _done(published: object) -> None:
    return None


async def _engine(kind: str, place: Path, runs: list[list[Publish]]) -> float:
    engine = LocalEngine(_store(kind, place), max_sessions=1000)
    await engine.open(_Handler(text_frame))
    stamp = TimeFormatter()
    publish = engine.publish
    started = time.thread_time()
    for _ in range(ROUNDS):
        now = time.time()
        text = stamp(now)
        for run in runs:
            entries = [
                Entry(m.data, m.timestamp or text, m.producer, m.id)  # type: ignore[arg-type]
                for m in run
            ]
            publish(run[0].container_id, "log", entries, now, _done)
        await asyncio.sleep(0)
    took = time.thread_time() - started
    await engine.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    runs = _messages()
    results: dict[str, list[float]] = (
        {"node": []} if LocalEngine is None else {"node": [], "engine": []}
    )
    per = 1e6 / (ROUNDS * CONTAINERS * RUN)
    for _ in range(args.repeat):  # interleaved, so that noise falls on both alike
        for name, path in (("node", _node), ("engine", _engine))[: len(results)]:
            with tempfile.TemporaryDirectory() as place:
                results[name].append(asyncio.run(path(args.store, Path(place), runs)) * per)
    for name, values in results.items():
        print(f"{name:7} {statistics.median(values):.2f} us/message  ({args.store})")


if __name__ == "__main__":
    main()
