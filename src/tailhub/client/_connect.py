"""Open a WebSocket to the hub and turn transport failures into :mod:`._errors` exceptions.

The token travels in an ``Authorization: Bearer`` header, never in the URL, so it cannot end
up in a proxy's or the hub's access log.
"""

from __future__ import annotations

import asyncio
from typing import Final, Self

import aiohttp

from tailhub.client._env import display_url
from tailhub.client._errors import (
    AuthenticationError,
    ConfigurationError,
    ForbiddenError,
    HubClosedError,
    HubError,
    HubUnreachableError,
    NoContainerError,
    RequestError,
)
from tailhub.client._message import Message
from tailhub.protocol import CloseCode, ErrorCode

__all__ = [
    "MAX_RECEIVE_SIZE",
    "Connected",
    "close_error",
    "error_from_reply",
    "open_websocket",
    "reply_failure",
]

MAX_RECEIVE_SIZE: Final = 64 << 20
"""Largest frame the SDK accepts from a hub (well above the hub's own 1 MiB default)."""

_NO_TOKEN_HINT: Final = (
    "set TAILHUB_TOKEN or pass --token (a hub on this machine without AUTH_TOKEN keeps its "
    "token in its data directory)"
)


async def open_websocket(
    session: aiohttp.ClientSession,
    url: str,
    token: str | None,
    *,
    connect_timeout: float,
    heartbeat: float | None = 20.0,
) -> aiohttp.ClientWebSocketResponse:
    """Connect to ``url``.

    Args:
        session: the aiohttp session to connect with.
        url: a ``ws://`` or ``wss://`` URL (see :func:`~tailhub.client.resolve_url`).
        token: sent as a bearer token; None sends none.
        connect_timeout: seconds for the name lookup, TCP connection and handshake.
        heartbeat: seconds between client pings; a hub that does not answer one is treated
            as gone. None disables them.

    Raises:
        AuthenticationError: the hub answered HTTP 401.
        ForbiddenError: the hub answered HTTP 403.
        HubUnreachableError: no connection, an HTTP error, or no answer within ``connect_timeout``.
        ConfigurationError: the URL is not one aiohttp can connect to.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    shown = display_url(url)
    try:
        async with asyncio.timeout(connect_timeout):
            return await session.ws_connect(
                url, headers=headers, heartbeat=heartbeat, max_msg_size=MAX_RECEIVE_SIZE
            )
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status == 401:
            hint = "the hub refused the token" if token else f"no token: {_NO_TOKEN_HINT}"
            raise AuthenticationError(f"{hint} (HTTP 401 from {shown})") from None
        if exc.status == 403:
            raise ForbiddenError(f"the hub at {shown} refused the connection (HTTP 403)") from None
        raise HubUnreachableError(
            f"{shown} is not a tailhub WebSocket endpoint (HTTP {exc.status})"
        ) from None
    except aiohttp.InvalidURL as exc:
        raise ConfigurationError(f"invalid hub URL {shown!r}: {exc}") from None
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            reason = "connection refused (is the hub running?)"
        else:
            reason = exc.os_error.strerror or str(exc.os_error)
        raise HubUnreachableError(f"cannot reach the hub at {shown}: {reason}") from None
    except TimeoutError:
        raise HubUnreachableError(
            f"cannot reach the hub at {shown}: no answer in {connect_timeout:g} s"
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise HubUnreachableError(f"cannot reach the hub at {shown}: {reason}") from None


def close_error(code: int | None, *, had_token: bool = True) -> HubError | None:
    """The error a close code stands for, or None when reconnecting can help.

    4401 means the token is not (or no longer) valid, 4403 not allowed, 1008 the origin
    refused, 1009 a frame too big: retrying the same thing cannot succeed. Everything else
    (1000, 1001 hub shutting down, 1006 connection lost, 1011, 4408, 4429) is worth a
    reconnect. ``had_token`` tells whether a token was sent, for a message that helps.
    """
    if code == CloseCode.NOT_AUTHENTICATED:
        if not had_token:
            return AuthenticationError(f"no token: {_NO_TOKEN_HINT} (close 4401)")
        return AuthenticationError("the hub closed the connection: not authenticated (4401)")
    if code == CloseCode.FORBIDDEN:
        return ForbiddenError("the hub closed the connection: not allowed (4403)")
    if code == CloseCode.POLICY:
        return HubClosedError(code, "the hub closed the connection: origin not allowed (1008)")
    if code == CloseCode.TOO_BIG:
        return HubClosedError(code, "the hub closed the connection: a message was too big (1009)")
    return None


def error_from_reply(message: Message) -> RequestError:
    """The :class:`RequestError` (or subclass) for a hub ``error`` reply."""
    code = str(message.data.get("code") or "error")
    words = str(message.data.get("error") or "")
    raw_id = message.fields.get("id")
    id = raw_id if isinstance(raw_id, int) else None
    if code == ErrorCode.NO_CONTAINER:
        return NoContainerError(code, words, id=id)
    return RequestError(code, words, id=id)


def reply_failure(message: Message, *, had_token: bool = True) -> HubError:
    """Like :func:`error_from_reply`, but ``unauthorized``/``forbidden`` get their own types."""
    error = error_from_reply(message)
    if error.code == ErrorCode.UNAUTHORIZED:
        if not had_token:
            return AuthenticationError(f"no token: {_NO_TOKEN_HINT}")
        return AuthenticationError(f"the hub refused the token: {error.words or error.code}")
    if error.code == ErrorCode.FORBIDDEN:
        return ForbiddenError(f"not allowed: {error.words or error.code}")
    return error


class Connected:
    """What every SDK connection shares: a client session, a WebSocket, ``async with``.

    Subclasses open them in :meth:`connect`; :meth:`close` releases both, and a failed
    ``connect`` on entry releases what it opened.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Close the connection."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
