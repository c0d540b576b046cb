"""The viewer side: read a container's messages as an async iterator, resuming after drops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

import aiohttp

from tailhub.client._backoff import Backoff, Rotation
from tailhub.client._connect import Connected, close_error, open_websocket, reply_failure
from tailhub.client._env import display_url, resolve_urls
from tailhub.client._errors import (
    AuthenticationError,
    HubError,
    HubUnreachableError,
)
from tailhub.client._message import Message, Subscribed
from tailhub.client._token import token_source
from tailhub.protocol import ROUTED_TYPES, ErrorCode, parse_time, validate_container_id
from tailhub.protocol import ProtocolError as _ProtocolError

__all__ = ["Subscriber"]

_log = logging.getLogger("tailhub.client")
_RETRYABLE_REPLIES: Final = {ErrorCode.UNAVAILABLE.value}


class Subscriber(Connected):
    """Subscribe to a container (or a pattern) and iterate over its messages.

    ::

        async with Subscriber("build-42", tail=100) as sub:
            async for message in sub:
                print(message.seq, message.data)

    Guarantees, for one container ID: messages come in ``seq`` order, none twice; after a lost
    connection (hub restart, close 1001/4429, network) it reconnects with backoff and
    subscribes again with ``since`` = the last ``seq`` it yielded, so nothing still within the
    hub's retention is missed. Patterns (``*``) are live only: they resume live, and may miss
    what was published while disconnected. Given several URLs (processes of one hub), it
    moves to the next whenever one cannot be reached or a connection is lost.

    Given a token file, it reads the token there before every connection and, while
    connected, every ``token_check`` seconds: a new token is sent on the connection, so that
    following outlives the old token's ``exp``; when the hub closes the connection because
    its token expired or was revoked (4401), it waits for another token in the file, then
    resumes with ``since`` (nothing within retention is missed).

    The iterator yields the stored messages (``log``, ``status``, ``complete``, ``error`` from
    containers, with ``seq``); hub replies are handled inside (``subscribed`` is kept in
    :attr:`subscribed` and passed to ``on_subscribed``; heartbeats are skipped).

    Args:
        container_id: one container ID, or a pattern with ``*``.
        url: the hub; default ``$TAILHUB_URL``, ``$WS_SERVER``, ``ws://localhost:8080``.
            Several processes of one hub: a comma-separated string or a sequence of URLs.
        token: default ``$TAILHUB_TOKEN``, else the token in ``token_file``, else the token
            file of a hub on this machine.
        token_file: a file holding the token (default ``$TAILHUB_TOKEN_FILE``), read again
            and renewed on the connection as described above. Not with ``token``.
        token_check: seconds between two reads of ``token_file``.
        since: start after this ``seq``.
        tail: start with the last ``tail`` messages.
        from_: start at this RFC 3339 time.
        follow: True keeps following live messages; False ends the iteration after the
            backlog that existed when subscribing (all history when no start is given; not
            with ``from_``).
        reconnect: reconnect after a lost connection (the first connection is not retried:
            when no URL can be reached on connecting, :class:`HubUnreachableError`).
        backoff: delays between reconnect attempts.
        connect_timeout: seconds allowed for one connection attempt.
        on_subscribed: called with each ``subscribed`` reply (first and after reconnects); a
            reply with ``truncated`` says some history asked for is gone.

    Raises:
        ValueError: more than one of since/tail/from_, a bad value, or ``follow=False`` with a
            pattern or with ``from_``.
        ConfigurationError: a bad URL; a token file that cannot be read or is empty; both
            ``token`` and ``token_file``.
    """

    def __init__(
        self,
        container_id: str,
        *,
        url: str | Sequence[str] | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        token_check: float = 5.0,
        since: int | None = None,
        tail: int | None = None,
        from_: str | None = None,
        follow: bool = True,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        on_subscribed: Callable[[Subscribed], None] | None = None,
    ) -> None:
        try:
            validate_container_id(container_id, pattern=True)
            if from_ is not None:
                parse_time(from_, "from")
        except _ProtocolError as exc:
            raise ValueError(exc.words) from None
        if sum(value is not None for value in (since, tail, from_)) > 1:
            raise ValueError("give at most one of since, tail and from_")
        if (since is not None and since < 0) or (tail is not None and tail < 0):
            raise ValueError("since and tail must be 0 or more")
        self.pattern = "*" in container_id
        if self.pattern and not follow:
            raise ValueError("a pattern subscription is live only: it needs follow=True")
        if from_ is not None and not follow:
            # The end of a from_ backlog cannot be told from a quiet container: it could hang.
            raise ValueError("follow=False needs since or tail, not from_")
        if not follow and since is None and tail is None and from_ is None:
            since = 0
        self.container_id = container_id
        self.urls = resolve_urls(url)
        """Every URL of the hub, in the order they are tried."""
        self._token, self._token_file = token_source(token, token_file, token_check)
        self._watcher: asyncio.Task[None] | None = None
        self._since = since
        self._tail = tail
        self._from = from_
        self._follow = follow
        self._reconnect = reconnect
        self._rotation = Rotation(self.urls, backoff or Backoff())
        self._connect_timeout = connect_timeout
        self._on_subscribed = on_subscribed
        super().__init__()
        self._last: dict[str, int] = {}
        self._end: int | None = None
        self._finished = False
        self._closed = False
        self._awaiting_reply = False
        self._buffer: deque[Message] = deque()
        self.subscribed: Subscribed | None = None
        """The latest ``subscribed`` reply."""
        self.reconnects = 0
        """How many times the connection was opened again after being lost."""

    @property
    def url(self) -> str:
        """The URL connected to, or to be tried next."""
        return self._rotation.url

    @property
    def renewals(self) -> int:
        """Tokens from the token file the hub accepted on an open connection."""
        return self._token_file.renewals if self._token_file is not None else 0

    @property
    def last_seq(self) -> int | None:
        """The ``seq`` of the last message yielded for ``container_id`` (None: none yet)."""
        return self._last.get(self.container_id)

    async def connect(self) -> None:
        """Open the connection and subscribe (done by ``async with`` on entry).

        Each URL is tried once, in turn, without waiting in between.

        Raises:
            HubUnreachableError: no URL of the hub can be reached (the last one's reason).
            AuthenticationError, ForbiddenError: the token is refused.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession()
        for _ in self.urls[1:]:
            try:
                await self._open()
            except HubUnreachableError:
                self._rotation.failed()
            else:
                return
        await self._open()

    async def close(self) -> None:
        """Close the connection; iteration then ends."""
        self._closed = True
        await self._stop_watching()
        await super().close()

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Message:
        """The next stored message.

        Raises:
            StopAsyncIteration: closed, or (``follow=False``) the backlog is done.
            HubUnreachableError: the connection was lost and ``reconnect`` is False.
            HubError: the hub refused the subscription, or closed with a final code.
        """
        while True:
            if self._buffer:
                return self._buffer.popleft()
            if self._finished or self._closed:
                raise StopAsyncIteration
            message = await self._step()
            if message is not None:
                return message

    async def wait_subscribed(self) -> Subscribed:
        """Wait for the hub's reply to the latest ``subscribe`` and return it.

        Messages that arrive meanwhile are kept for the iterator. After this returns, the
        subscription is in place: everything published from now on will be yielded.

        Raises:
            HubError: as for iterating.
        """
        while self._awaiting_reply or self.subscribed is None:
            if self._closed:
                raise HubUnreachableError("the subscriber was closed")
            message = await self._step()
            if message is not None:
                self._buffer.append(message)
        return self.subscribed

    # -- internals -----------------------------------------------------------------------

    async def _step(self) -> Message | None:
        """Read one frame (connecting first if needed); the message to yield, if any."""
        if self._ws is None:
            if self._session is None:
                await self.connect()
            else:
                await self._reopen()
            return None
        ws = self._ws
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            try:
                message = Message.from_frame(msg.data)
            except ValueError:
                return None
            return await self._accept(message)
        code = msg.data if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code
        await self._drop_connection()
        if self._closed:
            return None
        failure = close_error(code if isinstance(code, int) else None, had_token=bool(self._token))
        if (
            isinstance(failure, AuthenticationError)
            and self._token_file is not None
            and self._reconnect
        ):
            # Its token expired or was revoked: resume once the file holds another one.
            await self._token_file.other_than(self._token_file.granted, lambda: self._closed)
            return None
        if failure is not None:
            raise failure
        if not self._reconnect:
            raise HubUnreachableError(
                f"lost the connection to the hub at {display_url(self.url)}"
                + (f" (close code {code})" if isinstance(code, int) else "")
            )
        return None

    async def _accept(self, message: Message) -> Message | None:
        if message.type == "subscribed":
            self._on_subscribed_reply(message)
            return None
        if message.seq is not None:
            key = message.container_id or self.container_id
            last = self._last.get(key)
            if last is not None and message.seq <= last:
                return None
            self._last[key] = message.seq
            if self._end is not None and not self._follow and message.seq >= self._end:
                self._finished = True
            return message
        if message.type == "authenticated" and self._token_file is not None:
            self._token_file.accepted()
            return None
        if message.type == "error":
            failure = reply_failure(message, had_token=bool(self._token))
            if isinstance(failure, AuthenticationError) and self._token_file is not None:
                if self._token_file.refused():
                    _log.warning("tailhub subscriber: %s; keeping the token it has", failure)
                return None  # else the token expired or was revoked: the 4401 close follows
            if getattr(failure, "code", None) in _RETRYABLE_REPLIES and self._reconnect:
                await self._drop_connection()
                return None
            raise failure
        if message.type in ROUTED_TYPES and message.type != "error":
            return message  # a hub that does not stamp seq (the original one)
        return None

    def _on_subscribed_reply(self, message: Message) -> None:
        info = Subscribed.from_message(message)
        self.subscribed = info
        self._awaiting_reply = False
        if self._end is None and info.seq is not None:
            self._end = info.seq
            if not self._follow and self._nothing_to_wait_for(info):
                self._finished = True
        if self._on_subscribed is not None:
            self._on_subscribed(info)

    def _nothing_to_wait_for(self, info: Subscribed) -> bool:
        end = info.seq or 0
        if end == 0 or self._tail == 0:
            return True
        return self._since is not None and self._since >= end

    def _request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"type": "subscribe", "containerID": self.container_id}
        if self.pattern:
            return request
        last = self.last_seq
        info = self.subscribed
        if last is not None:
            request["since"] = last
        elif info is None or info.seq is None:
            if self._since is not None:
                request["since"] = self._since
            elif self._tail is not None:
                request["tail"] = self._tail
            elif self._from is not None:
                request["from"] = self._from
        elif self._since is not None:
            request["since"] = self._since
        elif self._tail is not None:
            floor = (info.first_seq - 1) if info.first_seq else 0
            request["since"] = max(info.seq - self._tail, floor, 0)
        elif self._from is not None:
            request["from"] = self._from
        else:
            request["since"] = info.seq
        return request

    async def _open(self) -> None:
        assert self._session is not None
        if self._token_file is not None:
            self._token = self._token_file.read()
        used = self._token
        ws = await open_websocket(
            self._session, self.url, used, connect_timeout=self._connect_timeout
        )
        try:
            self._awaiting_reply = True
            await ws.send_json(self._request())
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            await ws.close()
            raise HubUnreachableError(
                f"lost the connection to {display_url(self.url)}: {exc}"
            ) from None
        self._ws = ws
        if self._token_file is not None:
            self._token_file.connected(used)
            self._watcher = asyncio.create_task(self._token_file.watch(self._send_auth))

    async def _reopen(self) -> None:
        delay = self._rotation.lost(held=True)
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self._open()
            except HubUnreachableError:
                delay = self._rotation.failed()
                continue
            except AuthenticationError:
                if self._token_file is None:
                    raise
                # _open took the file's token: that one was refused.
                await self._token_file.other_than(self._token, lambda: self._closed)
                delay = 0.0
                continue
            except HubError:
                raise
            self.reconnects += 1
            return

    async def _drop_connection(self) -> None:
        await self._stop_watching()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _send_auth(self, frame: bytes) -> None:
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
                await ws.send_frame(frame, aiohttp.WSMsgType.TEXT)

    async def _stop_watching(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
