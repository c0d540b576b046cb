"""Unframing what the hub writes to a peer: plain functions, no I/O."""

from __future__ import annotations

import pytest

from tailhub.server.stream import split_frames
from tailhub.server.wire import PING_FRAME, text_frame


class TestSplitFrames:
    @pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
    def test_every_header_length(self, size: int) -> None:
        """Payloads behind 2, 4 and 10 byte headers come back whole."""
        payload = b"x" * size
        assert split_frames(text_frame(payload)) == ([payload], b"")

    def test_concatenated(self) -> None:
        """Several frames written at once come back in order."""
        payloads = [b'{"seq":1}', b"y" * 300, b"z" * 70_000]
        assert split_frames(b"".join(map(text_frame, payloads))) == (payloads, b"")

    def test_incomplete_tail_is_kept(self) -> None:
        """A frame cut short is returned as the rest, and completes on the next call."""
        data = text_frame(b"first") + text_frame(b"second" * 100)
        for cut in (len(text_frame(b"first")) + 1, len(text_frame(b"first")) + 3, len(data) - 1):
            payloads, rest = split_frames(data[:cut])
            assert payloads == [b"first"]
            assert split_frames(rest + data[cut:]) == ([b"second" * 100], b"")

    def test_control_frames_are_dropped(self) -> None:
        """A ping between two messages is skipped."""
        data = text_frame(b"a") + PING_FRAME + text_frame(b"b")
        assert split_frames(data) == ([b"a", b"b"], b"")
