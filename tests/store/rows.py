"""Chunk rows packed by hand, as the format says, to check the code that packs them."""

from __future__ import annotations

from array import array

from tailhub.store.base import StoredMessage


def chunk_row(
    cid: int, messages: list[StoredMessage], producers: str | None = None, *, null: object = None
) -> tuple[object, ...]:
    """The chunk row of ``messages`` (one container's, in seq order), with ``null`` for NULL:
    None as stored, :data:`~tailhub.store.chunks.ABSENT` as bound."""
    seqs = [m.seq for m in messages]
    gapless = seqs == list(range(seqs[0], seqs[-1] + 1))
    return (
        cid,
        seqs[0],
        seqs[-1],
        max(m.time for m in messages),
        len(messages),
        sum(len(m.payload) for m in messages),
        null if gapless else array("q", seqs).tobytes(),
        array("d", [m.time for m in messages]).tobytes(),
        array("I", [len(m.payload) for m in messages]).tobytes(),
        null if producers is None else producers,
        b"".join(m.payload for m in messages),
    )
