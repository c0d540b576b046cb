"""The publisher's spool: messages the hub has not acknowledged yet, in ``id`` order.

It lives in memory and, when given a path, is also journaled to an append-only file so that a
publisher that is restarted (a container restarted with the same volume) resends what was
never acknowledged, under the same ``producer``, and the hub's dedup by ``(containerID,
producer, id)`` keeps that exactly-once.

The file is a sequence of lines, each ``<tag> <value>\\n``:

- ``P <producer>``: first line, the producer name this spool publishes as;
- ``M <id> <frame>``: a message (the JSON frame sent to the hub; JSON has no raw newlines);
- ``A <id>``: the hub acknowledged every message up to ``id``;
- ``R <id>``: the message ``id`` was taken out (refused by the hub, or re-sent as a new id);
- ``N <id>``: ids below this one are used (written when the file is compacted).

A torn last line (the process died mid-write) is ignored and cut off when the file is opened.
When the file has grown well beyond what is still unacknowledged it is rewritten (to a
temporary file, then renamed over the old one).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, Final

from tailhub.client._errors import ConfigurationError

__all__ = ["Spool"]

_COMPACT_MIN: Final = 4 << 20


def _new_producer() -> str:
    """A random producer name, unique per publisher (or per spool file)."""
    return "p-" + secrets.token_hex(8)


class Spool:
    """Unacknowledged frames by ``id``; optionally journaled to ``path``.

    Ids are assigned by :meth:`allocate`, increasing by one; they continue across restarts of
    a file spool (never reused, even when everything was acknowledged). One process at a time
    may open a spool file (an exclusive ``flock``).

    Args:
        path: the journal file, created if missing; None keeps everything in memory only.
        producer: the producer name for a new spool; a file's own name wins over it.

    Raises:
        ConfigurationError: the file cannot be opened or locked, or is not a spool file.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, producer: str | None = None):
        self._entries: OrderedDict[int, bytes] = OrderedDict()
        self._bytes = 0
        self._next_id = 1
        self.acked = 0
        """Highest id the hub acknowledged (every id up to it is stored)."""
        self.producer = producer or _new_producer()
        self.path = Path(path) if path is not None else None
        self._file: BinaryIO | None = None
        if self.path is not None:
            self._open(self.path)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Total size of the unacknowledged frames."""
        return self._bytes

    @property
    def next_id(self) -> int:
        """The id the next message will get."""
        return self._next_id

    @property
    def first_id(self) -> int | None:
        """The oldest unacknowledged id, or None when everything is acknowledged."""
        return next(iter(self._entries), None)

    def allocate(self) -> int:
        """Reserve the next id (the caller then :meth:`add` s the frame carrying it)."""
        id = self._next_id
        self._next_id += 1
        return id

    def add(self, id: int, frame: bytes) -> None:
        """Keep ``frame`` (which carries ``id``) until it is acknowledged."""
        self._entries[id] = frame
        self._bytes += len(frame)
        self._write(b"M %d %s\n" % (id, frame))

    def get(self, id: int) -> bytes | None:
        """The frame with ``id``, or None when it was acknowledged or taken out."""
        return self._entries.get(id)

    def ack(self, id: int) -> int:
        """Drop every frame up to ``id``; returns how many were dropped."""
        if id <= self.acked:
            return 0
        self.acked = id
        self._next_id = max(self._next_id, id + 1)
        dropped = 0
        while self._entries:
            first = next(iter(self._entries))
            if first > id:
                break
            _, frame = self._entries.popitem(last=False)
            self._bytes -= len(frame)
            dropped += 1
        self._write(b"A %d\n" % id)
        self._maybe_compact()
        return dropped

    def remove(self, id: int) -> bytes | None:
        """Take out the frame ``id`` (refused by the hub); returns it, or None."""
        frame = self._entries.pop(id, None)
        if frame is not None:
            self._bytes -= len(frame)
            self._write(b"R %d\n" % id)
        return frame

    def close(self) -> None:
        """Close the journal file (the in-memory entries stay readable)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, line: bytes) -> None:
        if self._file is not None:
            self._file.write(line)
            self._file.flush()

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            file = path.open("a+b")
        except OSError as exc:
            raise ConfigurationError(f"cannot open the spool file {path}: {exc}") from None
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.close()
            raise ConfigurationError(
                f"the spool file {path} is in use by another process"
            ) from None
        try:
            file.seek(0)
            content = file.read()
            good = self._load(content, path)
            if good < len(content):
                file.truncate(good)
            file.seek(0, os.SEEK_END)
            if good == 0:
                file.write(b"P %s\n" % self.producer.encode())
                file.flush()
        except (OSError, ConfigurationError):
            file.close()
            raise
        self._file = file

    def _load(self, content: bytes, path: Path) -> int:
        """Replay the journal; returns the length of its intact part."""
        if not content:
            return 0
        if not content.startswith(b"P "):
            raise ConfigurationError(f"{path} is not a tailhub spool file")
        entries: dict[int, bytes] = {}
        highest = 0
        good = 0
        for line in content.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            tag, _, rest = line[:-1].partition(b" ")
            with contextlib.suppress(ValueError):
                if tag == b"P":
                    self.producer = rest.decode()
                elif tag == b"M":
                    id_text, _, frame = rest.partition(b" ")
                    id = int(id_text)
                    entries[id] = frame
                    highest = max(highest, id)
                elif tag == b"A":
                    self.acked = max(self.acked, int(rest))
                    highest = max(highest, self.acked)
                elif tag == b"N":
                    highest = max(highest, int(rest) - 1)
                elif tag == b"R":
                    id = int(rest)
                    entries.pop(id, None)
                    highest = max(highest, id)
            good += len(line)
        for id in sorted(entries):
            if id > self.acked:
                self._entries[id] = entries[id]
                self._bytes += len(entries[id])
        self._next_id = highest + 1
        return good

    def _maybe_compact(self) -> None:
        if self._file is None or self.path is None:
            return
        size = self._file.tell()
        if size < _COMPACT_MIN or size < 2 * self._bytes + _COMPACT_MIN:
            return
        temp = self.path.with_name(self.path.name + ".tmp")
        with temp.open("wb") as out:
            out.write(b"P %s\n" % self.producer.encode())
            out.write(b"A %d\n" % self.acked)
            out.write(b"N %d\n" % self._next_id)
            for id, frame in self._entries.items():
                out.write(b"M %d %s\n" % (id, frame))
            out.flush()
            os.fsync(out.fileno())
        # The lock moves with the new file: lock it before it replaces the old one.
        new = temp.open("a+b")
        fcntl.flock(new.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(temp, self.path)
        self._file.close()
        self._file = new
