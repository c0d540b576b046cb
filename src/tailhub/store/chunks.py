"""The chunk format of the SQLite history: a container's consecutive messages in one row.

A chunk holds one container's messages of one write batch, in seq order (at most
:data:`CHUNK_MAX`): its first and last seq, its newest receive time, its message and byte
counts, the payloads end to end with their lengths (uint32 array), the receive times (float64
array), the seqs only when they have gaps (int64 array; None means ``first..last``), and the
last publisher id of each producer that gave one (a JSON object). Arrays are in the machine's
byte order. This module packs and unpacks chunks; :mod:`tailhub.store.sqlite` stores them.
No I/O.
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, TypeAlias

import msgspec

from tailhub.store.base import StoredMessage

__all__ = [
    "CHUNK_COLUMNS",
    "CHUNK_MAX",
    "ChunkRow",
    "Row",
    "indexes_after",
    "pack",
    "pack_batch",
    "pick",
    "seqs_of",
    "unpack",
    "unpack_messages",
]

CHUNK_COLUMNS: Final = 11
"""The parameters of one chunk row (see :func:`pack`)."""
CHUNK_MAX: Final = 128
"""Most messages in one chunk: a read of one unpacks at most this many."""

Row: TypeAlias = tuple[int, int, float, bytes, str, int | None]
"""One queued append: container row id, seq, time, payload, producer, publisher id."""

ChunkRow: TypeAlias = tuple[
    int, int, int, float, int, int, bytes | None, bytes, bytes, str | None, bytes
]
"""One chunk's parameters, in ``chunks`` column order from ``cid`` to ``payloads``."""


def pack_batch(rows: Iterable[Row]) -> list[ChunkRow]:
    """One batch's rows as chunks: per container, its messages in queue (= seq) order."""
    groups: dict[int, list[Row]] = {}
    for row in rows:
        group = groups.get(row[0])
        if group is None:
            groups[row[0]] = [row]
        else:
            group.append(row)
    return [
        pack(group[start : start + CHUNK_MAX])
        for group in groups.values()
        for start in range(0, len(group), CHUNK_MAX)
    ]


def pack(rows: Sequence[Row]) -> ChunkRow:
    """One chunk row from one container's messages, in seq order.

    Raises:
        OverflowError, TypeError: a value the format cannot hold (a refused row).
    """
    cids, seqs, times, payloads, producers, pub_ids = zip(*rows, strict=True)
    first, last, count = seqs[0], seqs[-1], len(seqs)
    blob = b"".join(payloads)
    gapless = last - first + 1 == count and seqs == tuple(range(first, last + 1))
    return (
        cids[0],
        first,
        last,
        max(times),
        count,
        len(blob),
        None if gapless else array("q", seqs).tobytes(),
        array("d", times).tobytes(),
        array("I", map(len, payloads)).tobytes(),
        _producer_ids(producers, pub_ids),
        blob,
    )


def _producer_ids(producers: Sequence[str], pub_ids: Sequence[int | None]) -> str | None:
    """The last publisher id of each producer that gave one, as JSON; None if none did."""
    if pub_ids.count(None) == len(pub_ids):
        return None
    pairs = zip(producers, pub_ids, strict=True)
    last = {producer: pub_id for producer, pub_id in pairs if pub_id is not None}
    array("q", last.values())  # an id SQLite cannot hold is refused, as a column would be
    return msgspec.json.encode(last).decode()


def seqs_of(first: int, last: int, blob: bytes | None) -> Sequence[int]:
    """A chunk's seqs: ``first..last`` when stored without a list, else the stored list."""
    if blob is None:
        return range(first, last + 1)
    return unpack("q", blob)


def unpack(code: str, blob: bytes) -> array[Any]:
    values: array[Any] = array(code)
    values.frombytes(blob)
    return values


def _offsets(lengths: bytes) -> list[int]:
    """Where each payload starts in ``payloads``, and where the last one ends."""
    return list(itertools.accumulate(unpack("I", lengths), initial=0))


def indexes_after(seqs: Sequence[int], after: int) -> range:
    """Indexes of the seqs above ``after`` (seqs are ascending)."""
    return range(bisect_right(seqs, after), len(seqs))


def pick(seqs: Sequence[int], times: bytes, after: int, since_time: float | None) -> Sequence[int]:
    """Indexes of a chunk's messages a read selects: seq above ``after``, time not before."""
    chosen = indexes_after(seqs, after)
    if since_time is None:
        return chosen
    at = unpack("d", times)
    return [i for i in chosen if at[i] >= since_time]


def unpack_messages(
    seqs: Sequence[int], times: bytes, lengths: bytes, payloads: bytes, picked: Sequence[int]
) -> Iterator[StoredMessage]:
    """The picked messages of one chunk, unpacked."""
    if not picked:
        return
    at = unpack("d", times)
    offsets = _offsets(lengths)
    for i in picked:
        yield StoredMessage(seqs[i], at[i], payloads[offsets[i] : offsets[i + 1]])
