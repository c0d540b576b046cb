"""Grants on connections, and their end: a token that expires or is revoked ends its connections.

Both WebSocket transports and the HTTP API's followed streams give a connection its grant
here (:func:`grant_connection`), at the handshake, with the first message, or with a later
``{"type": "auth"}`` that replaces it. A grant with an ``exp`` closes its connection with 4401
at that time, unless the connection has been given another grant meanwhile.

Revocations are shared records of the engine (kind ``revoked``, keyed by ``jti``, kept until
the token would have expired anyway), so that every hub process on the engine refuses a
revoked token: each process reads them every ``revocation_interval`` (and once at start-up),
and closes with 4401 its connections whose token was revoked.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import structlog

from tailhub.core.hub import Connection
from tailhub.engine import EngineError
from tailhub.grants import Grant
from tailhub.protocol import CloseCode, ErrorCode, encode
from tailhub.server.state import ServerState
from tailhub.store.base import StoreError

__all__ = [
    "REVOKED",
    "close_revoked",
    "grant_connection",
    "read_revoked",
    "revoke",
    "watch_revocations",
]

REVOKED: Final = "revoked"
"""The engine record kind that holds revoked token ids."""
_log = structlog.get_logger("tailhub.access")


def grant_connection(state: ServerState, conn: Connection, grant: Grant) -> None:
    """Give ``conn`` ``grant`` (replacing any), and close it at the grant's ``exp``.

    On a replacement, subscriptions to containers the new grant does not cover end (the
    connection is told with ``unsubscribed``), and so does the connection's role as publisher
    of containers it may no longer publish for.
    """
    previous = conn.grant
    conn.grant = grant
    conn.authenticated = True
    if conn.expiry is not None:
        conn.expiry.cancel()
        conn.expiry = None
    if previous is not None and not grant.everything:
        hub = state.node.hub
        for container_id in [*conn.subscriptions, *conn.catching_up]:
            if not grant.may_read(container_id) and hub.unsubscribe(conn, container_id):
                hub.send(conn, encode({"type": "unsubscribed", "containerID": container_id}))
        for container_id in list(conn.published):
            if not grant.may_publish(container_id):
                hub.remove_publisher(conn, container_id)
    if grant.exp is not None:
        delay = max(grant.exp - time.time(), 0.0)
        conn.expiry = asyncio.get_running_loop().call_later(delay, _expired, state, conn, grant)


def _expired(state: ServerState, conn: Connection, grant: Grant) -> None:
    conn.expiry = None
    if conn.closed or conn.grant is not grant:
        return
    _log.info("token_expired", conn=conn.id, sub=grant.sub, jti=grant.jti)
    state.node.error(
        conn,
        ErrorCode.UNAUTHORIZED,
        'the token has expired; send {"type": "auth", "token": ...} with a fresh one before exp',
    )
    state.node.hub.close(conn, CloseCode.NOT_AUTHENTICATED, "token expired")


def close_revoked(state: ServerState) -> int:
    """Close with 4401 every connection whose token is revoked; returns how many."""
    revoked = state.auth.revoked
    if not revoked:
        return 0
    closed = 0
    node = state.node
    for conn in list(node.hub.connections.values()):
        grant = conn.grant
        if grant is None or grant.jti is None or grant.jti not in revoked or conn.closed:
            continue
        _log.info("token_revoked_closed", conn=conn.id, sub=grant.sub, jti=grant.jti)
        node.error(conn, ErrorCode.UNAUTHORIZED, "the token has been revoked")
        node.hub.close(conn, CloseCode.NOT_AUTHENTICATED, "token revoked")
        closed += 1
    return closed


async def read_revoked(state: ServerState) -> None:
    """Read the revoked token ids from the engine, then close their connections.

    Raises:
        EngineError: the engine cannot answer now.
        StoreError: the local store cannot.
    """
    records = await state.node.engine.records(REVOKED)
    state.auth.revoked = frozenset(records)
    close_revoked(state)


async def revoke(state: ServerState, jti: str, exp: float | None) -> float | None:
    """Revoke the token ``jti`` on every hub process of the engine, and here at once.

    The record is kept until ``exp`` (the token's own expiry, after which it is refused
    anyway); without one, the ``exp`` of a connection of this process holding the token is
    used, and failing that the record is kept for good. Returns the ``exp`` used.

    Raises:
        EngineError: the engine cannot keep the record now (nothing was revoked).
        StoreError: the local store cannot.
    """
    if exp is None:
        for conn in state.node.hub.connections.values():
            grant = conn.grant
            if grant is not None and grant.jti == jti and grant.exp is not None:
                exp = grant.exp
                break
    ttl = None if exp is None else max(exp - time.time(), 1.0)
    await state.node.engine.put_record(REVOKED, jti, b"1", ttl=ttl)
    state.auth.revoke([jti])
    _log.info("token_revoked", jti=jti)
    close_revoked(state)
    return exp


async def watch_revocations(state: ServerState) -> None:
    """Read revocations every ``revocation_interval`` until cancelled (a start-up task)."""
    interval = state.settings.revocation_interval
    while True:
        await asyncio.sleep(interval)
        try:
            await read_revoked(state)
        except (EngineError, StoreError) as exc:
            _log.warning("revocations_unread", error=str(exc))
