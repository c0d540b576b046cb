"""The WebSocket endpoint: admission, authentication, and what a connection's messages do.

Two transports carry WebSocket connections, and both end here:

- :mod:`tailhub.server.wsconn`, the hub's own lean protocol, serves every connection that
  opens with its upgrade request (all browsers, ``ws``, picows, ...);
- :mod:`tailhub.server.ws_aiohttp`, aiohttp's ``WebSocketResponse``, serves an upgrade that
  arrives as a later request on a kept-alive HTTP connection (aiohttp's client reuses pooled
  ones).

Authentication state lives here; everything after it (routing, sessions, history) is the
node's. Writing never happens here: the hub writes pre-framed bytes straight to the transport
(see :mod:`tailhub.server.wire`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

import structlog
from aiohttp import web

from tailhub.auth import TokenError, bearer_token
from tailhub.core.hub import Connection
from tailhub.grants import Grant
from tailhub.protocol import (
    Auth,
    ClientMessage,
    CloseCode,
    ErrorCode,
    ProtocolError,
    Publish,
    Subscribe,
    decode_client,
    encode,
    validate_container_id,
)
from tailhub.server.access import grant_connection
from tailhub.server.state import ServerState
from tailhub.server.wire import TEXT, pong_frame, valid_key

__all__ = [
    "CLOSE_GRACE",
    "FRAMES_PER_TURN",
    "ControlAllowance",
    "Refusal",
    "answer_ping",
    "authenticated_connections",
    "count_control",
    "forget",
    "handle_frame",
    "handle_messages",
    "handshake_refusal",
    "open_connection",
    "refusal",
    "request_token",
    "time_out_authentication",
    "token_of",
]

_log = structlog.get_logger("tailhub.ws")

CLOSE_GRACE: Final = 5.0
"""Seconds a closing connection has to take its last bytes and answer the close frame."""
FRAMES_PER_TURN: Final = 1024
"""The most frames of one connection read (and handled) in one turn of the event loop."""


def token_of(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token of a request: ``Authorization: Bearer`` first, then ``?token=``."""
    return bearer_token(headers.get("Authorization")) or query.get("token")


def request_token(request: web.Request) -> str | None:
    """:func:`token_of` an aiohttp request."""
    return token_of(request.headers, request.query)


class Refusal(NamedTuple):
    """An upgrade request the hub answers with an HTTP error instead of a WebSocket."""

    status: int
    body: str
    headers: dict[str, str]


def handshake_refusal(headers: Mapping[str, str], version: tuple[int, int]) -> Refusal | None:
    """Why an upgrade request is not an RFC 6455 handshake (section 4.2.1), or None.

    The words are fixed: an answer never quotes a header of the request (which could hold
    a token, or bytes that are not text).
    """
    if headers.get("Upgrade", "").strip().lower() != "websocket" or "upgrade" not in {
        part.strip().lower() for part in headers.get("Connection", "").split(",")
    }:
        return Refusal(400, "an upgrade needs Upgrade: websocket and Connection: Upgrade\n", {})
    if headers.get("Sec-WebSocket-Version", "") != "13":
        return Refusal(
            426,
            "Sec-WebSocket-Version 13 is the only version this hub speaks\n",
            {"Sec-WebSocket-Version": "13"},
        )
    if version < (1, 1) or not valid_key(headers.get("Sec-WebSocket-Key", "")):
        return Refusal(
            400,
            "an upgrade needs HTTP/1.1 and a Sec-WebSocket-Key of 16 bytes in base64\n",
            {},
        )
    return None


def refusal(state: ServerState, token: str | None, remote: str) -> Refusal | Grant | None:
    """Why an upgrade must be refused before the handshake, or what its token allows.

    Returns a :class:`Refusal`, the token's grant, or None when no token was sent (it may
    still come in the first message). A wrong, forged, expired or revoked token is refused
    at once (401). A hub whose authenticated connections reach ``max_connections`` refuses one with
    a token with 503; connections without a token have their own budget,
    ``max_unauthenticated``, so that they can never take the places of those with one.
    """
    settings = state.settings
    if token is None:
        if state.unauthenticated >= settings.max_unauthenticated:
            return Refusal(
                503,
                '{"error":"too many connections without a token (TAILHUB_MAX_UNAUTHENTICATED);'
                ' send the token with the upgrade request"}',
                {},
            )
        return None
    try:
        grant = state.auth.grant(token)
    except TokenError as exc:
        _log.warning("auth_failed", remote=remote, where="handshake", reason=str(exc))
        return Refusal(
            401,
            encode({"error": str(exc)}).decode(),
            {"WWW-Authenticate": 'Bearer realm="tailhub"'},
        )
    if authenticated_connections(state) >= settings.max_connections:
        return Refusal(503, '{"error":"too many connections (TAILHUB_MAX_CONNECTIONS)"}', {})
    return grant


def authenticated_connections(state: ServerState) -> int:
    """The hub's connections that presented the token (those ``max_connections`` bounds)."""
    return len(state.node.hub.connections) - state.unauthenticated


def open_connection(
    state: ServerState, conn: Connection, origin: str | None, url_container: str | None
) -> None:
    """A connection's first steps after the handshake: its origin, its URL subscription."""
    grant = conn.grant
    _log.info(
        "connection_opened",
        conn=conn.id,
        remote=conn.remote,
        authenticated=conn.authenticated,
        role=grant.role.value if grant is not None else None,
        sub=grant.sub if grant is not None else None,
    )
    if grant is not None:
        grant_connection(state, conn, grant)
    else:
        state.unauthenticated += 1
    allowed = state.settings.allowed_origins
    if allowed and origin and origin not in allowed:
        _log.warning("origin_refused", conn=conn.id, origin=origin)
        state.node.hub.close(conn, CloseCode.POLICY, "origin not allowed")
    elif url_container and conn.authenticated:
        _subscribe_from_url(state, conn, url_container)


def forget(state: ServerState, conn: Connection, code: int | None, seconds: float) -> None:
    """A connection has gone: release what it held; at shutdown, note when it was the last.

    ``code`` is the close code sent or answered (None if the peer just went away) and
    ``seconds`` how long the connection lasted, for the log.
    """
    if not conn.authenticated and conn.id in state.node.hub.connections:
        state.unauthenticated -= 1
    state.node.disconnect(conn)
    _log.info("connection_closed", conn=conn.id, code=code, seconds=round(seconds, 3))
    if state.drained is not None and not state.node.hub.connections:
        state.drained.set()


class ControlAllowance:
    """Pings and pongs one connection may still send: ``rate`` a second, bursts of ``rate``.

    Args:
        rate: control frames a second (``max_pings``).
    """

    __slots__ = ("_allowance", "_at", "rate")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._allowance = float(rate)
        self._at = -1.0

    def take(self, now: float) -> bool:
        """Spend one at loop time ``now``; False once the allowance is spent."""
        if self._at >= 0.0:
            self._allowance = min(float(self.rate), self._allowance + (now - self._at) * self.rate)
        self._at = now
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True


def count_control(
    state: ServerState, conn: Connection, allowance: ControlAllowance, now: float
) -> bool:
    """A ping or a pong from ``conn``: False, and a 4429 close, once it sent too many.

    Pongs count as well as pings: an unsolicited pong is allowed (RFC 6455, 5.5.3) but a flood
    of them would cost the hub as much to read.
    """
    if conn.closed:
        return False
    if allowance.take(now):
        return True
    _log.info("too_many_pings", conn=conn.id, remote=conn.remote)
    state.node.hub.close(
        conn, CloseCode.TOO_SLOW, f"more than {allowance.rate} pings and pongs a second"
    )
    return False


def answer_ping(
    state: ServerState,
    conn: Connection,
    allowance: ControlAllowance,
    payload: bytes,
    now: float,
) -> None:
    """A client's ping, on either transport: a pong, nothing, or a 4429 close.

    The pong is queued like any reply, so it counts against ``max_queue`` and keeps its place
    behind what the connection is already owed. A connection that has not authenticated gets
    no pong, and one that sends more than ``max_pings`` pings and pongs a second is closed
    with 4429 (:func:`count_control`).
    """
    if count_control(state, conn, allowance, now) and conn.authenticated:
        state.node.hub.send_frame(conn, pong_frame(payload))


def time_out_authentication(state: ServerState, conn: Connection) -> None:
    """Close a connection that sent no token within ``auth_timeout``."""
    if conn.authenticated or conn.closed:
        return
    state.node.error(conn, ErrorCode.UNAUTHORIZED, "no token sent in time")
    state.node.hub.close(conn, CloseCode.NOT_AUTHENTICATED, "authentication timed out")


def _subscribe_from_url(state: ServerState, conn: Connection, container_id: str) -> None:
    try:
        validate_container_id(container_id, pattern=True)
    except ProtocolError as exc:
        state.node.error(conn, exc.code, f"?containerID: {exc.words}")
        return
    state.node.subscribe(conn, Subscribe(container_id=container_id))


def handle_frame(
    state: ServerState,
    conn: Connection,
    data: str | bytes,
    url_container: str | None,
    *,
    utf8_checked: bool = False,
) -> None:
    """Act on one data message of ``conn``: authenticate it, or hand it to the node.

    ``utf8_checked`` says the transport has already checked ``data`` is UTF-8 (a text frame
    of the hub's own transport); anything else is checked by the codec.
    """
    node = state.node
    try:
        message = decode_client(data, utf8_checked=utf8_checked)
    except ProtocolError as exc:
        if not conn.authenticated:
            try:
                grant = state.auth.grant(exc.token)
            except TokenError:
                node.error(conn, exc.code, exc.words)
                _refuse(state, conn, "the first message must carry a token")
                return
            _authenticate(state, conn, grant, url_container)
        _refuse_message(state, conn, exc)
        return
    if not conn.authenticated:
        try:
            grant = state.auth.grant(message.token)
        except TokenError as exc:
            _refuse(state, conn, str(exc))
            return
        _authenticate(state, conn, grant, url_container)
        _act(state, conn, message, checked=True)
        return
    _act(state, conn, message)


def handle_messages(
    state: ServerState,
    conn: Connection,
    messages: Sequence[tuple[int, bytes]],
    url_container: str | None,
) -> None:
    """Act on the data messages ``conn`` sent in one read (``(opcode, payload)``), in order.

    Consecutive publishes go to the node together (``Node.publish_many``); anything else
    first lets the publishes before it through, so every effect and every reply keeps the
    order of the messages. Text messages come checked as UTF-8 by the frame reader; binary
    ones are checked by the codec.
    """
    node = state.node
    run: list[Publish] = []
    for opcode, data in messages:
        if conn.closed:
            break
        if not conn.authenticated:
            handle_frame(state, conn, data, url_container, utf8_checked=opcode == TEXT)
            continue
        try:
            message = decode_client(data, utf8_checked=opcode == TEXT)
        except ProtocolError as exc:
            if run:
                node.publish_many(conn, run)
                run = []
            _refuse_message(state, conn, exc)
            continue
        if isinstance(message, Publish):
            run.append(message)
            continue
        if run:
            node.publish_many(conn, run)
            run = []
        _act(state, conn, message)
    if run and not conn.closed:
        node.publish_many(conn, run)


def _act(
    state: ServerState, conn: Connection, message: ClientMessage, *, checked: bool = False
) -> None:
    """Act on one decoded message of an authenticated connection.

    An ``auth`` message is answered with ``authenticated`` and what the token allows (its
    token checked unless ``checked``, the connection's first message); a valid token
    replaces the connection's grant, a refused one leaves it as it was. Anything else is the
    node's.
    """
    if isinstance(message, Auth):
        if not checked:
            try:
                grant = state.auth.grant(message.token)
            except TokenError as exc:
                state.node.error(conn, ErrorCode.UNAUTHORIZED, str(exc))
                return
            grant_connection(state, conn, grant)
            _log.info("token_renewed", conn=conn.id, role=grant.role.value, sub=grant.sub)
        assert conn.grant is not None
        state.node.hub.send(conn, encode({"type": "authenticated", "data": conn.grant.describe()}))
        return
    state.node.handle(conn, message)


def _refuse_message(state: ServerState, conn: Connection, exc: ProtocolError) -> None:
    """Answer a message the hub cannot accept; the connection stays open."""
    state.node.error(
        conn,
        exc.code,
        exc.words,
        container_id=exc.container_id,
        id=exc.id,
        producer=exc.producer,
    )


def _authenticate(
    state: ServerState, conn: Connection, grant: Grant, url_container: str | None
) -> None:
    grant_connection(state, conn, grant)
    state.unauthenticated -= 1
    _log.info("authenticated", conn=conn.id, role=grant.role.value, sub=grant.sub)
    if url_container:
        _subscribe_from_url(state, conn, url_container)


def _refuse(state: ServerState, conn: Connection, words: str) -> None:
    _log.warning("auth_failed", conn=conn.id, remote=conn.remote, where="first message")
    state.node.error(conn, ErrorCode.UNAUTHORIZED, words)
    state.node.hub.close(conn, CloseCode.NOT_AUTHENTICATED, "not authenticated")
