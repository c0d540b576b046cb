"""The Redis engine against real ``redis-server`` processes: one server and a three-master Cluster.

Each test uses its own key prefix, so tests share the servers of the module without seeing
each other's keys. What Redis itself must do (a crash, a flush, a dropped connection) is done
to the real server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tailhub.engine import redis as redis_engine
from tailhub.engine.base import DUPLICATE, EngineError, Entry, Published
from tailhub.engine.redis import RedisEngine, redact
from tailhub.store.base import SessionRow, StoredMessage
from tests.engine.redis_servers import RedisCluster, RedisServer
from tests.helpers import UNIT, wait_for

STAMP = "2024-01-01T00:00:00.000Z"
_prefixes = itertools.count()


class Recorder:
    """An engine handler that keeps what it was told."""

    def __init__(self, took: int = 1) -> None:
        self.delivered: dict[str, list[bytes]] = {}
        self.kinds: list[tuple[str, str]] = []
        self.acked: dict[str, int] = {}
        self.gaps: list[tuple[str, int, int, str]] = []
        self.commands: list[tuple[str, bytes]] = []
        self.changes: list[bool] = []
        self.notices: list[tuple[str, bytes]] = []
        self.took = took

    def deliver(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        self.delivered.setdefault(container_id, []).extend(payloads)
        self.kinds.append((container_id, kind))

    def durable_seq(self, container_id: str) -> int:
        return self.acked.get(container_id, 0)

    def durable(self, positions: Sequence[tuple[str, int]]) -> None:
        for container_id, seq in positions:
            self.acked[container_id] = max(seq, self.acked.get(container_id, 0))

    def gap(self, container_id: str, after: int, resumed: int, reason: str) -> None:
        self.gaps.append((container_id, after, resumed, reason))

    def command(self, container_id: str, payload: bytes) -> int:
        self.commands.append((container_id, payload))
        return self.took

    def availability(self, available: bool, reason: str) -> None:
        self.changes.append(available)

    def notice(self, container_id: str, payload: bytes) -> None:
        self.notices.append((container_id, payload))

    def seqs(self, container_id: str) -> list[int]:
        return [json.loads(p)["seq"] for p in self.delivered.get(container_id, [])]


def entry(text: str, producer: str = "", id: int | None = None, **kw: Any) -> Entry:
    data = json.dumps({"level": "info", "message": text}).encode()
    return Entry(data, STAMP, producer, id, **kw)


async def publish(
    engine: RedisEngine,
    container_id: str,
    entries: Sequence[Entry],
    kind: str = "log",
    now: float = 1000.0,
) -> Published:
    future: asyncio.Future[Published] = asyncio.get_running_loop().create_future()
    engine.publish(container_id, kind, entries, now, future.set_result)
    return await asyncio.wait_for(future, 10 * UNIT)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    servers = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield servers
    servers.stop()


@pytest.fixture(params=["standalone", "cluster"])
def servers(request: pytest.FixtureRequest) -> list[RedisServer]:
    """Every redis-server of the deployment under test (one, or the Cluster's masters)."""
    found = request.getfixturevalue(request.param)
    return list(found.nodes) if isinstance(found, RedisCluster) else [found]


@pytest.fixture
def url(request: pytest.FixtureRequest, servers: list[RedisServer]) -> str:
    found = request.getfixturevalue(request.node.callspec.params["servers"])
    return str(found.url)


def on_every_node(servers: list[RedisServer], *command: str) -> None:
    for server in servers:
        server.command(*command)


class Engines:
    """Opens engines on one URL with this test's prefix; closes them all at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"t{next(_prefixes)}:"
        self.opened: list[RedisEngine] = []

    async def open(self, handler: Recorder | None = None, **kw: Any) -> RedisEngine:
        engine = RedisEngine(self.url, prefix=self.prefix, **kw)
        await engine.open(handler or Recorder())
        self.opened.append(engine)
        return engine

    async def listening(self, container_id: str = "c") -> tuple[RedisEngine, Recorder]:
        """A second engine that listens to ``container_id`` (its position read, so that its
        feed is up), and what it records."""
        seen = Recorder()
        listener = await self.open(seen)
        listener.listen(container_id)
        await listener.position(container_id)
        return listener, seen

    async def close(self) -> None:
        for engine in self.opened:
            await engine.close()


@pytest.fixture
async def engines(url: str) -> AsyncIterator[Engines]:
    made = Engines(url)
    yield made
    await made.close()


def handler_of(engine: RedisEngine) -> Recorder:
    handler = engine._handler
    assert isinstance(handler, Recorder)
    return handler


# -- publishing and history -------------------------------------------------------------------


async def test_publish_assigns_seqs_stores_and_acks(engines: Engines) -> None:
    engine = await engines.open()
    done = await publish(engine, "c{1}", [entry("a"), entry("b")])
    assert [1, 2] == done.seqs
    assert 2 == done.last_seq
    assert done.started
    assert done.refused is None
    assert 2 == handler_of(engine).durable_seq("c{1}")
    stored = await engine.read("c{1}")
    assert [1, 2] == [m.seq for m in stored]
    first = json.loads(stored[0].payload)
    assert {"type", "containerID", "timestamp", "seq", "data"} == set(first)
    assert ("c{1}", 1, "a") == (first["containerID"], first["seq"], first["data"]["message"])
    position = await engine.position("c{1}")
    assert (2, 1, done.epoch) == position


async def test_repeated_producer_ids_are_not_stored_again(engines: Engines) -> None:
    engine = await engines.open()
    done = await publish(engine, "c", [entry("a", "p", 1), entry("b", "p", 2), entry("b", "p", 2)])
    assert [1, 2, DUPLICATE] == done.seqs
    again = await publish(engine, "c", [entry("a", "p", 1), entry("c", "p", 3), entry("x", "q", 1)])
    assert [DUPLICATE, 3, 4] == again.seqs
    assert [1, 2, 3, 4] == [m.seq for m in await engine.read("c")]


async def test_a_round_of_many_containers_is_cut_into_several_calls(
    standalone: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write round of more containers than one script call takes goes as several calls,
    each container's runs stored as in one."""
    monkeypatch.setattr(redis_engine, "_CONTAINERS_PER_CALL", 2)
    engines = Engines(standalone.url)
    try:
        engine = await engines.open()
        names = [f"c{i}" for i in range(5)]
        for name in names:  # every session active: the round is publishes only
            assert [1] == (await publish(engine, name, [entry("first")])).seqs
        standalone.command("CONFIG", "RESETSTAT")
        loop = asyncio.get_running_loop()
        answers: list[asyncio.Future[Published]] = []
        for name in names:
            answer: asyncio.Future[Published] = loop.create_future()
            answers.append(answer)
            engine.publish(name, "log", [entry("a"), entry("b")], 1000.0, answer.set_result)
        got = await asyncio.wait_for(asyncio.gather(*answers), 10 * UNIT)
        assert [[2, 3]] * 5 == [p.seqs for p in got]
        stats = standalone.command("INFO", "commandstats").decode()
        assert "cmdstat_evalsha:calls=3," in stats
        for name in names:
            kept = await engine.read(name)
            assert ["first", "a", "b"] == [json.loads(m.payload)["data"]["message"] for m in kept]
    finally:
        await engines.close()


async def test_a_write_round_redis_refuses_is_refused_whole(tmp_path: Path) -> None:
    """Redis over its memory limit refuses the script call of a write round: every run of
    it, of every container, is answered unavailable and nothing of it is stored; with
    memory again, each container goes on from its own seq."""
    server = RedisServer(tmp_path / "full").start()
    engines = Engines(server.url)
    try:
        engine = await engines.open()
        for container_id in ("a", "b"):
            assert [1] == (await publish(engine, container_id, [entry("first")])).seqs
        server.command("CONFIG", "SET", "maxmemory", "1")
        loop = asyncio.get_running_loop()
        answers: list[asyncio.Future[Published]] = []
        for container_id in ("a", "b"):
            answer: asyncio.Future[Published] = loop.create_future()
            answers.append(answer)
            batch = [entry("refused"), entry("refused too")]
            engine.publish(container_id, "log", batch, 1000.0, answer.set_result)
        got = await asyncio.wait_for(asyncio.gather(*answers), 10 * UNIT)
        assert [("unavailable", [])] * 2 == [(p.refused, p.seqs) for p in got]
        assert all("maxmemory" in p.reason for p in got)
        server.command("CONFIG", "SET", "maxmemory", "0")
        assert [[1], [1]] == [[m.seq for m in await engine.read(c)] for c in ("a", "b")]
        for container_id in ("a", "b"):
            assert [2] == (await publish(engine, container_id, [entry("after")])).seqs
    finally:
        await engines.close()
        server.stop()


async def test_two_processes_publishing_one_container_get_gapless_seqs(engines: Engines) -> None:
    one, two = await engines.open(), await engines.open()
    jobs = []
    for i in range(40):
        jobs.append(publish(one, "c", [entry(f"one {i}", "one", i + 1)] * 1))
        jobs.append(publish(two, "c", [entry(f"two {i}", "two", i + 1), entry("x")]))
    results = await asyncio.gather(*jobs)
    seqs = sorted(s for r in results for s in r.seqs)
    assert list(range(1, 121)) == seqs
    stored = await one.read("c")
    assert list(range(1, 121)) == [m.seq for m in stored]
    for name in ("one", "two"):
        mine = [json.loads(m.payload)["data"]["message"] for m in stored]
        mine = [t for t in mine if t.startswith(name)]
        assert [f"{name} {i}" for i in range(40)] == mine


async def test_reads_page_tail_and_time(engines: Engines) -> None:
    engine = await engines.open()
    for i in range(10):
        await publish(engine, "c", [entry(str(i))], now=1000.0 + i)
    assert [4, 5, 6] == [m.seq for m in await engine.read("c", after=3, limit=3)]
    assert [8, 9, 10] == [m.seq for m in await engine.read("c", tail=3)]
    assert [8, 9] == [m.seq for m in await engine.read("c", tail=3, limit=2)]
    assert [6, 7, 8, 9, 10] == [m.seq for m in await engine.read("c", since_time=1005.0)]
    assert [] == await engine.read("c", since_time=2000.0)
    assert [] == await engine.read("nothing")
    assert 1005.0 == (await engine.read("c", after=5, limit=1))[0].time


async def test_prune_keeps_seq_and_removes_old_messages(engines: Engines) -> None:
    engine = await engines.open(retention_messages=5, retention_age=100.0)
    for i in range(10):
        await publish(engine, "c", [entry(str(i))], now=1000.0 + i * 10)
    removed = await engine.prune(1000.0 + 90 + 100 - 25)
    assert 7 == removed
    assert [8, 9, 10] == [m.seq for m in await engine.read("c")]
    done = await publish(engine, "c", [entry("next")], now=1200.0)
    assert [11] == done.seqs
    assert (11, 8) == (await engine.position("c"))[:2]


async def test_prune_removes_whole_runs_and_counts_messages(engines: Engines) -> None:
    """A run is one stream entry: retention keeps the run that holds the oldest message it
    must keep, whole, and reports the messages it removed."""
    engine = await engines.open(retention_messages=5, retention_age=1000.0)
    for run in range(3):
        await publish(engine, "c", [entry(f"{run}.{i}") for i in range(4)], now=1000.0 + run)
    assert 4 == await engine.prune(1010.0)
    assert list(range(5, 13)) == [m.seq for m in await engine.read("c")]
    assert (12, 5) == (await engine.position("c"))[:2]
    assert 8 == await engine.prune(3000.0)
    assert ([], 0) == (await engine.read("c"), (await engine.position("c")).first_seq)


async def test_reads_by_time_find_the_first_run_received_since(engines: Engines) -> None:
    engine = await engines.open()
    for run in range(10):
        await publish(engine, "c", [entry(f"{run}.{i}") for i in range(3)], now=1000.0 + run)
    for since, first in ((999.0, 1), (1004.5, 16), (1005.0, 16), (1009.0, 28), (1001.0, 4)):
        assert first == (await engine.read("c", since_time=since, limit=1))[0].seq, since
    assert [] == await engine.read("c", since_time=1009.5)


async def test_entries_of_one_message_are_read_beside_runs(engines: Engines) -> None:
    """History written one entry per message (fields t and d) is read with the runs."""
    engine = await engines.open()
    await publish(engine, "c", [entry("1"), entry("2")], now=1000.0)
    keys = engine._keys_of("c")
    old = b'{"type":"log","containerID":"c","seq":3,"data":{}}'
    await engine._client.xadd(keys.stream, {"t": "1001.0", "d": old}, id="3-0")
    await engine._client.hset(keys.meta, "seq", 3)
    await publish(engine, "c", [entry("4")], now=1002.0)
    stored = await engine.read("c")
    assert ([1, 2, 3, 4], old) == ([m.seq for m in stored], stored[2].payload)
    assert [3, 4] == [m.seq for m in await engine.read("c", tail=2)]
    assert [3] == [m.seq for m in await engine.read("c", after=2, limit=1)]
    assert [3, 4] == [m.seq for m in await engine.read("c", since_time=1001.0)]


async def test_a_loaded_container_reads_resumes_and_goes_on_as_published(
    engines: Engines,
) -> None:
    """What ``tailhub migrate`` loads (messages, counters, producers, session) is history,
    position and session as a publish would have left them, on one server and on Cluster."""
    engine = await engines.open()
    kept = [
        StoredMessage(seq, 1000.0 + seq, b'{"type":"log","containerID":"m{1}","seq":%d}' % seq)
        for seq in range(3, 8)
    ]
    assert [] == await engine.occupied(["m{1}", "other"])
    await engine.load_messages("m{1}", kept[:2])
    await engine.load_messages("m{1}", kept[2:])
    session = SessionRow("m{1}", "running", 1003.0, 1007.0)
    await engine.load_container(
        "m{1}",
        epoch="e0",
        last_seq=9,
        stored=5,
        stored_bytes=200,
        producers={"p": 40},
        session=session,
    )
    assert ["m{1}"] == await engine.occupied(["m{1}", "other"])
    assert kept == await engine.read("m{1}")
    assert kept[3:] == await engine.read("m{1}", after=5)
    assert (9, 3, "e0") == await engine.position("m{1}")
    info = await engine.session("m{1}")
    assert info is not None
    assert ("running", True, 5) == (info.status, info.active, info.messages)
    listed = await engine.sessions(status="running")
    assert ["m{1}"] == [s.container_id for s in listed.sessions]
    done = await publish(engine, "m{1}", [entry("old", "p", 40), entry("new", "p", 41)])
    assert ([DUPLICATE, 10], "e0") == (done.seqs, done.epoch)


async def test_epoch_changes_when_redis_loses_the_data(
    url: str, servers: list[RedisServer]
) -> None:
    engines = Engines(url)
    try:
        engine = await engines.open()
        await publish(engine, "c", [entry("a"), entry("b")])
        before = await engine.position("c")
        assert before == await engine.position("c")
        on_every_node(servers, "FLUSHALL")
        after = await engine.position("c")
        assert (0, 0) == after[:2]
        assert before.epoch != after.epoch
        done = await publish(engine, "c", [entry("again")])
        assert ([1], after.epoch) == (done.seqs, done.epoch)
    finally:
        await engines.close()


# -- fan-out ----------------------------------------------------------------------------------


async def test_fanout_reaches_every_listening_process_once_in_order(engines: Engines) -> None:
    sender = await engines.open()
    near, far, star = Recorder(), Recorder(), Recorder()
    listener = await engines.open(near)
    other = await engines.open(far)
    everything = await engines.open(star)
    listener.listen("c")
    other.listen("c")
    everything.listen("*")
    await listener.position("c")
    await other.position("c")

    async def star_in_effect() -> bool:  # a run of another container reaches the * listener
        await publish(sender, "probe", [entry("p")])
        return bool(star.seqs("probe"))

    await wait_for(star_in_effect)
    for i in range(20):
        await publish(sender, "c", [entry(f"{i}a"), entry(f"{i}b")])
    await publish(sender, "d", [entry("elsewhere")])
    await wait_for(lambda: len(near.seqs("c")) >= 40 and len(far.seqs("c")) >= 40)
    await wait_for(lambda: len(star.seqs("c")) >= 40 and star.seqs("d") == [1])
    for handler in (near, far, star):
        assert list(range(1, 41)) == handler.seqs("c")
        assert [] == handler.gaps
    assert "d" not in near.delivered


async def test_a_lost_pubsub_connection_is_caught_up_from_the_stream(
    url: str, servers: list[RedisServer]
) -> None:
    engines = Engines(url)
    try:
        sender = await engines.open()
        _listener, seen = await engines.listening()
        await publish(sender, "c", [entry("1")])
        await wait_for(lambda: seen.seqs("c") == [1])
        on_every_node(servers, "CLIENT", "KILL", "TYPE", "pubsub")
        for i in range(2, 30):
            await publish(sender, "c", [entry(str(i))])
        await wait_for(lambda: len(seen.seqs("c")) >= 29)
        assert list(range(1, 30)) == seen.seqs("c")
        assert [] == seen.gaps
    finally:
        await engines.close()


async def test_a_seq_jump_is_filled_from_the_stream(engines: Engines) -> None:
    sender = await engines.open()
    listener, seen = await engines.listening()
    await publish(sender, "c", [entry("1")])
    await wait_for(lambda: seen.seqs("c") == [1])
    # Pub/Sub drops what this process is not subscribed to: unsubscribe under its feet.
    pub = listener._keys_of("c").pub
    await listener._pubsub_for(pub).unsubscribe(pub, True)
    await publish(sender, "c", [entry("2"), entry("3")])
    await listener._pubsub_for(pub).subscribe(pub, True)
    await publish(sender, "c", [entry("4")])
    await wait_for(lambda: len(seen.seqs("c")) >= 4)
    assert [1, 2, 3, 4] == seen.seqs("c")
    assert [] == seen.gaps


async def test_a_gap_history_cannot_fill_is_reported(engines: Engines) -> None:
    sender = await engines.open(retention_messages=1)
    listener, seen = await engines.listening()
    await publish(sender, "c", [entry("1")])
    await wait_for(lambda: seen.seqs("c") == [1])
    pub = listener._keys_of("c").pub
    await listener._pubsub_for(pub).unsubscribe(pub, True)
    for i in range(2, 6):
        await publish(sender, "c", [entry(str(i))])
    await sender.prune(1000.0)
    await listener._pubsub_for(pub).subscribe(pub, True)
    await publish(sender, "c", [entry("6")])
    await wait_for(lambda: 6 in seen.seqs("c"))
    assert seen.gaps
    container, after, resumed, _ = seen.gaps[0]
    assert ("c", 1) == (container, after)
    assert 2 < resumed <= 6
    assert seen.seqs("c") == sorted(set(seen.seqs("c")))


async def test_listeners_are_told_when_the_epoch_changes(
    url: str, servers: list[RedisServer]
) -> None:
    engines = Engines(url)
    try:
        sender = await engines.open()
        _listener, seen = await engines.listening()
        await publish(sender, "c", [entry("1"), entry("2")])
        await wait_for(lambda: seen.seqs("c") == [1, 2])
        on_every_node(servers, "FLUSHALL")
        await publish(sender, "c", [entry("new")])
        await wait_for(lambda: len(seen.seqs("c")) == 3)
        assert [1, 2, 1] == seen.seqs("c")
        assert [("c", 2, 1)] == [g[:3] for g in seen.gaps]
    finally:
        await engines.close()


# -- sessions ---------------------------------------------------------------------------------


async def test_max_sessions_holds_across_processes(engines: Engines) -> None:
    one = await engines.open(max_sessions=2)
    two = await engines.open(max_sessions=2)
    assert (await publish(one, "a", [entry("x")])).started
    assert (await publish(two, "b", [entry("x")])).started
    refused = await publish(one, "c", [entry("x")])
    assert ("max_sessions", []) == (refused.refused, refused.seqs)
    assert "max_sessions" == (await publish(two, "c", [entry("x")])).refused
    assert [2] == (await publish(two, "a", [entry("y")])).seqs
    done = await publish(one, "b", [entry("z", exit_code=0)], kind="complete")
    assert done.ended
    await wait_for(lambda: two.available)
    started = await publish(two, "c", [entry("x")])
    assert started.started
    assert (await two.session("c")) is not None
    assert (await one.session("nothing")) is None


async def test_sessions_are_listed_the_same_everywhere_with_filter_and_cursor(
    engines: Engines,
) -> None:
    one = await engines.open()
    two = await engines.open()
    for i in range(5):
        await publish(one if i % 2 else two, f"c{i}", [entry("x")], now=1000.0 + i)
    await publish(one, "c1", [entry("bye", exit_code=0)], kind="complete", now=1010.0)
    await publish(one, "c3", [entry("bye", exit_code=2)], kind="complete", now=1011.0)
    await one.set_meta("c0", "summary", b'"busy"')
    listed = await one.sessions()
    assert ["c0", "c2", "c4", "c3", "c1"] == [s.container_id for s in listed.sessions]
    assert [s.container_id for s in listed.sessions] == [
        s.container_id for s in (await two.sessions()).sessions
    ]
    first = listed.sessions[0]
    assert ("running", 1, 1, {"summary": b'"busy"'}) == (
        first.status,
        first.last_seq,
        first.messages,
        first.meta,
    )
    assert ["c3"] == [s.container_id for s in (await two.sessions(status="error")).sessions]
    ended = (await two.sessions(status="ended")).sessions
    assert [("c3", 2, "complete"), ("c1", 0, "complete")] == [
        (s.container_id, s.exit_code, s.end_reason) for s in ended
    ]
    pages: list[str] = []
    cursor = None
    while True:
        page = await one.sessions(limit=2, cursor=cursor)
        pages += [s.container_id for s in page.sessions]
        cursor = page.cursor
        if cursor is None:
            break
    assert ["c0", "c2", "c4", "c3", "c1"] == pages
    active = (await one.sessions(status="active")).sessions
    assert ["c0", "c2", "c4"] == [s.container_id for s in active]


async def test_a_session_ended_but_not_yet_moved_is_listed_once_among_the_ended(
    engines: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's end (its hash) and the move of its index entry (the ender's next round
    trip) are two steps: a listing taken between them holds it once, where it will be,
    whichever batch of the ended index it falls in."""
    one = await engines.open()
    for i in range(6):
        await publish(one, f"c{i}", [entry("x")], now=1000.0 + i)
    for i in range(1, 6):
        await publish(one, f"c{i}", [entry("bye", exit_code=0)], kind="complete", now=1010.0 + i)
    everyone = ["c0", "c5", "c4", "c3", "c2", "c1"]

    async def ids(**kw: Any) -> list[str]:
        return [s.container_id for s in (await one.sessions(**kw)).sessions]

    async def moved() -> bool:
        return everyone == await ids()

    await wait_for(moved)
    # c2 and c4 as between the two steps: ended, their entries still in the active index.
    client = one._client
    for name, started in (("c2", 1002.0), ("c4", 1004.0)):
        await client.zrem(one._ended_key, name)
        await client.zadd(one._active_key, {name: started})
    for batch in (200, 2):  # the indexes read in batches of that many
        monkeypatch.setattr(redis_engine, "_LIST_BATCH", batch)
        assert everyone == await ids()
        assert everyone == await ids(limit=6)
        assert everyone[1:] == await ids(status="completed")
        assert ["c0"] == await ids(status="active")


async def test_sessions_that_share_a_start_or_an_end_time_are_all_listed(
    engines: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions started in one turn of a hub's loop share their start time, sessions timed
    out in one sweep their end time: more of them than one batch of the index still list."""
    monkeypatch.setattr(redis_engine, "_LIST_BATCH", 2)
    one = await engines.open()
    names = [f"t{i}" for i in range(7)]
    for name in names:
        await publish(one, name, [entry("x")], now=1000.0)
    for name in names[:4]:
        await publish(one, name, [entry("bye", exit_code=0)], kind="complete", now=1010.0)
    listed = ["t4", "t5", "t6", "t3", "t2", "t1", "t0"]  # active by ID, then ended by ID, down

    async def complete() -> bool:
        page = await one.sessions()
        return listed == [s.container_id for s in page.sessions]

    await wait_for(complete)
    pages: list[str] = []
    cursor = None
    while True:
        page = await one.sessions(limit=3, cursor=cursor)
        pages += [s.container_id for s in page.sessions]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert listed == pages
    assert listed[3:] == [s.container_id for s in (await one.sessions(status="ended")).sessions]


async def test_a_timed_out_session_ends_exactly_once(engines: Engines) -> None:
    one, two = await engines.open(), await engines.open()
    await publish(one, "idle", [entry("x")], now=1000.0)
    await publish(one, "busy", [entry("x")], now=1000.0)
    two.touch("busy", 1250.0)

    async def touched() -> bool:  # the heartbeat reached Redis
        info = await one.session("busy")
        return info is not None and info.last_activity == 1250.0

    await wait_for(touched)
    ended = await asyncio.gather(one.expire(1301.0, 300.0), two.expire(1301.0, 300.0))
    names = [s.container_id for batch in ended for s in batch]
    assert ["idle"] == names
    info = await one.session("idle")
    assert info is not None
    assert ("timeout", 1301.0) == (info.end_reason, info.ended_at)
    assert "busy" in [s.container_id for s in (await one.sessions(status="active")).sessions]
    assert await one.end_session("busy", "operator", 1302.0) is not None
    assert await two.end_session("busy", "operator", 1302.0) is None


async def test_a_burst_of_requests_waits_for_connections(engines: Engines) -> None:
    """Far more requests at once than --redis-requests allows all succeed, in turn: none
    fails for want of a connection, and the engine never reports Redis unreachable."""
    engine = await engines.open(max_requests=4)
    positions = await asyncio.gather(*(engine.position(f"burst{i}") for i in range(300)))
    assert 300 == len(positions)
    assert [] == handler_of(engine).changes


# -- notices ----------------------------------------------------------------------------------


async def test_notices_reach_the_other_listening_processes_once(engines: Engines) -> None:
    """A notice reaches each other process that listens to its container or to "*" once
    (one that listens to both takes one copy), and neither its sender nor a process that
    listens only to another container."""
    near, star, both, own, elsewhere = Recorder(), Recorder(), Recorder(), Recorder(), Recorder()
    listeners = ((near, ["c"]), (star, ["*"]), (both, ["c", "*"]), (own, ["c", "*"]))
    opened = {}
    for handler, listens in (*listeners, (elsewhere, ["d"])):
        engine = opened[id(handler)] = await engines.open(handler)
        for container_id in listens:
            engine.listen(container_id)
    sender, other = opened[id(own)], await engines.open()
    watching = [handler for handler, _ in listeners]
    # A run every listener of "c" receives proves its subscriptions are up; one published by
    # another process after the notice has arrived elsewhere, that any copy of the notice
    # came first (one order per channel; runs are published on both channels).
    await publish(other, "c", [entry("before")])
    await wait_for(lambda: all(h.seqs("c") == [1] for h in watching))
    sender.notice("c", b'{"type":"attention","containerID":"c"}')
    await wait_for(lambda: all(h.notices for h in (near, star, both)))
    await publish(other, "c", [entry("after")])
    await wait_for(lambda: all(h.seqs("c") == [1, 2] for h in watching))
    for handler in (near, star, both):
        assert [("c", b'{"type":"attention","containerID":"c"}')] == handler.notices
    assert [] == own.notices
    assert [] == elsewhere.notices


# -- commands ---------------------------------------------------------------------------------


async def test_commands_reach_the_process_holding_the_container(engines: Engines) -> None:
    holder = Recorder()
    one = await engines.open(holder)
    two = await engines.open()
    assert 0 == await two.command("c", b'{"type":"command"}')
    one.attach("c")
    await wait_for(lambda: bool(one._pubsubs))

    async def reached() -> bool:
        return await two.command("c", b"ping") == 1

    await wait_for(reached)
    await wait_for(lambda: bool(holder.commands))
    assert 1 == await two.command("c", b'{"type":"command","x":1}')
    await wait_for(lambda: ("c", b'{"type":"command","x":1}') in holder.commands)
    one.detach("c")

    async def gone() -> bool:
        return await two.command("c", b"none") == 0

    await wait_for(gone)


# -- metadata and records ---------------------------------------------------------------------


async def test_records_claims_and_metadata(engines: Engines) -> None:
    one, two = await engines.open(), await engines.open()
    await one.put_record("revoked", "jti1", b"1")
    await one.put_record("revoked", "jti2", b"2", ttl=0.05)
    assert {"jti1": b"1", "jti2": b"2"} == await two.records("revoked")

    async def expired() -> bool:
        return await two.records("revoked") == {"jti1": b"1"}

    await wait_for(expired)
    await two.delete_record("revoked", "jti1")
    assert {} == await one.records("revoked")
    assert await one.claim("outbox", "n1", "one", 5.0)
    assert not await two.claim("outbox", "n1", "two", 5.0)
    assert await one.claim("outbox", "n1", "one", 5.0)
    await publish(one, "c", [entry("x")])
    await two.set_meta("c", "state", b'"waiting"')
    info = await one.session("c")
    assert info is not None
    assert {"state": b'"waiting"'} == info.meta
    await one.set_meta("c", "state", None)
    info = await two.session("c")
    assert info is not None
    assert {} == info.meta


# -- availability -----------------------------------------------------------------------------


def test_a_bad_url_is_refused_with_words_and_no_password() -> None:
    with pytest.raises(EngineError, match="redis://"):
        RedisEngine("http://user:secret@host:1/0")
    with pytest.raises(EngineError) as caught:
        RedisEngine("redis://user:secret@host:notaport/0")
    assert "secret" not in str(caught.value)
    assert "redis://user:***@host:1/0" == redact("redis://user:secret@host:1/0")
    with pytest.raises(EngineError, match="for a Unix socket"):
        RedisEngine("unix://")
    with pytest.raises(EngineError, match="for a Unix socket"):
        RedisEngine("unix+cluster:///run/redis.sock")
    assert "unix:///r.sock?password=***" == redact("unix:///r.sock?password=secret")


async def test_an_unreachable_server_stops_open_with_one_line() -> None:
    from tests.helpers import free_port

    engine = RedisEngine(f"redis://user:secret@127.0.0.1:{free_port()}/0")
    with pytest.raises(EngineError) as caught:
        await engine.open(Recorder())
    assert "secret" not in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_redis_killed_and_restarted_loses_no_acked_message(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "aof", appendonly=True).start()
    engines = Engines(server.url)
    try:
        told = Recorder()
        sender = await engines.open(told)
        _listener, seen = await engines.listening()
        acked: list[int] = []
        refused = 0
        restarted = False
        for i in range(200):
            done = await publish(sender, "c", [entry(str(i), "p", i + 1)])
            if done.refused is None:
                acked += done.seqs
            else:
                assert "unavailable" == done.refused
                refused += 1
                if not restarted:
                    server.start()
                    restarted = True
                await wait_for(lambda: sender.available, 20 * UNIT)
            if i == 50:
                server.kill()
        assert restarted
        assert refused >= 1
        assert [False, True] == told.changes
        stored = [m.seq for m in await sender.read("c")]
        assert sorted(set(acked)) == acked
        assert set(acked) <= set(stored)
        await wait_for(lambda: len(seen.seqs("c")) >= len(stored), 20 * UNIT)
        assert stored == seen.seqs("c")
        assert [] == seen.gaps
    finally:
        await engines.close()
        server.stop()


async def test_check_raises_while_redis_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "down").start()
    engines = Engines(server.url)
    try:
        told = Recorder()
        engine = await engines.open(told)
        await engine.check()
        server.kill()
        with pytest.raises(EngineError, match=r"does not answer|cannot be reached"):
            await engine.check()
        done = await publish(engine, "c", [entry("x")])
        assert "unavailable" == done.refused
        await wait_for(lambda: told.changes == [False])
        server.start()
        await wait_for(lambda: told.changes == [False, True], 20 * UNIT)
        await engine.check()
        assert [1] == (await publish(engine, "c", [entry("y")])).seqs
    finally:
        await engines.close()
        server.stop()


async def test_waitaof_needs_redis_7_2(standalone: RedisServer) -> None:
    """The installed Redis (7.0) has no WAITAOF: asking for it stops open with words."""
    version = standalone.command("INFO", "server").split(b"redis_version:")[1].split(b"\r")[0]
    engine = RedisEngine(standalone.url + "?waitaof=1")
    if tuple(int(p) for p in version.split(b".")[:2]) >= (7, 2):
        await engine.open(Recorder())
        await engine.close()
        return
    with pytest.raises(EngineError, match=r"WAITAOF.*7\.2"):
        await engine.open(Recorder())
    with pytest.raises(EngineError, match="one server"):
        RedisEngine("redis+cluster://h:1?waitaof=1")


def _owner_and_other(cluster: RedisCluster, slot: int) -> tuple[RedisServer, str, RedisServer, str]:
    """The master serving ``slot`` and another one, each with its node id."""
    nodes = {}
    owner = None
    for line in cluster.nodes[0].command("CLUSTER", "NODES").decode().split("\n"):
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2]:
            continue
        port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
        nodes[port] = fields[0]
        for part in fields[8:]:
            low, _, high = part.partition("-")
            if low.isdigit() and int(low) <= slot <= int(high or low):
                owner = port
    source = next(n for n in cluster.nodes if n.port == owner)
    target = next(n for n in cluster.nodes if n.port != owner)
    return source, nodes[source.port], target, nodes[target.port]


def _move_slot(cluster: RedisCluster, slot: int) -> None:
    """Move ``slot`` and its keys to another master, as ``redis-cli --cluster reshard`` does."""
    source, source_id, target, target_id = _owner_and_other(cluster, slot)
    target.command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
    source.command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
    while True:
        raw = source.command("CLUSTER", "GETKEYSINSLOT", str(slot), "100")
        keys = [k for k in raw.split(b"\r\n")[1:] if k and not k.startswith((b"$", b"*"))]
        if not keys:
            break
        reply = source.command(
            "MIGRATE",
            "127.0.0.1",
            str(target.port),
            '""',
            "0",
            "5000",
            "KEYS",
            *(k.decode() for k in keys),
        )
        assert reply.startswith(b"+"), reply
    for node in cluster.nodes:
        node.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)


async def test_a_moved_slot_keeps_seqs_fanout_and_commands(cluster: RedisCluster) -> None:
    from redis.crc import key_slot

    engines = Engines(cluster.url)
    try:
        sender = await engines.open()
        seen, holder = Recorder(), Recorder()
        listener = await engines.open(seen)
        attached = await engines.open(holder)
        listener.listen("moving")
        await listener.position("moving")
        attached.attach("moving")

        async def reached() -> bool:
            return await sender.command("moving", b"before") == 1

        await wait_for(reached)
        await publish(sender, "moving", [entry("1"), entry("2")])
        await wait_for(lambda: seen.seqs("moving") == [1, 2])
        _move_slot(cluster, key_slot(b"moving"))
        done = await publish(sender, "moving", [entry("3")])
        assert [3] == done.seqs
        for n in range(4, 8):
            await publish(sender, "moving", [entry(str(n))])
        await wait_for(lambda: len(seen.seqs("moving")) >= 7, 10 * UNIT)
        assert list(range(1, 8)) == seen.seqs("moving")
        assert [] == seen.gaps

        async def still() -> bool:
            return await sender.command("moving", b"after") == 1

        await wait_for(still, 10 * UNIT)
        assert [1, 2, 3, 4, 5, 6, 7] == [m.seq for m in await listener.read("moving")]
    finally:
        await engines.close()


async def test_star_catches_up_containers_that_started_while_pubsub_was_lost(
    url: str, servers: list[RedisServer]
) -> None:
    engines = Engines(url)
    try:
        sender = await engines.open()
        star = Recorder()
        everything = await engines.open(star)
        everything.listen("*")
        await wait_for(lambda: bool(everything._pubsubs))
        # Receive times are real here: the catch-up looks for what was received since the loss.
        await publish(sender, "known", [entry("1")], now=time.time())
        await wait_for(lambda: star.seqs("known") == [1])
        on_every_node(servers, "CLIENT", "KILL", "TYPE", "pubsub")
        for n in range(1, 4):
            await publish(sender, "fresh", [entry(str(n))], now=time.time())
            await publish(sender, "known", [entry(str(n + 1))], now=time.time())
        await wait_for(lambda: len(star.seqs("fresh")) >= 3 and len(star.seqs("known")) >= 4)
        assert ([1, 2, 3], [1, 2, 3, 4]) == (star.seqs("fresh"), star.seqs("known"))
        assert [] == star.gaps
    finally:
        await engines.close()


async def test_redis_back_with_older_data_gets_a_new_epoch(tmp_path: Path) -> None:
    """Redis restarted from a snapshot older than the last acked writes: the seqs after it
    would repeat ones already handed on, so they go under a new epoch."""
    server = RedisServer(tmp_path / "rdb").start()
    engines = Engines(server.url)
    try:
        seen = Recorder()
        sender = await engines.open(seen)
        first = await publish(sender, "c", [entry("1"), entry("2")])
        server.command("SAVE")
        later = await publish(sender, "c", [entry("3"), entry("4")])
        assert (first.epoch, [3, 4]) == (later.epoch, later.seqs)
        server.kill()
        server.start()  # loads the snapshot: seq 2
        again = await publish(sender, "c", [entry("5")])
        while again.refused is not None:  # the engine finds the old connection dead first
            assert "unavailable" == again.refused
            await wait_for(lambda: sender.available, 20 * UNIT)
            again = await publish(sender, "c", [entry("5")])
        assert again.epoch != first.epoch
        assert again.epoch == (await sender.position("c")).epoch
    finally:
        await engines.close()
        server.stop()
