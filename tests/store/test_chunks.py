"""The chunk format (:mod:`tailhub.store.chunks`): packing a batch, no I/O."""

from __future__ import annotations

import pytest

from tailhub.store.base import StoredMessage
from tailhub.store.chunks import (
    ABSENT,
    CHUNK_MAX,
    Batch,
    ChunkRow,
    pack_batch,
    pack_message,
    seqs_of,
)
from tests.store.rows import chunk_row


def _row(
    cid: int, messages: list[StoredMessage], producers: str | None = None
) -> tuple[object, ...]:
    """The chunk row the format describes, NULL as bound (blobs compare equal as bytes or
    bytearray)."""
    return chunk_row(cid, messages, producers, null=ABSENT)


def _message(cid: int, seq: int) -> StoredMessage:
    return StoredMessage(seq, 1000.0 + seq / 8, b"%d:%d" % (cid, seq) * (seq % 5))


def _batch(messages: list[tuple[int, StoredMessage]]) -> Batch:
    batch = Batch()
    for cid, m in messages:
        batch.add(cid, m.seq, m.time, m.payload)
    return batch


class TestPackBatch:
    """A batch becomes one chunk per container (and CHUNK_MAX messages), exactly the format."""

    def test_interleaved_containers_are_grouped_in_order(self) -> None:
        """Messages of three containers, interleaved, give one chunk each, seqs in order."""
        sent = [(cid, _message(cid, seq)) for seq in range(1, 11) for cid in (3, 1, 2)]
        chunks = pack_batch(_batch(sent), len(sent))
        expected = {cid: _row(cid, [m for c, m in sent if c == cid]) for cid in (1, 2, 3)}
        assert expected == {chunk[0]: chunk for chunk in chunks}

    def test_only_the_first_messages_are_packed(self) -> None:
        """``stop`` packs the first messages in the order they came, whatever the container."""
        sent = [(cid, _message(cid, seq)) for seq in range(1, 5) for cid in (1, 2)]
        chunks = pack_batch(_batch(sent), 5)
        expected = [_row(1, [m for c, m in sent[:5] if c == 1]), _row(2, [sent[1][1], sent[3][1]])]
        assert expected == chunks

    def test_a_long_run_is_cut_at_chunk_max(self) -> None:
        """A container's messages beyond CHUNK_MAX go on in the next chunk."""
        sent = [(7, _message(7, seq)) for seq in range(1, 2 * CHUNK_MAX + 6)]
        chunks = pack_batch(_batch(sent), len(sent))
        pieces = [sent[:CHUNK_MAX], sent[CHUNK_MAX : 2 * CHUNK_MAX], sent[2 * CHUNK_MAX :]]
        assert [_row(7, [m for _, m in piece]) for piece in pieces] == chunks

    def test_seqs_with_gaps_are_stored(self) -> None:
        """Seqs with gaps are kept as a list; seqs_of gives them back."""
        sent = [(1, _message(1, seq)) for seq in (4, 5, 9, 30)]
        (chunk,) = pack_batch(_batch(sent), len(sent))
        assert (_row(1, [m for _, m in sent]), [4, 5, 9, 30]) == (
            chunk,
            list(seqs_of(chunk[1], chunk[2], bytes(chunk[6]))),
        )

    def test_a_single_message_has_the_format_bytes(self) -> None:
        """A one-message chunk (built on a shorter path) is the row the format describes."""
        m = _message(2, 41)
        batch = Batch()
        batch.add(2, m.seq, m.time, m.payload, "p", 41)
        assert [_row(2, [m], '{"p":41}')] == pack_batch(batch, 1)

    def test_last_publisher_id_of_each_producer(self) -> None:
        """Each producer's last id in the chunk is kept; messages without an id do not count."""
        batch = Batch()
        for seq, producer, pub_id in [(1, "p", None), (2, "p", 5), (3, "q", 9), (4, "p", None)]:
            batch.add(1, seq, float(seq), b"x", producer, pub_id)
        (chunk,) = pack_batch(batch, 4)
        assert '{"p":5,"q":9}' == chunk[9]


class TestBatch:
    """Joining and cutting batches keeps every field of every message."""

    def test_extend_then_drop_keeps_ids_in_place(self) -> None:
        """Batches with and without publisher ids join, and a cut keeps the rest aligned."""
        first, later = Batch(), Batch()
        first.add(1, 1, 1.0, b"a")
        first.add(2, 1, 1.0, b"b", "p", 3)
        later.add(1, 2, 2.0, b"c")
        first.extend(later)
        first.drop(1)
        alone: list[ChunkRow] = [pack_message(first, 0), pack_message(first, 1)]
        assert ([2, 1], ["p", ""], [3, None]) == (first.cids, first.producers, first.pub_ids)
        assert sorted(alone) == sorted(pack_batch(first, 2))

    @pytest.mark.parametrize(
        ("time", "payload", "pub_id"),
        [("soon", b"x", None), (1.0, "text", None), (1.0, b"x", 2**70)],
    )
    def test_values_the_format_cannot_hold_are_refused(
        self, time: object, payload: object, pub_id: int | None
    ) -> None:
        """A time, payload or id the format cannot hold raises, alone or among others."""
        batch = Batch()
        batch.add(1, 1, 1.0, b"ok")
        batch.add(1, 2, time, payload, "p", pub_id)  # type: ignore[arg-type]
        with pytest.raises((TypeError, OverflowError)):
            pack_message(batch, 1)
        with pytest.raises((TypeError, OverflowError)):
            pack_batch(batch, 2)
