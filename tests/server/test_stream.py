"""Unframing what the hub writes to a peer: plain functions and a peer without a socket."""

from __future__ import annotations

import pytest

from tailhub.server.stream import StreamPeer, split_frames
from tailhub.server.wire import PING_FRAME, text_frame


def _bytes(payloads: list[memoryview]) -> list[bytes]:
    return [bytes(p) for p in payloads]


class TestSplitFrames:
    @pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
    def test_every_header_length(self, size: int) -> None:
        """Payloads behind 2, 4 and 10 byte headers come back whole."""
        payload = b"x" * size
        frame = text_frame(payload)
        payloads, end = split_frames(frame)
        assert (_bytes(payloads), end) == ([payload], len(frame))

    def test_concatenated(self) -> None:
        """Several frames written at once come back in order."""
        payloads = [b'{"seq":1}', b"y" * 300, b"z" * 70_000]
        data = b"".join(map(text_frame, payloads))
        got, end = split_frames(data)
        assert (_bytes(got), end) == (payloads, len(data))

    def test_incomplete_tail_is_left(self) -> None:
        """Reading stops where a frame cut short begins, and goes on from there."""
        first = text_frame(b"first")
        data = first + text_frame(b"second" * 100)
        for cut in (len(first) + 1, len(first) + 3, len(data) - 1):
            payloads, end = split_frames(data[:cut])
            assert (_bytes(payloads), end) == ([b"first"], len(first))
            payloads, end = split_frames(data, end)
            assert (_bytes(payloads), end) == ([b"second" * 100], len(data))

    def test_budget(self) -> None:
        """Reading stops after the frame that reaches the budget; the next call goes on."""
        frames = [text_frame(bytes([65 + n]) * 1000) for n in range(5)]
        data = b"".join(frames)
        payloads, end = split_frames(data, 0, 1500)
        assert _bytes(payloads) == [b"A" * 1000, b"B" * 1000]
        payloads, end = split_frames(data, end, 1)
        assert _bytes(payloads) == [b"C" * 1000]
        payloads, end = split_frames(data, end)
        assert _bytes(payloads) == [b"D" * 1000, b"E" * 1000]
        assert end == len(data)

    def test_control_frames_are_dropped(self) -> None:
        """A ping between two messages is skipped."""
        data = text_frame(b"a") + PING_FRAME + text_frame(b"b")
        payloads, _ = split_frames(data)
        assert _bytes(payloads) == [b"a", b"b"]


class TestStreamPeerTake:
    def test_takes_a_budget_at_a_time_and_counts_until_written(self) -> None:
        """Each take holds about the budget; what is taken stays buffered until written."""
        peer = StreamPeer(None)
        messages = [bytes([97 + n % 26]) * 10_000 for n in range(40)]
        for start in range(0, 40, 8):  # the hub writes a turn's frames at once
            peer.write(b"".join(map(text_frame, messages[start : start + 8])))
        total = peer.buffered()
        seen: list[bytes] = []
        while True:
            payloads, taken = peer.take(25_000)
            if not taken:
                break
            assert len(payloads) <= 3
            assert peer.buffered() == total
            peer.written(taken)
            total -= taken
            seen += _bytes(payloads)
        assert seen == messages
        assert peer.buffered() == 0

    def test_frame_split_across_writes(self) -> None:
        """A frame whose bytes came in two writes is read once both are there."""
        peer = StreamPeer(None)
        data = text_frame(b"one") + text_frame(b"two" * 50)
        peer.write(data[:10])
        payloads, taken = peer.take()
        assert _bytes(payloads) == [b"one"]
        peer.written(taken)
        assert peer.take() == ([], 0)
        peer.write(data[10:])
        payloads, taken = peer.take()
        assert _bytes(payloads) == [b"two" * 50]
        peer.written(taken)
        assert peer.buffered() == 0
