"""The engine contract against :class:`~tailhub.engine.local.LocalEngine` over each history
store, and what only the local engine over SQLite has to get right: reservations, epochs
and a SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from tailhub.engine import DUPLICATE, Engine, Entry, Published
from tailhub.engine.local import LocalEngine
from tailhub.store import MemoryStore, Retention, SqliteStore
from tests.engine.contract import (
    CommandContract,
    Harness,
    HistoryContract,
    Options,
    PublishContract,
    RecordContract,
    Recorder,
    RestartContract,
    SessionContract,
)
from tests.helpers import UNIT


async def _memory(place: Path, options: Options) -> Engine:
    store = MemoryStore(Retention(options.max_messages, options.max_age))
    return LocalEngine(store, max_sessions=options.max_sessions)


async def _sqlite(place: Path, options: Options) -> Engine:
    store = SqliteStore(place / "history.db", Retention(options.max_messages, options.max_age))
    return LocalEngine(store, max_sessions=options.max_sessions)


class _OnMemory:
    @pytest.fixture
    async def engines(self, tmp_path: Path) -> AsyncIterator[Harness]:
        harness = Harness(_memory, tmp_path, keeps_state=False)
        yield harness
        await harness.close()


class _OnSqlite:
    @pytest.fixture
    async def engines(self, tmp_path: Path) -> AsyncIterator[Harness]:
        harness = Harness(_sqlite, tmp_path, keeps_state=True)
        yield harness
        await harness.close()


class TestMemoryPublish(_OnMemory, PublishContract):
    """The publish contract, over MemoryStore."""


class TestMemoryHistory(_OnMemory, HistoryContract):
    """The history contract, over MemoryStore."""


class TestMemorySessions(_OnMemory, SessionContract):
    """The session contract, over MemoryStore."""


class TestMemoryCommands(_OnMemory, CommandContract):
    """The command contract, over MemoryStore."""


class TestMemoryRecords(_OnMemory, RecordContract):
    """The metadata and records contract, over MemoryStore."""


class TestSqlitePublish(_OnSqlite, PublishContract):
    """The publish contract, over SqliteStore."""


class TestSqliteHistory(_OnSqlite, HistoryContract):
    """The history contract, over SqliteStore."""


class TestSqliteSessions(_OnSqlite, SessionContract):
    """The session contract, over SqliteStore."""


class TestSqliteCommands(_OnSqlite, CommandContract):
    """The command contract, over SqliteStore."""


class TestSqliteRecords(_OnSqlite, RecordContract):
    """The metadata and records contract, over SqliteStore."""


class TestSqliteRestart(_OnSqlite, RestartContract):
    """The restart contract, over SqliteStore."""


# Publishes runs of two producers of container "c" as fast as the loop turns, committing at
# most every second, and prints each delivered message ("delivered <seq> <producer> <id>") and
# the epoch. Once 3,000 are delivered it SIGKILLs itself at a moment when more than 50
# delivered messages are not yet committed and the next commit is 0.5 s away: the case this
# is about, made certain.
_CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from pathlib import Path
    import msgspec
    from tailhub.engine import Entry
    from tailhub.engine.local import LocalEngine
    from tailhub.store import SqliteStore

    class Out:
        count = committed = 0
        committed_at = time.monotonic()
        def deliver(self, container_id, kind, payloads):
            for payload in payloads:
                message = msgspec.json.decode(payload)
                data = message["data"]
                print("delivered", message["seq"], data["p"], data["n"])
                self.count += 1
            sys.stdout.flush()
            if (
                self.count >= 3000
                and message["seq"] > self.committed + 50
                and time.monotonic() - self.committed_at < 0.5
            ):
                os.kill(os.getpid(), signal.SIGKILL)
        def durable(self, positions):
            self.committed_at = time.monotonic()
            for container_id, seq in positions:
                self.committed = max(self.committed, seq)
        def gap(self, container_id, after, resumed, reason):
            pass
        def command(self, container_id, payload):
            return 0
        def availability(self, available, reason):
            pass

    async def main():
        store = SqliteStore(Path(sys.argv[1]), linger=1.0, batch_max=10**6)
        engine = LocalEngine(store, max_sessions=10)
        await engine.open(Out())
        sent = {"p": 0, "q": 0}
        epochs = set()
        def done(published):
            if published.epoch not in epochs:
                epochs.add(published.epoch)
                print("epoch", published.epoch, flush=True)
        while True:
            for producer, size in (("p", 4), ("q", 3)):
                first = sent[producer] + 1
                sent[producer] += size
                batch = [
                    Entry(b'{"p":"%s","n":%d}' % (producer.encode(), n), "t", producer, n)
                    for n in range(first, first + size)
                ]
                engine.publish("c", "log", batch, time.time(), done)
            await asyncio.sleep(0.001)

    asyncio.run(main())
    """
)


class _Lines:
    """What the child printed: delivered messages and the epoch."""

    def __init__(self) -> None:
        self.delivered: list[tuple[int, str, int]] = []
        self.epochs: list[str] = []

    def take(self, line: bytes) -> None:
        if not line.endswith(b"\n"):
            return  # cut short by the kill
        words = line.decode().split()
        if words[:1] == ["delivered"]:
            self.delivered.append((int(words[1]), words[2], int(words[3])))
        elif words[:1] == ["epoch"]:
            self.epochs.append(words[1])


class TestSqliteCrash:
    """A hub SIGKILLed while publishing: no seq anyone saw is given to another message."""

    async def test_sigkill_never_reuses_a_delivered_seq(self, tmp_path: Path) -> None:
        """After a SIGKILL with delivered messages not committed, resends of two publishers
        get seqs above every delivered one, each id is kept once and in its publisher's
        order, and the epoch changed."""
        path = tmp_path / "history.db"
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert child.stdout is not None
        seen = _Lines()
        try:
            async with asyncio.timeout(20 * UNIT):
                while line := await child.stdout.readline():
                    seen.take(line)
                await child.wait()
        finally:
            if child.returncode is None:
                child.send_signal(signal.SIGKILL)
                await child.wait()
        highest = max(seq for seq, _, _ in seen.delivered)
        sent = {p: max(n for _, q, n in seen.delivered if q == p) for p in ("p", "q")}

        engine = LocalEngine(SqliteStore(path), max_sessions=10)
        handler = Recorder()
        await engine.open(handler)
        try:
            committed = [m.seq for m in await engine.read("c")]
            position = await engine.position("c")
            resent: list[int] = []
            for producer in ("p", "q"):
                batch = [
                    Entry(b'{"p":"%s","n":%d}' % (producer.encode(), n), "t", producer, n)
                    for n in range(1, sent[producer] + 1)
                ]
                published = await _publish(engine, batch)
                resent.extend(s for s in published.seqs if s != DUPLICATE)
            kept = await engine.read("c")
        finally:
            await engine.close()
        order = [msgspec.json.decode(m.payload)["data"] for m in kept]
        # The crash lost delivered messages (what this test is about), and resends were needed.
        assert (-signal.SIGKILL, True, True) == (
            child.returncode,
            highest > committed[-1],
            bool(resent),
        )
        assert min(resent) > highest
        # The position names the last message kept; the next seq passes the reservation.
        assert position.last_seq == committed[-1]
        assert position.epoch != seen.epochs[0]
        assert [m.seq for m in kept] == sorted({m.seq for m in kept})
        for producer in ("p", "q"):
            ids = [d["n"] for d in order if d["p"] == producer]
            assert list(range(1, sent[producer] + 1)) == ids


async def _publish(engine: LocalEngine, batch: list[Entry]) -> Published:
    answer: asyncio.Future[Published] = asyncio.get_running_loop().create_future()
    engine.publish("c", "log", batch, 5000.0, answer.set_result)
    return await answer


def _containers(path: Path) -> dict[str, tuple[int, int, str]]:
    """Per container in the file: last seq, reservation and epoch."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name, last_seq, reserved, epoch FROM containers").fetchall()
    return {name: (last, reserved, epoch) for name, last, reserved, epoch in rows}


def _as_after_a_crash(path: Path, reserved: int) -> None:
    """Leave the file as an unclean stop does: every reservation ``reserved``, not clean."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("UPDATE containers SET reserved = ?", (reserved,))
        conn.execute("UPDATE checkpoint SET clean = 0")


class TestSqliteReservations:
    """Seqs are delivered only once reserved on disk; restarts continue past reservations."""

    async def test_a_new_container_waits_for_its_first_commit(self, tmp_path: Path) -> None:
        """The first run of a container is delivered after the commit reserving its seqs;
        later runs at once, inside publish."""
        path = tmp_path / "history.db"
        engine = LocalEngine(SqliteStore(path, linger=0.05), max_sessions=10)
        handler = Recorder()
        await engine.open(handler)
        try:
            await _publish(engine, [Entry(b"1", "t")])
            at_once = len(handler.runs)
            await handler.until_delivered("c", 1)
            reserved = _containers(path)["c"][1]
            await _publish(engine, [Entry(b"2", "t")])
            second = len(handler.runs)
        finally:
            await engine.close()
        assert (0, True, 2) == (at_once, reserved >= 1000, second)

    async def test_a_clean_stop_keeps_epochs_and_continues_without_a_jump(
        self, tmp_path: Path
    ) -> None:
        """Closed cleanly, the file's reservation comes down to the last seq."""
        path = tmp_path / "history.db"
        engine = LocalEngine(SqliteStore(path), max_sessions=10)
        await engine.open(Recorder())
        first = await _publish(engine, [Entry(b"1", "t")])
        await engine.close()
        assert {"c": (1, 1, first.epoch)} == _containers(path)

    async def test_an_unclean_stop_skips_the_reservation_with_a_new_epoch(
        self, tmp_path: Path
    ) -> None:
        """After an unclean stop seqs continue above the reservation under a new epoch; a
        clean stop before any new message keeps that floor and the new epoch."""
        path = tmp_path / "history.db"
        engine = LocalEngine(SqliteStore(path), max_sessions=10)
        await engine.open(Recorder())
        before = await _publish(engine, [Entry(b"1", "t"), Entry(b"2", "t")])
        await engine.close()
        _as_after_a_crash(path, 1002)
        engine = LocalEngine(SqliteStore(path), max_sessions=10)
        await engine.open(Recorder())
        skipped = await engine.position("c")
        await engine.close()
        engine = LocalEngine(SqliteStore(path), max_sessions=10)
        handler = Recorder()
        await engine.open(handler)
        after = await _publish(engine, [Entry(b"3", "t")])
        await handler.until_delivered("c", 1)
        kept = [m.seq for m in await engine.read("c")]
        await engine.close()
        assert (2, True) == (skipped.last_seq, skipped.epoch != before.epoch)
        assert ([1003], skipped.epoch, [1, 2, 1003]) == (after.seqs, after.epoch, kept)

    async def test_held_runs_keep_the_order_of_publishing(self, tmp_path: Path) -> None:
        """While a new container's first run waits, later runs of others wait behind it."""
        engine = LocalEngine(SqliteStore(tmp_path / "history.db"), max_sessions=10)
        handler = Recorder()
        await engine.open(handler)
        try:
            await _publish(engine, [Entry(b"1", "t")])  # container "c"
            await handler.until_delivered("c", 1)
            for container_id, data in (("x", b"2"), ("c", b"3"), ("y", b"4"), ("c", b"5")):
                answer: asyncio.Future[Published] = asyncio.get_running_loop().create_future()
                engine.publish(container_id, "log", [Entry(data, "t")], 1.0, answer.set_result)
                await answer
            await handler.until(lambda: len(handler.runs) == 5)
        finally:
            await engine.close()
        assert ["c", "x", "c", "y", "c"] == [container_id for container_id, _, _ in handler.runs]


class TestRetention:
    """What retention takes from the local engine beyond messages."""

    @pytest.mark.parametrize("make", [_memory, _sqlite])
    async def test_producer_ids_go_with_the_last_message(
        self, make: Callable[[Path, Options], Awaitable[Engine]], tmp_path: Path
    ) -> None:
        """Once retention removed every message of a container, a repeated id is stored
        anew, with the next seq; while one is kept, repeats are still dropped."""
        harness = Harness(make, tmp_path, keeps_state=False)
        try:
            one = await harness.open(Options(max_age=10.0))
            await one.logs("gone", 1, producer="p", ids=True, now=10.0)
            await one.logs("kept", 1, producer="p", ids=True, now=95.0)
            await one.engine.prune(100.0)
            again = await one.logs("gone", 1, producer="p", ids=True, now=101.0)
            repeat = await one.logs("kept", 1, producer="p", ids=True, now=101.0)
        finally:
            await harness.close()
        assert ([2], [DUPLICATE]) == (again.seqs, repeat.seqs)
