"""The container side: publish a container's messages, survive hub restarts, obey commands.

Delivery works like this. Every message gets an ``id`` (1, 2, 3, ... per producer) and the
publisher's ``producer`` name, and goes into the spool before anything is sent. While
connected, a writer task sends the spool in ``id`` order; the hub acknowledges cumulatively
(``{"type": "ack", "id": N}``: everything up to N is stored) and the publisher drops what is
acknowledged. After a reconnect it sends again everything not yet acknowledged; the hub drops
ids it already stored. So a hub restart, or a lost connection, neither loses nor duplicates a
message, as long as the spool does not overflow and the publisher process lives (or uses a
file spool).

A hub that runs as several processes on one engine has several URLs: the publisher moves to
the next one whenever a connection attempt fails or a connection ends (see
:class:`~tailhub.client.Rotation`), and sends the unacknowledged rest of the spool there,
where the engine's de-duplication by ``(producer, id)`` drops what was already stored.

A publisher given a token file (``token_file``, ``$TAILHUB_TOKEN_FILE``) reads its token
from it before every connection attempt and watches it while connected: a new token there is
sent on the open connection (``{"type": "auth", ...}``), so the connection outlives the old
token's ``exp``; a token the hub refuses (close 4401, HTTP 401) waits for the file to change
instead of stopping the publisher, which goes on spooling meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Literal

import aiohttp
import msgspec

from tailhub.client._backoff import Backoff, Rotation
from tailhub.client._connect import close_error, error_from_reply, open_websocket, reply_failure
from tailhub.client._env import resolve_container_id, resolve_urls
from tailhub.client._errors import (
    AuthenticationError,
    HubError,
    HubUnreachableError,
    MessageTooLargeError,
    PublisherClosedError,
)
from tailhub.client._message import Message
from tailhub.client._spool import Spool
from tailhub.client._token import token_source
from tailhub.protocol import LEVELS, STATUSES, ErrorCode, format_time, validate_container_id
from tailhub.protocol import ProtocolError as _ProtocolError

__all__ = ["CommandHandler", "ErrorHandler", "Overflow", "Publisher"]

CommandHandler = Callable[[Message], Awaitable[None] | None]
"""Called with each ``command`` the hub routes to this container (sync or async)."""
ErrorHandler = Callable[[HubError], None]
"""Called with each error the hub reports, and with the failure that stops a publisher."""
Overflow = Literal["block", "drop"]

_log = logging.getLogger("tailhub.client")
_encoder: Final = msgspec.json.Encoder()
_dict_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_RETRY_LATER: Final = {ErrorCode.RATE_LIMITED.value: 0.5, ErrorCode.UNAVAILABLE.value: 1.0}
"""Refusals that are about the moment, not the message: send it again (as a new id) later."""
_PACE_WINDOW: Final = 0.05
_STABLE: Final = 1.0
"""Seconds a connection must last for the reconnect backoff to start over."""


class _Frame(msgspec.Struct):
    type: str
    containerID: str
    timestamp: str
    id: int
    producer: str
    data: msgspec.Raw


class Publisher:
    """Publishes one container's messages to a hub, with acks, resend and reconnect.

    Use it as an async context manager (or call :meth:`start` and :meth:`close`)::

        async with Publisher("build-42") as pub:
            await pub.status("running")
            await pub.log("cloned the repository")
            await pub.complete(0)

    Publishing never waits for the hub: a message is spooled and sent when a connection is up.
    Connecting happens in the background with exponential backoff and jitter; errors that a
    retry cannot fix (a wrong token, close 4401/4403) stop the publisher: :attr:`failure` is
    set, ``on_error`` is called, and later publishing raises :class:`PublisherClosedError`.
    With a token file, a refused token (4401, HTTP 401) is reported to ``on_error`` and waited
    out instead: the publisher connects again once the file holds another token.

    Args:
        container_id: the ``containerID`` to publish for; default ``$CONTAINER_ID``, else the
            host name.
        url: the hub; default ``$TAILHUB_URL``, ``$WS_SERVER``, ``ws://localhost:8080``.
            Several processes of one hub: a comma-separated string or a sequence of URLs,
            tried in turn (see :func:`~tailhub.client.resolve_urls`).
        token: default ``$TAILHUB_TOKEN``, else the token in ``token_file``, else the token
            file of a hub on this machine.
        token_file: a file holding the token (default ``$TAILHUB_TOKEN_FILE``), read before
            every connection attempt and every ``token_check`` seconds while connected; a
            changed token is sent on the open connection. Not with ``token``.
        token_check: seconds between two reads of ``token_file``.
        spool_path: also journal the spool to this file, so unacknowledged messages survive a
            restart of this process (and the producer name with them).
        max_pending: most unacknowledged messages kept.
        max_pending_bytes: most unacknowledged bytes kept.
        overflow: when the spool is full, ``"block"`` makes publishing wait for acks;
            ``"drop"`` drops the new message (counted in :attr:`dropped`, and reported to the
            hub as a ``warn`` log once there is room again).
        on_command: called with every ``command`` routed to this container.
        on_error: called with every error the hub reports about a message, and with the
            failure that stops the publisher.
        heartbeat_interval: seconds between ``heartbeat`` messages while connected; None: none.
        backoff: delays between reconnect attempts.
        connect_timeout: seconds allowed for one connection attempt.
        max_message_size: the hub's largest frame; bigger messages raise
            :class:`MessageTooLargeError` instead of being sent.
        max_rate: most messages sent per second (0: no limit), to stay under the hub's
            publish rate when a large spool is resent.
        producer: the producer name of a new spool (default: random).

    Raises:
        ConfigurationError: bad URL, unusable spool file; a token file that cannot be read
            or is empty; both ``token`` and ``token_file`` (or both ``$TAILHUB_TOKEN`` and
            ``$TAILHUB_TOKEN_FILE``).
        ValueError: bad limits, an invalid container ID.
    """

    def __init__(
        self,
        container_id: str | None = None,
        *,
        url: str | Sequence[str] | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        token_check: float = 5.0,
        spool_path: str | os.PathLike[str] | None = None,
        max_pending: int = 10_000,
        max_pending_bytes: int = 64 << 20,
        overflow: Overflow = "block",
        on_command: CommandHandler | None = None,
        on_error: ErrorHandler | None = None,
        heartbeat_interval: float | None = 30.0,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
        max_rate: float = 10_000.0,
        producer: str | None = None,
    ) -> None:
        if max_pending < 1 or max_pending_bytes < 1 or max_message_size < 1 or max_rate < 0:
            raise ValueError("max_pending, max_pending_bytes and max_message_size must be > 0")
        if overflow not in ("block", "drop"):
            raise ValueError("overflow must be 'block' or 'drop'")
        self.container_id = resolve_container_id(container_id)
        try:
            validate_container_id(self.container_id)
        except _ProtocolError as exc:
            raise ValueError(exc.words) from None
        self.urls = resolve_urls(url)
        """Every URL of the hub, in the order they are tried."""
        self._token, self._token_file = token_source(token, token_file, token_check)
        self._auth_frame: bytes | None = None
        self._spool = Spool(spool_path, producer)
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._overflow = overflow
        self._on_command = on_command
        self._on_error = on_error
        self._heartbeat_interval = heartbeat_interval
        self._rotation = Rotation(self.urls, backoff or Backoff())
        self._connect_timeout = connect_timeout
        self._max_message_size = max_message_size
        self._max_rate = max_rate
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._handlers: set[asyncio.Future[None]] = set()
        self._progress = asyncio.Event()
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._beat_now = False
        self._pause_until = 0.0
        self._window_start = 0.0
        self._window_count = 0
        self._started_at = time.monotonic()
        self._closed = False
        self._unreported_drops = 0
        self.failure: HubError | None = None
        """The error that stopped this publisher for good, if any."""
        self.last_error: HubError | None = None
        """The latest problem: why the last connection attempt failed, or a refused message."""
        self.dropped = 0
        """Messages dropped because the spool was full (``overflow="drop"``)."""
        self.rejected = 0
        """Messages the hub refused for good (invalid, forbidden, too many sessions)."""

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; returns at once (see :meth:`wait_connected`)."""
        if self._closed:
            raise PublisherClosedError("this publisher was closed")
        if self._task is None:
            self._session = aiohttp.ClientSession()
            self._task = asyncio.create_task(self._run(), name=f"tailhub-publisher-{self.url}")

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a connection to the hub is up.

        Raises:
            HubUnreachableError: not connected within ``timeout`` seconds (with the last reason).
            HubError: the publisher stopped for good (its :attr:`failure`).
        """
        try:
            async with asyncio.timeout(timeout):
                while not self._connected.is_set():
                    self._raise_if_failed()
                    await self._wait_progress()
        except TimeoutError:
            reason = f": {self.last_error}" if self.last_error else ""
            raise HubUnreachableError(
                f"not connected to the hub within {timeout:g} s{reason}"
            ) from None

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until the hub has acknowledged every message published so far.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.

        Returns:
            True when everything up to now is acknowledged (or refused for good), False on
            timeout or when the publisher stopped with messages still unacknowledged.
        """
        target = self._spool.next_id - 1

        def done() -> bool:
            first = self._spool.first_id
            return first is None or first > target

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not done() and self.failure is None and not self._closed:
                    await self._wait_progress()
        return done()

    async def close(self, timeout: float | None = 10.0) -> bool:
        """Flush (for at most ``timeout`` seconds), then disconnect and release everything.

        Messages still unacknowledged stay in the spool file, if there is one, for the next
        publisher on it. Closing twice is harmless.

        Returns:
            True when every message was acknowledged.
        """
        if not self._closed:
            if self._task is not None and self.failure is None:
                await self.flush(timeout)
            self._closed = True
            for task in [*self._handlers, *([self._task] if self._task else [])]:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
            if self._session is not None:
                await self._session.close()
            self._spool.close()
            self._notify()
        return len(self._spool) == 0

    # -- state ---------------------------------------------------------------------------

    @property
    def producer(self) -> str:
        """The producer name sent with every message (kept in the spool file, if any)."""
        return self._spool.producer

    @property
    def url(self) -> str:
        """The URL connected to, or to be tried next."""
        return self._rotation.url

    @property
    def renewals(self) -> int:
        """Tokens from the token file the hub accepted on an open connection."""
        return self._token_file.renewals if self._token_file is not None else 0

    @property
    def connected(self) -> bool:
        """True while a connection to the hub is up."""
        return self._connected.is_set()

    @property
    def unreachable(self) -> bool:
        """True when not connected and every URL of the hub failed since the last connection
        (with one URL: its latest attempt failed); :attr:`last_error` says why."""
        return not self.connected and self._rotation.exhausted

    @property
    def pending(self) -> int:
        """Messages published but not yet acknowledged."""
        return len(self._spool)

    @property
    def last_id(self) -> int:
        """The id of the latest message published (0 before the first)."""
        return self._spool.next_id - 1

    @property
    def acked_id(self) -> int:
        """The highest id the hub has acknowledged."""
        return self._spool.acked

    # -- publishing ----------------------------------------------------------------------

    async def log(
        self, message: str, level: str = "info", *, metadata: Mapping[str, Any] | None = None
    ) -> int | None:
        """Publish a ``log`` line.

        Args:
            message: the text, as is (ANSI codes and all).
            level: ``debug``, ``info``, ``warn`` or ``error``.
            metadata: an optional JSON object sent along.

        Returns:
            The message id, or None when it was dropped (full spool, ``overflow="drop"``).

        Raises:
            ValueError: an unknown level.
            MessageTooLargeError: the message is larger than the hub accepts.
            PublisherClosedError: the publisher is closed or stopped.
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        data: dict[str, Any] = {"level": level, "message": message}
        if metadata is not None:
            data["metadata"] = dict(metadata)
        return await self.publish("log", data)

    async def status(self, status: str, message: str | None = None) -> int | None:
        """Publish a ``status``: ``starting``, ``running``, ``completed`` or ``error``.

        Returns and raises as :meth:`log`.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        data: dict[str, Any] = {"status": status}
        if message is not None:
            data["message"] = message
        return await self.publish("status", data)

    async def complete(
        self, exit_code: int, *, message: str | None = None, duration: float | None = None
    ) -> int | None:
        """Publish ``complete``: the last message of this session.

        Args:
            exit_code: the process's exit code.
            message: optional words.
            duration: how long the session ran, in milliseconds.

        Returns and raises as :meth:`log`.
        """
        data: dict[str, Any] = {"exitCode": exit_code}
        if message is not None:
            data["message"] = message
        if duration is not None:
            data["duration"] = duration
        return await self.publish("complete", data)

    async def error(
        self, error: str, *, code: str | None = None, details: Any = None
    ) -> int | None:
        """Publish a container ``error`` (words, optional code and JSON details).

        Returns and raises as :meth:`log`.
        """
        data: dict[str, Any] = {"error": error}
        if code is not None:
            data["code"] = code
        if details is not None:
            data["details"] = details
        return await self.publish("error", data)

    def heartbeat(self) -> bool:
        """Send a ``heartbeat`` now if connected (it is not spooled); returns whether connected.

        The publisher also sends one every ``heartbeat_interval`` on its own.
        """
        if not self.connected:
            return False
        self._beat_now = True
        self._wake.set()
        return True

    async def publish(
        self, kind: str, data: Mapping[str, Any], *, timestamp: str | None = None
    ) -> int | None:
        """Spool one message of type ``kind`` with ``data`` and send it as soon as possible.

        Args:
            kind: the message type (``log``, ``status``, ``complete``, ``error``).
            data: the ``data`` object.
            timestamp: RFC 3339 time; default now.

        Returns:
            The message id, or None when it was dropped (full spool, ``overflow="drop"``).

        Raises:
            MessageTooLargeError: the frame would be larger than ``max_message_size``.
            PublisherClosedError: the publisher is closed or stopped.
        """
        self._raise_if_closed()
        stamp = timestamp or format_time(time.time())
        body = _encoder.encode(data)
        size = len(self._encode(kind, body, stamp, self._spool.next_id))
        if size > self._max_message_size:
            raise MessageTooLargeError(
                f"a {kind} message of {size} bytes is larger than the hub's limit of "
                f"{self._max_message_size} bytes"
            )
        if not self._has_room(size):
            if self._overflow == "drop":
                self.dropped += 1
                self._unreported_drops += 1
                return None
            while not self._has_room(size):
                self._raise_if_closed()
                await self._wait_progress()
            self._raise_if_closed()
        return self._append(kind, body, stamp)

    # -- internals -----------------------------------------------------------------------

    def _encode(self, kind: str, body: bytes, stamp: str, id: int) -> bytes:
        frame = _Frame(kind, self.container_id, stamp, id, self.producer, msgspec.Raw(body))
        return _encoder.encode(frame)

    def _append(self, kind: str, body: bytes, stamp: str) -> int:
        id = self._spool.allocate()
        self._spool.add(id, self._encode(kind, body, stamp, id))
        self._wake.set()
        return id

    def _has_room(self, size: int) -> bool:
        if len(self._spool) == 0:
            return True
        return (
            len(self._spool) < self._max_pending
            and self._spool.nbytes + size <= self._max_pending_bytes
        )

    def _raise_if_failed(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _raise_if_closed(self) -> None:
        if self.failure is not None:
            raise PublisherClosedError(f"the publisher stopped: {self.failure}") from self.failure
        if self._closed:
            raise PublisherClosedError("this publisher was closed")

    def _notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def _wait_progress(self) -> None:
        await self._progress.wait()

    def _report(self, error: HubError) -> None:
        self.last_error = error
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:
                _log.exception("tailhub publisher: the on_error callback failed")

    def _fail(self, error: HubError) -> None:
        self.failure = error
        self._report(error)
        self._notify()

    async def _run(self) -> None:
        assert self._session is not None
        loop = asyncio.get_running_loop()
        rotation = self._rotation
        while not self._closed:
            if self._token_file is not None:
                self._token = self._token_file.read()
            used = self._token
            try:
                ws = await open_websocket(
                    self._session, rotation.url, self._token, connect_timeout=self._connect_timeout
                )
            except HubUnreachableError as exc:
                self.last_error = exc
                self._notify()
                await asyncio.sleep(rotation.failed())
                continue
            except HubError as exc:
                if self._waits_out(exc):
                    await self._new_token(exc, used)
                    continue
                self._fail(exc)
                return
            started = loop.time()
            rotation.connected()
            if self._token_file is not None:
                self._token_file.connected(used)
            self._ws = ws
            self._connected.set()
            self._notify()
            try:
                failure = await self._serve(ws)
            except Exception:  # a bug must not end delivery: log it and reconnect
                _log.exception("tailhub publisher: the connection failed unexpectedly")
                failure = None
            finally:
                self._ws = None
                self._connected.clear()
                self._notify()
                await ws.close()
            if failure is not None and self._waits_out(failure):
                assert self._token_file is not None
                await self._new_token(failure, self._token_file.granted)
                continue
            if failure is not None:
                self._fail(failure)
                return
            # A connection that held is a fresh start; one the hub closes at once is one
            # more failed attempt, so a hub that keeps refusing is not hammered.
            await asyncio.sleep(rotation.lost(held=loop.time() - started >= _STABLE))

    def _waits_out(self, error: HubError) -> bool:
        """Whether ``error`` is a refused token that a new one in the token file can mend."""
        return self._token_file is not None and isinstance(error, AuthenticationError)

    async def _new_token(self, refused: HubError, token: str | None) -> None:
        """Report the refused ``token``, then wait until the token file holds another one."""
        assert self._token_file is not None
        self._report(refused)
        self._notify()
        await self._token_file.other_than(token, lambda: self._closed)
        self._token = self._token_file.token

    async def _send_auth(self, frame: bytes) -> None:
        """Have the writer send ``frame`` (an ``auth``) before anything else it sends."""
        self._auth_frame = frame
        self._wake.set()

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> HubError | None:
        """Run one connection until it ends; returns the failure to stop on, or None."""
        reader = asyncio.create_task(self._read(ws))
        writer = asyncio.create_task(self._write(ws))
        tasks = [reader, writer]
        if self._token_file is not None:
            tasks.append(asyncio.create_task(self._token_file.watch(self._send_auth)))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                # The writer failed: the connection is going; let the reader see its close code.
                await asyncio.wait({reader}, timeout=self._connect_timeout)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._auth_frame = None
        if reader.cancelled() or reader.exception() is not None:
            return None
        return reader.result()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> HubError | None:
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self._handle(msg.data)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                return close_error(msg.data, had_token=bool(self._token))
            elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return close_error(ws.close_code, had_token=bool(self._token))
            elif msg.type is aiohttp.WSMsgType.ERROR:
                return None

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        interval = self._heartbeat_interval
        next_beat = loop.time() + interval if interval else math.inf
        cursor = self._spool.first_id or self._spool.next_id
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            while True:
                self._wake.clear()
                auth, self._auth_frame = self._auth_frame, None
                if auth is not None:
                    await ws.send_frame(auth, aiohttp.WSMsgType.TEXT)
                while cursor < self._spool.next_id:
                    frame = self._spool.get(cursor)
                    cursor += 1
                    if frame is None:
                        continue
                    await self._pace(loop)
                    await ws.send_frame(frame, aiohttp.WSMsgType.TEXT)
                now = loop.time()
                if self._beat_now or now >= next_beat:
                    self._beat_now = False
                    await ws.send_frame(self._heartbeat_frame(), aiohttp.WSMsgType.TEXT)
                    next_beat = now + interval if interval else math.inf
                if cursor < self._spool.next_id:
                    continue
                with contextlib.suppress(TimeoutError):
                    wait = None if math.isinf(next_beat) else max(0.0, next_beat - now)
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    async def _pace(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        if self._pause_until > now:
            await asyncio.sleep(self._pause_until - now)
            now = loop.time()
        if not self._max_rate:
            return
        if now - self._window_start >= _PACE_WINDOW:
            self._window_start = now
            self._window_count = 0
        if self._window_count >= max(1.0, self._max_rate * _PACE_WINDOW):
            await asyncio.sleep(self._window_start + _PACE_WINDOW - now)
            self._window_start = loop.time()
            self._window_count = 0
        self._window_count += 1

    def _heartbeat_frame(self) -> bytes:
        stamp = format_time(time.time())
        return _encoder.encode(
            {
                "type": "heartbeat",
                "containerID": self.container_id,
                "timestamp": stamp,
                "data": {
                    "timestamp": stamp,
                    "uptime": round(time.monotonic() - self._started_at, 3),
                },
            }
        )

    def _handle(self, frame: str | bytes) -> None:
        try:
            message = Message.from_frame(frame)
        except ValueError:
            _log.warning("tailhub publisher: ignored a frame that is not a JSON object")
            return
        if message.type == "ack":
            self._on_ack(message)
        elif message.type == "command":
            if message.container_id in (None, self.container_id):
                self._dispatch(message)
        elif message.type == "error":
            self._on_error_reply(message)
        elif message.type == "authenticated" and self._token_file is not None:
            self._token_file.accepted()
            self._notify()

    def _on_ack(self, message: Message) -> None:
        producer = message.fields.get("producer")
        ours = producer == self.producer or (
            producer is None and message.container_id == self.container_id
        )
        id = message.fields.get("id")
        if not ours or not isinstance(id, int):
            return
        if self._spool.ack(id):
            self._report_drops()
            self._notify()

    def _report_drops(self) -> None:
        if self._unreported_drops and self._has_room(1024):
            count, self._unreported_drops = self._unreported_drops, 0
            text = f"tailhub: {count} messages were dropped because the spool was full"
            body = _encoder.encode({"level": "warn", "message": text})
            self._append("log", body, format_time(time.time()))

    def _on_error_reply(self, message: Message) -> None:
        error = error_from_reply(message)
        if error.id is None or message.container_id not in (None, self.container_id):
            if (
                error.code == ErrorCode.UNAUTHORIZED
                and self._token_file is not None
                and not self._token_file.refused()
            ):
                return  # the token expired or was revoked: the 4401 close that follows says so
            self._report(reply_failure(message, had_token=bool(self._token)))
            return
        retry_in = _RETRY_LATER.get(error.code)
        if retry_in is not None:
            self._resend_later(error.id, retry_in)
            return
        if self._spool.remove(error.id) is not None:
            self.rejected += 1
            self._notify()
        self._report(error)

    def _resend_later(self, id: int, delay: float) -> None:
        """Send the refused message ``id`` again, later, as a new id.

        Its old id cannot be used again: messages after it may already be stored, and the
        hub drops any id not greater than the last one it stored.
        """
        frame = self._spool.remove(id)
        if frame is None:
            return
        obj = _dict_decoder.decode(frame)
        new_id = self._spool.allocate()
        obj["id"] = new_id
        self._spool.add(new_id, _encoder.encode(obj))
        self._pause_until = asyncio.get_running_loop().time() + delay
        self._wake.set()

    def _dispatch(self, message: Message) -> None:
        handler = self._on_command
        if handler is None:
            return
        try:
            result = handler(message)
        except Exception:
            _log.exception("tailhub publisher: the on_command callback failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._handlers.add(task)
            task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Future[None]) -> None:
        self._handlers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error(
                "tailhub publisher: the on_command callback failed", exc_info=task.exception()
            )
