"""Decode client frames into checked messages, and encode what the hub sends.

Everything here is a pure function of its arguments: bytes in, messages or bytes out, a
:class:`ProtocolError` for anything the hub cannot accept. The error carries the code and
the words sent back to the client.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from tailhub.protocol.codes import ErrorCode
from tailhub.protocol.messages import (
    LEVELS,
    PUBLISH_TYPES,
    STATUSES,
    Auth,
    ClientMessage,
    Command,
    CommandData,
    CompleteData,
    Envelope,
    ErrorData,
    HeartbeatData,
    LogData,
    Publish,
    SessionsRequest,
    StatusData,
    Subscribe,
    Unsubscribe,
)

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_PUBLISHER_ID",
    "MAX_SESSION_PAGE",
    "ProtocolError",
    "TimeFormatter",
    "decode_client",
    "encode",
    "encode_ack",
    "encode_error",
    "encode_published",
    "format_time",
    "parse_time",
    "published_head",
    "published_seq",
    "published_tail",
    "validate_container_id",
]

MAX_ID_LENGTH: Final = 256
MAX_PUBLISHER_ID: Final = (1 << 63) - 1
"""The largest publisher ``id``: history keeps ids as SQLite integers (signed 64-bit)."""
_TOO_DEEP: Final = "JSON nested too deeply"
_LEVEL_ALIASES: Final = {"warning": "warn", "fatal": "error", "trace": "debug", "err": "error"}
_STATUS_ALIASES: Final = {"failed": "error"}
_KNOWN_TYPES: Final = (
    "subscribe, unsubscribe, log, status, heartbeat, complete, error, command, sessions, auth"
)


class ProtocolError(Exception):
    """A frame the hub cannot accept: ``code`` and ``words`` go back to the client.

    When the frame was a JSON object, ``container_id``, ``id``, ``producer`` and ``token`` are
    what it carried (if anything), so the reply can name the refused message and a valid
    token still authenticates the connection.
    """

    def __init__(self, code: ErrorCode, words: str) -> None:
        super().__init__(words)
        self.code = code
        self.words = words
        self.container_id: str | None = None
        self.id: int | None = None
        self.producer: str | None = None
        self.token: str | None = None


_envelope_decoder: Final = msgspec.json.Decoder(Envelope)
_data_decoders: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    "log": msgspec.json.Decoder(LogData),
    "status": msgspec.json.Decoder(StatusData),
    "heartbeat": msgspec.json.Decoder(HeartbeatData),
    "complete": msgspec.json.Decoder(CompleteData),
    "error": msgspec.json.Decoder(ErrorData),
    "command": msgspec.json.Decoder(CommandData),
}
_dict_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_encoder: Final = msgspec.json.Encoder()


def format_time(unix: float) -> str:
    """RFC 3339 UTC with milliseconds, as ``2024-01-01T00:00:00.000Z``."""
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class TimeFormatter:
    """:func:`format_time` for a clock that moves forward: formats each second once.

    The hub stamps every message; rebuilding the date for each would cost more than the rest
    of the stamping together. One instance per owner (it remembers the last second, and the
    last time it was given: messages of one loop turn share their receive time).
    """

    __slots__ = ("_last", "_prefix", "_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._last = -1.0
        self._text = ""

    def __call__(self, unix: float) -> str:
        if unix == self._last:
            return self._text
        self._last = unix
        self._text = self._format(unix)
        return self._text

    def _format(self, unix: float) -> str:
        # Round to microseconds first, as datetime.fromtimestamp does, then cut to millis.
        fraction, whole = math.modf(unix)
        micros = round(fraction * 1_000_000)
        second = int(whole) + micros // 1_000_000
        fraction = (micros % 1_000_000) // 1000
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return f"{self._prefix}{fraction:03d}Z"


def parse_time(text: str, field: str = "timestamp") -> float:
    """Parse an RFC 3339 time into Unix seconds.

    Raises:
        ProtocolError: ``invalid_message`` naming ``field`` when ``text`` is not such a time.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            f"{field} must be an RFC 3339 time such as 2024-01-01T00:00:00Z, got {text[:64]!r}",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def validate_container_id(value: str | None, *, pattern: bool = False) -> str:
    """Check a ``containerID``: 1 to 256 printable characters; ``*`` only in patterns.

    Raises:
        ProtocolError: ``invalid_message`` saying what is wrong with it.
    """
    if value is None or value == "":
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "containerID is required")
    if len(value) > MAX_ID_LENGTH:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"containerID is longer than {MAX_ID_LENGTH} characters"
        )
    if not value.isprintable():
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, "containerID must not contain control characters"
        )
    if not pattern and "*" in value:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, "containerID may contain '*' only in a subscribe"
        )
    return value


_CHECKED_IDS: Final[set[str]] = set()
"""Container IDs that passed :func:`validate_container_id` (not as patterns): a publisher
sends the same few again and again. Emptied when it reaches :data:`_CHECKED_IDS_MAX`."""
_CHECKED_IDS_MAX: Final = 4096


def _checked_container_id(value: str | None) -> str:
    """:func:`validate_container_id` for a message's own container that is not in
    :data:`_CHECKED_IDS` (the caller looks there first); added to it once it passed."""
    checked = validate_container_id(value)
    if len(_CHECKED_IDS) >= _CHECKED_IDS_MAX:
        _CHECKED_IDS.clear()
    _CHECKED_IDS.add(checked)
    return checked


def _decode_data(kind: str, raw: msgspec.Raw, *, optional: bool = False) -> Any:
    if not raw:
        if optional:
            return None
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"{kind} needs a data object")
    try:
        return _data_decoders[kind].decode(raw)
    except msgspec.ValidationError as exc:
        words = str(exc).replace("`$.", "`data.").replace("`$`", "`data`")
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"{kind}: {words}") from None


def _rewrite(raw: msgspec.Raw, field: str, value: str) -> msgspec.Raw:
    obj = _dict_decoder.decode(raw)
    obj[field] = value
    return msgspec.Raw(_encoder.encode(obj))


def _normalise(value: str, allowed: tuple[str, ...], aliases: dict[str, str]) -> str | None:
    if value in allowed:
        return value
    low = value.lower()
    low = aliases.get(low, low)
    return low if low in allowed else None


def _publish(kind: str, env: Envelope, token: str | None, spaced: bool) -> Publish:
    """``spaced``: the frame holds a line break, which in JSON that decoded can only be
    whitespace: it is dropped from ``data``, so that a stored message is always one line
    (NDJSON and SSE readers split on line breaks)."""
    container_id = env.containerID
    if container_id is None or container_id not in _CHECKED_IDS:
        container_id = _checked_container_id(container_id)
    raw = env.data
    if spaced:
        raw = msgspec.Raw(bytes(raw).translate(None, b"\r\n"))
    status = exit_code = level = metadata = None
    if kind == "log":
        log: LogData = _decode_data(kind, raw)
        metadata = log.metadata
        level = log.level
        if level not in LEVELS and (level := _normalise(level, LEVELS, _LEVEL_ALIASES)) is None:
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                f"log level must be one of {', '.join(LEVELS)}, got {log.level[:32]!r}",
            )
        if level != log.level:
            raw = _rewrite(raw, "level", level)
    elif kind == "status":
        st: StatusData = _decode_data(kind, raw)
        status = _normalise(st.status, STATUSES, _STATUS_ALIASES)
        if status is None:
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                f"status must be one of {', '.join(STATUSES)} (or failed), got {st.status[:32]!r}",
            )
        if status != st.status:
            raw = _rewrite(raw, "status", status)
    elif kind == "complete":
        done: CompleteData = _decode_data(kind, raw)
        exit_code = done.exitCode
    elif kind == "heartbeat":
        if _decode_data(kind, raw, optional=True) is None:
            raw = msgspec.Raw(b"{}")
    else:
        _decode_data(kind, raw)
    if env.timestamp is not None:
        parse_time(env.timestamp)
    if env.id is not None and not 1 <= env.id <= MAX_PUBLISHER_ID:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "id must be a whole number from 1 to 2^63-1")
    producer = env.producer or ""
    if len(producer) > MAX_ID_LENGTH:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"producer is longer than {MAX_ID_LENGTH} characters"
        )
    return Publish(
        type=kind,
        container_id=container_id,
        data=raw,
        timestamp=env.timestamp,
        id=env.id,
        producer=producer,
        token=token,
        status=status,
        exit_code=exit_code,
        level=level,
        metadata=metadata,
    )


def _subscribe(env: Envelope, token: str | None) -> Subscribe:
    container_id = validate_container_id(env.containerID, pattern=True)
    given = [name for name in ("since", "tail", "from") if getattr(env, _field(name)) is not None]
    if len(given) > 1:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"give at most one of since, tail and from, not {given}"
        )
    if env.since is not None and env.since < 0:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "since must be 0 or more")
    if env.tail is not None and env.tail < 0:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "tail must be 0 or more")
    from_time = parse_time(env.from_, "from") if env.from_ is not None else None
    return Subscribe(
        container_id=container_id,
        since=env.since,
        tail=env.tail,
        from_time=from_time,
        token=token,
        epoch=env.epoch,
    )


MAX_SESSION_PAGE: Final = 1000
"""The most sessions one listing page holds."""


def _sessions(env: Envelope, token: str | None) -> SessionsRequest:
    if env.limit is not None and not 1 <= env.limit <= MAX_SESSION_PAGE:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"limit must be from 1 to {MAX_SESSION_PAGE}"
        )
    if env.status is not None and not 0 < len(env.status) <= 32:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "status must be 1 to 32 characters")
    if env.cursor is not None and len(env.cursor) > MAX_ID_LENGTH * 2:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "cursor is too long")
    return SessionsRequest(token=token, status=env.status, limit=env.limit, cursor=env.cursor)


def _field(name: str) -> str:
    return "from_" if name == "from" else name


def _command(env: Envelope, token: str | None) -> Command:
    container_id = validate_container_id(env.containerID)
    cmd: CommandData = _decode_data("command", env.data)
    if not cmd.action:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "command: data.action must not be empty")
    if cmd.action == "input" and cmd.text is None:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "command input needs data.text")
    if cmd.action == "reply" and not cmd.text:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "command reply needs a non-empty data.text")
    return Command(container_id=container_id, action=cmd.action, data=env.data, token=token)


def decode_client(frame: bytes | str, *, utf8_checked: bool = False) -> ClientMessage:
    """Decode and check one client frame.

    What this accepts is valid UTF-8 JSON throughout, ``data`` included (it is stored and
    sent on as it came, but for line breaks between its tokens, which are dropped so that a
    stored message is one line): bytes that are not UTF-8 are refused, and so are escaped lone
    surrogates (``"\\ud800"``), which msgspec refuses wherever they appear. No input raises
    anything but :class:`ProtocolError`: JSON nested too deeply is refused too.

    Args:
        frame: the payload of one WebSocket text or binary frame, or one line of an HTTP
            publish.
        utf8_checked: True when the caller has already checked that ``frame`` is UTF-8
            (the transport does for text frames); bytes are checked here otherwise.

    Returns:
        The message, with its type in lower case and its fields checked.

    Raises:
        ProtocolError: ``invalid_json`` (not UTF-8, not JSON), ``invalid_message`` or
            ``unknown_type``, with words that say what was wrong.
    """
    if isinstance(frame, str):
        spaced = "\n" in frame or "\r" in frame
    else:
        if not utf8_checked and not frame.isascii():
            _check_utf8(frame)
        spaced = _LF in frame or _CR in frame  # int needles: a memchr each
    try:
        env = _envelope_decoder.decode(frame)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if text.startswith("Expected `object`"):
            text = "a message must be a JSON object, " + text[len("Expected `object`, ") :]
        else:
            text = text.replace("`$.", "`").replace("from_", "from")
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, text) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, _TOO_DEEP) from None
    token = env.auth.token if env.auth is not None and env.auth.token else env.token
    try:
        if env.type in PUBLISH_TYPES:  # the usual message, its type already in lower case
            return _publish(env.type, env, token, spaced)
        return _dispatch(env, token, spaced)
    except ProtocolError as exc:
        error = exc
    except msgspec.DecodeError as exc:  # from data, decoded once its type is known
        error = ProtocolError(ErrorCode.INVALID_JSON, f"invalid JSON: {exc}")
    except RecursionError:
        error = ProtocolError(ErrorCode.INVALID_MESSAGE, _TOO_DEEP)
    error.container_id = env.containerID
    error.id = env.id
    error.producer = env.producer
    error.token = token
    raise error


_LF: Final = 0x0A
_CR: Final = 0x0D


def _check_utf8(frame: bytes) -> None:
    try:
        frame.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            ErrorCode.INVALID_JSON, f"invalid JSON: not valid UTF-8 at byte {exc.start}"
        ) from None


def _dispatch(env: Envelope, token: str | None, spaced: bool) -> ClientMessage:
    kind = env.type.lower()
    if kind in PUBLISH_TYPES:
        return _publish(kind, env, token, spaced)
    if kind == "subscribe":
        return _subscribe(env, token)
    if kind == "unsubscribe":
        return Unsubscribe(
            container_id=validate_container_id(env.containerID, pattern=True), token=token
        )
    if kind == "command":
        return _command(env, token)
    if kind == "sessions":
        return _sessions(env, token)
    if kind == "auth":
        if not token:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "auth needs a token")
        return Auth(token=token)
    raise ProtocolError(
        ErrorCode.UNKNOWN_TYPE, f"unknown message type {env.type[:32]!r}; known: {_KNOWN_TYPES}"
    )


class _Published(msgspec.Struct):
    type: str
    containerID: str
    timestamp: str
    seq: int
    data: msgspec.Raw


def encode_published(
    kind: str, container_id: str, timestamp: str, seq: int, data: msgspec.Raw
) -> bytes:
    """The one encoding of a stored, routed message: what subscribers and history get."""
    return _encoder.encode(_Published(kind, container_id, timestamp, seq, data))


_SEQ_MARK: Final = b',"seq":0,"data":'
_NO_DATA: Final = msgspec.Raw(b"0")


def published_head(kind: str, container_id: str, timestamp: str) -> bytes:
    """The bytes of :func:`encode_published` before the ``seq`` digits, the same for every
    message of one kind, container and timestamp.

    For every ``seq``, ``published_head(kind, container_id, timestamp) + str(seq).encode() +
    published_tail(data) == encode_published(kind, container_id, timestamp, seq, data)``: an
    engine that assigns ``seq`` where Python does not run (a Redis script) joins the three.
    """
    encoded = encode_published(kind, container_id, timestamp, 0, _NO_DATA)
    # The fields before seq are JSON strings, in which a quote is always escaped, so the
    # first occurrence of the mark is the real one.
    return encoded[: encoded.index(_SEQ_MARK) + len(b',"seq":')]


def published_tail(data: msgspec.Raw | bytes) -> bytes:
    """The bytes of :func:`encode_published` after the ``seq`` digits: ``data`` is written
    as it came (see :func:`published_head`)."""
    return b',"data":%b}' % data


_SEQ_FIELD: Final = re.compile(rb',"seq":(\d+)')


def published_seq(encoded: bytes) -> int:
    """The ``seq`` of a message made by :func:`encode_published` (also inside a frame).

    Its ``seq`` is the first ``,"seq":`` in the bytes: the fields before it are strings, in
    which JSON escapes every quote. Returns 0 for bytes that hold none.
    """
    found = _SEQ_FIELD.search(encoded)
    return int(found.group(1)) if found else 0


def encode(message: dict[str, Any]) -> bytes:
    """Encode a hub reply (``subscribed``, ``sessions``, ``ack``, ...)."""
    return _encoder.encode(message)


def encode_error(
    code: ErrorCode,
    words: str,
    *,
    container_id: str | None = None,
    id: int | None = None,
    producer: str | None = None,
) -> bytes:
    """The hub's ``error`` reply; ``id`` and ``producer`` name the message it answers."""
    message: dict[str, Any] = {"type": "error"}
    if container_id is not None:
        message["containerID"] = container_id
    if id is not None:
        message["id"] = id
        if producer:
            message["producer"] = producer
    message["data"] = {"code": code.value, "error": words}
    return _encoder.encode(message)


def encode_ack(container_id: str, id: int, seq: int, producer: str = "") -> bytes:
    """A cumulative ack: every message up to ``id`` from this producer is stored."""
    message: dict[str, Any] = {"type": "ack", "containerID": container_id, "id": id, "seq": seq}
    if producer:
        message["producer"] = producer
    return _encoder.encode(message)
