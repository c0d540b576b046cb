"""The protocol core, with no event loop: bytes in, a message or an error code out."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailhub.protocol import (
    Auth,
    Command,
    ErrorCode,
    ProtocolError,
    Publish,
    SessionsRequest,
    Subscribe,
    TimeFormatter,
    Unsubscribe,
    decode_client,
    encode_ack,
    encode_error,
    encode_published,
    format_time,
    parse_time,
    published_head,
    published_tail,
)


def frame(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def error_of(data: bytes | str) -> ErrorCode:
    with pytest.raises(ProtocolError) as caught:
        decode_client(data)
    return caught.value.code


class TestPublish:
    def test_log(self) -> None:
        """A log decodes with its container, level and the data bytes kept as sent."""
        data = {"level": "info", "message": "cloned", "metadata": {"k": 1}}
        msg = decode_client(frame(type="log", containerID="c-1", data=data))
        assert isinstance(msg, Publish)
        assert ("log", "c-1", "info") == (msg.type, msg.container_id, msg.level)
        assert data == json.loads(bytes(msg.data))

    @pytest.mark.parametrize("kind", ["LOG", "Log", "STATUS", "COMPLETE", "ERROR", "HEARTBEAT"])
    def test_upper_case_types(self, kind: str) -> None:
        """The original containers' upper-case types are accepted and lower-cased."""
        data = {
            "LOG": {"level": "info", "message": "x"},
            "Log": {"level": "info", "message": "x"},
            "STATUS": {"status": "running"},
            "COMPLETE": {"exitCode": 0},
            "ERROR": {"error": "boom"},
            "HEARTBEAT": {"uptime": 3},
        }[kind]
        msg = decode_client(frame(type=kind, containerID="c", data=data))
        assert isinstance(msg, Publish)
        assert kind.lower() == msg.type

    def test_unknown_data_fields_travel_unchanged(self) -> None:
        """Fields the hub does not know inside data are kept, byte for byte."""
        raw = b'{"type":"log","containerID":"c","data":{"level":"info","message":"m","x":[1,2]}}'
        msg = decode_client(raw)
        assert isinstance(msg, Publish)
        assert b'{"level":"info","message":"m","x":[1,2]}' == bytes(msg.data)

    @pytest.mark.parametrize("text", [False, True], ids=["bytes", "str"])
    def test_line_breaks_between_tokens_are_dropped_from_data(self, text: bool) -> None:
        """Data is one line whatever whitespace it came with (NDJSON and SSE split on them)."""
        raw = '{"type":"log",\r\n"containerID":"c","data":{"level":"info",\r\n "message":\n"m"}}'
        msg = decode_client(raw if text else raw.encode())
        assert isinstance(msg, Publish)
        assert b'{"level":"info", "message":"m"}' == bytes(msg.data)

    @pytest.mark.parametrize("brk", ["\n", "\r"])
    def test_a_line_break_inside_a_string_is_still_refused(self, brk: str) -> None:
        """Only whitespace is dropped: JSON with a raw line break in a string is refused."""
        raw = f'{{"type":"log","containerID":"c","data":{{"level":"info","message":"a{brk}b"}}}}'
        with pytest.raises(ProtocolError) as caught:
            decode_client(raw.encode())
        assert caught.value.code == ErrorCode.INVALID_JSON

    @pytest.mark.parametrize(
        ("given", "expected"),
        [("WARNING", "warn"), ("warning", "warn"), ("Info", "info"), ("fatal", "error")],
    )
    def test_level_aliases(self, given: str, expected: str) -> None:
        """Common level spellings are normalised in the data sent on."""
        msg = decode_client(
            frame(type="log", containerID="c", data={"level": given, "message": ""})
        )
        assert isinstance(msg, Publish)
        assert expected == json.loads(bytes(msg.data))["level"] == msg.level

    def test_failed_status_is_error(self) -> None:
        """status 'failed' is accepted as 'error'."""
        msg = decode_client(frame(type="status", containerID="c", data={"status": "failed"}))
        assert isinstance(msg, Publish)
        assert "error" == msg.status == json.loads(bytes(msg.data))["status"]

    def test_complete_exit_code(self) -> None:
        """complete carries its exitCode to the session registry."""
        msg = decode_client(frame(type="complete", containerID="c", data={"exitCode": 3}))
        assert isinstance(msg, Publish)
        assert 3 == msg.exit_code

    def test_heartbeat_without_data(self) -> None:
        """A heartbeat may leave data out."""
        msg = decode_client(frame(type="heartbeat", containerID="c"))
        assert isinstance(msg, Publish)
        assert b"{}" == bytes(msg.data)

    def test_id_and_producer(self) -> None:
        """A publisher's id and producer are kept for acks."""
        msg = decode_client(
            frame(
                type="log",
                containerID="c",
                id=7,
                producer="p",
                data={"level": "info", "message": ""},
            )
        )
        assert isinstance(msg, Publish)
        assert (7, "p") == (msg.id, msg.producer)

    def test_token_from_auth_field(self) -> None:
        """auth.token on a message is its token."""
        msg = decode_client(
            frame(
                type="log",
                containerID="c",
                auth={"token": "s"},
                data={"level": "info", "message": ""},
            )
        )
        assert "s" == msg.token


class TestRequests:
    def test_subscribe_since(self) -> None:
        """subscribe carries since."""
        msg = decode_client(frame(type="subscribe", containerID="c", since=4))
        assert Subscribe(container_id="c", since=4) == msg

    def test_subscribe_from(self) -> None:
        """from is an RFC 3339 time, turned into Unix seconds."""
        msg = decode_client(
            frame(type="subscribe", containerID="c", **{"from": "1970-01-01T00:01:00Z"})
        )
        assert isinstance(msg, Subscribe)
        assert 60.0 == msg.from_time

    def test_subscribe_pattern(self) -> None:
        """'*' is allowed in a subscribe."""
        msg = decode_client(frame(type="subscribe", containerID="*"))
        assert isinstance(msg, Subscribe)
        assert msg.is_pattern

    def test_other_requests(self) -> None:
        """unsubscribe, command, sessions and auth decode to their kinds."""
        assert isinstance(decode_client(frame(type="unsubscribe", containerID="c")), Unsubscribe)
        cmd = decode_client(frame(type="command", containerID="c", data={"action": "cancel"}))
        assert isinstance(cmd, Command)
        assert "cancel" == cmd.action
        assert isinstance(decode_client(frame(type="sessions")), SessionsRequest)
        assert Auth(token="t") == decode_client(frame(type="auth", token="t"))


class TestErrors:
    @pytest.mark.parametrize(
        ("data", "code"),
        [
            (b"not json", ErrorCode.INVALID_JSON),
            (b"", ErrorCode.INVALID_JSON),
            (b"\xff\xfe", ErrorCode.INVALID_JSON),
            (b"[1, 2]", ErrorCode.INVALID_MESSAGE),
            (b'"log"', ErrorCode.INVALID_MESSAGE),
            (b"{}", ErrorCode.INVALID_MESSAGE),
            (b'{"type": 5}', ErrorCode.INVALID_MESSAGE),
            (b'{"type": "nope"}', ErrorCode.UNKNOWN_TYPE),
            (b'{"type": "subscribed", "containerID": "c"}', ErrorCode.UNKNOWN_TYPE),
            (
                b'{"type": "log", "data": {"level": "info", "message": "m"}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "log", "containerID": "", "data": {"level": "info", "message": "m"}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (b'{"type": "log", "containerID": "c"}', ErrorCode.INVALID_MESSAGE),
            (b'{"type": "log", "containerID": "c", "data": "text"}', ErrorCode.INVALID_MESSAGE),
            (b'{"type": "log", "containerID": "c", "data": null}', ErrorCode.INVALID_MESSAGE),
            (
                b'{"type": "log", "containerID": "c", "data": {"level": "loud", "message": "m"}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "log", "containerID": "c", "data": {"level": "info"}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "log", "containerID": "c*", "data": {"level": "info", "message": ""}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "log", "containerID": "a\\u0000b", '
                b'"data": {"level": "info", "message": ""}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "log", "containerID": 12, "data": {"level": "info", "message": ""}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "log", "containerID": "c", "timestamp": "yesterday", '
                b'"data": {"level": "info", "message": ""}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "status", "containerID": "c", "data": {"status": "dancing"}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "complete", "containerID": "c", "data": {"exitCode": "zero"}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (b'{"type": "error", "containerID": "c", "data": {}}', ErrorCode.INVALID_MESSAGE),
            (b'{"type": "subscribe"}', ErrorCode.INVALID_MESSAGE),
            (b'{"type": "subscribe", "containerID": "c", "since": -1}', ErrorCode.INVALID_MESSAGE),
            (
                b'{"type": "subscribe", "containerID": "c", "since": 1, "tail": 2}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (
                b'{"type": "subscribe", "containerID": "c", "from": "soon"}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (b'{"type": "command", "containerID": "c", "data": {}}', ErrorCode.INVALID_MESSAGE),
            (
                b'{"type": "command", "containerID": "c", "data": {"action": "input"}}',
                ErrorCode.INVALID_MESSAGE,
            ),
            (b'{"type": "auth"}', ErrorCode.INVALID_MESSAGE),
            (
                b'{"type": "log", "containerID": "c", "id": 0, '
                b'"data": {"level": "info", "message": ""}}',
                ErrorCode.INVALID_MESSAGE,
            ),
        ],
    )
    def test_bad_input(self, data: bytes, code: ErrorCode) -> None:
        """Each bad frame gets its error code, never an exception of another kind."""
        assert code == error_of(data)

    def test_error_names_the_refused_message(self) -> None:
        """An error keeps the refused message's containerID, id, producer and token."""
        with pytest.raises(ProtocolError) as caught:
            decode_client(
                b'{"type":"log","containerID":"c","id":4,"producer":"p","token":"t",'
                b'"data":{"level":"nope","message":"m"}}'
            )
        error = caught.value
        assert ("c", 4, "p", "t") == (error.container_id, error.id, error.producer, error.token)

    def test_words_name_the_field(self) -> None:
        """The error words say which field is wrong."""
        with pytest.raises(ProtocolError) as caught:
            decode_client(b'{"type":"log","containerID":"c","data":{"level":"info","message":3}}')
        assert "data.message" in caught.value.words

    @given(st.binary(max_size=200))
    def test_arbitrary_bytes_never_crash(self, data: bytes) -> None:
        """Any bytes decode to a message or raise ProtocolError, nothing else."""
        with contextlib.suppress(ProtocolError):
            decode_client(data)

    @given(
        st.dictionaries(
            st.sampled_from(["type", "containerID", "data", "since", "tail", "auth", "id"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers())),
        )
    )
    def test_arbitrary_objects_never_crash(self, fields: dict[str, Any]) -> None:
        """Any JSON object decodes to a message or raises ProtocolError, nothing else."""
        with contextlib.suppress(ProtocolError):
            decode_client(json.dumps(fields))


_PUBLISHED_DATA = {
    "log": b'{"level":"info","message":"m"',
    "status": b'{"status":"running"',
    "complete": b'{"exitCode":0',
    "error": b'{"error":"boom"',
    "heartbeat": b'{"uptime":1',
    "command": b'{"action":"stop"',
}


def _with_field(kind: str, field: bytes) -> bytes:
    """A message of ``kind`` whose ``data`` carries one more (unknown) field: raw bytes."""
    return (
        b'{"type":"'
        + kind.encode()
        + b'","containerID":"c","data":'
        + _PUBLISHED_DATA[kind]
        + b","
        + field
        + b"}}"
    )


def _assert_utf8_json(message: Any) -> None:
    """What the hub would store and send for ``message`` is strict UTF-8 JSON."""
    data = getattr(message, "data", None)
    if data is None:
        return
    payload = encode_published("log", "c", "2024-01-01T00:00:00.000Z", 1, data)
    json.loads(payload.decode("utf-8", errors="strict"))


class TestHostileInput:
    """Whatever the codec accepts is valid UTF-8 JSON; nothing it is given raises otherwise."""

    @pytest.mark.parametrize("kind", sorted(_PUBLISHED_DATA))
    @pytest.mark.parametrize(
        "field",
        [
            b'"extra":"\xff"',  # an unknown field: kept as it came
            b'"\xc3\x28":1',  # a key
            b'"extra":"\xed\xa0\x80"',  # a surrogate encoded in UTF-8 (CESU)
            b'"extra":"\xf4\x90\x80\x80"',  # beyond U+10FFFF
            b'"extra":"\xe2\x82"',  # cut short
        ],
    )
    def test_invalid_utf8_anywhere_is_refused_as_invalid_json(
        self, kind: str, field: bytes
    ) -> None:
        assert ErrorCode.INVALID_JSON == error_of(_with_field(kind, field))

    @pytest.mark.parametrize(
        "data",
        [
            b'{"type":"log","containerID":"c","data":{"level":"info","message":"\xff"}}',
            b'{"type":"log","containerID":"c","zz":"\xff","data":{"level":"info","message":"m"}}',
            b'{"type":"log","containerID":"c","producer":"\xfe","id":1,'
            b'"data":{"level":"info","message":"m"}}',
        ],
    )
    def test_invalid_utf8_in_known_or_envelope_fields_is_refused(self, data: bytes) -> None:
        assert ErrorCode.INVALID_JSON == error_of(data)

    def test_bytes_the_caller_checked_are_not_checked_again(self) -> None:
        """``utf8_checked`` is the transport's word that a text frame is UTF-8 already."""
        text = '{"type":"log","containerID":"c","data":{"level":"info","message":"été"}}'
        for checked in (False, True):
            msg = decode_client(text.encode(), utf8_checked=checked)
            assert isinstance(msg, Publish)
            assert "été" == json.loads(bytes(msg.data))["message"]

    @pytest.mark.parametrize(
        "escape",
        [rb"\ud800", rb"\udbff", rb"\udc00", rb"\udfff", rb"\ud800\u0041", rb"\udc00\ud800"],
    )
    @pytest.mark.parametrize("where", ["data", "key", "producer", "message", "envelope"])
    def test_escaped_lone_surrogates_are_refused(self, escape: bytes, where: str) -> None:
        """``"\ud800"`` is valid JSON syntax but no Unicode text: refused wherever it is."""
        if where == "data":
            data = _with_field("log", b'"extra":"' + escape + b'"')
        elif where == "key":
            data = _with_field("log", b'"' + escape + b'":1')
        elif where == "producer":
            data = (
                b'{"type":"log","containerID":"c","id":1,"producer":"' + escape + b'",'
                b'"data":{"level":"info","message":"m"}}'
            )
        elif where == "message":
            data = (
                b'{"type":"log","containerID":"c","data":{"level":"INFO","message":"'
                + escape
                + b'"}}'
            )
        else:
            data = (
                b'{"type":"log","containerID":"c","x":"' + escape + b'",'
                b'"data":{"level":"info","message":"m"}}'
            )
        assert ErrorCode.INVALID_JSON == error_of(data)

    def test_escaped_surrogate_pairs_and_escaped_backslashes_are_kept(self) -> None:
        """An escaped pair is a character (Python's json.dumps writes emoji so)."""
        msg = decode_client(_with_field("log", rb'"emoji":"\ud83d\ude00","text":"\\ud800"'))
        assert isinstance(msg, Publish)
        _assert_utf8_json(msg)
        data = json.loads(bytes(msg.data))
        assert ("\U0001f600", "\\ud800") == (data["emoji"], data["text"])

    @given(st.binary(max_size=40))
    def test_accepted_data_is_always_utf8_json(self, junk: bytes) -> None:
        """Arbitrary bytes inside data's strings: refused, or stored as valid UTF-8 JSON."""
        quoted = junk.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        try:
            msg = decode_client(_with_field("log", b'"junk":"' + quoted + b'"'))
        except ProtocolError as exc:
            code = exc.code
        else:
            _assert_utf8_json(msg)
            return
        assert code in (ErrorCode.INVALID_JSON, ErrorCode.INVALID_MESSAGE)

    @pytest.mark.parametrize("depth", [1_000, 100_000])
    @pytest.mark.parametrize(
        "kind",
        ["data", "metadata", "envelope", "command", "subscribe", "level alias"],
    )
    def test_deep_nesting_is_invalid_message(self, depth: int, kind: str) -> None:
        """JSON nested a thousand deep is refused with a code, not a RecursionError."""
        deep = b"[" * depth + b"]" * depth
        data = {
            "data": _with_field("log", b'"deep":' + deep),
            "metadata": _with_field("log", b'"metadata":{"deep":' + deep + b"}"),
            "envelope": b'{"type":"log","containerID":"c","deep":'
            + deep
            + b',"data":{"level":"info","message":"m"}}',
            "command": _with_field("command", b'"deep":' + deep),
            "subscribe": b'{"type":"subscribe","containerID":"c","deep":' + deep + b"}",
            "level alias": b'{"type":"log","containerID":"c","data":{"level":"WARNING",'
            b'"message":"m","deep":' + deep + b"}}",
        }[kind]
        with pytest.raises(ProtocolError) as caught:
            decode_client(data)
        assert ErrorCode.INVALID_MESSAGE == caught.value.code
        assert "nested too deeply" in caught.value.words

    @pytest.mark.parametrize("id", [2**63, 2**64, 10**30, -1, 0])
    def test_publisher_ids_outside_1_to_2_63_minus_1_are_refused(self, id: int) -> None:
        """History keeps ids as signed 64-bit integers: a larger one could not be kept."""
        with pytest.raises(ProtocolError) as caught:
            decode_client(
                frame(type="log", containerID="c", id=id, data={"level": "info", "message": ""})
            )
        assert ErrorCode.INVALID_MESSAGE == caught.value.code
        assert id == caught.value.id

    def test_the_largest_publisher_id_is_accepted(self) -> None:
        msg = decode_client(
            frame(type="log", containerID="c", id=2**63 - 1, data={"level": "info", "message": ""})
        )
        assert isinstance(msg, Publish)
        assert 2**63 - 1 == msg.id


class TestEncode:
    def test_published(self) -> None:
        """A routed message has type, containerID, timestamp, seq and data, in that order."""
        out = encode_published("log", "c", "2024-01-01T00:00:00Z", 9, msgspec.Raw(b'{"a":1}'))
        expected = (
            b'{"type":"log","containerID":"c","timestamp":"2024-01-01T00:00:00Z",'
            b'"seq":9,"data":{"a":1}}'
        )
        assert expected == out

    def test_error(self) -> None:
        """The hub's error puts code and words under data."""
        out = json.loads(encode_error(ErrorCode.UNKNOWN_TYPE, "what", container_id="c", id=3))
        assert {
            "type": "error",
            "containerID": "c",
            "id": 3,
            "data": {"code": "unknown_type", "error": "what"},
        } == out

    def test_ack(self) -> None:
        """An ack names container, id, seq, and the producer when there is one."""
        assert {
            "type": "ack",
            "containerID": "c",
            "id": 2,
            "seq": 5,
            "producer": "p",
        } == json.loads(encode_ack("c", 2, 5, "p"))

    def test_formatter_matches_format_time(self) -> None:
        """TimeFormatter gives what format_time gives, across second boundaries."""
        stamp = TimeFormatter()
        for unix in (1700000000.0, 1700000000.999, 1700000001.0004, 1700000001.5, 1700000061.25):
            assert format_time(unix) == stamp(unix)

    @given(st.floats(min_value=0, max_value=4e9))
    def test_formatter_any_time(self, unix: float) -> None:
        """For any time the formatter agrees with format_time."""
        assert format_time(unix) == TimeFormatter()(unix)

    def test_time_round_trip(self) -> None:
        """format_time gives RFC 3339 UTC with milliseconds that parse_time reads back."""
        text = format_time(1700000000.25)
        assert "2023-11-14T22:13:20.250Z" == text
        assert 1700000000.25 == parse_time(text)


@pytest.mark.parametrize(
    ("kind", "container_id", "data"),
    [
        ("log", "c1", b'{"level":"info","message":"hi"}'),
        ("status", 'odd ",\\"seq\\":0,\\"data\\": id', b'{"status":"running"}'),
        ("complete", "}{", b'{"exitCode":0,"x":",\\"seq\\":0,\\"data\\":"}'),
        ("log", "c", b'{\n "level" : "info", "message": ",\\"seq\\":0,\\"data\\":"}'),
    ],
)
@pytest.mark.parametrize("seq", [1, 9, 10, 123456789012345678])
def test_published_head_and_tail_join_around_the_seq(
    kind: str, container_id: str, data: bytes, seq: int
) -> None:
    stamp = "2024-01-01T00:00:00.000Z"
    head = published_head(kind, container_id, stamp)
    tail = published_tail(msgspec.Raw(data))
    assert encode_published(kind, container_id, stamp, seq, msgspec.Raw(data)) == (
        head + str(seq).encode() + tail
    )


@given(
    kind=st.sampled_from(["log", "status", "complete", "error"]),
    container_id=st.text(min_size=1, max_size=40),
    stamp=st.text(max_size=30),
    data=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4),
    seq=st.integers(min_value=1, max_value=2**63),
)
def test_published_head_and_tail_join_for_any_fields(
    kind: str, container_id: str, stamp: str, data: dict[str, str], seq: int
) -> None:
    raw = msgspec.Raw(json.dumps(data).encode())
    head, tail = published_head(kind, container_id, stamp), published_tail(raw)
    assert encode_published(kind, container_id, stamp, seq, raw) == (
        head + str(seq).encode() + tail
    )
