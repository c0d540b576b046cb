"""The chunk format of the SQLite history: a container's consecutive messages in one row.

A chunk holds one container's messages of one write batch, in seq order (at most
:data:`CHUNK_MAX`): its first and last seq, its newest receive time, its message and byte
counts, the payloads end to end with their lengths (uint32 array), the receive times (float64
array), the seqs only when they have gaps (int64 array; NULL means ``first..last``), and the
last publisher id of each producer that gave one (a JSON object; NULL if none did). Arrays are
in the machine's byte order. This module packs chunks from a :class:`Batch` (messages of any
containers, a list per field) and unpacks them; :mod:`tailhub.store.sqlite` stores them. No
I/O.
"""

from __future__ import annotations

import itertools
import struct
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from operator import is_not, itemgetter
from typing import Any, Final, TypeAlias, cast

import msgspec

from tailhub.store.base import StoredMessage

__all__ = [
    "ABSENT",
    "CHUNK_COLUMNS",
    "CHUNK_MAX",
    "Batch",
    "ChunkRow",
    "indexes_after",
    "pack",
    "pack_batch",
    "pack_message",
    "pick",
    "seqs_of",
    "unpack",
    "unpack_messages",
]

CHUNK_COLUMNS: Final = 11
"""The parameters of one chunk row (see :func:`pack`)."""
CHUNK_MAX: Final = 128
"""Most messages in one chunk: a read of one unpacks at most this many."""

# One time and one length in the bytes ``array("d")`` and ``array("I")`` would give.
_TIME: Final = struct.Struct("@d")
_LENGTH: Final = struct.Struct("@I")

ABSENT: Final = 0
"""What a chunk row has for no seqs or no producers, where the column holds NULL.

The sqlite3 module binds an int, float, str or bytearray at once, but looks for an adapter
for any other value, None and bytes included (Python 3.11, per value bound: None 310 ns and
bytes 440, an int 65 and a bytearray 125). So rows carry 0 for NULL, which the INSERT turns
back into NULL, and bytearrays for blobs: an INSERT of 100 one-message chunks went from 4.0
to 1.8 µs per chunk.
"""

ChunkRow: TypeAlias = tuple[
    int, int, int, float, int, int, bytearray | int, bytearray, bytearray, str | int, bytearray
]
"""One chunk's parameters, in ``chunks`` column order from ``cid`` to ``payloads``: blobs as
bytearrays, no seqs and no producers as :data:`ABSENT`."""


class Batch:
    """Messages of any containers in the order they came, a list per field.

    What chunks are packed from (:func:`pack_batch`). Lists, not a row per message, so that
    collecting a message is a few list appends, and joining two batches (:meth:`extend`) or
    cutting one (:meth:`drop`) is a few C-level list operations, whatever their size.
    ``producers`` and ``pub_ids`` stay None until a message gives a publisher id (most never
    do); from then on they have an entry for every message.
    """

    __slots__ = ("cids", "payloads", "producers", "pub_ids", "seqs", "times")

    def __init__(self) -> None:
        self.cids: list[int] = []
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.payloads: list[bytes] = []
        self.producers: list[str] | None = None
        self.pub_ids: list[int | None] | None = None

    def add(
        self,
        cid: int,
        seq: int,
        time: float,
        payload: bytes,
        producer: str = "",
        pub_id: int | None = None,
    ) -> None:
        """Add the next message (a container's seqs ascending)."""
        if pub_id is not None or self.pub_ids is not None:
            producers, pub_ids = self._ids()
            producers.append(producer)
            pub_ids.append(pub_id)
        self.cids.append(cid)
        self.seqs.append(seq)
        self.times.append(time)
        self.payloads.append(payload)

    def add_run(
        self,
        cid: int,
        first_seq: int,
        time: float,
        payloads: Sequence[bytes],
        ids: Sequence[tuple[str, int | None]] | None,
    ) -> None:
        """Add the next messages, seqs from ``first_seq`` on (see ``HistoryStore.append_run``)."""
        count = len(payloads)
        if ids is not None or self.pub_ids is not None:
            producers, pub_ids = self._ids()
            if ids is None:
                producers += [""] * count
                pub_ids += [None] * count
            else:
                producers += [producer for producer, _ in ids]
                pub_ids += [pub_id for _, pub_id in ids]
        self.cids += [cid] * count
        self.seqs += range(first_seq, first_seq + count)
        self.times += [time] * count
        self.payloads += payloads

    def extend(self, later: Batch) -> None:
        """Append ``later``'s messages, which came after these."""
        if later.pub_ids is not None or self.pub_ids is not None:
            producers, pub_ids = self._ids()
            later_producers, later_pub_ids = later._ids()
            producers += later_producers
            pub_ids += later_pub_ids
        self.cids += later.cids
        self.seqs += later.seqs
        self.times += later.times
        self.payloads += later.payloads

    def drop(self, count: int) -> None:
        """Forget the first ``count`` messages (once they are written)."""
        del self.cids[:count], self.seqs[:count], self.times[:count], self.payloads[:count]
        if self.producers is not None and self.pub_ids is not None:
            del self.producers[:count], self.pub_ids[:count]

    def _ids(self) -> tuple[list[str], list[int | None]]:
        """``producers`` and ``pub_ids``, made (an entry per message so far) if need be."""
        if self.producers is None or self.pub_ids is None:
            self.producers = [""] * len(self.seqs)
            self.pub_ids = [None] * len(self.seqs)
        return self.producers, self.pub_ids


def pack_batch(batch: Batch, stop: int) -> list[ChunkRow]:
    """The first ``stop`` messages of ``batch`` as chunks: per container, its messages in the
    order they came, at most :data:`CHUNK_MAX` to a chunk.

    The messages are grouped by container with a stable sort and gathered with
    ``itemgetter``, both in C: the Python work is per chunk, not per message.

    Raises:
        OverflowError, TypeError: a value the format cannot hold (see :func:`pack`).
    """
    cids, seqs, times, payloads = batch.cids, batch.seqs, batch.times, batch.payloads
    producers, pub_ids = batch.producers, batch.pub_ids
    if stop < len(cids):
        cids, seqs, times, payloads = cids[:stop], seqs[:stop], times[:stop], payloads[:stop]
        if producers is not None and pub_ids is not None:
            producers, pub_ids = producers[:stop], pub_ids[:stop]
    if cids.count(cids[0]) < stop:  # several containers: group them
        gather = itemgetter(*sorted(range(stop), key=cids.__getitem__))
        cids, seqs, times = list(gather(cids)), list(gather(seqs)), list(gather(times))
        payloads = list(gather(payloads))
        if producers is not None and pub_ids is not None:
            producers, pub_ids = list(gather(producers)), list(gather(pub_ids))
    chunks: list[ChunkRow] = []
    start = 0
    for cid in dict.fromkeys(cids):
        end = bisect_right(cids, cid, start)
        if end - start == 1:  # a quiet container's usual share: no lists to cut
            ids = (
                None if pub_ids is None or producers is None else (producers[start], pub_ids[start])
            )
            chunks.append(_single(cid, seqs[start], times[start], payloads[start], ids))
            start = end
            continue
        for at in range(start, end, CHUNK_MAX):
            upto = min(at + CHUNK_MAX, end)
            chunks.append(
                pack(
                    cid,
                    seqs[at:upto],
                    times[at:upto],
                    payloads[at:upto],
                    None if producers is None else producers[at:upto],
                    None if pub_ids is None else pub_ids[at:upto],
                )
            )
        start = end
    return chunks


def pack_message(batch: Batch, i: int) -> ChunkRow:
    """Message ``i`` of ``batch`` alone in a chunk (to find which of a refused batch fail).

    Raises:
        OverflowError, TypeError: a value the format cannot hold.
    """
    producers, pub_ids = batch.producers, batch.pub_ids
    return pack(
        batch.cids[i],
        batch.seqs[i : i + 1],
        batch.times[i : i + 1],
        batch.payloads[i : i + 1],
        None if producers is None else producers[i : i + 1],
        None if pub_ids is None else pub_ids[i : i + 1],
    )


def pack(
    cid: int,
    seqs: list[int],
    times: list[float],
    payloads: list[bytes],
    producers: list[str] | None = None,
    pub_ids: list[int | None] | None = None,
) -> ChunkRow:
    """One chunk row from one container's messages, in seq order (at least one).

    Raises:
        OverflowError, TypeError: a value the format cannot hold (a refused message).
    """
    first, last, count = seqs[0], seqs[-1], len(seqs)
    if count == 1:
        ids = None if producers is None or pub_ids is None else (producers[0], pub_ids[0])
        return _single(cid, first, times[0], payloads[0], ids)
    blob = bytearray().join(payloads)
    gapless = last - first + 1 == count and seqs == list(range(first, last + 1))
    return (
        cid,
        first,
        last,
        max(times),
        count,
        len(blob),
        ABSENT if gapless else bytearray(array("q", seqs)),
        bytearray(array("d", times)),
        bytearray(array("I", map(len, payloads))),
        ABSENT if producers is None or pub_ids is None else _producer_ids(producers, pub_ids),
        blob,
    )


def _single(
    cid: int, seq: int, time: float, payload: bytes, ids: tuple[str, int | None] | None
) -> ChunkRow:
    """The chunk of one message (``ids``: its producer and publisher id, if any): the row
    :func:`pack` would make, without arrays (0.3 µs instead of 1.9).

    Raises:
        OverflowError, TypeError: as :func:`pack`.
    """
    blob = bytearray().join((payload,))  # a TypeError for anything but bytes, as in pack()
    try:
        at, length = bytearray(_TIME.pack(time)), bytearray(_LENGTH.pack(len(blob)))
    except struct.error as exc:  # as array() would refuse them
        raise TypeError(str(exc)) from None
    producer_ids = ABSENT if ids is None else _producer_ids([ids[0]], [ids[1]])
    return (cid, seq, seq, time, 1, len(blob), ABSENT, at, length, producer_ids, blob)


def _producer_ids(producers: list[str], pub_ids: list[int | None]) -> str | int:
    """The last publisher id of each producer that gave one, as JSON; ABSENT if none did."""
    if pub_ids.count(None) == len(pub_ids):
        return ABSENT
    given = map(is_not, pub_ids, itertools.repeat(None))
    pairs = itertools.compress(zip(producers, pub_ids, strict=True), given)  # ids only
    last = cast("dict[str, int]", dict(pairs))
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
