"""How readers page through history: a plain function."""

from __future__ import annotations

from tailhub.engine import StoredMessage, next_page_size
from tailhub.engine.base import PAGE_BYTES


def _page(count: int, size: int) -> list[StoredMessage]:
    return [StoredMessage(seq, 0.0, b"x" * size) for seq in range(1, count + 1)]


def test_the_first_page_is_small() -> None:
    assert next_page_size([], 1000) == 64
    assert next_page_size([], 10) == 10


def test_small_messages_come_a_thousand_at_a_time() -> None:
    assert next_page_size(_page(64, 200), 1000) == 1000


def test_large_messages_come_in_pages_of_about_page_bytes() -> None:
    size = next_page_size(_page(64, 100_000), 1000)
    assert size == PAGE_BYTES // 100_000
    assert size * 100_000 <= PAGE_BYTES


def test_huge_messages_still_come_sixteen_at_a_time() -> None:
    assert next_page_size(_page(3, 4 << 20), 1000) == 16
    assert next_page_size(_page(3, 4 << 20), 5) == 5
