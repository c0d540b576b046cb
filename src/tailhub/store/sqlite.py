"""History in an embedded SQLite file: no server to run, and it survives restarts.

How it works, and why:

- **One writer thread owns the database.** The event loop never touches the disk:
  ``append_run`` updates in-memory counters (for ``info``) and adds the run to the loop
  turn's :class:`~tailhub.store.chunks.Batch` (a list per field: a few list operations). The
  turn's first append schedules one ``call_soon`` that puts the whole turn on a
  ``queue.SimpleQueue``. The thread joins the turns queued (a few list joins each), writes
  them in transactions of up to ``batch_max`` messages and :data:`BATCH_BYTES` of payloads,
  then hands ``(container_id, last seq)`` pairs to ``on_durable`` on the loop with
  ``call_soon_threadsafe``.
- **Per turn and per container, not per message.** The writer shares the loop's core and its
  Python holds the GIL against the loop. It used to take a tuple per message off the queue
  and regroup the messages by container in Python; now the Python work is per loop turn and
  per chunk: messages are grouped by container in C (a stable sort, then ``itemgetter``).
  In the store alone (uvloop, 200,000 messages of 170 bytes, the hub's GC settings, process
  CPU per message, median of 10 runs): 50 containers with 8 messages each per loop turn,
  2.39 µs before and 1.73 after (the loop's own share, 0.55 µs, did not change); 1,000 quiet
  containers (100 one-message chunks per commit, over a file of 200,000 messages), 22.8 and
  20.5 µs (a one-message chunk is also packed without arrays now).
- **One row per container and batch: a chunk.** The hub runs on one core, so every
  microsecond the writer spends per message comes out of the hub's throughput. One SQLite row
  per message, with its ``(cid, seq, time)`` index, cost about 4.7 µs of CPU per message
  (2.5 µs without the index). So a batch is stored as one ``chunks`` row per container: that
  container's consecutive messages of the batch (at most ``CHUNK_MAX``), about 1.6 µs per
  message in all, Python included (under load a 10 ms commit holds ~1000 messages of ~50
  containers: ~20 per chunk). A chunk holds its first and last seq, its newest receive time,
  its message and byte counts, the payloads end to end (``payloads``) with their lengths
  (``lengths``, uint32 array), the receive times (``times``, float64 array), the seqs only
  when they have gaps (``seqs``, int64 array; NULL means ``first_seq..last_seq``), and the
  last publisher id of each producer that gave one (``producers``, a JSON object). Arrays
  are in the machine's byte order. ``chunk_index`` (below) finds the chunks a read needs, and
  a read unpacks only those.
- **The index is written once per checkpoint, not once per commit.** Reads and prunes find a
  container's chunks by ``(cid, last_seq)``. Kept as an SQLite index on ``chunks``, that key
  was written with every chunk, and the newest entries of different containers lie on
  different pages: a commit rewrote one index page per container it touched. In SQLite alone
  (WAL, 2000 commits), 100 containers of 1 message per commit cost 13.3 µs per message with
  that index and 4.0 without; 50 containers of 15 messages, 2.02 and 1.26. So the key is a
  table of its own, ``chunk_index (cid, last_seq, id)``, filled at each checkpoint (below)
  from the chunks written since the last one by one ``INSERT … SELECT`` in key order, so that
  each of its pages is written at most once per checkpoint: 5.5 and 1.43 µs per message in
  the same measures with a checkpoint every 100 commits. In the store (1,000 containers, 100
  one-message chunks per commit over a file already holding 200,000 messages, writer and loop
  together) the median CPU per message went from 26.9 to 21.7 µs; over an empty file the
  difference is below the noise. The price: a chunk is not in the index until the next
  checkpoint, so a read of a container written to since then runs the checkpoint first
  (the writer keeps the set of such containers).
- **One statement per batch.** A batch is written as a single multi-row ``INSERT`` of its
  chunks (its own transaction). ``executemany`` would release and re-take the GIL for every
  row, and against a busy event loop each re-take can wait a whole switch interval (5 ms):
  writes would crawl exactly when the hub is loaded. One statement means one GIL hand-off per
  batch, and the Python work per message in the thread is a few C-level joins and array
  conversions. Its parameters are ints, floats, strings and bytearrays only, NULL given as
  0 (:data:`~tailhub.store.chunks.ABSENT`): the sqlite3 module looks for an adapter for every
  other value, None and bytes included, and that was half the cost of inserting
  one-message chunks. In the store alone (measured as above), 1,000 quiet containers: 19.2
  to 16.4 µs per message; 50 containers with 8 messages per turn: 1.69 to 1.47. Producer
  ids travel in the chunk, so deduplication state is durable with the messages themselves.
- **Read your writes by ordering.** Reads, prunes and checks travel through the same queue as
  appends (each first hands off the loop turn's appends, so the queue's order is the order
  of the calls) and run on the writer thread, which first commits everything queued before
  them. So a ``read`` started after an ``append_run`` always finds it, with no second copy of
  pending messages to merge. The price is that reads share the writer's time: callers page
  large ranges with ``limit`` and ``after``.
- **Open is cheap at any size.** Small ``containers`` (last seq, first seq, count, bytes) and
  ``producers`` tables hold the counters as of a checkpoint: the id of the last chunk they
  include. About once a second, before a prune, before a read that needs it and at close,
  the writer has SQLite sum the chunks written since the checkpoint (one ``GROUP BY`` over
  that id range, the producer ids through ``json_each``, no Python per row) into those
  tables, index them, and move the checkpoint, in one transaction. ``open`` does the same for
  a crash's leftovers (at most about a second of writes), so it is fast at any size, exact
  after a crash, and its index complete.
- **Retention.** ``prune`` runs on the writer thread, per container: every message but the
  newest ``max_messages`` goes, and so does the oldest run of messages received before
  ``now - max_age`` (messages arrive in time order, so that is every one of them), found by
  walking the container's chunks from its first kept seq (chunks whose newest message is too
  old are skipped in SQL). The container's ``first_seq`` is exact and every read starts
  there, so a chunk the cut goes through stays whole on disk while its older part is gone for
  readers and counters; chunks wholly below it are deleted, with their index rows (once the
  newest chunks are gone their ids are reused, and no index row may name another's chunk).
  A container left empty keeps its row (last seq) but loses its producer ids.
- **Durability.** WAL with ``synchronous=NORMAL``: a committed batch survives a crash or
  SIGKILL of the hub process (not necessarily a power loss of the machine). ``on_durable``
  only ever names committed messages.
- **Damage is found at start, and failing reads show.** ``open`` runs ``PRAGMA
  quick_check`` (bounded by ``check_timeout``) and refuses a damaged file with words saying
  what to do. A read that fails later makes ``check`` (readiness) fail until a read works.
- **Failures never kill the writer silently.** A failed write is rolled back, logged on
  ``tailhub.store`` and retried with back-off while appends keep queueing; ``check`` raises
  :class:`~tailhub.store.base.StoreError` until a write succeeds again. A batch the database
  refuses for good (a value SQLite or the chunk format cannot hold) is written message by
  message, each in a chunk of its own, and only the refused messages are dropped, each with an
  error log line.
- **Reservations and epochs.** Messages are shown to subscribers before they are committed,
  so a crash may lose messages someone saw. A write whose chunk leaves a container's
  ``reserved`` less than ``RESERVE // 2`` ahead raises it to ``RESERVE`` (or four chunks'
  worth) past the chunk's last seq, in the same transaction, and ``on_reserved`` reports the
  committed value: the caller shows only seqs at or below it. A clean close sets
  ``reserved`` to the last seq and marks the file clean (``checkpoint.clean``); ``open``
  marks it in use. After an unclean stop, ``open`` gives every container whose ``reserved``
  is above its last seq a new ``epoch`` (random, made with the container's first message)
  and names it in ``StoreSnapshot.skip_to``, so that its seqs continue above anything shown.
- **Sessions, metadata, records, claims.** The ``save_*`` methods queue a statement; the
  writer runs the statements queued with the next commit of messages, in its transaction
  (the one-statement commit is kept for the batches that have none). ``sync`` returns once
  they are committed.
- **Upgrades.** At ``open``, in one transaction, so that history is kept: a version-1 file
  (one row per message) is converted to chunks, a version-2 file (chunks with an SQLite
  index) gets ``chunk_index`` in place of that index, and files of versions 1 to 3 get the
  ``epoch`` and ``reserved`` columns, the clean mark and the tables of schema 4.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import queue
import sqlite3
import threading
import time as clock
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, TypeAlias

import structlog

from tailhub.store.base import (
    ContainerInfo,
    DurableCallback,
    Retention,
    SessionRow,
    StoredMessage,
    StoreError,
    StoreSnapshot,
    new_epoch,
)
from tailhub.store.chunks import (
    ABSENT,
    CHUNK_COLUMNS,
    CHUNK_MAX,
    Batch,
    ChunkRow,
    indexes_after,
    pack_batch,
    pack_message,
    pick,
    seqs_of,
    unpack,
    unpack_messages,
)

__all__ = ["SqliteStore"]


def _log() -> Any:
    """The store's logger, looked up per use (only rare events are logged, never per message)."""
    return structlog.get_logger("tailhub.store")


SCHEMA_VERSION: Final = 4
RESERVE: Final = 1000
"""How far ahead of the last committed seq a container's reservation is raised (at least)."""
_EVERYTHING: Final = (1 << 63) - 1  # a seq bound above every seq SQLite can hold
_RETRY_FIRST: Final = 0.05
_RETRY_MAX: Final = 5.0
_REFUSED: Final = (
    # The database will never take these values (a caller's bug, not a disk problem):
    # retrying would wedge the writer, so such a batch is written message by message instead.
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    OverflowError,
    TypeError,
)

_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS containers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        last_seq INTEGER NOT NULL DEFAULT 0,
        first_seq INTEGER NOT NULL DEFAULT 0,
        messages INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        epoch TEXT NOT NULL DEFAULT '',
        reserved INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS producers (
        cid INTEGER NOT NULL,
        producer TEXT NOT NULL,
        pub_id INTEGER NOT NULL,
        PRIMARY KEY (cid, producer)
    ) WITHOUT ROWID
    """,
    # Small columns first: a read that needs no payload never touches the overflow pages.
    """
    CREATE TABLE IF NOT EXISTS chunks (
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
    )
    """,
    # Where each container's chunks are, by last seq: written once per checkpoint, not per
    # commit (see the module doc). The id is part of the key only to keep every key unique.
    """
    CREATE TABLE IF NOT EXISTS chunk_index (
        cid INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        id INTEGER NOT NULL,
        PRIMARY KEY (cid, last_seq, id)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS checkpoint (
        only INTEGER PRIMARY KEY CHECK (only = 1),
        last_id INTEGER NOT NULL,
        clean INTEGER NOT NULL DEFAULT 1
    )
    """,
    "INSERT OR IGNORE INTO checkpoint (only, last_id) VALUES (1, 0)",
    # Each container's latest session, its metadata; shared records and claims (schema 4).
    """
    CREATE TABLE IF NOT EXISTS sessions (
        container TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        last_activity REAL NOT NULL,
        ended_at REAL,
        end_reason TEXT,
        exit_code INTEGER
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS session_meta (
        container TEXT NOT NULL,
        name TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (container, name)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS records (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        expires REAL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS claims (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        owner TEXT NOT NULL,
        expires REAL NOT NULL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID
    """,
)

# Version 3 and older files lack these columns (their new tables are created as above).
_MIGRATE_V3: Final = (
    "ALTER TABLE containers ADD COLUMN epoch TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE containers ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE checkpoint ADD COLUMN clean INTEGER NOT NULL DEFAULT 1",
)

_NEW_EPOCH: Final = "lower(hex(randomblob(8)))"

# What the save_* methods write: each statement with its parameters, in the next commit.
_SAVE_SESSION: Final = (
    "INSERT OR REPLACE INTO sessions (container, status, started_at, last_activity, "
    "ended_at, end_reason, exit_code) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_FORGET_SESSION: Final = "DELETE FROM sessions WHERE container = ?"
_FORGET_META: Final = "DELETE FROM session_meta WHERE container = ?"
_SAVE_META: Final = "INSERT OR REPLACE INTO session_meta (container, name, value) VALUES (?, ?, ?)"
_DELETE_META: Final = "DELETE FROM session_meta WHERE container = ? AND name = ?"
_SAVE_RECORD: Final = (
    "INSERT OR REPLACE INTO records (kind, key, value, expires) VALUES (?, ?, ?, ?)"
)
_DELETE_RECORD: Final = "DELETE FROM records WHERE kind = ? AND key = ?"
_SAVE_CLAIM: Final = "INSERT OR REPLACE INTO claims (kind, key, owner, expires) VALUES (?, ?, ?, ?)"
_DELETE_CLAIM: Final = "DELETE FROM claims WHERE kind = ? AND key = ?"

# Chunk rows carry ABSENT for NULL (see chunks.ABSENT); rows of ABSENT pad a statement to
# a cached size (cids start at 1).
_INSERT_CHUNKS: Final = (
    "INSERT INTO chunks (cid, first_seq, last_seq, max_time, messages, bytes, seqs, times, "
    "lengths, producers, payloads) SELECT column1, column2, column3, column4, column5, "
    f"column6, nullif(column7, {ABSENT}), column8, column9, nullif(column10, {ABSENT}), "
    f"column11 FROM (VALUES {{values}}) WHERE column1 != {ABSENT}"
)

# Adds to each container's counters the sums ``tail`` gives per container row id (cid):
# first and last seq, message count (n) and payload bytes (size).
_ADD_TO_CONTAINERS: Final = """
UPDATE containers SET
    last_seq = max(last_seq, tail.last),
    first_seq = CASE first_seq WHEN 0 THEN tail.first ELSE first_seq END,
    messages = messages + tail.n,
    bytes = bytes + tail.size
FROM ({tail}) AS tail
WHERE containers.id = tail.cid
"""

_RECOUNT_CONTAINERS: Final = _ADD_TO_CONTAINERS.format(
    tail="SELECT cid, min(first_seq) AS first, max(last_seq) AS last, sum(messages) AS n, "
    "sum(bytes) AS size FROM chunks WHERE id > :after AND id <= :upto GROUP BY cid"
)

# Per (container, producer), the id in the newest chunk naming it: SQLite takes the bare
# columns of a max() aggregate from the row holding the maximum.
_RECOUNT_PRODUCERS: Final = """
INSERT INTO producers (cid, producer, pub_id)
SELECT cid, producer, pub_id FROM (
    SELECT chunks.cid AS cid, entry.key AS producer, entry.value AS pub_id, max(chunks.id)
    FROM chunks, json_each(chunks.producers) AS entry
    WHERE chunks.id > :after AND chunks.id <= :upto AND chunks.producers IS NOT NULL
    GROUP BY chunks.cid, entry.key
) WHERE true
ON CONFLICT (cid, producer) DO UPDATE SET pub_id = excluded.pub_id
"""

# Sorted first, so that each page of the index is written once per checkpoint.
_INDEX_CHUNKS: Final = """
INSERT INTO chunk_index (cid, last_seq, id)
SELECT cid, last_seq, id FROM chunks WHERE id > :after AND id <= :upto
ORDER BY cid, last_seq, id
"""

# Version 1 kept one row per message; these bring its counters up to date before converting.
_V1_RECOUNT_CONTAINERS: Final = _ADD_TO_CONTAINERS.format(
    tail="SELECT cid, min(seq) AS first, max(seq) AS last, count(*) AS n, "
    "sum(length(payload)) AS size FROM messages WHERE id > :after GROUP BY cid"
)

_V1_RECOUNT_PRODUCERS: Final = """
INSERT INTO producers (cid, producer, pub_id)
SELECT cid, producer, pub_id FROM messages WHERE id IN (
    SELECT max(id) FROM messages
    WHERE id > :after AND pub_id IS NOT NULL
    GROUP BY cid, producer
)
ON CONFLICT (cid, producer) DO UPDATE SET pub_id = excluded.pub_id
"""

# The producer ids of containers retention has emptied: no kept message is left to repeat.
_PRUNE_PRODUCERS: Final = (
    "DELETE FROM producers WHERE cid IN (SELECT id FROM containers WHERE messages = 0)"
)

_CHECK_STEPS: Final = 10_000  # SQLite VM steps between looks at the start-up check's clock
_CHECKPOINT_EVERY: Final = 1.0  # seconds between checkpoints while messages arrive


# A container's chunks in seq order, found through ``chunk_index`` (its first table: CROSS JOIN
# keeps SQLite from choosing another order). Columns are named ``c.*`` and bounds ``i.*``.
_INDEXED: Final = "FROM chunk_index AS i CROSS JOIN chunks AS c ON c.id = i.id"


def _where(since_time: float | None) -> str:
    """The chunks that may hold messages with seq > ? (and time >= ?) of container ?."""
    return "i.cid = ? AND i.last_seq > ?" + ("" if since_time is None else " AND c.max_time >= ?")


def _params(cid: int, after: int, since_time: float | None) -> list[Any]:
    return [cid, after] if since_time is None else [cid, after, since_time]


# -- upgrading older files ----------------------------------------------------------------

_V1Row: TypeAlias = tuple[int, int, float, bytes, str | None, int | None]
"""A version-1 message row: container row id, seq, time, payload, producer, publisher id."""


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Turn a version-1 file's ``messages`` rows into chunks, inside the open transaction.

    The counters are first brought up to date from the rows after the old checkpoint (a
    crash's leftovers); then each container's messages, in seq order, become chunks of up to
    ``CHUNK_MAX``, the old table goes, and every chunk counts as checkpointed.
    """
    after = {"after": conn.execute("SELECT last_id FROM checkpoint").fetchone()[0]}
    conn.execute(_V1_RECOUNT_CONTAINERS, after)
    conn.execute(_V1_RECOUNT_PRODUCERS, after)
    row = "(" + ",".join(["?"] * CHUNK_COLUMNS) + ")"
    insert = _INSERT_CHUNKS.format(values=row)
    messages = conn.execute(
        "SELECT cid, seq, time, payload, producer, pub_id FROM messages ORDER BY cid, seq"
    )
    with closing(messages):
        for cid, rows in itertools.groupby(messages, itemgetter(0)):
            for piece in _pieces(rows, CHUNK_MAX):
                batch = Batch()
                for _cid, seq, time, payload, producer, pub_id in piece:
                    batch.add(cid, seq, time, payload, producer or "", pub_id)
                (chunk,) = pack_batch(batch, len(piece))
                conn.execute(insert, chunk)
    conn.execute("DROP TABLE messages")
    conn.execute("UPDATE checkpoint SET last_id = (SELECT coalesce(max(id), 0) FROM chunks)")


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Index a version-2 file's counted chunks and drop its per-commit index (open transaction).

    Chunks after the checkpoint (a crash's leftovers) are counted and indexed by the recount
    that follows, as in any open.
    """
    conn.execute(
        "INSERT INTO chunk_index (cid, last_seq, id) SELECT cid, last_seq, id FROM chunks "
        "WHERE id <= (SELECT last_id FROM checkpoint) ORDER BY cid, last_seq, id"
    )
    conn.execute("DROP INDEX IF EXISTS chunks_by_seq")


def _pieces(rows: Iterable[_V1Row], size: int) -> Iterator[list[_V1Row]]:
    """``rows`` in lists of ``size`` (the last one shorter)."""
    rest = iter(rows)
    while piece := list(itertools.islice(rest, size)):
        yield piece


# Operations that travel through the queue behind the appends queued before them.


@dataclass(slots=True)
class _NewContainer:
    cid: int
    name: str
    epoch: str


@dataclass(slots=True)
class _Save:
    """A statement of a ``save_*`` method, written with the next commit."""

    sql: str
    params: tuple[Any, ...]


@dataclass(slots=True)
class _Sync:
    future: asyncio.Future[None]


@dataclass(slots=True)
class _Read:
    future: asyncio.Future[list[StoredMessage]]
    cid: int
    after: int
    tail: int | None
    since_time: float | None
    limit: int | None


@dataclass(slots=True)
class _Prune:
    future: asyncio.Future[list[tuple[str, int, int, int]]]
    now: float


@dataclass(slots=True)
class _Check:
    future: asyncio.Future[None]


@dataclass(slots=True)
class _Close:
    future: asyncio.Future[None]


_Op: TypeAlias = _NewContainer | _Save | _Sync | _Read | _Prune | _Check | _Close


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Resolve ``future`` on its loop, unless its awaiter gave up (cancelled) meanwhile."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


BATCH_BYTES: Final = 4 << 20
"""Most payload bytes written in one transaction (one message at least, whatever its size).

A transaction's messages are packed into chunks and bound to the INSERT, two copies of them
while it runs, on top of the queue itself: with only ``batch_max`` (2,000 messages) to bound
it, 60 KB messages made transactions of 120 MB and the hub's peak RSS followed the disk's
speed.
"""

_UNBIND: Final = 1 << 18
"""Payload bytes in one INSERT past which its statement is bound again with nothing after use.

The sqlite3 module binds a blob with ``SQLITE_TRANSIENT``: SQLite keeps a copy of it in the
statement until the statement is bound again or finalized, and statements stay in the
connection's cache. Without this, each cached INSERT size held its last batch's payloads:
after 40 MiB of 60 KB messages the hub's RSS stayed 30-35 MiB above where it began (glibc's
``malloc_stats``: 40 MB more in use), and came back once statements were not cached.
"""


def _bucket(count: int, cap: int) -> int:
    """The statement size used for ``count`` rows: few distinct sizes keep them cached."""
    size = 1 << (count - 1).bit_length() if count <= 64 else (count + 63) & ~63
    return min(size, cap)


class _Writer:
    """The thread side: owns the connection; everything here runs on the writer thread."""

    def __init__(
        self,
        path: Path,
        retention: Retention,
        batch_max: int,
        linger: float,
        on_batch: Callable[[int, float], None] | None,
        jobs: queue.SimpleQueue[Batch | _Op],
        loop: asyncio.AbstractEventLoop,
        on_durable: DurableCallback,
        check_timeout: float = 0.0,
    ) -> None:
        self.path = path
        self.check_timeout = check_timeout
        self.retention = retention
        self.batch_max = batch_max
        self.linger = linger
        self.flushed_at = 0.0
        self.on_batch = on_batch
        self.jobs = jobs
        self.loop = loop
        self.on_durable = on_durable
        self.failure: str | None = None
        self.read_failure: str | None = None  # the last read failed; cleared by one that works
        self.conn: sqlite3.Connection  # set by open(), on this thread
        self.serving = False
        self.names: dict[int, str] = {}
        self.floor: dict[int, int] = {}  # per container row id: its first kept seq, 0 if none
        self.unindexed: set[int] = set()  # container row ids with chunks after the checkpoint
        self.pending = Batch()  # what is not written yet
        self.new_containers: list[tuple[int, str, str]] = []
        self.saves: list[_Save] = []  # save_* statements not written yet
        self.reserved: dict[int, int] = {}  # per container row id: its committed reservation
        self.floors: dict[int, int] = {}  # containers an unclean stop made skip: their floor
        self.on_reserved: DurableCallback | None = None
        self.epochs: dict[str, str] = {}  # at open, per container name
        self.retry_at = 0.0
        self.retry_delay = _RETRY_FIRST
        self.per_statement = batch_max  # most chunks in one INSERT statement
        self.sql: dict[int, str] = {}
        self.checkpoint_at = 0.0
        self.lock: int | None = None

    # -- opening -----------------------------------------------------------------------

    def open(self) -> tuple[StoreSnapshot, dict[str, int]]:
        """Create the directory and schema; return what is kept and each container's row id.

        Raises:
            StoreError: for every reason the file cannot be used, in words for an operator.
        """
        path = self.path
        try:
            # Owner only: an agent's logs may hold secrets of its own.
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the history directory {path.parent}: "
                f"{exc.strerror or exc}; choose a data directory this user can write to"
            ) from None
        self.lock = self._lock()
        try:
            conn = sqlite3.connect(path, isolation_level=None, cached_statements=256)
        except (sqlite3.Error, ValueError) as exc:
            self._unlock()
            raise StoreError(self._open_error(exc)) from None
        try:
            self._quick_check(conn)
            snapshot = self._prepare(conn)
        except StoreError:
            conn.close()
            self._unlock()
            raise
        except Exception as exc:
            conn.close()
            self._unlock()
            raise StoreError(self._open_error(exc)) from None
        self.conn = conn
        self.serving = True
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self.per_statement = max(1, min(self.batch_max, limit // CHUNK_COLUMNS))
        return snapshot, {name: cid for cid, name in self.names.items()}

    def _lock(self) -> int | None:
        """Hold ``<db>.lock`` exclusively: two hubs on one database would reuse each seq.

        The lock is an ``flock``, so it goes away with the process, SIGKILL included.
        """
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except (OSError, ValueError):
            return None  # the connect below says what is wrong with the place
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(
                f"the history database {self.path} is in use by another tailhub hub; stop "
                f"it, or give this hub a data directory of its own (--data-dir)"
            ) from None
        return fd

    def _unlock(self) -> None:
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None

    def _open_error(self, exc: Exception) -> str:
        text = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and (
            "not a database" in text or "malformed" in text or "corrupt" in text
        ):
            return (
                f"the history database {self.path} is corrupt or not a tailhub database "
                f"({text}); move it aside to start with empty history, or restore a backup"
            )
        if "unable to open" in text or "readonly" in text or "read-only" in text:
            return (
                f"cannot open the history database {self.path} for writing ({text}); "
                f"make sure it is a file in a directory this user can write to"
            )
        return (
            f"cannot use {self.path} as the history database ({text}); if another program "
            f"owns that file, give tailhub a data directory of its own"
        )

    def _quick_check(self, conn: sqlite3.Connection) -> None:
        """Refuse a damaged file before serving from it: ``PRAGMA quick_check``, bounded in time.

        A file whose pages are damaged opens and may even serve most reads, then fails the
        reads that reach a damaged page; it is refused here instead, with words saying what
        to do. The check reads the whole file; one that takes longer than ``check_timeout``
        seconds is stopped, logged (``store_check_incomplete``), and the file is used.
        ``check_timeout`` 0 skips it.

        Raises:
            StoreError: the check found damage.
        """
        if self.check_timeout <= 0:
            return
        deadline = clock.monotonic() + self.check_timeout
        conn.set_progress_handler(lambda: clock.monotonic() > deadline, _CHECK_STEPS)
        started = clock.monotonic()
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            # A row of the report may span lines: one line each, for a one-line refusal.
            found = [" ".join(str(row[0]).split()) for row in rows if row[0] != "ok"]
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                found = [str(exc)]
            else:
                _log().warning(
                    "store_check_incomplete",
                    path=str(self.path),
                    seconds=round(clock.monotonic() - started, 3),
                    hint="the start-up check of the history database was stopped after "
                    "TAILHUB_STARTUP_CHECK_TIMEOUT; the file is used unchecked",
                )
                return
        except sqlite3.DatabaseError as exc:
            found = [str(exc)]
        finally:
            conn.set_progress_handler(None, 0)
        if found:
            raise StoreError(
                f"the history database {self.path} is damaged (PRAGMA quick_check: "
                f"{found[0][:200]}{f' and {len(found) - 1} more' if len(found) > 1 else ''}); "
                "move it aside (with its -wal and -shm files) to start with empty history, "
                "restore a backup, or try `sqlite3 history.db .recover`"
            )

    def _prepare(self, conn: sqlite3.Connection) -> StoreSnapshot:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the history database {self.path} was written by a newer tailhub "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade tailhub"
            )
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            _log().warning("store_no_wal", path=str(self.path), journal_mode=mode)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=2000")
        conn.execute("PRAGMA journal_size_limit=67108864")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            if version == 1:
                _migrate_v1(conn)
            if version in (1, 2):
                _migrate_v2(conn)
            if version in (1, 2, 3):
                for statement in _MIGRATE_V3:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.recount(conn)
            self.restart(conn)
            conn.execute("COMMIT")
        except BaseException:
            self.rollback(conn)
            raise
        if version in (1, 2, 3):
            _log().info("store_upgraded", path=str(self.path), schema=SCHEMA_VERSION)
        return self.load(conn)

    def restart(self, conn: sqlite3.Connection) -> None:
        """Give containers their epoch, and after an unclean stop a new one where delivered
        messages may be lost; mark the file in use (inside the open transaction).

        A container whose reservation is above its last stored seq may have had messages up
        to the reservation shown and then lost (see the module doc): if the last run did not
        close cleanly, its epoch changes. Either way its seqs continue above the reservation.
        """
        (clean,) = conn.execute("SELECT clean FROM checkpoint").fetchone()
        conn.execute(f"UPDATE containers SET epoch = {_NEW_EPOCH} WHERE epoch = ''")
        if not clean:
            changed = conn.execute(
                f"UPDATE containers SET epoch = {_NEW_EPOCH} WHERE reserved > last_seq"
            ).rowcount
            if changed:
                _log().warning("store_unclean_stop", path=str(self.path), new_epochs=changed)
        conn.execute("UPDATE checkpoint SET clean = 0")

    def load(self, conn: sqlite3.Connection) -> StoreSnapshot:
        """What is kept, for ``open``; also the writer's own per-container state."""
        snapshot = StoreSnapshot(reserved={})
        reserved = snapshot.reserved
        assert reserved is not None
        for cid, name, last, first, count, size, epoch, ahead in conn.execute(
            "SELECT id, name, last_seq, first_seq, messages, bytes, epoch, reserved FROM containers"
        ):
            self.names[cid] = name
            self.floor[cid] = first
            self.epochs[name] = epoch
            self.reserved[cid] = ahead
            reserved[name] = ahead
            if ahead > last:
                self.floors[cid] = ahead
                snapshot.skip_to[name] = ahead
            snapshot.containers[name] = ContainerInfo(last, first, count, size)
        for cid, producer, pub_id in conn.execute("SELECT cid, producer, pub_id FROM producers"):
            snapshot.producers[(self.names[cid], producer)] = pub_id
        snapshot.sessions = [
            SessionRow(*row)
            for row in conn.execute(
                "SELECT container, status, started_at, last_activity, ended_at, end_reason, "
                "exit_code FROM sessions"
            )
        ]
        snapshot.meta = {
            (container, name): bytes(value)
            for container, name, value in conn.execute(
                "SELECT container, name, value FROM session_meta"
            )
        }
        snapshot.records = {
            (kind, key): (bytes(value), expires)
            for kind, key, value, expires in conn.execute(
                "SELECT kind, key, value, expires FROM records"
            )
        }
        snapshot.claims = {
            (kind, key): (owner, expires)
            for kind, key, owner, expires in conn.execute(
                "SELECT kind, key, owner, expires FROM claims"
            )
        }
        return snapshot

    # -- the thread's loop -------------------------------------------------------------

    def serve(self) -> None:
        """Drain the queue until a close: gather appends, run operations in queue order."""
        jobs = self.jobs
        while self.serving:
            try:
                if self.retry_at and (self.pending.seqs or self.new_containers or self.saves):
                    wait = max(0.0, self.retry_at - clock.monotonic())
                    try:
                        job = jobs.get(timeout=wait)
                    except queue.Empty:
                        self.flush()
                        continue
                else:
                    job = jobs.get()
                self.take(job)
                # Commit at most every ``linger`` seconds while messages keep coming: each
                # commit rewrites the pages of every container it touches, so a few large
                # commits cost far less than many small ones. After a quiet spell the
                # deadline has passed and the first message is committed at once.
                # The wait is one sleep, not a wait per message: every time this thread
                # gives up the GIL, a busy event loop can keep it for a switch interval.
                lingered = False
                while self.serving and len(self.pending.seqs) < self.batch_max:
                    try:
                        job = jobs.get_nowait()
                    except queue.Empty:
                        wait = self.flushed_at + self.linger - clock.monotonic()
                        if lingered or wait <= 0 or not self.pending.seqs:
                            break
                        clock.sleep(wait)
                        lingered = True
                        continue
                    self.take(job)
                if self.serving:
                    self.flush()
                    self.flushed_at = clock.monotonic()
            except Exception as exc:  # a bug, not a disk error: log it, keep serving
                self.failure = f"the history writer failed unexpectedly: {exc!r}"
                _log().exception("store_writer_error", path=str(self.path))

    def take(self, job: Batch | _Op) -> None:
        """Add one loop turn's appends to ``pending`` (a few list joins), or run an operation."""
        if not isinstance(job, Batch):
            self.handle(job)
        elif self.pending.seqs:
            self.pending.extend(job)
        else:
            self.pending = job

    def handle(self, op: _Op) -> None:
        """Run one operation; every append queued before it is in ``pending`` by now."""
        if isinstance(op, _NewContainer):
            self.names[op.cid] = op.name
            self.new_containers.append((op.cid, op.name, op.epoch))
        elif isinstance(op, _Save):
            self.saves.append(op)
        elif isinstance(op, _Sync):
            self.reply(op.future, self.sync)
        elif isinstance(op, _Read):
            self.reply(op.future, self.read, op)
        elif isinstance(op, _Prune):
            self.reply(op.future, self.prune, op.now)
        elif isinstance(op, _Check):
            self.reply(op.future, self.check)
        else:
            self.reply(op.future, self.close)

    def reply(self, future: asyncio.Future[Any], work: Callable[..., Any], *args: Any) -> None:
        """Run ``work`` here and hand its result or StoreError to ``future`` on the loop."""
        result: Any = None
        error: BaseException | None = None
        try:
            result = work(*args)
        except StoreError as exc:
            error = exc
        except sqlite3.Error as exc:
            _log().error("store_query_failed", path=str(self.path), error=str(exc))
            error = StoreError(f"the history database {self.path} failed: {exc}")
        except Exception as exc:  # a bug: the awaiting caller must still get an answer
            _log().exception("store_operation_error", path=str(self.path))
            error = StoreError(f"the history store {self.path} failed unexpectedly: {exc!r}")
        self.call_loop(_settle, future, result, error)

    def call_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """Schedule ``callback(*args)`` on the event loop (the only way back to it)."""
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            _log().debug("store_loop_closed", path=str(self.path))

    # -- writing -----------------------------------------------------------------------

    def flush(self, *, force: bool = False) -> bool:
        """Commit what is pending, a :meth:`transaction_size` at a time, reporting
        each transaction durable. False while writes keep failing."""
        if not self.pending.seqs and not self.new_containers and not self.saves:
            return True
        if self.retry_at and not force and clock.monotonic() < self.retry_at:
            return False
        conn = self.conn
        while True:
            stop = self.transaction_size()
            started = clock.perf_counter()
            try:
                written, raised = self.write(conn, stop)
            except sqlite3.Error as exc:
                self.rollback(conn)
                self.failed(exc)
                return False
            self.written(stop, written, raised, clock.perf_counter() - started)
            if not self.pending.seqs:
                break
        if clock.monotonic() >= self.checkpoint_at:
            self.checkpoint(conn)
        return True

    def transaction_size(self) -> int:
        """How many pending messages the next transaction writes: at most ``batch_max`` and
        :data:`BATCH_BYTES` of payloads, and at least one."""
        payloads = self.pending.payloads
        stop = min(len(payloads), self.batch_max)
        if stop > 1:
            ends = list(itertools.accumulate(map(len, itertools.islice(payloads, stop))))
            if ends[-1] > BATCH_BYTES:
                stop = max(1, bisect_right(ends, BATCH_BYTES))
        return stop

    def written(
        self,
        stop: int,
        chunks: list[ChunkRow],
        raised: list[tuple[int, int]],
        seconds: float,
    ) -> None:
        """The first ``stop`` pending messages are committed (``chunks``: what of them was
        stored) with the reservations ``raised`` and the saves: forget them, report them."""
        if stop == len(self.pending.seqs):
            self.pending = Batch()
        else:
            self.pending.drop(stop)
        last = {chunk[0]: chunk[2] for chunk in chunks}  # a container's later chunks win
        self.unindexed.update(last)
        names = self.names
        durable = [(names[cid], seq) for cid, seq in last.items()]
        count = sum(chunk[4] for chunk in chunks)
        self.new_containers.clear()
        self.saves.clear()
        if raised:
            self.reserved.update((cid, seq) for seq, cid in raised)
            if self.on_reserved is not None:
                self.call_loop(self.on_reserved, [(names[cid], seq) for seq, cid in raised])
        if self.failure is not None:
            _log().info("store_recovered", path=str(self.path))
        self.failure = None
        self.retry_at = 0.0
        self.retry_delay = _RETRY_FIRST
        if self.on_batch is not None and count:
            try:
                self.on_batch(count, seconds)
            except Exception:
                _log().exception("store_on_batch_failed")
        if durable:
            self.call_loop(self.on_durable, durable)

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """Write the sums and index rows since the last checkpoint, in a transaction of its own.

        A failure here loses nothing (the messages are committed; the next checkpoint, or the
        next open, counts and indexes them), so it is logged and retried, and shows in
        ``check``. Reads that need the index do not come here: see :meth:`index`.
        """
        try:
            self.index(conn)
        except sqlite3.Error as exc:
            self.failure = f"updating the counters in {self.path} fails: {exc}"
            _log().error("store_checkpoint_failed", path=str(self.path), error=str(exc))

    def index(self, conn: sqlite3.Connection) -> None:
        """Checkpoint now, so that ``chunk_index`` finds every chunk written so far.

        Raises:
            sqlite3.Error: the checkpoint failed (it is rolled back).
        """
        self.checkpoint_at = clock.monotonic() + _CHECKPOINT_EVERY
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.write_counts(conn)
            conn.execute("COMMIT")
        except BaseException:
            self.rollback(conn)
            raise
        self.unindexed.clear()

    def write_counts(self, conn: sqlite3.Connection) -> None:
        """Bring counters and index up to date and move the checkpoint (inside a transaction).

        The chunks written since the checkpoint are summed and indexed by SQLite itself, once
        a second or so, instead of by Python for every batch as it is written: that would
        hold the GIL against the event loop, and index rows written per commit would each
        dirty a page of their own. The caller clears ``unindexed`` once this commits.
        """
        self.recount(conn)

    @staticmethod
    def move_checkpoint(conn: sqlite3.Connection) -> None:
        """Mark every chunk now stored as counted (ids restart after a prune empties all)."""
        conn.execute("UPDATE checkpoint SET last_id = (SELECT coalesce(max(id), 0) FROM chunks)")

    @classmethod
    def recount(cls, conn: sqlite3.Connection) -> None:
        """Count and index the chunks after the checkpoint (also a crash's leftovers), inside
        a transaction."""
        (after,) = conn.execute("SELECT last_id FROM checkpoint").fetchone()
        (upto,) = conn.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()
        if upto > after:
            bounds = {"after": after, "upto": upto}
            conn.execute(_RECOUNT_CONTAINERS, bounds)
            conn.execute(_RECOUNT_PRODUCERS, bounds)
            conn.execute(_INDEX_CHUNKS, bounds)
        cls.move_checkpoint(conn)

    def write(
        self, conn: sqlite3.Connection, stop: int
    ) -> tuple[list[ChunkRow], list[tuple[int, int]]]:
        """Write the first ``stop`` pending messages, new containers, raised reservations and
        saves in one transaction; return the chunks stored and the reservations raised."""
        try:
            chunks = pack_batch(self.pending, stop) if stop else []
            raised = self.to_reserve(chunks)
            if (
                not raised
                and not self.new_containers
                and not self.saves
                and len(chunks) <= self.per_statement
            ):
                self.insert(conn, chunks)  # the common case: one statement, its own transaction
                return chunks, raised
            conn.execute("BEGIN IMMEDIATE")
            self.insert_containers(conn)
            for start in range(0, len(chunks), self.per_statement):
                self.insert(conn, chunks[start : start + self.per_statement])
            self.write_reserved(conn, raised)
            for save in self.saves:
                conn.execute(save.sql, save.params)
            conn.execute("COMMIT")
        except _REFUSED:
            self.rollback(conn)
            return self.write_one_by_one(conn, stop)
        return chunks, raised

    def to_reserve(self, chunks: list[ChunkRow]) -> list[tuple[int, int]]:
        """``(reserved, cid)`` for each container of ``chunks`` whose reservation runs low.

        A reservation is raised to ``RESERVE`` (or four chunks' worth, if more) past the
        chunk's last seq once less than half of ``RESERVE`` is left: a write per container
        every few hundred messages, not per commit.
        """
        reserved = self.reserved
        raised: dict[int, int] = {}
        for chunk in chunks:
            cid, last = chunk[0], chunk[2]
            if last + RESERVE // 2 > raised.get(cid, reserved.get(cid, 0)):
                raised[cid] = last + max(RESERVE, 4 * chunk[4])
        return [(seq, cid) for cid, seq in raised.items()]

    @staticmethod
    def write_reserved(conn: sqlite3.Connection, raised: list[tuple[int, int]]) -> None:
        if raised:
            conn.executemany("UPDATE containers SET reserved = ? WHERE id = ?", raised)

    def insert_containers(self, conn: sqlite3.Connection) -> None:
        """Give containers first seen since the last write their row (inside a transaction)."""
        if self.new_containers:
            conn.executemany(
                "INSERT OR IGNORE INTO containers (id, name, epoch) VALUES (?, ?, ?)",
                self.new_containers,
            )

    def insert(self, conn: sqlite3.Connection, chunks: list[ChunkRow]) -> None:
        """One multi-row INSERT of at most ``per_statement`` chunks, padded to a cached size."""
        if not chunks:
            return
        size = _bucket(len(chunks), self.per_statement)
        sql = self.sql.get(size)
        if sql is None:
            row = "(" + ",".join(["?"] * CHUNK_COLUMNS) + ")"
            sql = self.sql[size] = _INSERT_CHUNKS.format(values=",".join([row] * size))
        params: list[Any] = list(itertools.chain.from_iterable(chunks))
        if size > len(chunks):
            params.extend([ABSENT] * (CHUNK_COLUMNS * (size - len(chunks))))
        try:
            conn.execute(sql, params)
        finally:
            if sum(chunk[5] for chunk in chunks) >= _UNBIND:
                # The statement keeps a copy of every blob bound to it until it is bound
                # again, and cached, it would hold this batch's payloads (after a failed
                # write too) for as long as the hub runs. All-ABSENT rows insert nothing.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(sql, [ABSENT] * (CHUNK_COLUMNS * size))

    def write_one_by_one(
        self, conn: sqlite3.Connection, stop: int
    ) -> tuple[list[ChunkRow], list[tuple[int, int]]]:
        """Store what SQLite accepts of a refused batch, a chunk per message; log the rest."""
        pending = self.pending
        kept: list[ChunkRow] = []
        conn.execute("BEGIN IMMEDIATE")
        self.insert_containers(conn)
        for i in range(stop):
            try:
                chunk = pack_message(pending, i)
                self.insert(conn, [chunk])
            except _REFUSED as exc:
                _log().error(
                    "store_message_dropped",
                    path=str(self.path),
                    container_id=self.names.get(pending.cids[i], "?"),
                    seq=repr(pending.seqs[i]),
                    error=str(exc),
                )
                continue
            kept.append(chunk)
        raised = self.to_reserve(kept)
        self.write_reserved(conn, raised)
        for save in self.saves:
            try:
                conn.execute(save.sql, save.params)
            except _REFUSED as exc:
                _log().error("store_save_dropped", path=str(self.path), error=str(exc))
        conn.execute("COMMIT")
        return kept, raised

    def rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                _log().exception("store_rollback_failed", path=str(self.path))

    def failed(self, exc: sqlite3.Error) -> None:
        """Record a failed write: keep its rows, log, and retry later with back-off."""
        first = self.failure is None
        self.failure = f"writing to the history database {self.path} fails: {exc}"
        self.retry_at = clock.monotonic() + self.retry_delay
        _log().error(
            "store_write_failed",
            path=str(self.path),
            error=str(exc),
            queued=len(self.pending.seqs),
            retry_in=round(self.retry_delay, 3),
            first=first,
        )
        self.retry_delay = min(self.retry_delay * 2, _RETRY_MAX)

    def sync(self) -> None:
        """Commit everything queued before this operation (see :meth:`require_flushed`)."""
        self.require_flushed()

    def require_flushed(self) -> sqlite3.Connection:
        """Commit everything queued before the current operation, or raise StoreError."""
        if not self.flush():
            raise StoreError(self.failure or f"the history database {self.path} fails")
        return self.conn

    # -- reading, pruning, checking, closing -------------------------------------------

    def read(self, op: _Read) -> list[StoredMessage]:
        """Select per :meth:`HistoryStore.read`; ``tail`` becomes a lower bound on seq first.

        Reads start at the container's first kept seq: a prune may have cut through a chunk.
        Chunks are found through ``chunk_index``, so a container written to since the last
        checkpoint is indexed first (one checkpoint, however many reads follow before the
        next write).
        """
        conn = self.require_flushed()
        try:
            if op.cid in self.unindexed:
                self.index(conn)
            after = max(op.after, self.floor.get(op.cid, 0) - 1)
            if op.tail is not None:
                after = self.tail_start(conn, op.cid, after, op.since_time, op.tail)
            got = self.read_from(conn, op.cid, after, op.since_time, op.limit)
        except sqlite3.Error as exc:
            # Shown by check() (readiness) until a read works again.
            self.read_failure = f"reading from the history database {self.path} fails: {exc}"
            raise
        self.read_failure = None
        return got

    @staticmethod
    def tail_start(
        conn: sqlite3.Connection, cid: int, after: int, since_time: float | None, tail: int
    ) -> int:
        """The ``after`` that leaves only the last ``tail`` of the selected messages.

        Walks the chunks from the newest, unpacking seqs (and times) but no payload.
        """
        sql = (
            f"SELECT c.first_seq, c.last_seq, c.seqs, c.times {_INDEXED} "
            f"WHERE {_where(since_time)} ORDER BY i.last_seq DESC"
        )
        wanted = tail
        with closing(conn.execute(sql, _params(cid, after, since_time))) as cursor:
            for first, last, seqs_blob, times in cursor:
                seqs = seqs_of(first, last, seqs_blob)
                picked = pick(seqs, times, after, since_time)
                if len(picked) >= wanted:
                    return seqs[picked[len(picked) - wanted]] - 1
                wanted -= len(picked)
        return after

    @staticmethod
    def read_from(
        conn: sqlite3.Connection,
        cid: int,
        after: int,
        since_time: float | None,
        limit: int | None,
    ) -> list[StoredMessage]:
        """The selected messages above ``after``, oldest first, unpacking only the chunks used."""
        sql = (
            f"SELECT c.first_seq, c.last_seq, c.seqs, c.times, c.lengths, c.payloads {_INDEXED} "
            f"WHERE {_where(since_time)} ORDER BY i.last_seq"
        )
        got: list[StoredMessage] = []
        with closing(conn.execute(sql, _params(cid, after, since_time))) as cursor:
            for first, last, seqs_blob, times, lengths, payloads in cursor:
                seqs = seqs_of(first, last, seqs_blob)
                picked = pick(seqs, times, after, since_time)
                if limit is not None:
                    picked = picked[: limit - len(got)]
                got.extend(unpack_messages(seqs, times, lengths, payloads, picked))
                if limit is not None and len(got) >= limit:
                    break
        return got

    def prune(self, now: float) -> list[tuple[str, int, int, int]]:
        """Apply retention; per changed container: name, removed, bytes removed, first seq."""
        conn = self.require_flushed()
        cutoff = now - self.retention.max_age
        keep = self.retention.max_messages
        changed: dict[int, tuple[str, int, int, int]] = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.write_counts(conn)
            kept = conn.execute(
                "SELECT id, messages, first_seq FROM containers WHERE messages > 0"
            ).fetchall()
            for cid, count, first_kept in kept:
                bound = self.young_from(conn, cid, first_kept, cutoff)
                if count > keep:
                    bound = max(bound, self.nth_from(conn, cid, first_kept, count - keep))
                if bound <= first_kept:
                    continue
                removed, size, first_seq = self.cut(conn, cid, first_kept, bound)
                if not removed:
                    continue
                conn.execute(
                    "UPDATE containers SET messages = messages - ?, bytes = bytes - ?, "
                    "first_seq = ? WHERE id = ?",
                    (removed, size, first_seq, cid),
                )
                changed[cid] = (self.names[cid], removed, size, first_seq)
            # Dedupe state goes with the last message it could repeat (see base.py).
            conn.execute(_PRUNE_PRODUCERS)
            self.move_checkpoint(conn)  # the newest ids may be gone: they restart lower
            conn.execute("COMMIT")
        except BaseException:
            self.rollback(conn)
            raise
        self.unindexed.clear()
        for cid, (_name, _removed, _size, first_seq) in changed.items():
            self.floor[cid] = first_seq
        return list(changed.values())

    @staticmethod
    def young_from(conn: sqlite3.Connection, cid: int, first_kept: int, cutoff: float) -> int:
        """The lowest kept seq received at or after ``cutoff``; ``_EVERYTHING`` if none is.

        Chunks whose newest message is older are skipped by SQLite, so the cost is the chunks
        that go, read without their payloads.
        """
        sql = (
            f"SELECT c.first_seq, c.last_seq, c.seqs, c.times {_INDEXED} "
            "WHERE i.cid = ? AND i.last_seq >= ? AND c.max_time >= ? ORDER BY i.last_seq"
        )
        with closing(conn.execute(sql, (cid, first_kept, cutoff))) as cursor:
            for first, last, seqs_blob, times in cursor:
                seqs = seqs_of(first, last, seqs_blob)
                at = unpack("d", times)
                for i in indexes_after(seqs, first_kept - 1):
                    if at[i] >= cutoff:
                        return seqs[i]
        return _EVERYTHING

    @staticmethod
    def nth_from(conn: sqlite3.Connection, cid: int, first_kept: int, skip: int) -> int:
        """The seq ``skip`` messages after the first kept one; ``_EVERYTHING`` past the end."""
        sql = (
            f"SELECT c.first_seq, c.last_seq, c.seqs {_INDEXED} "
            "WHERE i.cid = ? AND i.last_seq >= ? ORDER BY i.last_seq"
        )
        with closing(conn.execute(sql, (cid, first_kept))) as cursor:
            for first, last, seqs_blob in cursor:
                seqs = seqs_of(first, last, seqs_blob)
                kept = indexes_after(seqs, first_kept - 1)
                if skip < len(kept):
                    return seqs[kept[skip]]
                skip -= len(kept)
        return _EVERYTHING

    @staticmethod
    def cut(
        conn: sqlite3.Connection, cid: int, first_kept: int, bound: int
    ) -> tuple[int, int, int]:
        """Remove the kept messages below ``bound``: how many, their bytes, the new first seq.

        Chunks wholly below ``bound`` are deleted; one it cuts through stays, and the new
        first seq (0 when nothing is left) hides its older part from reads from now on.
        """
        removed = size = first_seq = 0
        sql = (
            f"SELECT c.first_seq, c.last_seq, c.seqs, c.lengths, c.messages, c.bytes {_INDEXED} "
            "WHERE i.cid = ? AND i.last_seq >= ? ORDER BY i.last_seq"
        )
        with closing(conn.execute(sql, (cid, first_kept))) as cursor:
            for first, last, seqs_blob, lengths, count, nbytes in cursor:
                seqs = seqs_of(first, last, seqs_blob)
                low, high = bisect_left(seqs, first_kept), bisect_left(seqs, bound)
                if low == 0 and high == count:
                    removed, size = removed + count, size + nbytes
                else:
                    removed += high - low
                    size += sum(unpack("I", lengths)[low:high])
                if high < count:
                    first_seq = seqs[high]
                    break
        below = (cid, bound)
        conn.execute(
            "DELETE FROM chunks WHERE id IN "
            "(SELECT id FROM chunk_index WHERE cid = ? AND last_seq < ?)",
            below,
        )
        # With them their index rows: ids are reused once the newest chunks are gone, and no
        # index row may then point at another container's chunk.
        conn.execute("DELETE FROM chunk_index WHERE cid = ? AND last_seq < ?", below)
        return removed, size, first_seq

    def check(self) -> None:
        """Raise the last write failure, or the last read's if no read has worked since, else
        ask the database a trivial question."""
        if self.failure is not None:
            raise StoreError(self.failure)
        if self.read_failure is not None:
            raise StoreError(self.read_failure)
        self.conn.execute("SELECT count(*) FROM containers").fetchone()

    def finish(self, conn: sqlite3.Connection) -> None:
        """Mark a clean stop: reservations come down to the last seq (or the floor an unclean
        stop set, where nothing was stored above it), so the next open continues without a
        jump and keeps every epoch. A failure only costs that jump and new epochs."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE containers SET reserved = last_seq WHERE reserved > last_seq")
            conn.executemany(
                "UPDATE containers SET reserved = ? WHERE id = ? AND last_seq < ?",
                [(floor, cid, floor) for cid, floor in self.floors.items()],
            )
            conn.execute("UPDATE checkpoint SET clean = 1")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.rollback(conn)
            _log().error("store_clean_stop_failed", path=str(self.path), error=str(exc))

    def close(self) -> None:
        """Write what is queued, checkpoint, close the connection; serving stops either way."""
        try:
            flushed = self.flush(force=True)
            lost = len(self.pending.seqs)
            if flushed:
                self.checkpoint(self.conn)
                self.finish(self.conn)
        finally:
            self.serving = False
            self.conn.close()
            self._unlock()
        if not flushed:
            raise StoreError(
                f"{lost} queued messages could not be written to {self.path} before closing: "
                f"{self.failure}"
            )


class _Slot:
    """The loop's view of one container: its row id, counters for ``info``, and epoch."""

    __slots__ = ("cid", "epoch", "info")

    def __init__(self, cid: int, info: ContainerInfo, epoch: str) -> None:
        self.cid = cid
        self.info = info
        self.epoch = epoch


class SqliteStore:
    """A :class:`~tailhub.store.base.HistoryStore` in one SQLite file (see the module doc).

    Args:
        path: the database file; its directory is created by ``open``.
        retention: what ``prune`` keeps (default :class:`~tailhub.store.base.Retention`).
        batch_max: most messages written in one transaction.
        linger: while messages keep arriving, commit at most this often (seconds): fewer,
            larger commits cost far less per message; acks wait at most this much longer.
        on_batch: called on the writer thread after each committed batch with the number of
            messages and the seconds the write took (for metrics); it must be quick.
        check_timeout: seconds ``open`` may spend checking the file for damage
            (``PRAGMA quick_check``); 0 skips the check.
    """

    def __init__(
        self,
        path: Path,
        retention: Retention | None = None,
        *,
        batch_max: int = 2000,
        linger: float = 0.01,
        on_batch: Callable[[int, float], None] | None = None,
        check_timeout: float = 0.0,
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        if linger < 0:
            raise ValueError("linger must not be negative")
        self._linger = linger
        self.path = Path(path)
        self._retention = retention or Retention()
        self._batch_max = batch_max
        self._on_batch = on_batch
        self._check_timeout = check_timeout
        self._jobs: queue.SimpleQueue[Batch | _Op] = queue.SimpleQueue()
        self._slots: dict[str, _Slot] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # set by open()
        self._turn = Batch()  # this loop turn's appends
        self._next_cid = 1
        self._thread: threading.Thread | None = None
        self._open = False
        self._closing: asyncio.Future[None] | None = None  # the first close()
        self._prune_lock = asyncio.Lock()
        self._pruning: dict[str, int] | None = None

    async def open(
        self, on_durable: DurableCallback, on_reserved: DurableCallback | None = None
    ) -> StoreSnapshot:
        """Open (creating if needed) and return what is kept; start the writer thread.

        Raises:
            StoreError: the directory cannot be created, the file cannot be opened for
                writing, or it is not a usable tailhub database.
        """
        if self._open or self._closing is not None:
            raise StoreError(f"the history store {self.path} was already opened")
        loop = asyncio.get_running_loop()
        jobs: queue.SimpleQueue[Batch | _Op] = queue.SimpleQueue()  # one per attempt
        writer = _Writer(
            self.path,
            self._retention,
            self._batch_max,
            self._linger,
            self._on_batch,
            jobs,
            loop,
            on_durable,
            self._check_timeout,
        )
        writer.on_reserved = on_reserved
        opened: asyncio.Future[tuple[StoreSnapshot, dict[str, int]]] = loop.create_future()

        def run() -> None:
            try:
                kept = writer.open()
            except Exception as exc:  # StoreError, or a bug: open() must get an answer
                error = exc if isinstance(exc, StoreError) else StoreError(str(exc))
                writer.call_loop(_settle, opened, None, error)
                return
            writer.call_loop(_settle, opened, kept, None)
            writer.serve()

        thread = threading.Thread(target=run, name="tailhub-store-writer", daemon=True)
        thread.start()
        try:
            snapshot, ids = await opened
        except BaseException:
            # Failed (the thread has ended) or cancelled (it may be serving): stop it.
            jobs.put(_Close(loop.create_future()))
            raise
        self._jobs, self._thread, self._loop, self._open = jobs, thread, loop, True
        for name, cid in ids.items():
            info = ContainerInfo(*_fields(snapshot.containers[name]))
            self._slots[name] = _Slot(cid, info, writer.epochs[name])
            self._next_cid = max(self._next_cid, cid + 1)
        _log().info("store_opened", path=str(self.path), containers=len(snapshot.containers))
        return snapshot

    def append_run(
        self,
        container_id: str,
        first_seq: int,
        time: float,
        payloads: Sequence[bytes],
        ids: Sequence[tuple[str, int | None]] | None = None,
    ) -> None:
        """Collect a run for the writer; no I/O, a few list operations whatever its length.
        Ignored once closing began.

        Messages are collected in the loop turn's batch, which goes to the writer thread once
        the turn ends (see the module doc).
        """
        if not self._open or not payloads:
            return
        slot = self._slots.get(container_id)
        if slot is None:
            slot = _Slot(self._next_cid, ContainerInfo(), new_epoch())
            self._slots[container_id] = slot
            self._next_cid += 1
            self._jobs.put(_NewContainer(slot.cid, container_id, slot.epoch))
        info = slot.info
        if info.messages == 0:
            info.first_seq = first_seq
        info.last_seq = first_seq + len(payloads) - 1
        info.messages += len(payloads)
        info.bytes += sum(map(len, payloads))
        if self._pruning is not None and container_id not in self._pruning:
            self._pruning[container_id] = first_seq
        turn = self._turn
        if not turn.seqs:
            self._start_turn()
        turn.add_run(slot.cid, first_seq, time, payloads, ids)

    def _start_turn(self) -> None:
        """At the first append of a loop turn: hand the turn's appends off when it ends."""
        if self._loop is not None:
            try:
                self._loop.call_soon(self._hand_off)
            except RuntimeError:  # the loop is closed: append still must not fail its caller
                _log().debug("store_loop_closed", path=str(self.path))

    def _hand_off(self) -> None:
        """Queue this loop turn's appends for the writer, in one piece.

        Runs once per loop turn that appended, and before every operation is queued, so the
        queue's order is the order of the calls.
        """
        if self._turn.seqs:
            self._jobs.put(self._turn)
            self._turn = Batch()

    def info(self, container_id: str) -> ContainerInfo | None:
        """A copy of the counters of ``container_id``, queued appends included, or None."""
        slot = self._slots.get(container_id)
        return None if slot is None else ContainerInfo(*_fields(slot.info))

    def epoch(self, container_id: str) -> str:
        """The container's epoch: made with its first message, changed by an unclean stop."""
        slot = self._slots.get(container_id)
        return "" if slot is None else slot.epoch

    def _save(self, sql: str, *params: Any) -> None:
        """Queue one statement for the next commit (nothing once closing began)."""
        if self._open:
            self._jobs.put(_Save(sql, params))

    def save_session(self, row: SessionRow) -> None:
        """Keep ``row`` as its container's session, with the next commit."""
        self._save(_SAVE_SESSION, *row)

    def forget_sessions(self, container_ids: Sequence[str]) -> None:
        """Forget these containers' sessions and metadata, with the next commit."""
        for container_id in container_ids:
            self._save(_FORGET_SESSION, container_id)
            self._save(_FORGET_META, container_id)

    def save_meta(self, container_id: str, name: str, value: bytes | None) -> None:
        if value is None:
            self._save(_DELETE_META, container_id, name)
        else:
            self._save(_SAVE_META, container_id, name, value)

    def save_record(self, kind: str, key: str, value: bytes | None, expires: float | None) -> None:
        if value is None:
            self._save(_DELETE_RECORD, kind, key)
        else:
            self._save(_SAVE_RECORD, kind, key, value, expires)

    def save_claim(self, kind: str, key: str, owner: str | None, expires: float) -> None:
        if owner is None:
            self._save(_DELETE_CLAIM, kind, key)
        else:
            self._save(_SAVE_CLAIM, kind, key, owner, expires)

    async def sync(self) -> None:
        """Return once every append and save made before this call is committed.

        Raises:
            StoreError: the store is closed, or writes fail.
        """
        self._require_open()
        future: asyncio.Future[None] = self._future()
        self._hand_off()
        self._jobs.put(_Sync(future))
        await future

    async def read(
        self,
        container_id: str,
        *,
        after: int = 0,
        tail: int | None = None,
        since_time: float | None = None,
        limit: int | None = None,
    ) -> list[StoredMessage]:
        """Kept messages in ``seq`` order, every append queued before this call included.

        Runs on the writer thread after the appends queued before it (see the module doc).

        Raises:
            StoreError: the store is closed or the database failed.
        """
        self._require_open()
        slot = self._slots.get(container_id)
        if slot is None or tail == 0 or limit == 0:
            return []
        future: asyncio.Future[list[StoredMessage]] = self._future()
        self._hand_off()
        self._jobs.put(_Read(future, slot.cid, after, tail, since_time, limit))
        return await future

    async def prune(self, now: float) -> int:
        """Apply retention as of ``now`` (Unix seconds); return how many messages went.

        Raises:
            StoreError: the store is closed or the database failed.
        """
        async with self._prune_lock:
            self._require_open()
            future: asyncio.Future[list[tuple[str, int, int, int]]] = self._future()
            self._pruning = {}
            try:
                self._hand_off()
                self._jobs.put(_Prune(future, now))
                changed = await future
                return self._apply_pruned(changed, self._pruning)
            finally:
                self._pruning = None

    def _apply_pruned(
        self, changed: list[tuple[str, int, int, int]], appended: dict[str, int]
    ) -> int:
        """Bring the loop's counters in line with a prune, keeping appends made meanwhile."""
        total = 0
        for name, removed, size, first_seq in changed:
            total += removed
            info = self._slots[name].info
            info.messages -= removed
            info.bytes -= size
            if first_seq:
                info.first_seq = first_seq
            elif info.messages > 0:  # emptied on disk; what is left was appended meanwhile
                info.first_seq = appended.get(name, info.last_seq - info.messages + 1)
            else:
                info.first_seq = 0
        return total

    async def check(self) -> None:
        """Return when the database answers a query; raise StoreError when it does not.

        Raises:
            StoreError: closed, the writer's last write failed, or the query failed.
        """
        self._require_open()
        future: asyncio.Future[None] = self._future()
        self._hand_off()
        self._jobs.put(_Check(future))
        await future

    async def close(self) -> None:
        """Write everything queued, stop the writer thread and close the file. Idempotent.

        Raises:
            StoreError: queued messages could not be written (to the first caller only).
        """
        if self._closing is not None:
            await asyncio.wait([self._closing])
            return
        self._closing = asyncio.ensure_future(self._shut_down())
        await self._closing

    async def _shut_down(self) -> None:
        if not self._open:
            return
        self._open = False
        if self._thread is None or not self._thread.is_alive():
            return
        closed: asyncio.Future[None] = self._future()
        self._hand_off()
        self._jobs.put(_Close(closed))
        try:
            await closed
        finally:
            if self._thread is not None:
                self._thread.join(timeout=10)
        _log().info("store_closed", path=str(self.path))

    def _require_open(self) -> None:
        if not self._open:
            raise StoreError(f"the history store {self.path} is not open")
        if self._thread is None or not self._thread.is_alive():
            raise StoreError(f"the history writer for {self.path} has stopped")

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()


def _fields(info: ContainerInfo) -> tuple[int, int, int, int]:
    return (info.last_seq, info.first_seq, info.messages, info.bytes)
