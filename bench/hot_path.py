"""The node's publish path in-process, without I/O: plain logs against agent events.

``python -m bench.hot_path`` decodes and publishes, as the WebSocket handler does, batches of
8 messages for each of 50 containers (each watched by one subscriber, memory history), and
prints the CPU time per message for each payload, interleaved over several rounds:

- ``plain``: the 120-byte log of scenario B;
- ``plain-scoped``: the same, published by a connection with a scoped publisher token (its
  scope, ``c*``, checked for every message: a cached lookup per container);
- ``plain-sized``: a plain log as long as the agent events below (same bytes, no metadata);
- ``agent``: logs as ``tailhub run`` publishes Claude Code events (a text, a tool call, a
  tool result with 1 KiB of output, each with the session's summary when it changed it), with
  the hub's agent summary and attention state kept up to date;
- ``agent-unread``: the same bytes with the metadata's keys capitalised, which the hub does
  not read: the hub without agents;
- ``agent-no-summary``: the same bytes, with the summary hook switched off, to isolate it;
- ``agent-no-attention``: the same bytes, with the attention hook (which sessions wait for a
  person) switched off, to isolate it.

What it shows is the hot path's own cost; sockets and framing on the wire (scenario B) add
the same amount to every payload. ``--store sqlite`` puts SQLite history behind the node
instead of memory (the CPU of the store's writer thread counts too). Run it on another
checkout's code with ``PYTHONPATH=<checkout>/src python bench/hot_path.py`` to compare
versions (``--payloads plain`` for a revision from before the agents package).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from tailhub.config import Settings
from tailhub.core.node import Node
from tailhub.protocol import decode_client
from tailhub.server.app import _tune_gc
from tailhub.server.wire import text_frame
from tailhub.store.memory import MemoryStore
from tailhub.store.sqlite import SqliteStore

try:
    from tailhub.engine.local import LocalEngine
except ImportError:  # a revision from before the engine (for --src comparisons)
    LocalEngine = None  # type: ignore[assignment,misc]

CONTAINERS = 50
PER_READ = 8

_EVENTS: list[dict[str, Any]] = [
    {
        "type": "assistant",
        "message": {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "I'll fix the failing test first. " * 4}],
            "usage": {
                "input_tokens": 10,
                "output_tokens": 45,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 500,
            },
        },
        "parent_tool_use_id": None,
        "session_id": "sess-1a2b3c4d5e",
        "uuid": "3f1c0a55-7d0e-4a3e-9c55-8a7b1c2d3e4f",
    },
    {
        "type": "assistant",
        "message": {
            "id": "msg_02",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "Bash",
                    "input": {"command": "pytest -q", "description": "Run the tests"},
                }
            ],
            "usage": {
                "input_tokens": 30,
                "output_tokens": 60,
                "cache_read_input_tokens": 1500,
                "cache_creation_input_tokens": 0,
            },
        },
        "parent_tool_use_id": None,
        "session_id": "sess-1a2b3c4d5e",
        "uuid": "4f1c0a55-7d0e-4a3e-9c55-8a7b1c2d3e4f",
    },
    {
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": "Exit code 1\n" + "F" * 1024,
                    "is_error": True,
                }
            ],
        },
        "parent_tool_use_id": None,
        "session_id": "sess-1a2b3c4d5e",
        "uuid": "5f1c0a55-7d0e-4a3e-9c55-8a7b1c2d3e4f",
        "tool_use_result": "Error: Exit code 1",
    },
]
_SUMMARIES = ["I'll fix the failing test first.", "Bash: pytest -q", "Bash: pytest -q → exit 1"]


def _frame(container_id: str, data: dict[str, Any]) -> bytes:
    message = {"type": "log", "containerID": container_id, "data": data}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


_NAMES: Final = (
    "plain",
    "plain-scoped",
    "plain-sized",
    "agent",
    "agent-unread",
    "agent-no-summary",
    "agent-no-attention",
)


def payloads(container_id: str) -> dict[str, list[bytes]]:
    """Each payload's cycle of frames for one container (only the plain ones on a revision
    from before the agents package)."""
    plain = _frame(
        container_id, {"level": "info", "message": "bench 0 Repository cloned successfully"}
    )
    try:
        from tailhub.agents import Recogniser, may_change
    except ImportError:
        return {"plain": [plain], "plain-scoped": [plain]}
    recogniser = Recogniser("claude")
    agent_metadata = []
    for event in _EVENTS:
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        seen = recogniser.recognise(line)
        assert seen is not None
        # As tailhub run lays it out (see tailhub.runner).
        agent_metadata.append(
            {
                "agent": "claude",
                "agentSummary": seen.tally,
                "attend": may_change(line.encode()),
                "event": event,
            }
        )
    agent = [
        _frame(container_id, {"level": "info", "message": words, "metadata": metadata})
        for metadata, words in zip(agent_metadata, _SUMMARIES, strict=True)
    ]
    unread = [
        _frame(
            container_id,
            {
                "level": "info",
                "message": words,
                "metadata": {key[0].upper() + key[1:]: value for key, value in metadata.items()},
            },
        )
        for metadata, words in zip(agent_metadata, _SUMMARIES, strict=True)
    ]
    sized = [
        _frame(container_id, {"level": "info", "message": "x" * (len(frame) - len(plain) + 38)})
        for frame in agent
    ]
    return {
        "plain": [plain],
        "plain-scoped": [plain],
        "plain-sized": sized,
        "agent": agent,
        "agent-unread": unread,
        "agent-no-summary": agent,
        "agent-no-attention": agent,
    }


class _Peer:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def buffered(self) -> int:
        return 0

    def ping(self) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass


def _connect(node: Node, remote: str, scoped: bool) -> Any:
    """A connection of the shared token (admin), or of a publisher token for ``c*``.

    On a revision from before scoped tokens, every connection is the shared token's.
    """
    try:
        from tailhub.grants import ADMIN, Grant
    except ImportError:
        return node.connect(_Peer(), remote=remote, authenticated=True)  # type: ignore[call-arg]
    grant = Grant.of("publisher", ["c*"]) if scoped else ADMIN
    return node.connect(_Peer(), remote=remote, grant=grant)


def _node(settings: Settings, store: str, tmp: Path) -> Node:
    """A node over ``store`` history, on the engine, or on the store and broker before it."""
    history = MemoryStore() if store == "memory" else SqliteStore(tmp / "history.db")
    if LocalEngine is None:
        from tailhub.broker.memory import MemoryBroker  # type: ignore[import-not-found]

        return Node(settings, history, MemoryBroker(), text_frame)  # type: ignore[call-arg,arg-type]
    return Node(settings, LocalEngine(history, max_sessions=10**6), text_frame)


async def _measure(name: str, batches: int, store: str) -> float:
    """CPU microseconds per message for one payload on a fresh node (the process's CPU:
    the SQLite store's writer thread's too)."""
    with tempfile.TemporaryDirectory() as tmp:
        return await _measure_in(name, batches, store, Path(tmp))


async def _measure_in(name: str, batches: int, store: str, tmp: Path) -> float:
    settings = Settings(history=store, data_dir=tmp, publish_rate=10**9, max_store_lag=10**9)
    node = _node(settings, store, tmp)
    await node.start()
    book = getattr(node, "agents", None)  # None: a version without agent summaries
    observe: Callable[..., Any] | None = book.observe if book is not None else None
    if book is not None and name == "agent-no-summary":
        book.observe = lambda *args: False
    attention = getattr(node, "attention", None)  # None: a version without attention states
    if attention is not None and name == "agent-no-attention":
        attention.observe_agent = lambda *args: False
    stopped = False
    try:
        publisher = _connect(node, "bench", scoped=name == "plain-scoped")
        cycles = {}
        for number in range(CONTAINERS):
            container_id = f"c{number}"
            cycles[container_id] = payloads(container_id)[name]
            viewer = _connect(node, "viewer", scoped=False)
            node.subscribe(viewer, decode_client(_subscribe(container_id)))  # type: ignore[arg-type]
        total = 0
        started = time.process_time()
        for batch in range(batches):
            for cycle in cycles.values():
                run = [
                    decode_client(cycle[(batch * PER_READ + i) % len(cycle)])
                    for i in range(PER_READ)
                ]
                node.publish_many(publisher, run)  # type: ignore[arg-type]
                total += PER_READ
            await asyncio.sleep(0)
        stopped = True
        await node.stop()  # the store's last writes are part of the cost
        spent = time.process_time() - started
    finally:
        if book is not None:
            book.observe = observe
        if not stopped:
            await node.stop()
    return spent / total * 1e6


def _subscribe(container_id: str) -> bytes:
    return json.dumps({"type": "subscribe", "containerID": container_id}).encode()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--batches", type=int, default=400, help="batches per container and run")
    parser.add_argument(
        "--payloads",
        default=",".join(_NAMES),
        help="comma-separated payloads to measure (default: all; a revision from before the"
        " agents package has only plain and plain-scoped)",
    )
    parser.add_argument(
        "--store",
        choices=("memory", "sqlite"),
        default="memory",
        help="the history store (default memory; sqlite: its writer thread's CPU counts too)",
    )
    args = parser.parse_args()
    _tune_gc()  # as the hub does at start-up
    known = payloads("c0")
    names = [name for name in args.payloads.split(",") if name]
    missing = [name for name in names if name not in known]
    if missing:
        parser.error(f"no such payload here: {', '.join(missing)}; known: {', '.join(known)}")
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        # Each round in another order, and the heap collected before each run: what ran
        # before must not weigh on what runs next.
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            results[name].append(await _measure(name, args.batches, args.store))
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name in names:
        size = len(known[name][0])
        print(f"{name:>18}: {medians[name]:6.2f} us/message  (first frame {size} bytes)")
    if set(_NAMES) - set(names):
        return
    print(
        f"throughput ratio agent / agent-unread: {medians['agent-unread'] / medians['agent']:.3f}x;"
        f" agent / plain-sized: {medians['plain-sized'] / medians['agent']:.3f}x;"
        f" agent / plain: {medians['plain'] / medians['agent']:.3f}x;"
        f" summary hook alone: {medians['agent'] - medians['agent-no-summary']:+.2f} us/message;"
        f" attention hook alone: {medians['agent'] - medians['agent-no-attention']:+.2f}"
        " us/message"
    )


if __name__ == "__main__":
    asyncio.run(main())
