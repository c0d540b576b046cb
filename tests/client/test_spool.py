"""The publisher's spool and its append-only file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailhub.client import ConfigurationError, Spool


def _fill(spool: Spool, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        id = spool.allocate()
        spool.add(id, b'{"id":%d}' % id)
        ids.append(id)
    return ids


class TestMemorySpool:
    def test_ids_increase_from_one(self) -> None:
        """Ids are 1, 2, 3, ... and the frames come back by id."""
        spool = Spool()
        assert _fill(spool, 3) == [1, 2, 3]
        assert spool.get(2) == b'{"id":2}'
        assert (len(spool), spool.first_id) == (3, 1)

    def test_cumulative_ack(self) -> None:
        """An ack drops every frame up to its id, and only those."""
        spool = Spool()
        _fill(spool, 5)
        assert spool.ack(3) == 3
        assert (len(spool), spool.first_id, spool.get(3)) == (2, 4, None)
        assert spool.ack(2) == 0
        assert len(b'{"id":4}{"id":5}') == spool.nbytes

    def test_remove(self) -> None:
        """A refused frame is taken out; the ack still covers the ids after it."""
        spool = Spool()
        _fill(spool, 3)
        assert spool.remove(2) == b'{"id":2}'
        assert spool.remove(2) is None
        spool.ack(3)
        assert len(spool) == 0

    def test_producer_random(self) -> None:
        """Each new spool has its own producer name."""
        assert Spool().producer != Spool().producer


class TestFileSpool:
    def test_survives_reopen(self, tmp_path: Path) -> None:
        """Unacknowledged frames, the producer and the id sequence survive a restart."""
        path = tmp_path / "spool"
        spool = Spool(path)
        _fill(spool, 4)
        spool.ack(2)
        producer = spool.producer
        spool.close()
        again = Spool(path)
        assert producer == again.producer
        assert [id for id in range(1, 6) if again.get(id) is not None] == [3, 4]
        assert again.next_id == 5
        assert again.acked == 2
        again.close()

    def test_ids_continue_after_everything_acked(self, tmp_path: Path) -> None:
        """Ids are never reused, even when nothing is left unacknowledged."""
        path = tmp_path / "spool"
        spool = Spool(path)
        _fill(spool, 3)
        spool.ack(3)
        spool.close()
        again = Spool(path)
        assert again.next_id == 4
        again.close()

    def test_removed_stays_removed(self, tmp_path: Path) -> None:
        """A frame taken out is not resent after a restart."""
        path = tmp_path / "spool"
        spool = Spool(path)
        _fill(spool, 3)
        spool.remove(3)
        spool.close()
        again = Spool(path)
        assert again.get(3) is None
        assert again.next_id == 4
        again.close()

    def test_torn_last_line_ignored(self, tmp_path: Path) -> None:
        """A line cut short by a crash is dropped; the rest is intact and appendable."""
        path = tmp_path / "spool"
        spool = Spool(path)
        _fill(spool, 2)
        spool.close()
        with path.open("ab") as file:
            file.write(b'M 3 {"id":3')
        again = Spool(path)
        assert (len(again), again.next_id) == (2, 3)
        _fill(again, 1)
        again.close()
        third = Spool(path)
        assert third.get(3) == b'{"id":3}'
        third.close()

    def test_locked(self, tmp_path: Path) -> None:
        """Two publishers cannot share one spool file."""
        path = tmp_path / "spool"
        spool = Spool(path)
        with pytest.raises(ConfigurationError, match="in use"):
            Spool(path)
        spool.close()

    def test_not_a_spool(self, tmp_path: Path) -> None:
        """Some other file is refused rather than overwritten."""
        path = tmp_path / "notes.txt"
        path.write_text("hello\n")
        with pytest.raises(ConfigurationError, match="not a tailhub spool"):
            Spool(path)
        assert path.read_text() == "hello\n"

    def test_compaction_keeps_state(self, tmp_path: Path) -> None:
        """Rewriting a grown file keeps the unacknowledged frames and the id sequence."""
        path = tmp_path / "spool"
        spool = Spool(path)
        big = b"x" * 4096
        for _ in range(1500):
            id = spool.allocate()
            spool.add(id, big)
        spool.ack(1498)
        assert path.stat().st_size < 1 << 20
        spool.close()
        again = Spool(path)
        assert [id for id in (1498, 1499, 1500) if again.get(id) is not None] == [1499, 1500]
        assert again.next_id == 1501
        again.close()
