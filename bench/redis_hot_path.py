"""The Redis engine's publish path in process, against a redis-server it starts.

One round is one run of ``--run`` log messages for each of 50 containers, each listened to
(as when every container has a subscriber on this process): the runs go to Redis in the
engine's write pipeline, their replies and their Pub/Sub copies come back, and each run is
handed to a handler that counts it. Prints, as medians over repeats, the CPU time per
message of this process (the engine's Python: building the script's arguments, redis-py,
the replies, the Pub/Sub copies) and of redis-server (the script, the stream, the AOF, the
publications), each on its own core. Comparing run lengths separates what costs per run
from what costs per message (G's load gives runs of about 16).

Run: ``python -m bench.redis_hot_path [--run 16] [--rounds 400] [--repeat 5]``; needs
``redis-server`` on the PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import msgspec
import structlog

from bench.servers import GENERATOR_CORE, start_redis, stop_process
from tailhub.engine import Entry, Published
from tailhub.engine.base import QuietHandler
from tailhub.engine.redis import RedisEngine

CONTAINERS = 50


class _Counter(QuietHandler):
    """Counts deliveries, and wakes the round waiting for them."""

    def __init__(self) -> None:
        self.delivered = 0
        self.want = 0
        self.reached: asyncio.Event = asyncio.Event()

    def deliver(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        self.delivered += len(payloads)
        if self.delivered >= self.want:
            self.reached.set()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _round(engine: RedisEngine, counter: _Counter, runs: dict[str, list[Entry]]) -> None:
    """Publish one run per container and wait for every reply and every delivery."""
    loop = asyncio.get_running_loop()
    answered = loop.create_future()
    left = len(runs)

    def done(_published: Published) -> None:
        nonlocal left
        left -= 1
        if left == 0:
            answered.set_result(None)

    counter.reached.clear()
    counter.want = counter.delivered + sum(map(len, runs.values()))
    now = time.time()
    for container_id, entries in runs.items():
        engine.publish(container_id, "log", entries, now, done)
    await answered
    await counter.reached.wait()


async def _measure(run: int, rounds: int, repeat: int) -> tuple[float, float]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-redis-hot-path-"))
    redis, port = start_redis(scratch, nice=0, timeout=10.0)
    os.sched_setaffinity(0, {int(GENERATOR_CORE)})  # redis-server has the other core
    engine = RedisEngine(f"redis://127.0.0.1:{port}/0", max_sessions=CONTAINERS)
    counter = _Counter()
    try:
        await engine.open(counter)
        data = msgspec.json.encode({"level": "info", "message": "bench " + "x" * 80})
        runs = {f"c{c:02d}": [Entry(data, None) for _ in range(run)] for c in range(CONTAINERS)}
        for container_id in runs:
            engine.listen(container_id)
        for container_id in runs:
            await engine.position(container_id)
        for _ in range(20):  # sessions started, feeds caught up
            await _round(engine, counter, runs)
        hub: list[float] = []
        server: list[float] = []
        for _ in range(repeat):
            redis_before, hub_before = _cpu_seconds(redis.pid), time.process_time()
            for _ in range(rounds):
                await _round(engine, counter, runs)
            messages = rounds * run * CONTAINERS
            hub.append((time.process_time() - hub_before) / messages * 1e6)
            server.append((_cpu_seconds(redis.pid) - redis_before) / messages * 1e6)
        return statistics.median(hub), statistics.median(server)
    finally:
        await engine.close()
        stop_process(redis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=int, default=16, help="messages per run (default 16)")
    parser.add_argument("--rounds", type=int, default=400, help="rounds per repeat")
    parser.add_argument("--repeat", type=int, default=5, help="repeats; medians are printed")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    hub, server = asyncio.run(_measure(args.run, args.rounds, args.repeat))
    print(
        f"runs of {args.run}: hub {hub:.2f} µs/message, redis-server {server:.2f} µs/message, "
        f"together {hub + server:.2f}"
    )


if __name__ == "__main__":
    main()
