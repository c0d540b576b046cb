"""The HTTP API: sessions, history and live logs, publishing and commands over plain HTTP.

For containers that only have ``curl`` and for tools that would rather not speak WebSocket.
Every route goes through the same node as the WebSocket, so the guarantees are the same:
a message published here is checked by :func:`~tailhub.protocol.decode_client`, stamped with
the next ``seq`` and routed like any other, and a followed log is a node subscription (backlog,
then live, no gap and no duplicate).

Errors are the protocol's own error object, with the HTTP status to match::

    {"type": "error", "data": {"code": "invalid_message", "error": "line 2: ..."}}

so a client handles one shape over both transports. ``code`` is one of the protocol's error
codes, or one of ``invalid_request`` (a bad query parameter or body), ``not_found``,
``too_large``, ``request_timeout`` (a body too slow to arrive) and ``method_not_allowed``,
which only HTTP has. Every route but ``/healthz``,
``/readyz`` and ``/openapi.json`` needs a token (``Authorization: Bearer`` or ``?token=``): the
shared token, or a scoped one, whose scope applies as on the WebSocket (a request outside it
is answered 403 ``forbidden``; the session list shows only what the token may read).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import structlog
from aiohttp import web

from tailhub import __version__
from tailhub.agents import fleet_totals
from tailhub.auth import TokenError
from tailhub.core.node import CommandRefusedError, Node, PublishRefusedError, refusal_words
from tailhub.engine import EngineError, next_page_size
from tailhub.grants import Grant
from tailhub.protocol import (
    LEVELS,
    MAX_SESSION_PAGE,
    ROUTED_TYPES,
    Command,
    ErrorCode,
    ProtocolError,
    Publish,
    Subscribe,
    decode_client,
    encode,
    parse_time,
    validate_container_id,
)
from tailhub.server.access import grant_connection, revoke
from tailhub.server.openapi import build_document
from tailhub.server.state import STATE, ServerState
from tailhub.server.stream import TAKE, StreamPeer
from tailhub.server.ws import request_token
from tailhub.store.base import StoreError

__all__ = [
    "ApiError",
    "body_limit",
    "count_error",
    "error_response",
    "grant_of",
    "require_admin",
    "require_token",
    "setup",
]

_log = structlog.get_logger("tailhub.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NDJSON: Final = "application/x-ndjson"
SSE: Final = "text/event-stream"
_PAGE: Final = 1000
_DURABLE_TIMEOUT: Final = 10.0
_IDLE_CHECK: Final = 1.0
"""Seconds between checks that an idle follower's client is still connected."""
_CHUNK: Final = 1 << 16
_TOO_DEEP: Final = "the JSON is nested too deeply"
_DECODE_STEP: Final = 500
"""Lines of a published body decoded in one go before other work gets a turn of the loop."""
_MAX_SEQ: Final = (1 << 63) - 1
_LEVEL_RANK: Final = {level: rank for rank, level in enumerate(LEVELS)}
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})
_PROTOCOL_CODES: Final = frozenset(code.value for code in ErrorCode)
_HTTP_CODES: Final = {
    400: "invalid_request",
    401: ErrorCode.UNAUTHORIZED.value,
    403: ErrorCode.FORBIDDEN.value,
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
}


class ApiError(Exception):
    """A request the API refuses: becomes ``status`` with the protocol's error body.

    Args:
        status: the HTTP status.
        code: the error code (a protocol :class:`~tailhub.protocol.ErrorCode` or an
            HTTP-only one, see the module docstring).
        words: what was wrong, for a person; never contains a token.
        extra: more fields for ``data`` (``line`` for a bad line of a published body).
    """

    def __init__(self, status: int, code: str, words: str, **extra: Any) -> None:
        super().__init__(words)
        self.status = status
        self.code = code
        self.words = words
        self.extra = extra


def error_response(status: int, code: str, words: str, **extra: Any) -> web.Response:
    """The JSON error response every route of the API answers with."""
    headers = {"WWW-Authenticate": 'Bearer realm="tailhub"'} if status == 401 else None
    body = encode({"type": "error", "data": {"code": code, "error": words, **extra}})
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


_GRANT: Final = "tailhub_grant"


def require_token(request: web.Request) -> Grant:
    """Refuse a request without a valid token; returns (and keeps on it) what it allows.

    Raises:
        ApiError: 401 ``unauthorized`` (no token, a wrong, forged, expired or revoked one);
            the words never echo what was presented.
    """
    token = request_token(request)
    if token is None:
        raise ApiError(
            401,
            ErrorCode.UNAUTHORIZED,
            "a token is required: send Authorization: Bearer <token> or add ?token=<token>",
        )
    try:
        grant = request.app[STATE].auth.grant(token)
    except TokenError as exc:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, str(exc)) from None
    request[_GRANT] = grant
    return grant


def grant_of(request: web.Request) -> Grant:
    """The grant :func:`require_token` found for ``request``."""
    grant: Grant = request[_GRANT]
    return grant


def require_admin(request: web.Request) -> Grant:
    """Refuse a request whose token is not an admin's.

    Raises:
        ApiError: 401 as :func:`require_token`; 403 ``forbidden`` for a scoped token.
    """
    grant = require_token(request)
    if not grant.is_admin:
        raise ApiError(
            403, ErrorCode.FORBIDDEN, f"a {grant.role.value} token may not use {request.path}"
        )
    return grant


def _forbid(grant: Grant, allowed: bool, action: str, container_id: str) -> None:
    if not allowed:
        raise ApiError(403, ErrorCode.FORBIDDEN, refusal_words(grant, action, container_id))


def count_error(request: web.Request, code: str) -> None:
    """Count a refusal in the hub's ``errors`` counter when its code is a protocol one.

    The HTTP API refuses what the WebSocket would refuse, so ``tailhub_errors_total`` counts
    both; HTTP-only codes (``not_found``, ...) are not errors of the protocol and are not counted.
    """
    if code in _PROTOCOL_CODES:
        request.app[STATE].node.stats.errors[code] += 1


def _endpoint(handler: Handler) -> Handler:
    """Wrap a handler: check the token first, and turn :class:`ApiError` into its response."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            require_token(request)
            return await handler(request)
        except ApiError as exc:
            count_error(request, exc.code)
            response = error_response(exc.status, exc.code, exc.words, **exc.extra)
            if exc.status == 408:
                response.force_close()  # the rest of the body is not waited for
            return response

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the router's own errors under ``/api/`` (404, 405, 413) the API's JSON body."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        code = _HTTP_CODES.get(exc.status, "invalid_request")
        allow = exc.headers.get("Allow")
        if exc.status == 404:
            words = f"no such route: {request.path[:200]} (see /openapi.json)"
        elif exc.status == 405 and allow:
            words = f"{request.method} is not allowed here; use {allow}"
        else:
            words = exc.reason
        response = error_response(exc.status, code, words)
        if allow:
            response.headers["Allow"] = allow
        return response


# -- parameters ---------------------------------------------------------------------------


def _container(request: web.Request) -> str:
    """The containerID of the URL, checked as the WebSocket checks it (no patterns)."""
    value = request.match_info["id"]
    try:
        return validate_container_id(value)
    except ProtocolError as exc:
        raise ApiError(400, "invalid_request", f"the URL's containerID: {exc.words}") from None


def _whole_number(raw: str) -> int | None:
    """``raw`` as a whole number from 0 to 2^63 - 1 in ASCII digits, else None.

    Every number a client sends in a query parameter or header is read here: ``str.isdigit``
    alone accepts digits ``int`` refuses (``²``) and ``int`` refuses more than 4,300 of them.
    """
    text = raw.strip()
    if not text or len(text) > 19 or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= _MAX_SEQ else None


def _count(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    number = _whole_number(raw)
    if number is None:
        raise ApiError(
            400, "invalid_request", f"{name} must be a whole number 0 or more, got {raw[:32]!r}"
        )
    return number


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(
        400, "invalid_request", f"{name} must be 1 or 0 (true or false), got {raw[:32]!r}"
    )


@dataclass(frozen=True, slots=True)
class _LogQuery:
    since: int | None
    tail: int | None
    from_time: float | None
    min_level: int | None
    follow: bool
    sse: bool


def _log_query(request: web.Request) -> _LogQuery:
    sse = SSE in request.headers.get("Accept", "")
    since = _count(request, "since")
    tail = _count(request, "tail")
    raw_from = request.query.get("from")
    given = [
        name
        for name, value in (("since", since), ("tail", tail), ("from", raw_from))
        if value is not None
    ]
    if len(given) > 1:
        raise ApiError(
            400,
            "invalid_request",
            f"give at most one of since, tail and from, not {', '.join(given)}",
        )
    try:
        from_time = parse_time(raw_from, "from") if raw_from is not None else None
    except ProtocolError as exc:
        raise ApiError(400, "invalid_request", exc.words) from None
    min_level = None
    raw_level = request.query.get("level")
    if raw_level is not None:
        min_level = _LEVEL_RANK.get(raw_level.strip().lower())
        if min_level is None:
            raise ApiError(
                400,
                "invalid_request",
                f"level must be one of {', '.join(LEVELS)}, got {raw_level[:32]!r}",
            )
    last_event = request.headers.get("Last-Event-ID") if sse else None
    if last_event is not None and last_event.strip():
        seq = _whole_number(last_event)
        if seq is None:
            raise ApiError(
                400, "invalid_request", f"Last-Event-ID must be a seq, got {last_event[:32]!r}"
            )
        since, tail, from_time = seq, None, None
    return _LogQuery(since, tail, from_time, min_level, _flag(request, "follow", default=sse), sse)


# -- sessions -----------------------------------------------------------------------------


async def _list_sessions(request: web.Request) -> web.StreamResponse:
    node = request.app[STATE].node
    status = request.query.get("status")
    if "active" in request.query:
        status = "active" if _flag(request, "active") else "ended"
    if status is not None and not 0 < len(status) <= 32:
        raise ApiError(400, "invalid_request", "status must be 1 to 32 characters")
    limit = _count(request, "limit")
    if limit is not None and not 1 <= limit <= MAX_SESSION_PAGE:
        raise ApiError(400, "invalid_request", f"limit must be from 1 to {MAX_SESSION_PAGE}")
    cursor = request.query.get("cursor") or None
    try:
        sessions, following = await node.list_sessions(
            status=status, limit=limit, cursor=cursor, grant=grant_of(request)
        )
    except (EngineError, StoreError) as exc:
        raise ApiError(503, ErrorCode.UNAVAILABLE, str(exc)) from None
    body: dict[str, Any] = {"sessions": sessions}
    if following is not None:
        body["cursor"] = following
    return web.Response(body=encode(body), content_type="application/json")


async def _get_session(request: web.Request) -> web.StreamResponse:
    node = request.app[STATE].node
    container_id = _container(request)
    grant = grant_of(request)
    _forbid(grant, grant.may_read(container_id), "read", container_id)
    try:
        session = await node.engine.session(container_id)
    except (EngineError, StoreError) as exc:
        raise ApiError(503, ErrorCode.UNAVAILABLE, str(exc)) from None
    if session is None:
        raise ApiError(404, "not_found", f"no session for containerID {container_id!r}")
    return web.Response(body=encode(node.describe(session)), content_type="application/json")


async def _fleet(request: web.Request) -> web.StreamResponse:
    node = request.app[STATE].node
    try:
        sessions = await node.all_sessions(grant_of(request))
    except (EngineError, StoreError) as exc:
        raise ApiError(503, ErrorCode.UNAVAILABLE, str(exc)) from None
    return web.Response(body=encode(fleet_totals(sessions)), content_type="application/json")


async def _known(node: Node, container_id: str) -> bool:
    try:
        if (await node.engine.position(container_id)).last_seq > 0:
            return True
        return await node.engine.session(container_id) is not None
    except (EngineError, StoreError) as exc:
        raise ApiError(503, ErrorCode.UNAVAILABLE, str(exc)) from None


# -- logs ---------------------------------------------------------------------------------


class _Head(msgspec.Struct):
    """The fields of an outgoing message the log stream looks at; the rest stays raw."""

    type: str = ""
    seq: int | None = None
    data: msgspec.Raw = msgspec.Raw(b"")


class _Level(msgspec.Struct):
    level: str = ""


_head_decoder: Final = msgspec.json.Decoder(_Head)
_level_decoder: Final = msgspec.json.Decoder(_Level)


def _wanted(head: _Head, min_level: int | None) -> bool:
    """Whether a routed message passes the ``level`` filter (only ``log`` lines are filtered)."""
    if min_level is None or head.type != "log" or not head.data:
        return True
    try:
        level = _level_decoder.decode(head.data).level
    except msgspec.DecodeError:
        return True
    return _LEVEL_RANK.get(level, len(LEVELS)) >= min_level


def _add_line(out: bytearray, seq: int, payload: bytes | memoryview, sse: bool) -> None:
    """Append one message to ``out``: an NDJSON line, or an SSE event with ``seq`` as its id."""
    if sse:
        out += b"id: %d\ndata: " % seq
        out += payload
        out += b"\n\n"
    else:
        out += payload
        out += b"\n"


def _error_line(payload: bytes, sse: bool) -> bytes:
    return b"event: error\ndata: %b\n\n" % payload if sse else payload + b"\n"


async def _open_stream(request: web.Request, sse: bool) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": SSE if sse else NDJSON,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response


async def _logs(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    container_id = _container(request)
    grant = grant_of(request)
    _forbid(grant, grant.may_read(container_id), "read", container_id)
    query = _log_query(request)
    if not query.follow and not await _known(state.node, container_id):
        raise ApiError(404, "not_found", f"no session or history for containerID {container_id!r}")
    if query.follow:
        return await _follow(request, state, container_id, query)
    return await _dump(request, state.node, container_id, query)


async def _dump(
    request: web.Request, node: Node, container_id: str, query: _LogQuery
) -> web.StreamResponse:
    """The kept history as it is now, then the end of the response."""
    try:
        last = (await node.engine.position(container_id)).last_seq
        after = query.since or 0
        if query.tail is not None:
            after = max(0, last - query.tail)
        page = (
            await node.engine.read(
                container_id,
                after=after,
                since_time=query.from_time,
                limit=next_page_size([], _PAGE),
            )
            if after < last
            else []
        )
    except (EngineError, StoreError) as exc:
        raise ApiError(503, ErrorCode.UNAVAILABLE, str(exc)) from None
    response = await _open_stream(request, query.sse)
    try:
        while page:
            out = bytearray()
            for message in page:
                if message.seq > last:
                    break
                if query.min_level is None or _wanted(
                    _head_decoder.decode(message.payload), query.min_level
                ):
                    _add_line(out, message.seq, message.payload, query.sse)
                    if len(out) >= TAKE:
                        await response.write(out)
                        out = bytearray()
            if out:
                await response.write(out)
            after = page[-1].seq
            if after >= last:
                break
            try:
                page = await node.engine.read(
                    container_id,
                    after=after,
                    since_time=query.from_time,
                    limit=next_page_size(page, _PAGE),
                )
            except (EngineError, StoreError) as exc:
                await response.write(_error_line(_store_error(exc, container_id), query.sse))
                break
        await response.write_eof()
    except ConnectionError:
        pass
    return response


def _store_error(exc: EngineError | StoreError, container_id: str) -> bytes:
    return encode(
        {
            "type": "error",
            "containerID": container_id,
            "data": {"code": ErrorCode.UNAVAILABLE.value, "error": str(exc)},
        }
    )


async def _follow(
    request: web.Request, state: ServerState, container_id: str, query: _LogQuery
) -> web.StreamResponse:
    """History as asked, then live messages until the client leaves or the hub closes it."""
    node = state.node
    if len(node.hub.connections) >= state.settings.max_connections:
        raise ApiError(503, ErrorCode.UNAVAILABLE, "too many connections (TAILHUB_MAX_CONNECTIONS)")
    peer = StreamPeer(request.transport)
    conn = node.connect(peer, remote=request.remote or "", grant=None)
    grant_connection(state, conn, grant_of(request))  # closed at the token's exp
    peer.conn = conn
    try:
        since = query.since
        if since is None and query.tail is None and query.from_time is None:
            since = 0
        node.subscribe(
            conn,
            Subscribe(
                container_id=container_id, since=since, tail=query.tail, from_time=query.from_time
            ),
        )
        response = await _open_stream(request, query.sse)
        with contextlib.suppress(ConnectionError):
            await _pump(peer, response, query)
            if peer.closed:
                response.force_close()  # closed by the hub (4429, 4408, 1001): not kept alive
            await response.write_eof()
        return response
    finally:
        node.disconnect(conn)
        peer.finish()


async def _pump(peer: StreamPeer, response: web.StreamResponse, query: _LogQuery) -> None:
    """Move what the hub sends to ``peer`` into ``response`` until either side ends."""
    sse = query.sse
    while True:
        ending = peer.closed or peer.gone
        payloads, taken = peer.take()
        out = bytearray()
        for payload in payloads:
            try:
                head = _head_decoder.decode(payload)
            except msgspec.DecodeError:
                continue
            if head.type not in ROUTED_TYPES:
                continue  # the node's replies to the subscriber: subscribed
            if head.seq is None:
                # Not a container's message but the node's error reply: it could not send
                # the backlog (store failing) and dropped the subscription. Say so and end.
                await response.write(bytes(out) + _error_line(bytes(payload), sse))
                return
            if _wanted(head, query.min_level):
                _add_line(out, head.seq, payload, sse)
        if peer.keepalive_due:
            peer.keepalive_due = False
            if sse:
                out += b": keepalive\n\n"
        if out:
            await response.write(out)
        if taken:
            peer.written(taken)
            continue  # more may be waiting, also once the hub has closed the follower
        if ending:
            return
        await peer.wait(_IDLE_CHECK)


# -- publishing ---------------------------------------------------------------------------


class _Target(msgspec.Struct):
    containerID: str | None = None


_target_decoder: Final = msgspec.json.Decoder(_Target)
_REFUSED_STATUS: Final = {ErrorCode.MAX_SESSIONS: 429, ErrorCode.FORBIDDEN: 403}


def body_limit(settings_max_message: int) -> int:
    """The most bytes a request body may have: four messages of the largest size, 4 MiB or more."""
    return max(settings_max_message, 1 << 20) * 4


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, refusing one over ``limit`` bytes as early as possible.

    Raises:
        ApiError: 413 ``too_large`` past ``limit``; 408 ``request_timeout`` when the whole
            body has not arrived within ``body_timeout`` (a client trickling it in would
            otherwise hold the connection and its buffer for ever).
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ApiError(
            413, "too_large", f"the body is {declared} bytes; at most {limit} are accepted"
        )
    chunks: list[bytes] = []
    size = 0
    timeout = request.app[STATE].settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413, "too_large", f"the body is more than {limit} bytes, the most accepted"
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408,
            "request_timeout",
            f"the body did not arrive within {timeout:g} s (TAILHUB_BODY_TIMEOUT); "
            f"{size} bytes were read, nothing was stored",
        ) from None
    return b"".join(chunks)


def _decode_line(line: bytes, container_id: str, number: int) -> Publish:
    """One line of a published body, checked as the WebSocket checks a frame."""
    try:
        target = _target_decoder.decode(line).containerID
    except (msgspec.DecodeError, msgspec.ValidationError):
        target = container_id  # let decode_client word the error
    except RecursionError:
        raise ApiError(
            400, ErrorCode.INVALID_JSON, f"line {number}: {_TOO_DEEP}", line=number
        ) from None
    if target is None and line.startswith(b"{") and line[1:].strip() != b"}":
        # The URL names the container: put it in, so decode_client checks the message whole.
        line = b'{"containerID":' + msgspec.json.encode(container_id) + b"," + line[1:]
    elif target is not None and target != container_id:
        raise ApiError(
            400,
            ErrorCode.INVALID_MESSAGE,
            f"line {number}: containerID {target[:64]!r} is not the URL's "
            f"{container_id[:64]!r}; leave it out or make them match",
            line=number,
        )
    try:
        message = decode_client(line)
    except ProtocolError as exc:
        raise ApiError(400, exc.code, f"line {number}: {exc.words}", line=number) from None
    except RecursionError:
        raise ApiError(
            400, ErrorCode.INVALID_JSON, f"line {number}: {_TOO_DEEP}", line=number
        ) from None
    if not isinstance(message, Publish):
        raise ApiError(
            400,
            ErrorCode.INVALID_MESSAGE,
            f"line {number}: only log, status, heartbeat, complete and error messages can be "
            "published here",
            line=number,
        )
    return message


async def _post_messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    node = state.node
    container_id = _container(request)
    grant = grant_of(request)
    _forbid(grant, grant.may_publish(container_id), "publish for", container_id)
    body = await _read_body(request, body_limit(state.settings.max_message_size))
    whole = request.content_type == "application/json"
    lines = [body] if whole else body.split(b"\n")
    largest = state.settings.max_message_size
    most = state.settings.max_request_messages
    messages: list[Publish] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if len(line) > largest:
            raise ApiError(
                413,
                "too_large",
                f"line {number} is {len(line)} bytes; a message may have at most {largest} "
                "(TAILHUB_MAX_MESSAGE_SIZE)",
                line=number,
            )
        if len(messages) == most:
            raise ApiError(
                413,
                "too_large",
                f"the body holds more than {most} messages, the most one request may publish "
                "(TAILHUB_MAX_REQUEST_MESSAGES); nothing was stored, send them in several "
                "requests",
                line=number,
            )
        messages.append(_decode_line(line, container_id, number))
        if len(messages) % _DECODE_STEP == 0:
            await asyncio.sleep(0)  # let other clients in between steps of a large body
    if not messages:
        raise ApiError(
            400,
            "invalid_request",
            "the body holds no message: send one JSON object, or one per line",
        )
    # The request's messages are handed on together, in order, with nothing of another
    # request between them; the answer waits until they are durable, as a WebSocket ack does.
    try:
        async with asyncio.timeout(_DURABLE_TIMEOUT):
            seqs = await node.publish_request(container_id, messages, grant)
    except PublishRefusedError as exc:
        status = _REFUSED_STATUS.get(exc.code, 503)
        raise ApiError(status, exc.code, f"{exc.words}; nothing was stored") from None
    except TimeoutError:
        raise ApiError(
            503,
            ErrorCode.UNAVAILABLE,
            "the messages were accepted and routed but the engine has not made them durable "
            "in time; check /readyz",
        ) from None
    return web.Response(
        body=encode({"accepted": len(messages), "seq": seqs}), content_type="application/json"
    )


# -- commands -----------------------------------------------------------------------------


async def _post_command(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    node = state.node
    container_id = _container(request)
    grant = grant_of(request)
    _forbid(grant, grant.may_command(container_id), "send commands to", container_id)
    body = await _read_body(request, state.settings.max_message_size)
    try:
        given = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, ErrorCode.INVALID_JSON, f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, ErrorCode.INVALID_JSON, _TOO_DEEP) from None
    if not isinstance(given, dict):
        raise ApiError(
            400,
            ErrorCode.INVALID_MESSAGE,
            'the body must be a JSON object such as {"action": "cancel"}',
        )
    if "type" in given:
        target = given.setdefault("containerID", container_id)
        if target != container_id:
            raise ApiError(
                400,
                ErrorCode.INVALID_MESSAGE,
                f"containerID {str(target)[:64]!r} is not the URL's {container_id[:64]!r}",
            )
        message: dict[str, Any] = given
    else:
        message = {"type": "command", "containerID": container_id, "data": given}
    try:
        command = decode_client(encode(message))
    except ProtocolError as exc:
        raise ApiError(400, exc.code, exc.words) from None
    except RecursionError:
        raise ApiError(400, ErrorCode.INVALID_JSON, _TOO_DEEP) from None
    if not isinstance(command, Command):
        raise ApiError(
            400, ErrorCode.INVALID_MESSAGE, 'the body must be a command: {"action": ...}'
        )
    try:
        delivered = await node.send_command(command)
    except (EngineError, StoreError) as exc:
        raise ApiError(503, ErrorCode.UNAVAILABLE, str(exc)) from None
    except CommandRefusedError as exc:
        raise ApiError(409, exc.code, exc.words) from None
    if not delivered:
        raise ApiError(
            409,
            ErrorCode.NO_CONTAINER,
            f"no connection publishes for {container_id!r}; the command was not sent",
        )
    return web.Response(
        body=encode({"action": command.action, "delivered": delivered}),
        content_type="application/json",
    )


# -- tokens -------------------------------------------------------------------------------


class _MintRequest(msgspec.Struct, forbid_unknown_fields=True):
    role: str
    containers: list[str] = msgspec.field(default_factory=list)
    ttl: float = 86400.0
    sub: str | None = None


class _RevokeRequest(msgspec.Struct, forbid_unknown_fields=True):
    jti: str
    exp: float | None = None


def _decode_body(body: bytes, kind: type[Any], example: str) -> Any:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, ErrorCode.INVALID_MESSAGE, f"{exc}; send {example}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, ErrorCode.INVALID_JSON, f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, ErrorCode.INVALID_JSON, _TOO_DEEP) from None


async def _whoami(request: web.Request) -> web.StreamResponse:
    """What the request's token allows (the dashboard and the CLI hide what it may not do)."""
    return web.Response(body=encode(grant_of(request).describe()), content_type="application/json")


async def _mint(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    state = request.app[STATE]
    body = await _read_body(request, 64 * 1024)
    asked: _MintRequest = _decode_body(
        body, _MintRequest, '{"role": "publisher", "containers": ["task-1"], "ttl": 86400}'
    )
    for pattern in asked.containers:
        try:
            validate_container_id(pattern, pattern=True)
        except ProtocolError as exc:
            raise ApiError(400, "invalid_request", f"containers: {exc.words}") from None
    try:
        token, claims = state.auth.mint(asked.role, asked.containers, asked.ttl, sub=asked.sub)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    _log.info("token_minted", jti=claims["jti"], role=claims["role"], sub=claims.get("sub"))
    return web.Response(
        body=encode({"token": token, "claims": claims}),
        status=201,
        content_type="application/json",
    )


async def _revoke(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    state = request.app[STATE]
    body = await _read_body(request, 64 * 1024)
    asked: _RevokeRequest = _decode_body(body, _RevokeRequest, '{"jti": "..."}')
    if not 0 < len(asked.jti) <= 256:
        raise ApiError(400, "invalid_request", "jti must be 1 to 256 characters")
    try:
        until = await revoke(state, asked.jti, asked.exp)
    except (EngineError, StoreError) as exc:
        raise ApiError(503, ErrorCode.UNAVAILABLE, f"{exc}; nothing was revoked") from None
    return web.Response(
        body=encode({"jti": asked.jti, "revoked": True, "until": until}),
        content_type="application/json",
    )


# -- wiring -------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    """Add the API's routes, ``/openapi.json`` and its JSON error middleware to ``app``.

    ``app`` must hold its :data:`~tailhub.server.state.STATE`; call before it starts.
    """
    document = encode(build_document(__version__))

    async def openapi(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=document, content_type="application/json")

    app.middlewares.append(_json_errors)
    router = app.router
    router.add_get("/openapi.json", openapi)
    router.add_get("/api/sessions", _endpoint(_list_sessions))
    router.add_get("/api/sessions/{id}", _endpoint(_get_session))
    router.add_get("/api/fleet", _endpoint(_fleet))
    # No HEAD: a followed stream has no end to describe.
    router.add_get("/api/sessions/{id}/logs", _endpoint(_logs), allow_head=False)
    router.add_post("/api/sessions/{id}/messages", _endpoint(_post_messages))
    router.add_post("/api/sessions/{id}/commands", _endpoint(_post_command))
    router.add_get("/api/whoami", _endpoint(_whoami))
    router.add_post("/api/tokens", _endpoint(_mint))
    router.add_post("/api/tokens/revoked", _endpoint(_revoke))
