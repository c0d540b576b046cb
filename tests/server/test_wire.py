"""The frame reader and writers of :mod:`tailhub.server.wire`, with no socket involved."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailhub.server.wire import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameReader,
    accept_key,
    binary_frame,
    close_frame,
    pong_frame,
    text_frame,
    valid_key,
)
from tests.helpers import client_frame

CONTINUATION = 0x0


def feed_in_pieces(reader: FrameReader, data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += reader.feed(data[start:cut])
        start = cut
    return out


messages = st.lists(
    st.tuples(
        st.sampled_from([TEXT, BINARY]),
        st.one_of(
            st.text(max_size=300).map(str.encode),
            st.binary(min_size=120, max_size=70_000),
        ),
        st.integers(min_value=1, max_value=4),
    ),
    max_size=6,
)


@given(messages, st.lists(st.integers(min_value=0), max_size=20), st.booleans())
def test_messages_survive_any_fragmentation_and_any_split_of_the_stream(
    sent: list[tuple[int, bytes, int]], cuts: list[int], pings: bool
) -> None:
    """Whatever the fragments and socket reads, the reader yields the messages as sent."""
    stream = b""
    expected: list[tuple[int, bytes]] = []
    for opcode, payload, pieces in sent:
        if opcode == TEXT:
            payload = payload.decode(errors="ignore").encode()
        step = max(1, len(payload) // pieces)
        parts = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            stream += client_frame(opcode if index == 0 else CONTINUATION, part, fin=last)
            if pings and not last:  # control frames may come between fragments
                stream += client_frame(PING, b"hi")
                expected.append((PING, b"hi"))
        expected.append((opcode, payload))
    reader = FrameReader(1 << 20)
    got = feed_in_pieces(reader, stream, cuts)
    assert reader.error is None
    assert expected == got


def test_a_batch_of_frames_read_at_once_yields_every_message_in_order() -> None:
    frames = b"".join(client_frame(TEXT, b'{"n":%d}' % i) for i in range(16))
    out = FrameReader(1 << 20).feed(frames)
    assert [(TEXT, b'{"n":%d}' % i) for i in range(16)] == out


def test_messages_before_a_violation_are_returned_and_nothing_after_it() -> None:
    reader = FrameReader(1 << 20)
    data = client_frame(TEXT, b"one") + client_frame(TEXT, b"bad", rsv=4) + client_frame(TEXT, b"x")
    assert [(TEXT, b"one")] == reader.feed(data)
    assert reader.error is not None
    assert 1002 == reader.error.code
    assert [] == reader.feed(client_frame(TEXT, b"later"))


def unmasked(opcode: int, payload: bytes) -> bytes:
    return struct.pack("!BB", 0x80 | opcode, len(payload)) + payload


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (unmasked(TEXT, b"hi"), 1002, "masked"),
        (client_frame(TEXT, b"hi", rsv=1), 1002, "reserved bits"),
        (client_frame(0x3, b"hi"), 1002, "reserved opcode"),
        (client_frame(0xB, b""), 1002, "reserved opcode"),
        (client_frame(PING, b"x" * 126), 1002, "control frames"),
        (client_frame(PING, b"x", fin=False), 1002, "control frames"),
        (client_frame(CONTINUATION, b"x"), 1002, "continuation"),
        (
            client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"),
            1002,
            "inside a fragmented",
        ),
        (client_frame(TEXT, "é".encode("latin-1")), 1007, "UTF-8"),
        (
            client_frame(TEXT, "é".encode()[:1], fin=False) + client_frame(CONTINUATION, b"\xff"),
            1007,
            "UTF-8",
        ),
        (client_frame(CLOSE, b"\x03"), 1002, "one-byte"),
        (client_frame(CLOSE, (999).to_bytes(2, "big")), 1002, "close code"),
        (client_frame(CLOSE, (1005).to_bytes(2, "big")), 1002, "close code"),
        (client_frame(CLOSE, (2000).to_bytes(2, "big")), 1002, "close code"),
        (client_frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff"), 1007, "UTF-8"),
    ],
)
def test_protocol_violations_set_the_error_with_its_close_code(
    data: bytes, code: int, words: str
) -> None:
    reader = FrameReader(1 << 20)
    assert [] == reader.feed(data)
    assert reader.error is not None
    assert code == reader.error.code
    assert words in reader.error.reason


def test_bad_utf8_in_a_fragmented_text_is_refused_at_its_fragment() -> None:
    """RFC 6455, 8.1: fail as soon as the text cannot be UTF-8, before the last fragment."""
    reader = FrameReader(1 << 20)
    assert [] == reader.feed(client_frame(TEXT, b"ok", fin=False))
    assert reader.error is None
    reader.feed(client_frame(CONTINUATION, b"\xff", fin=False))
    assert reader.error is not None
    assert 1007 == reader.error.code


def test_a_character_split_between_fragments_is_fine() -> None:
    text = "é€😀".encode()
    reader = FrameReader(1 << 20)
    data = b"".join(
        client_frame(TEXT if i == 0 else CONTINUATION, text[i : i + 1], fin=i == len(text) - 1)
        for i in range(len(text))
    )
    assert [(TEXT, text)] == reader.feed(data)


def test_a_64_bit_length_with_its_top_bit_set_is_a_protocol_error() -> None:
    reader = FrameReader(1 << 20)
    reader.feed(bytes([0x82, 0x80 | 127]) + (1 << 63).to_bytes(8, "big") + b"mask")
    assert reader.error is not None
    assert 1002 == reader.error.code


def test_a_message_over_the_limit_is_refused_from_its_header_before_its_payload() -> None:
    reader = FrameReader(1000)
    header = client_frame(BINARY, b"x" * 1001)[:8]  # header and mask only
    assert [] == reader.feed(header)
    assert reader.error is not None
    assert 1009 == reader.error.code


def test_fragments_count_towards_the_limit_together() -> None:
    reader = FrameReader(1000)
    reader.feed(client_frame(TEXT, b"x" * 600, fin=False))
    assert reader.error is None
    reader.feed(client_frame(CONTINUATION, b"x" * 600))
    assert reader.error is not None
    assert 1009 == reader.error.code


def test_control_frames_and_valid_close_codes_come_out_as_they_are() -> None:
    close = (4000).to_bytes(2, "big") + "bye é".encode()
    data = client_frame(PING, b"p") + client_frame(PONG, b"") + client_frame(CLOSE, close)
    assert [(PING, b"p"), (PONG, b""), (CLOSE, close)] == FrameReader(10).feed(data)


def test_server_frames_are_unmasked_and_sized_by_length() -> None:
    assert b"\x81\x02hi" == text_frame(b"hi")
    assert b"\x81\x7e\x01\x00" + b"x" * 256 == text_frame(b"x" * 256)
    assert b"\x81\x7f" + (70_000).to_bytes(8, "big") == text_frame(b"x" * 70_000)[:10]
    assert b"\x8a\x01p" == pong_frame(b"p")
    assert b"\x82\x02\x00\xff" == binary_frame(b"\x00\xff")
    assert b"\x82\x7e\x01\x00" == binary_frame(b"x" * 256)[:4]


def test_close_reasons_are_cut_to_fit_without_splitting_a_character() -> None:
    frame = close_frame(4429, "é" * 100)
    assert 125 >= frame[1]
    frame[4:].decode()  # still valid UTF-8


def test_handshake_keys() -> None:
    # The example of RFC 6455, section 1.3.
    assert "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" == accept_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert valid_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert not valid_key("c2hvcnQ=")
    assert not valid_key("not base64!")


def test_a_feed_parses_at_most_its_budget_of_frames_and_the_rest_later() -> None:
    """A read of many frames is parsed in turns: ``more`` says some are left for ``feed(b"")``."""
    frames = [client_frame(TEXT, b'{"n":%d}' % i) for i in range(10)]
    reader = FrameReader(1 << 20, frames_per_feed=4)
    got = reader.feed(b"".join(frames[:9]) + frames[9][:3])
    assert 4 == len(got)
    assert reader.more
    got += reader.feed(b"")
    assert 8 == len(got)
    got += reader.feed(frames[9][3:])  # new bytes while some are held: read after them
    assert 10 == len(got)
    assert not reader.more
    assert [(TEXT, b'{"n":%d}' % i) for i in range(10)] == got


def test_the_budget_counts_frames_that_complete_no_message() -> None:
    reader = FrameReader(1 << 20, frames_per_feed=4)
    data = b"".join(client_frame(PONG, b"") for _ in range(6)) + client_frame(TEXT, b"{}")
    assert [(PONG, b"")] * 4 == reader.feed(data)
    assert [(PONG, b"")] * 2 + [(TEXT, b"{}")] == reader.feed(b"")
    assert not reader.more


def test_a_message_may_come_in_at_most_max_fragments_frames() -> None:
    def fragmented(count: int) -> bytes:
        parts = [client_frame(TEXT, b"[", fin=False)]
        parts += [client_frame(CONTINUATION, b"", fin=False) for _ in range(count - 2)]
        return b"".join([*parts, client_frame(CONTINUATION, b"]")])

    assert [(TEXT, b"[]")] == FrameReader(1000, max_fragments=8).feed(fragmented(8))
    reader = FrameReader(1000, max_fragments=8)
    assert [] == reader.feed(fragmented(9))
    assert reader.error is not None
    assert 1009 == reader.error.code


def test_continuation_frames_are_charged_their_header() -> None:
    """Empty fragments are not free: 200 of them (6 bytes each) pass a 1,000-byte limit."""
    reader = FrameReader(1000, max_fragments=10_000)
    data = client_frame(TEXT, b"[", fin=False)
    data += b"".join(client_frame(CONTINUATION, b"", fin=False) for _ in range(200))
    reader.feed(data)
    assert reader.error is not None
    assert 1009 == reader.error.code


def test_release_drops_every_byte_held() -> None:
    reader = FrameReader(1 << 20, frames_per_feed=1)
    reader.feed(client_frame(TEXT, b"[", fin=False) + client_frame(BINARY, b"x" * 1000)[:500])
    reader.release()
    assert not reader.more
    assert [(TEXT, b"{}")] == reader.feed(client_frame(TEXT, b"{}"))
