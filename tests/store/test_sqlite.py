"""The store contract against :class:`~tailhub.store.sqlite.SqliteStore`, and what only a file
store has to get right: restarts, bad files and directories, write failures, a SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from pathlib import Path

import pytest
import structlog

from tailhub.store import Retention, SqliteStore, StoredMessage, StoreError
from tests.helpers import UNIT, wait_for
from tests.store.contract import (
    AgainstModelContract,
    AppendContract,
    DurabilityContract,
    Harness,
    ReadContract,
    ReadYourWritesContract,
    ReopenContract,
    RetentionContract,
    append,
    info_of,
)
from tests.store.rows import chunk_row


def _make(place: Path, retention: Retention | None) -> SqliteStore:
    return SqliteStore(place / "history.db", retention)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """SQLite stores; reopening one is opening a new store on the same file."""
    harness = Harness(_make, tmp_path, reopen_same=False)
    yield harness
    await harness.close()


class TestAppend(AppendContract):
    """The append contract, on SqliteStore."""


class TestReadYourWrites(ReadYourWritesContract):
    """The read-your-writes contract, on SqliteStore."""


class TestRead(ReadContract):
    """The read contract, on SqliteStore."""


class TestDurability(DurabilityContract):
    """The durability contract, on SqliteStore."""


class TestRetention(RetentionContract):
    """The retention contract, on SqliteStore."""


class TestReopen(ReopenContract):
    """The reopen contract, on SqliteStore."""


class TestAgainstModel(AgainstModelContract):
    """The model-based contract, on SqliteStore."""


def _ignore(_pairs: Sequence[tuple[str, int]]) -> None:
    return None


async def _open_error(path: Path) -> str:
    store = SqliteStore(path)
    with pytest.raises(StoreError) as raised:
        await store.open(_ignore)
    return str(raised.value)


class TestOpen:
    """``open`` prepares the file, or refuses with one sentence an operator can act on."""

    async def test_creates_missing_directories(self, tmp_path: Path) -> None:
        """open() creates every missing directory above the file."""
        path = tmp_path / "a" / "b" / "history.db"
        store = SqliteStore(path)
        await store.open(_ignore)
        await store.close()
        assert path.is_file()

    async def test_one_hub_per_database(self, tmp_path: Path) -> None:
        """A second store on the same file is refused while the first is open, not after."""
        path = tmp_path / "history.db"
        first = SqliteStore(path)
        await first.open(_ignore)
        message = await _open_error(path)
        assert "in use by another tailhub hub" in message
        await first.close()
        second = SqliteStore(path)
        await second.open(_ignore)
        await second.close()

    async def test_file_is_in_wal_mode(self, tmp_path: Path) -> None:
        """The database is left in WAL mode (commits survive a process crash cheaply)."""
        path = tmp_path / "history.db"
        store = SqliteStore(path)
        await store.open(_ignore)
        await store.close()
        with sqlite3.connect(path) as conn:
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"

    async def test_garbage_file_is_reported_corrupt(self, tmp_path: Path) -> None:
        """A file that is not SQLite is refused, naming the file and what to do."""
        path = tmp_path / "history.db"
        path.write_bytes(b"this is not a database\n" * 500)
        message = await _open_error(path)
        expected = (True, True, 1)
        assert expected == (str(path) in message, "corrupt" in message, len(message.splitlines()))

    async def test_damaged_database_is_reported_corrupt(self, tmp_path: Path) -> None:
        """A real history file with a damaged schema page is refused as corrupt."""
        path = tmp_path / "history.db"
        store = SqliteStore(path)
        await store.open(_ignore)
        await store.close()
        data = bytearray(path.read_bytes())
        data[100:4096] = b"\xa5" * (4096 - 100)  # page 1 after the header: the schema
        path.write_bytes(bytes(data))
        message = await _open_error(path)
        expected = (True, True)
        assert expected == (str(path) in message, "corrupt" in message)

    async def test_uncreatable_directory_is_named(self, tmp_path: Path) -> None:
        """A data directory that cannot be created is refused, naming it."""
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        message = await _open_error(blocker / "data" / "history.db")
        expected = (True, 1)
        assert expected == (str(blocker / "data") in message, len(message.splitlines()))

    async def test_unopenable_file_is_named(self, tmp_path: Path) -> None:
        """A database path that cannot be opened for writing (a directory) is refused."""
        path = tmp_path / "history.db"
        path.mkdir()
        message = await _open_error(path)
        expected = (True, True)
        assert expected == (str(path) in message, "writ" in message)

    async def test_impossible_path_is_refused_not_hung(self, tmp_path: Path) -> None:
        """A path SQLite cannot take at all (a NUL byte) is a StoreError, not a hang."""
        assert "history database" in await _open_error(tmp_path / "bad\0name.db")

    async def test_open_can_be_retried_once_the_cause_is_fixed(self, tmp_path: Path) -> None:
        """After a refused open, the same store opens once the directory can be created."""
        blocker = tmp_path / "data"
        blocker.write_text("in the way")
        store = SqliteStore(blocker / "history.db")
        with pytest.raises(StoreError):
            await store.open(_ignore)
        blocker.unlink()
        await store.open(_ignore)
        store.append_run("a", 1, 1.0, [b"x"])
        got = await store.read("a")
        await store.close()
        assert [StoredMessage(1, 1.0, b"x")] == got

    async def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        """A file written by a newer tailhub is refused rather than misread."""
        path = tmp_path / "history.db"
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version = 99")
        assert "newer" in await _open_error(path)


class TestLifecycle:
    """``check`` and ``close`` say whether the store can be used."""

    async def test_check_passes_while_open(self, tmp_path: Path) -> None:
        """check() returns while the store is open and healthy."""
        store = SqliteStore(tmp_path / "history.db")
        await store.open(_ignore)
        await store.check()
        await store.close()

    async def test_closed_store_refuses_check_and_read(self, tmp_path: Path) -> None:
        """After close(), check() and read() raise StoreError; close() again is a no-op."""
        store = SqliteStore(tmp_path / "history.db")
        await store.open(_ignore)
        store.append_run("a", 1, 1.0, [b"x"])
        await store.close()
        await store.close()
        with pytest.raises(StoreError):
            await store.check()
        with pytest.raises(StoreError):
            await store.read("a")

    def test_append_after_its_loop_closed_does_not_raise(self, tmp_path: Path) -> None:
        """append() never fails its caller, not even once the store's event loop is closed."""
        store = SqliteStore(tmp_path / "history.db")
        loop = asyncio.new_event_loop()
        loop.run_until_complete(store.open(_ignore))
        loop.close()
        store.append_run("a", 1, 1.0, [b"x"])

    async def test_concurrent_closes_both_return(self, tmp_path: Path) -> None:
        """Two close() calls at once both return once the file is closed."""
        store = SqliteStore(tmp_path / "history.db")
        await store.open(_ignore)
        append(store, "a", range(1, 100))
        await asyncio.gather(store.close(), store.close())
        reopened = SqliteStore(tmp_path / "history.db")
        snapshot = await reopened.open(_ignore)
        await reopened.close()
        expected = 99
        assert expected == snapshot.containers["a"].last_seq

    async def test_many_containers_and_rows_reload(self, tmp_path: Path) -> None:
        """Counters of many containers (read from the small containers table) reload exactly."""
        store = SqliteStore(tmp_path / "history.db")
        await store.open(_ignore)
        for n in range(200):
            append(store, f"c-{n}", range(1, 101))
        expected = {f"c-{n}": store.info(f"c-{n}") for n in range(200)}
        await store.close()
        reopened = SqliteStore(tmp_path / "history.db")
        snapshot = await reopened.open(_ignore)
        await reopened.close()
        assert expected == snapshot.containers


async def _kill_when_ready(script: str, path: Path) -> None:
    """Run ``script`` on ``path`` in a child process; SIGKILL it once it prints ``ready``."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert child.stdout is not None
    try:
        async with asyncio.timeout(20 * UNIT):
            ready = b"?"
            while ready and ready != b"ready\n":  # the store logs to stdout too
                ready = await child.stdout.readline()
    finally:
        child.send_signal(signal.SIGKILL)  # before the writer's next checkpoint
        await child.wait()
    assert b"ready\n" == ready


class TestCounters:
    """The counters a reopen reports are exact, whatever the writer had checkpointed."""

    async def test_crash_after_ids_restart_keeps_exact_counters(self, tmp_path: Path) -> None:
        """After a prune empties the file and ids start over, a crash loses no count."""
        path = tmp_path / "history.db"
        await _kill_when_ready(_RESTART_CHILD, path)
        store = SqliteStore(path)
        snapshot = await store.open(_ignore)  # as a restart after the crash
        await store.close()
        sent = [StoredMessage(seq, 1000.0, f"a:{seq}".encode()) for seq in range(6, 9)]
        assert ({"a": info_of(sent, 8)}, {("a", "p"): 8}) == (
            snapshot.containers,
            snapshot.producers,
        )


_RESTART_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tailhub.store import Retention, SqliteStore

    async def main():
        committed = asyncio.Event()

        def on_durable(pairs):
            if ("a", 8) in pairs:
                committed.set()

        store = SqliteStore(Path(sys.argv[1]), Retention(max_messages=100, max_age=10.0))
        await store.open(on_durable)
        for seq in range(1, 6):
            store.append_run("a", seq, float(seq), [b"a:%d" % seq], [("p", seq)])
        await store.prune(1000.0)  # empties the file: ids start over
        for seq in range(6, 9):
            store.append_run("a", seq, 1000.0, [b"a:%d" % seq], [("p", seq)])
        await committed.wait()  # too soon for the writer's next checkpoint (a read would index)
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


class TestWriter:
    """The writer thread batches, reports metrics and survives failures."""

    async def test_on_batch_counts_every_message_within_batch_max(self, tmp_path: Path) -> None:
        """on_batch sees every message once, in batches of at most batch_max."""
        batches: list[tuple[int, float]] = []
        store = SqliteStore(
            tmp_path / "history.db",
            batch_max=7,
            on_batch=lambda rows, seconds: batches.append((rows, seconds)),
        )
        await store.open(_ignore)
        append(store, "a", range(1, 101))
        await store.close()
        expected = (100, True, True)
        assert expected == (
            sum(rows for rows, _ in batches),
            all(1 <= rows <= 7 for rows, _ in batches),
            all(seconds >= 0 for _, seconds in batches),
        )

    async def test_a_turn_over_batch_max_is_written_in_order(self, tmp_path: Path) -> None:
        """Appends of one loop turn beyond batch_max go in several transactions, each within
        batch_max, and every container's messages keep their order."""
        batches: list[int] = []
        store = SqliteStore(
            tmp_path / "history.db", batch_max=7, on_batch=lambda rows, _: batches.append(rows)
        )
        await store.open(_ignore)
        sent: dict[str, list[StoredMessage]] = {"a": [], "b": [], "c": []}
        for seq in range(1, 31):
            for name in sent:
                sent[name] += append(store, name, range(seq, seq + 1))
        got = {name: await store.read(name) for name in sent}
        await store.close()
        assert (sent, 90, True) == (got, sum(batches), all(1 <= n <= 7 for n in batches))

    async def test_failing_writes_surface_in_check_then_recover(self, tmp_path: Path) -> None:
        """A write the database refuses is logged and fails check(); once fixed, nothing is lost."""
        path = tmp_path / "history.db"
        durable: dict[str, int] = {}
        recorded = asyncio.Event()

        def on_durable(pairs: Sequence[tuple[str, int]]) -> None:
            durable.update(pairs)
            recorded.set()

        store = SqliteStore(path)
        await store.open(on_durable)
        with sqlite3.connect(path, isolation_level=None) as saboteur:
            saboteur.execute(
                "CREATE TRIGGER sabotage BEFORE INSERT ON chunks "
                "BEGIN INSERT INTO no_such_table VALUES (1); END"
            )
            with structlog.testing.capture_logs() as logs:
                sent = append(store, "a", range(1, 51))

                async def failing() -> bool:
                    try:
                        await store.check()
                    except StoreError:
                        return True
                    return False

                await wait_for(failing, timeout=5 * UNIT)
            saboteur.execute("DROP TRIGGER sabotage")
        async with asyncio.timeout(5 * UNIT):
            while durable.get("a", 0) < 50:
                recorded.clear()
                await recorded.wait()
        await store.check()
        got = await store.read("a")
        await store.close()
        assert (True, sent) == (
            any(e["event"] == "store_write_failed" and e["log_level"] == "error" for e in logs),
            got,
        )

    async def test_unstorable_message_is_dropped_alone(self, tmp_path: Path) -> None:
        """A message SQLite cannot store is logged and dropped; the rest of its batch is kept."""
        store = SqliteStore(tmp_path / "history.db")
        await store.open(_ignore)
        with structlog.testing.capture_logs() as logs:
            good = append(store, "a", range(1, 4))
            store.append_run("a", 2**70, 4.0, [b"seq too large for SQLite"])
            good += append(store, "a", range(5, 7))
            got = await store.read("a")
        await store.close()
        assert (good, ["store_message_dropped"]) == (
            got,
            [e["event"] for e in logs if e["event"] == "store_message_dropped"],
        )


# The child appends without pause and prints every seq reported durable, until it is killed.
_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tailhub.store import SqliteStore

    def durable(pairs):
        sys.stdout.write("".join(f"durable {c} {seq}\\n" for c, seq in pairs))
        sys.stdout.flush()

    async def main():
        store = SqliteStore(Path(sys.argv[1]), batch_max=500)
        await store.open(durable)
        seq = 0
        while True:  # a busy publisher, about 100,000 messages a second, that waits on I/O
            for _ in range(100):
                seq += 1
                store.append_run("c", seq, float(seq), [b"message %d" % seq], [("p", seq)])
            await asyncio.sleep(0.001)

    asyncio.run(main())
    """
)


_REPORTED = 3000


class TestCrash:
    """A SIGKILL loses nothing that was reported durable."""

    async def test_sigkill_keeps_every_reported_message(self, tmp_path: Path) -> None:
        """After SIGKILL mid-write, reopening returns every message reported durable."""
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
        reported = 0
        try:
            async with asyncio.timeout(20 * UNIT):
                while reported < _REPORTED:
                    line = await child.stdout.readline()
                    if not line:
                        break
                    if line.startswith(b"durable c "):
                        reported = max(reported, int(line.split()[2]))
        finally:
            child.send_signal(signal.SIGKILL)
            rest = await child.stdout.read()
            await child.wait()
        for line in rest.splitlines():
            if line.startswith(b"durable c "):
                reported = max(reported, int(line.split()[2]))
        store = SqliteStore(path)
        snapshot = await store.open(_ignore)
        kept = await store.read("c")
        await store.close()
        last = snapshot.containers["c"].last_seq
        expected = [StoredMessage(s, float(s), b"message %d" % s) for s in range(1, last + 1)]
        assert (-signal.SIGKILL, True, expected, info_of(kept, last), {("c", "p"): last}) == (
            child.returncode,
            last >= reported >= _REPORTED,
            kept,
            snapshot.containers["c"],
            snapshot.producers,
        )


def _select(
    messages: list[StoredMessage],
    after: int,
    tail: int | None,
    since_time: float | None,
    limit: int | None,
) -> list[StoredMessage]:
    """What ``read`` returns from ``messages`` for these arguments (the documented order)."""
    chosen = [m for m in messages if m.seq > after]
    if since_time is not None:
        chosen = [m for m in chosen if m.time >= since_time]
    if tail is not None:
        chosen = chosen[max(0, len(chosen) - tail) :]
    return chosen if limit is None else chosen[:limit]


def _chunk_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM chunks").fetchone()
    return int(rows)


class TestChunks:
    """Messages are kept as one chunk per container and batch: reads and prunes see through."""

    async def test_reads_across_chunks_and_gaps_select_exactly(self, tmp_path: Path) -> None:
        """Every read agrees with a plain list, over many chunks, long ones and seq gaps."""
        path = tmp_path / "history.db"
        store = SqliteStore(path)
        await store.open(_ignore)
        sent: list[StoredMessage] = []
        seqs = [*range(1, 301), *range(305, 340), 400, 401, *range(450, 460)]
        for start in range(0, len(seqs), 37):  # a read between bursts commits each burst
            for seq in seqs[start : start + 37]:
                sent += append(store, "a", range(seq, seq + 1), time=lambda s: 1000.0 + s // 3)
            await store.read("a", tail=1)
        append(store, "b", range(1, 400))  # 399 in one batch: several chunks of the cap
        chunks = _chunk_rows(path)
        queries: list[tuple[int, int | None, float | None, int | None]] = [
            (after, tail, since, limit)
            for after in (0, 1, 36, 37, 299, 300, 302, 339, 400, 459, 460)
            for tail in (None, 0, 1, 37, 38, 500)
            for since in (None, 1100.0, 1133.0)
            for limit in (None, 1, 40)
        ]
        got = {
            q: await store.read("a", after=q[0], tail=q[1], since_time=q[2], limit=q[3])
            for q in queries
        }
        b = await store.read("b", after=100, limit=200)
        await store.close()
        assert ({q: _select(sent, *q) for q in queries}, list(range(101, 301))) == (
            got,
            [m.seq for m in b],
        )
        assert chunks < len(sent) // 10

    async def test_prune_through_a_chunk_hides_its_older_part(self, tmp_path: Path) -> None:
        """A prune that cuts one chunk keeps only the newest; reads and counters agree, also
        after a reopen and a later prune."""
        path = tmp_path / "history.db"
        retention = Retention(max_messages=25, max_age=1e9)
        store = SqliteStore(path, retention)
        await store.open(_ignore)
        sent = append(store, "a", range(1, 101), producer="p", pub_id=True)
        await store.read("a", tail=1)  # one batch: one or a few chunks
        removed = await store.prune(200.0)
        first = (removed, await store.read("a"), await store.read("a", tail=30), store.info("a"))
        await store.close()
        store = SqliteStore(path, retention)
        snapshot = await store.open(_ignore)
        reopened = (await store.read("a", since_time=0.0), snapshot.containers["a"])
        sent += append(store, "a", range(101, 111), producer="p", pub_id=True)
        removed_later = await store.prune(200.0)
        later = (removed_later, await store.read("a"), store.info("a"))
        await store.close()
        assert (75, sent[75:100], sent[75:100], info_of(sent[75:100], 100)) == first
        assert (sent[75:100], info_of(sent[75:100], 100)) == reopened
        assert (10, sent[85:], info_of(sent[85:], 110)) == later

    async def test_a_batch_is_one_chunk_per_container(self, tmp_path: Path) -> None:
        """Messages queued together are stored as one row per container, not one per message."""
        path = tmp_path / "history.db"
        store = SqliteStore(path, linger=0.5)
        await store.open(_ignore)
        append(store, "warm-up", range(1, 2))
        await store.read("warm-up")  # the next batch waits the whole linger
        for seq in range(1, 21):
            for name in ("a", "b", "c"):
                append(store, name, range(seq, seq + 1))
        got = [await store.read(name) for name in ("a", "b", "c")]
        await store.close()
        assert ([list(range(1, 21))] * 3, 4) == (
            [[m.seq for m in g] for g in got],
            _chunk_rows(path),
        )

    async def test_absent_seqs_and_producers_are_null(self, tmp_path: Path) -> None:
        """A chunk without gaps or publisher ids stores NULL for them, its arrays as blobs."""
        path = tmp_path / "history.db"
        store = SqliteStore(path)
        await store.open(_ignore)
        append(store, "a", range(1, 4))
        append(store, "b", range(1, 2))
        append(store, "c", range(1, 2), pub_id=True)
        await store.read("a")
        await store.close()
        with closing(sqlite3.connect(path)) as conn:
            types = conn.execute(
                "SELECT typeof(seqs), typeof(times), typeof(lengths), typeof(producers), "
                "typeof(payloads) FROM chunks ORDER BY cid"
            ).fetchall()
        null, blob = "null", "blob"
        assert [
            (null, blob, blob, null, blob),
            (null, blob, blob, null, blob),
            (null, blob, blob, "text", blob),
        ] == types

    async def test_appends_of_many_loop_turns_are_one_chunk_per_container(
        self, tmp_path: Path
    ) -> None:
        """Loop turns handed to the writer one by one are still written one row per container
        and commit, publisher ids given in some turns and not others included."""
        path = tmp_path / "history.db"
        durable: dict[str, int] = {}
        changed = asyncio.Event()

        def on_durable(pairs: Sequence[tuple[str, int]]) -> None:
            durable.update(pairs)
            changed.set()

        store = SqliteStore(path, linger=0.5)
        await store.open(on_durable)
        append(store, "warm-up", range(1, 2))
        await store.read("warm-up")  # the next batch waits the whole linger
        sent: dict[str, list[StoredMessage]] = {"a": [], "b": [], "c": []}
        for seq in range(1, 21):
            sent["a"] += append(store, "a", range(seq, seq + 1), pub_id=True)
            sent["b"] += append(store, "b", range(2 * seq - 1, 2 * seq), pub_id=True)
            sent["b"] += append(store, "b", range(2 * seq, 2 * seq + 1), producer="q")
            sent["c"] += append(store, "c", range(seq, seq + 1))
            await asyncio.sleep(0)  # the next loop turn
        async with asyncio.timeout(5 * UNIT):
            while durable.get("b", 0) < 40:
                changed.clear()
                await changed.wait()
        chunks = _chunk_rows(path)
        got = {name: await store.read(name) for name in sent}
        await store.close()
        store = SqliteStore(path)
        snapshot = await store.open(_ignore)
        await store.close()
        assert (sent, 4) == (got, chunks)
        assert {("a", ""): 20, ("b", ""): 39} == snapshot.producers


def _index_state(path: Path) -> tuple[int, int]:
    """Chunks that ``chunk_index`` does not find, and its rows that name no such chunk."""
    with closing(sqlite3.connect(path)) as conn:
        (missing,) = conn.execute(
            "SELECT count(*) FROM chunks WHERE id NOT IN (SELECT id FROM chunk_index)"
        ).fetchone()
        (stale,) = conn.execute(
            "SELECT count(*) FROM chunk_index AS i LEFT JOIN chunks AS c ON c.id = i.id "
            "WHERE c.id IS NULL OR c.cid != i.cid OR c.last_seq != i.last_seq"
        ).fetchone()
    return int(missing), int(stale)


# The child writes twice to three containers, the second time without a checkpoint after it.
_UNINDEXED_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tailhub.store import SqliteStore

    async def main():
        durable = {}
        changed = asyncio.Event()

        def on_durable(pairs):
            durable.update(pairs)
            changed.set()

        async def until_durable(seq):
            while any(durable.get(name, 0) < seq for name in "abc"):
                changed.clear()
                await changed.wait()

        store = SqliteStore(Path(sys.argv[1]))
        await store.open(on_durable)
        for seq in range(1, 61):
            if seq == 41:
                await until_durable(40)  # the first commit is checkpointed at once
            for name in "abc":
                store.append_run(name, seq, float(seq), [b"%s:%d" % (name.encode(), seq)])
        await until_durable(60)  # too soon for the writer's next checkpoint
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


class TestIndex:
    """Reads and prunes find chunks through ``chunk_index``, written once per checkpoint."""

    async def test_reads_right_after_writes_find_every_chunk(self, tmp_path: Path) -> None:
        """A read that follows a write with no checkpoint between finds the new chunks."""
        store = SqliteStore(tmp_path / "history.db")
        await store.open(_ignore)
        a = append(store, "a", range(1, 6))
        first = await store.read("a")  # the first commit is checkpointed at once
        a += append(store, "a", range(6, 11))
        b = append(store, "b", range(1, 4))
        got = (
            await store.read("a"),
            await store.read("a", tail=2),
            await store.read("b", since_time=2.0),
        )
        later = append(store, "a", range(11, 13))
        last = await store.read("a", after=9)
        await store.close()
        assert (a[:5], (a, a[8:], b[1:]), a[9:] + later) == (first, got, last)

    async def test_reads_after_a_crash_find_its_leftovers(self, tmp_path: Path) -> None:
        """Chunks committed but not indexed when the hub was killed are found after a restart."""
        path = tmp_path / "history.db"
        await _kill_when_ready(_UNINDEXED_CHILD, path)
        left_over = _index_state(path)
        store = SqliteStore(path)
        snapshot = await store.open(_ignore)
        got = {name: await store.read(name) for name in "abc"}
        tails = {name: await store.read(name, tail=25) for name in "abc"}
        await store.close()
        sent = {
            name: [StoredMessage(s, float(s), f"{name}:{s}".encode()) for s in range(1, 61)]
            for name in "abc"
        }
        assert (0, True) == (left_over[1], left_over[0] > 0)
        assert (sent, {n: m[35:] for n, m in sent.items()}) == (got, tails)
        assert ({n: info_of(m, 60) for n, m in sent.items()}, (0, 0)) == (
            snapshot.containers,
            _index_state(path),
        )

    async def test_ids_reused_after_a_prune_never_mix_containers(self, tmp_path: Path) -> None:
        """When a prune removes the newest chunks, their ids are reused, and reads of every
        container still find only its own messages, also after a reopen."""
        path = tmp_path / "history.db"
        retention = Retention(max_messages=1000, max_age=10.0)
        store = SqliteStore(path, retention)
        await store.open(_ignore)
        b = append(store, "b", range(1, 6), time=lambda _: 1000.0)
        await store.read("b")
        for start in (1, 4, 7):  # three old chunks, the newest ids
            append(store, "a", range(start, start + 3))
            await store.read("a")
        with closing(sqlite3.connect(path)) as conn:
            (newest,) = conn.execute("SELECT max(id) FROM chunks").fetchone()
        removed = await store.prune(1005.0)
        c = append(store, "c", range(1, 4), time=lambda _: 1000.0)
        got_c = await store.read("c")
        a = append(store, "a", range(10, 12), time=lambda _: 1000.0)
        got = (await store.read("a"), got_c, await store.read("b"))
        await store.close()
        store = SqliteStore(path, retention)
        await store.open(_ignore)
        again = (await store.read("a"), await store.read("c"), await store.read("b"))
        await store.close()
        with closing(sqlite3.connect(path)) as conn:
            (reused,) = conn.execute("SELECT max(id) FROM chunks").fetchone()
        assert (9, (a, c, b), (a, c, b)) == (removed, got, again)
        assert (True, (0, 0)) == (reused < newest, _index_state(path))


# The version-1 schema (one row per message), as tailhub 0.1 wrote it.
_V1_SCHEMA = """
CREATE TABLE containers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE producers (
    cid INTEGER NOT NULL,
    producer TEXT NOT NULL,
    pub_id INTEGER NOT NULL,
    PRIMARY KEY (cid, producer)
) WITHOUT ROWID;
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    cid INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    payload BLOB NOT NULL,
    producer TEXT,
    pub_id INTEGER
);
CREATE INDEX messages_by_seq ON messages (cid, seq, time);
CREATE TABLE checkpoint (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    last_id INTEGER NOT NULL
);
INSERT INTO checkpoint (only, last_id) VALUES (1, 0);
PRAGMA user_version = 1;
"""


def _v1_database(path: Path) -> tuple[list[StoredMessage], list[StoredMessage]]:
    """A version-1 file as a crash leaves it: ``a`` pruned to 3.. and counted up to seq 100,
    the rest (``a`` 101..300 interleaved with ``b`` 1, 2, 4) not counted yet."""
    a = [StoredMessage(seq, 1000.0 + seq, f"a:{seq}".encode()) for seq in range(3, 301)]
    b = [StoredMessage(seq, 1000.0 + seq, f"b:{seq}".encode() * seq) for seq in (1, 2, 4)]
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(_V1_SCHEMA)
        conn.execute("INSERT INTO containers VALUES (1, 'a', 100, 3, 98, ?)", (_size(a[:98]),))
        conn.execute("INSERT INTO containers (id, name) VALUES (2, 'b')")
        conn.execute("INSERT INTO producers VALUES (1, 'p', 100)")

        def put(cid: int, m: StoredMessage, producer: str, pub_id: int | None) -> None:
            conn.execute(
                "INSERT INTO messages (cid, seq, time, payload, producer, pub_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (cid, m.seq, m.time, m.payload, producer, pub_id),
            )

        for m in a[:98]:
            put(1, m, "p", m.seq)
        conn.execute("UPDATE checkpoint SET last_id = 98")
        for m in a[98:]:
            put(1, m, "p", m.seq)
            if m.seq in (150, 200, 250):
                put(2, b[(m.seq - 150) // 50], "q", None if m.seq < 250 else 40)
    return a, b


def _size(messages: list[StoredMessage]) -> int:
    return sum(len(m.payload) for m in messages)


class TestUpgrade:
    """A version-1 file (one row per message) is converted at open, keeping its history."""

    async def test_version_1_history_is_read_and_continued(self, tmp_path: Path) -> None:
        """Every old message reads back, counters and producer ids are exact, seq continues."""
        path = tmp_path / "history.db"
        a, b = _v1_database(path)
        store = SqliteStore(path)
        snapshot = await store.open(_ignore)
        read = (
            await store.read("a"),
            await store.read("b"),
            await store.read("a", tail=3),
            await store.read("b", after=1),
        )
        a += append(store, "a", range(301, 303))
        await store.close()
        store = SqliteStore(path)
        reopened = await store.open(_ignore)
        again = (await store.read("a"), await store.read("b"))
        await store.close()
        with closing(sqlite3.connect(path)) as conn:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        assert (
            {"a": info_of(a[:298], 300), "b": info_of(b, 4)},
            {("a", "p"): 300, ("b", "q"): 40},
        ) == (snapshot.containers, snapshot.producers)
        assert (a[:298], b, a[295:298], b[1:]) == read
        assert ((a, b), {"a": info_of(a, 302), "b": info_of(b, 4)}) == (
            again,
            reopened.containers,
        )
        assert (4, False, True) == (version, "messages" in tables, "chunk_index" in tables)


# The version-2 schema (chunks with a per-commit index), as tailhub 0.2 wrote it.
_V2_SCHEMA = """
CREATE TABLE containers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE producers (
    cid INTEGER NOT NULL,
    producer TEXT NOT NULL,
    pub_id INTEGER NOT NULL,
    PRIMARY KEY (cid, producer)
) WITHOUT ROWID;
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    cid INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    max_time REAL NOT NULL,
    messages INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    seqs BLOB,
    times BLOB NOT NULL,
    lengths BLOB NOT NULL,
    producers TEXT,
    payloads BLOB NOT NULL
);
CREATE INDEX chunks_by_seq ON chunks (cid, last_seq);
CREATE TABLE checkpoint (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    last_id INTEGER NOT NULL
);
INSERT INTO checkpoint (only, last_id) VALUES (1, 0);
PRAGMA user_version = 2;
"""


def _v2_database(path: Path) -> tuple[list[StoredMessage], list[StoredMessage]]:
    """A version-2 file as a crash leaves it: ``a`` in two counted chunks (the first cut
    through by a prune at seq 4, the second with a gap), then chunks not counted yet (``b``
    1..3, ``a`` 23..25)."""
    a = [StoredMessage(s, 1000.0 + s, f"a:{s}".encode()) for s in [*range(1, 16), *range(18, 26)]]
    b = [StoredMessage(s, 1000.0 + s, f"b:{s}".encode() * s) for s in range(1, 4)]
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(_V2_SCHEMA)
        counted = a[3:20]
        conn.execute(
            "INSERT INTO containers VALUES (1, 'a', 22, 4, ?, ?)", (len(counted), _size(counted))
        )
        conn.execute("INSERT INTO containers (id, name) VALUES (2, 'b')")
        conn.execute("INSERT INTO producers VALUES (1, 'p', 20)")
        insert = "INSERT INTO chunks (cid, first_seq, last_seq, max_time, messages, bytes, " + (
            "seqs, times, lengths, producers, payloads) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        )
        conn.execute(insert, chunk_row(1, a[:10], '{"p":10}'))
        conn.execute(insert, chunk_row(1, a[10:20], '{"p":20}'))
        conn.execute("UPDATE checkpoint SET last_id = 2")
        conn.execute(insert, chunk_row(2, b, '{"q":3}'))
        conn.execute(insert, chunk_row(1, a[20:], '{"p":25}'))
    return a[3:], b


class TestUpgradeFromChunks:
    """A version-2 file (chunks with a per-commit index) gets its chunk index at open."""

    async def test_version_2_history_is_indexed_read_and_continued(self, tmp_path: Path) -> None:
        """Every kept message reads back through the new index, counters and producer ids are
        exact (a crash's leftovers included), the old index is gone, seq continues."""
        path = tmp_path / "history.db"
        a, b = _v2_database(path)
        store = SqliteStore(path)
        snapshot = await store.open(_ignore)
        read = (
            await store.read("a"),
            await store.read("a", tail=3),
            await store.read("a", after=12, limit=4),
            await store.read("b", since_time=1002.0),
        )
        later = append(store, "a", range(26, 28))
        await store.close()
        store = SqliteStore(path)
        reopened = await store.open(_ignore)
        again = await store.read("a")
        await store.close()
        with closing(sqlite3.connect(path)) as conn:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        assert (
            {"a": info_of(a, 25), "b": info_of(b, 3)},
            {("a", "p"): 25, ("b", "q"): 3},
        ) == (snapshot.containers, snapshot.producers)
        assert (a, a[-3:], a[9:13], b[1:]) == read
        assert (a + later, info_of(a + later, 27)) == (again, reopened.containers["a"])
        assert (4, False, (0, 0)) == (version, "chunks_by_seq" in names, _index_state(path))


# The version-3 schema (chunks found through chunk_index), as tailhub 0.3 wrote it.
_V3_SCHEMA = _V2_SCHEMA.replace(
    "CREATE INDEX chunks_by_seq ON chunks (cid, last_seq);", ""
).replace(
    "PRAGMA user_version = 2;",
    """CREATE TABLE chunk_index (
    cid INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (cid, last_seq, id)
) WITHOUT ROWID;
PRAGMA user_version = 3;""",
)


class TestUpgradeToSessions:
    """A version-3 file gets epochs, reservations and the session and record tables."""

    async def test_version_3_history_gets_epochs_and_continues(self, tmp_path: Path) -> None:
        """History and counters are kept, each container gets its own epoch (kept across a
        clean restart), seqs continue without a jump, nothing else is kept yet."""
        path = tmp_path / "history.db"
        a = [StoredMessage(s, 1000.0 + s, f"a:{s}".encode()) for s in range(1, 6)]
        b = [StoredMessage(s, 1000.0 + s, f"b:{s}".encode()) for s in range(1, 3)]
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.executescript(_V3_SCHEMA)
            conn.execute("INSERT INTO containers VALUES (1, 'a', 5, 1, 5, ?)", (_size(a),))
            conn.execute("INSERT INTO containers VALUES (2, 'b', 2, 1, 2, ?)", (_size(b),))
            insert = "INSERT INTO chunks (cid, first_seq, last_seq, max_time, messages, " + (
                "bytes, seqs, times, lengths, producers, payloads) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            )
            conn.execute(insert, chunk_row(1, a, None))
            conn.execute(insert, chunk_row(2, b, None))
            conn.execute("INSERT INTO chunk_index VALUES (1, 5, 1), (2, 2, 2)")
            conn.execute("UPDATE checkpoint SET last_id = 2")
        store = SqliteStore(path)
        snapshot = await store.open(_ignore)
        epochs = (store.epoch("a"), store.epoch("b"))
        read = await store.read("a")
        append(store, "a", range(6, 7))
        await store.close()
        store = SqliteStore(path)
        reopened = await store.open(_ignore)
        again = (store.epoch("a"), store.epoch("b"))
        await store.close()
        with closing(sqlite3.connect(path)) as conn:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        assert ({"a": info_of(a, 5), "b": info_of(b, 2)}, a) == (snapshot.containers, read)
        assert ({}, [], {}, {}, {"a": 0, "b": 0}) == (
            snapshot.skip_to,
            snapshot.sessions,
            snapshot.meta,
            snapshot.records,
            snapshot.reserved,
        )
        assert (4, 6, {}) == (version, reopened.containers["a"].last_seq, reopened.skip_to)
        assert epochs == again
        assert all(epochs)
        assert epochs[0] != epochs[1]
        assert {"sessions", "session_meta", "records", "claims"} <= names
