"""History in an embedded SQLite file: no server to run, and it survives restarts.

How it works, and why:

- **One writer thread owns the database.** The event loop never touches the disk: ``append``
  updates in-memory counters (for ``info``) and puts one tuple on a ``queue.SimpleQueue``.
  The thread drains what is queued (up to ``batch_max`` messages), writes it in one
  transaction, then hands ``(container_id, last seq)`` pairs to ``on_durable`` on the loop
  with ``call_soon_threadsafe``.
- **One statement per batch.** A batch is written as a single multi-row ``INSERT`` (its own
  transaction). ``executemany`` would release and re-take the GIL for every row, and against
  a busy event loop each re-take can wait a whole switch interval (5 ms): writes would crawl
  exactly when the hub is loaded. One statement means one GIL hand-off per batch, and the
  Python work per message in the thread is a few list operations. Each row carries its
  producer and publisher id, so deduplication state is durable with the message itself.
- **Read your writes by ordering.** Reads, prunes and checks travel through the same queue as
  appends and run on the writer thread, which first commits everything queued before them.
  So a ``read`` started after an ``append`` always finds it, with no second copy of pending
  messages to merge. The price is that reads share the writer's time: callers page large
  ranges with ``limit`` and ``after``.
- **Open is cheap at any size.** Small ``containers`` (last seq, first seq, count, bytes) and
  ``producers`` tables hold the counters as of a checkpoint: the id of the last message they
  include. About once a second, before a prune and at close, the writer has SQLite sum the
  rows written since the checkpoint (one ``GROUP BY`` over that id range, no Python per
  row) into those tables and moves the checkpoint, in one transaction. ``open`` does the same
  for a crash's leftovers (at most about a second of writes), so it is fast at any size and
  exact after a crash.
- **Retention.** ``prune`` runs on the writer thread, per container: every message but the
  newest ``max_messages`` goes, and so does the oldest run of messages received before
  ``now - max_age`` (messages arrive in time order, so that is every one of them), found by
  walking the ``(cid, seq, time)`` index. A container left empty keeps its row (last seq).
- **Durability.** WAL with ``synchronous=NORMAL``: a committed batch survives a crash or
  SIGKILL of the hub process (not necessarily a power loss of the machine). ``on_durable``
  only ever names committed messages.
- **Failures never kill the writer silently.** A failed write is rolled back, logged on
  ``tailhub.store`` and retried with back-off while appends keep queueing; ``check`` raises
  :class:`~tailhub.store.base.StoreError` until a write succeeds again. A batch the database
  refuses for good (a value SQLite cannot bind) is written row by row and only the refused
  messages are dropped, each with an error log line.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import queue
import sqlite3
import threading
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

import structlog

from tailhub.store.base import (
    ContainerInfo,
    DurableCallback,
    Retention,
    StoredMessage,
    StoreError,
    StoreSnapshot,
)

__all__ = ["SqliteStore"]


def _log() -> Any:
    """The store's logger, looked up per use (only rare events are logged, never per message)."""
    return structlog.get_logger("tailhub.store")


SCHEMA_VERSION: Final = 1
_COLUMNS: Final = 6  # cid, seq, time, payload, producer, pub_id: one queued append
_RETRY_FIRST: Final = 0.05
_RETRY_MAX: Final = 5.0
_REFUSED: Final = (
    # The database will never take these values (a caller's bug, not a disk problem):
    # retrying would wedge the writer, so such a batch is written row by row instead.
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    OverflowError,
    TypeError,
)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS containers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS producers (
    cid INTEGER NOT NULL,
    producer TEXT NOT NULL,
    pub_id INTEGER NOT NULL,
    PRIMARY KEY (cid, producer)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    cid INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    payload BLOB NOT NULL,
    producer TEXT,
    pub_id INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_seq ON messages (cid, seq, time);
CREATE TABLE IF NOT EXISTS checkpoint (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    last_id INTEGER NOT NULL
);
INSERT OR IGNORE INTO checkpoint (only, last_id) VALUES (1, 0);
"""

_RECOUNT_CONTAINERS: Final = """
UPDATE containers SET
    last_seq = max(last_seq, tail.last),
    first_seq = CASE first_seq WHEN 0 THEN tail.first ELSE first_seq END,
    messages = messages + tail.n,
    bytes = bytes + tail.size
FROM (
    SELECT cid, min(seq) AS first, max(seq) AS last, count(*) AS n,
        sum(length(payload)) AS size
    FROM messages WHERE id > :after AND id <= :upto GROUP BY cid
) AS tail
WHERE containers.id = tail.cid
"""

_RECOUNT_PRODUCERS: Final = """
INSERT INTO producers (cid, producer, pub_id)
SELECT cid, producer, pub_id FROM messages WHERE id IN (
    SELECT max(id) FROM messages
    WHERE id > :after AND id <= :upto AND pub_id IS NOT NULL
    GROUP BY cid, producer
)
ON CONFLICT (cid, producer) DO UPDATE SET pub_id = excluded.pub_id
"""

_CHECKPOINT_EVERY: Final = 1.0  # seconds between checkpoints while messages arrive

Row: TypeAlias = tuple[int, int, float, bytes, str, int | None]
"""One queued append: container row id, seq, time, payload, producer, publisher id."""


# Operations that travel through the queue behind the appends queued before them.


@dataclass(slots=True)
class _NewContainer:
    cid: int
    name: str


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


_Op: TypeAlias = _NewContainer | _Read | _Prune | _Check | _Close


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Resolve ``future`` on its loop, unless its awaiter gave up (cancelled) meanwhile."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


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
        jobs: queue.SimpleQueue[Row | _Op],
        loop: asyncio.AbstractEventLoop,
        on_durable: DurableCallback,
    ) -> None:
        self.path = path
        self.retention = retention
        self.batch_max = batch_max
        self.linger = linger
        self.flushed_at = 0.0
        self.on_batch = on_batch
        self.jobs = jobs
        self.loop = loop
        self.on_durable = on_durable
        self.failure: str | None = None
        self.conn: sqlite3.Connection  # set by open(), on this thread
        self.serving = False
        self.names: dict[int, str] = {}
        self.pending: list[Row] = []
        self.new_containers: list[tuple[int, str]] = []
        self.retry_at = 0.0
        self.retry_delay = _RETRY_FIRST
        self.chunk = batch_max
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
        self.chunk = max(1, min(self.batch_max, limit // _COLUMNS))
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
        conn.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        conn.execute("BEGIN IMMEDIATE")
        self.recount(conn)
        conn.execute("COMMIT")
        snapshot = StoreSnapshot()
        for cid, name, last, first, count, size in conn.execute(
            "SELECT id, name, last_seq, first_seq, messages, bytes FROM containers"
        ):
            self.names[cid] = name
            snapshot.containers[name] = ContainerInfo(last, first, count, size)
        for cid, producer, pub_id in conn.execute("SELECT cid, producer, pub_id FROM producers"):
            snapshot.producers[(self.names[cid], producer)] = pub_id
        return snapshot

    # -- the thread's loop -------------------------------------------------------------

    def serve(self) -> None:
        """Drain the queue until a close: batch appends, run operations in queue order."""
        jobs = self.jobs
        pending = self.pending
        take = pending.append
        while self.serving:
            try:
                if self.retry_at and (pending or self.new_containers):
                    wait = max(0.0, self.retry_at - clock.monotonic())
                    try:
                        job: Row | _Op = jobs.get(timeout=wait)
                    except queue.Empty:
                        self.flush()
                        continue
                else:
                    job = jobs.get()
                if isinstance(job, tuple):
                    take(job)
                else:
                    self.handle(job)
                # Commit at most every ``linger`` seconds while messages keep coming: each
                # commit rewrites the pages of every container it touches, so a few large
                # commits cost far less than many small ones. After a quiet spell the
                # deadline has passed and the first message is committed at once.
                # The wait is one sleep, not a wait per message: every time this thread
                # gives up the GIL, a busy event loop can keep it for a switch interval.
                lingered = False
                while self.serving and len(pending) < self.batch_max:
                    try:
                        job = jobs.get_nowait()
                    except queue.Empty:
                        wait = self.flushed_at + self.linger - clock.monotonic()
                        if lingered or wait <= 0 or not pending:
                            break
                        clock.sleep(wait)
                        lingered = True
                        continue
                    if isinstance(job, tuple):
                        take(job)
                    else:
                        self.handle(job)
                if self.serving:
                    self.flush()
                    self.flushed_at = clock.monotonic()
            except Exception as exc:  # a bug, not a disk error: log it, keep serving
                self.failure = f"the history writer failed unexpectedly: {exc!r}"
                _log().exception("store_writer_error", path=str(self.path))

    def handle(self, op: _Op) -> None:
        """Run one operation; every append queued before it is in ``pending`` by now."""
        if isinstance(op, _NewContainer):
            self.names[op.cid] = op.name
            self.new_containers.append((op.cid, op.name))
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
        """Commit what is pending; report it durable. False while writes keep failing."""
        rows = self.pending
        if not rows and not self.new_containers:
            return True
        if self.retry_at and not force and clock.monotonic() < self.retry_at:
            return False
        conn = self.conn
        started = clock.perf_counter()
        try:
            written = self.write(conn, rows)
        except sqlite3.Error as exc:
            self.rollback(conn)
            self.failed(exc)
            return False
        seconds = clock.perf_counter() - started
        last = {row[0]: row[1] for row in written}
        names = self.names
        durable = [(names[cid], seq) for cid, seq in last.items()]
        count = len(written)
        rows.clear()  # ``written`` may be this very list
        self.new_containers.clear()
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
        if clock.monotonic() >= self.checkpoint_at:
            self.checkpoint(conn)
        return True

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """Write the sums since the last checkpoint, in a transaction of its own.

        A failure here loses nothing (the messages are committed; the next checkpoint, or the
        next open, counts them), so it is logged and retried, and shows in ``check``.
        """
        self.checkpoint_at = clock.monotonic() + _CHECKPOINT_EVERY
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.write_counts(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.rollback(conn)
            self.failure = f"updating the counters in {self.path} fails: {exc}"
            _log().error("store_checkpoint_failed", path=str(self.path), error=str(exc))

    def write_counts(self, conn: sqlite3.Connection) -> None:
        """Bring the counters up to date and move the checkpoint (inside a transaction).

        The rows written since the checkpoint are summed by SQLite itself, once a second or
        so, instead of by Python for every row as it is written: per row, that would hold the
        GIL against the event loop.
        """
        self.recount(conn)

    @staticmethod
    def move_checkpoint(conn: sqlite3.Connection) -> None:
        """Mark every message now stored as counted (ids restart after a prune empties all)."""
        conn.execute("UPDATE checkpoint SET last_id = (SELECT coalesce(max(id), 0) FROM messages)")

    @classmethod
    def recount(cls, conn: sqlite3.Connection) -> None:
        """Count the messages after the checkpoint (a crash's leftovers), inside a transaction."""
        (after,) = conn.execute("SELECT last_id FROM checkpoint").fetchone()
        (upto,) = conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
        if upto > after:
            bounds = {"after": after, "upto": upto}
            conn.execute(_RECOUNT_CONTAINERS, bounds)
            conn.execute(_RECOUNT_PRODUCERS, bounds)
        cls.move_checkpoint(conn)

    def write(self, conn: sqlite3.Connection, rows: list[Row]) -> list[Row]:
        """Write ``rows`` (and new containers) in one transaction; return what was stored."""
        try:
            if not self.new_containers and len(rows) <= self.chunk:
                self.insert(conn, rows)  # the common case: one statement, its own transaction
                return rows
            conn.execute("BEGIN IMMEDIATE")
            self.insert_containers(conn)
            for start in range(0, len(rows), self.chunk):
                self.insert(conn, rows[start : start + self.chunk])
            conn.execute("COMMIT")
        except _REFUSED:
            self.rollback(conn)
            return self.write_one_by_one(conn, rows)
        return rows

    def insert_containers(self, conn: sqlite3.Connection) -> None:
        """Give containers first seen since the last write their row (inside a transaction)."""
        if self.new_containers:
            conn.executemany(
                "INSERT OR IGNORE INTO containers (id, name) VALUES (?, ?)", self.new_containers
            )

    def insert(self, conn: sqlite3.Connection, rows: list[Row]) -> None:
        """One multi-row INSERT of at most ``chunk`` rows, padded to a cached statement size."""
        size = _bucket(len(rows), self.chunk)
        sql = self.sql.get(size)
        if sql is None:
            values = ",".join(["(?,?,?,?,?,?)"] * size)
            sql = self.sql[size] = (
                "INSERT INTO messages (cid, seq, time, payload, producer, pub_id) "
                f"SELECT * FROM (VALUES {values}) WHERE column1 IS NOT NULL"
            )
        params: list[Any] = list(itertools.chain.from_iterable(rows))
        if size > len(rows):
            params.extend([None] * (_COLUMNS * (size - len(rows))))
        conn.execute(sql, params)

    def write_one_by_one(self, conn: sqlite3.Connection, rows: list[Row]) -> list[Row]:
        """Store what SQLite accepts of a refused batch; log and drop the rest."""
        kept: list[Row] = []
        conn.execute("BEGIN IMMEDIATE")
        self.insert_containers(conn)
        for row in rows:
            try:
                self.insert(conn, [row])
            except _REFUSED as exc:
                _log().error(
                    "store_message_dropped",
                    path=str(self.path),
                    container_id=self.names.get(row[0], "?"),
                    seq=repr(row[1]),
                    error=str(exc),
                )
                continue
            kept.append(row)
        conn.execute("COMMIT")
        return kept

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
            queued=len(self.pending),
            retry_in=round(self.retry_delay, 3),
            first=first,
        )
        self.retry_delay = min(self.retry_delay * 2, _RETRY_MAX)

    def require_flushed(self) -> sqlite3.Connection:
        """Commit everything queued before the current operation, or raise StoreError."""
        if not self.flush():
            raise StoreError(self.failure or f"the history database {self.path} fails")
        return self.conn

    # -- reading, pruning, checking, closing -------------------------------------------

    def read(self, op: _Read) -> list[StoredMessage]:
        """Select per :meth:`HistoryStore.read`; ``tail`` becomes a lower bound on seq first."""
        conn = self.require_flushed()
        where = "cid = ? AND seq > ?"
        params: list[Any] = [op.cid, op.after]
        if op.since_time is not None:
            where += " AND time >= ?"
            params.append(op.since_time)
        if op.tail is not None:
            start = conn.execute(
                f"SELECT seq FROM messages WHERE {where} ORDER BY seq DESC LIMIT 1 OFFSET ?",
                [*params, op.tail - 1],
            ).fetchone()
            if start is not None:
                params[1] = start[0] - 1
        params.append(-1 if op.limit is None else op.limit)
        cursor = conn.execute(
            f"SELECT seq, time, payload FROM messages WHERE {where} ORDER BY seq LIMIT ?", params
        )
        return [StoredMessage(seq, at, payload) for seq, at, payload in cursor]

    def prune(self, now: float) -> list[tuple[str, int, int, int]]:
        """Apply retention; per changed container: name, removed, bytes removed, first seq."""
        conn = self.require_flushed()
        cutoff = now - self.retention.max_age
        keep = self.retention.max_messages
        changed: list[tuple[str, int, int, int]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.write_counts(conn)
            kept = conn.execute(
                "SELECT id, messages, first_seq FROM containers WHERE messages > 0"
            ).fetchall()
            for cid, count, first_kept in kept:
                bound = self.prune_bound(conn, cid, count, cutoff, keep)
                if bound <= first_kept:
                    continue
                removed, size = conn.execute(
                    "SELECT count(*), coalesce(sum(length(payload)), 0) FROM messages "
                    "WHERE cid = ? AND seq < ?",
                    (cid, bound),
                ).fetchone()
                if not removed:
                    continue
                conn.execute("DELETE FROM messages WHERE cid = ? AND seq < ?", (cid, bound))
                first = conn.execute(
                    "SELECT seq FROM messages WHERE cid = ? ORDER BY seq LIMIT 1", (cid,)
                ).fetchone()
                first_seq = 0 if first is None else int(first[0])
                conn.execute(
                    "UPDATE containers SET messages = messages - ?, bytes = bytes - ?, "
                    "first_seq = ? WHERE id = ?",
                    (removed, size, first_seq, cid),
                )
                changed.append((self.names[cid], removed, size, first_seq))
            self.move_checkpoint(conn)  # the newest ids may be gone: they restart lower
            conn.execute("COMMIT")
        except BaseException:
            self.rollback(conn)
            raise
        return changed

    @staticmethod
    def prune_bound(
        conn: sqlite3.Connection, cid: int, count: int, cutoff: float, keep: int
    ) -> int:
        """The lowest seq to keep for one container: every lower one goes.

        By age, what goes is the run of oldest messages received before ``cutoff``, found by
        walking the ``(cid, seq, time)`` index from the start, so the cost is the rows removed.
        """
        everything = 1 << 62
        young = conn.execute(
            "SELECT seq FROM messages WHERE cid = ? AND time >= ? ORDER BY seq LIMIT 1",
            (cid, cutoff),
        ).fetchone()
        bound = everything if young is None else int(young[0])
        if count > keep:
            nth = conn.execute(
                "SELECT seq FROM messages WHERE cid = ? ORDER BY seq LIMIT 1 OFFSET ?",
                (cid, count - keep),
            ).fetchone()
            bound = max(bound, everything if nth is None else int(nth[0]))
        return bound

    def check(self) -> None:
        """Raise the last write failure, else ask the database a trivial question."""
        if self.failure is not None:
            raise StoreError(self.failure)
        self.conn.execute("SELECT count(*) FROM containers").fetchone()

    def close(self) -> None:
        """Write what is queued, checkpoint, close the connection; serving stops either way."""
        try:
            flushed = self.flush(force=True)
            lost = len(self.pending)
            if flushed:
                self.checkpoint(self.conn)
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
    """The loop's view of one container: its row id and its counters for ``info``."""

    __slots__ = ("cid", "info")

    def __init__(self, cid: int, info: ContainerInfo) -> None:
        self.cid = cid
        self.info = info


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
    """

    def __init__(
        self,
        path: Path,
        retention: Retention | None = None,
        *,
        batch_max: int = 2000,
        linger: float = 0.01,
        on_batch: Callable[[int, float], None] | None = None,
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
        self._jobs: queue.SimpleQueue[Row | _Op] = queue.SimpleQueue()
        self._slots: dict[str, _Slot] = {}
        self._next_cid = 1
        self._thread: threading.Thread | None = None
        self._open = False
        self._closing: asyncio.Future[None] | None = None  # the first close()
        self._prune_lock = asyncio.Lock()
        self._pruning: dict[str, int] | None = None

    async def open(self, on_durable: DurableCallback) -> StoreSnapshot:
        """Open (creating if needed) and return what is kept; start the writer thread.

        Raises:
            StoreError: the directory cannot be created, the file cannot be opened for
                writing, or it is not a usable tailhub database.
        """
        if self._open or self._closing is not None:
            raise StoreError(f"the history store {self.path} was already opened")
        loop = asyncio.get_running_loop()
        jobs: queue.SimpleQueue[Row | _Op] = queue.SimpleQueue()  # one per attempt
        writer = _Writer(
            self.path,
            self._retention,
            self._batch_max,
            self._linger,
            self._on_batch,
            jobs,
            loop,
            on_durable,
        )
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
        self._jobs, self._thread, self._open = jobs, thread, True
        for name, cid in ids.items():
            self._slots[name] = _Slot(cid, ContainerInfo(*_fields(snapshot.containers[name])))
            self._next_cid = max(self._next_cid, cid + 1)
        _log().info("store_opened", path=str(self.path), containers=len(snapshot.containers))
        return snapshot

    def append(
        self,
        container_id: str,
        seq: int,
        time: float,
        payload: bytes,
        producer: str = "",
        pub_id: int | None = None,
    ) -> None:
        """Queue one message for the writer; O(1), no I/O. Ignored once closing began."""
        if not self._open:
            return
        slot = self._slots.get(container_id)
        if slot is None:
            slot = self._slots[container_id] = _Slot(self._next_cid, ContainerInfo())
            self._next_cid += 1
            self._jobs.put(_NewContainer(slot.cid, container_id))
        info = slot.info
        if info.messages == 0:
            info.first_seq = seq
        info.last_seq = seq
        info.messages += 1
        info.bytes += len(payload)
        if self._pruning is not None and container_id not in self._pruning:
            self._pruning[container_id] = seq
        self._jobs.put((slot.cid, seq, time, payload, producer, pub_id))

    def info(self, container_id: str) -> ContainerInfo | None:
        """A copy of the counters of ``container_id``, queued appends included, or None."""
        slot = self._slots.get(container_id)
        return None if slot is None else ContainerInfo(*_fields(slot.info))

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
