"""``tailhub backup``: a consistent copy of a hub's SQLite history while the hub runs.

The copy is made with SQLite's online backup API (``sqlite3.Connection.backup``) from a
read-only connection of its own, in one step: it reads one snapshot of the database (the
main file and what its write-ahead log holds), so it is consistent even while the hub keeps
committing, and it never blocks the hub's writer (WAL readers do not). The hub needs no
signal and no pause.

What is guaranteed:

- The copy is one self-contained file (journal mode DELETE, no ``-wal`` beside it) holding
  every message the hub had committed when the copy began, and passes ``PRAGMA quick_check``.
- ``target`` appears only when complete: the copy is written beside it and renamed.
- An existing ``target`` is never overwritten.

Restore by stopping the hub, putting the copy in place as ``<data dir>/history.db`` (with no
``history.db-wal`` or ``history.db-shm`` left beside it), and starting the hub.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tailhub.paths import HISTORY_FILE

__all__ = ["HISTORY_FILE", "BackupError", "BackupResult", "backup_history"]

_BUSY_MS: Final = 10_000


class BackupError(Exception):
    """The backup cannot be made; the message says why, in words a person can act on."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What a backup holds.

    Attributes:
        path: the copy.
        size: its size in bytes.
        schema: the history schema version (``PRAGMA user_version``).
        containers: containers with history.
        messages: messages kept, over all containers.
    """

    path: Path
    size: int
    schema: int
    containers: int
    messages: int


def backup_history(source: Path, target: Path) -> BackupResult:
    """Copy the history database ``source`` to ``target`` while a hub may be writing to it.

    Args:
        source: the hub's ``history.db``.
        target: the file to create; its directory must exist.

    Raises:
        BackupError: no database at ``source``, ``target`` exists or cannot be written, or
            SQLite refused (a corrupt file, a full disk).
    """
    if not source.is_file():
        raise BackupError(
            f"no history database at {source} (give the hub's data directory with "
            "--data-dir or TAILHUB_DATA_DIR)"
        )
    if target.exists():
        raise BackupError(f"{target} already exists; give a new file name")
    if not target.parent.is_dir():
        raise BackupError(f"the directory {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial")
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            src.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                (check,) = dst.execute("PRAGMA quick_check").fetchone()
                if check != "ok":
                    raise BackupError(f"the copy of {source} fails SQLite's check: {check}")
                (schema,) = dst.execute("PRAGMA user_version").fetchone()
                containers, messages = _counts(dst)
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source} to {target}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupResult(target, target.stat().st_size, schema, containers, messages)


def _counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """Containers with messages, and messages kept, read from the stored messages themselves
    (schema 2 and later keep them in ``chunks``, schema 1 a row each in ``messages``)."""
    for query in (
        "SELECT count(DISTINCT cid), coalesce(sum(messages), 0) FROM chunks",
        "SELECT count(DISTINCT cid), count(*) FROM messages",
    ):
        try:
            containers, messages = conn.execute(query).fetchone()
        except sqlite3.OperationalError:
            continue
        return int(containers), int(messages)
    return 0, 0
