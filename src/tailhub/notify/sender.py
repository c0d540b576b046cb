"""Sending notifications: an outbox kept through the engine, delivered in the background.

What is guaranteed:

- Publishing never waits: the node's watchers (:meth:`Notifier.on_attention`,
  :meth:`Notifier.on_log`) only append to a bounded queue; a background task does the rest.
- Each notice is kept in the engine's outbox (records of kind ``notify``, one per notice and
  destination) before it is sent, and removed once delivered or given up: a hub restart loses
  none (what was waiting is sent after the restart).
- One delivery per notice and destination even with several hub processes: a process sends
  only while it holds the engine's claim on that record (the request's timeout and 30 s
  more, taken again before each attempt), and sends only a record still in the outbox; a
  delivered record's claim is kept for a day. A process that stops lets its claims go, so
  another (or its restart) goes on at once; one that crashed is taken over when they expire.
- A cooldown per (session, state): a second notice of the same state of the same session
  within ``notify_cooldown`` is not sent (decided with an engine claim, so across processes).
- Each request is cut at ``notify_timeout``; every record is delivered by its own task, so a
  hanging receiver never delays another destination.
- A failure (no connection, a timeout, a 5xx, 408 or 429) is retried with exponential backoff
  (0.5 s doubling, at most 60 s between attempts) up to ``notify_attempts`` attempts; then,
  or at once for any other 4xx, the record is dropped, counted ``failed`` and logged.
- Memory is bounded: at most ``notify_outbox`` notices queued and records tracked; beyond it
  the oldest is dropped (counted ``dropped``).
- No URL appears in a log line or a metric: destinations are named by index and format.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import msgspec
import structlog

from tailhub.agents import Attention
from tailhub.config import Settings
from tailhub.engine import Engine, EngineError
from tailhub.notify.destinations import Destination, Notice, destination, render
from tailhub.protocol import format_time
from tailhub.store.base import StoreError

__all__ = ["RESULTS", "Notifier"]

RESULTS: Final = ("sent", "retried", "failed", "dropped", "cooldown")
"""The ``result`` label of ``tailhub_notifications_total``."""
_KIND: Final = "notify"
_COOLDOWN_KIND: Final = "notify-cooldown"
_SEND_KIND: Final = "notify-send"
_DELIVERED_TTL: Final = 86400.0
_SWEEP_INTERVAL: Final = 30.0
"""Seconds between looks at the outbox for records no process is delivering."""
_CLAIM_MARGIN: Final = 30.0
"""Seconds a send claim outlives the request's timeout (time to record the outcome)."""
_LET_GO: Final = 0.001
"""The claim left on a record this process stops delivering: expired at once."""
_BACKOFF_FIRST: Final = 0.5
_BACKOFF_MAX: Final = 60.0
_LINE: Final = 500
_log = structlog.get_logger("tailhub.notify")


class _Record(msgspec.Struct):
    """One outbox record: a notice for one destination, and how far its delivery got."""

    notice: Notice
    dest: int
    attempts: int = 0
    due: float = 0.0


class _LogData(msgspec.Struct):
    message: str | None = None


_record_decoder: Final = msgspec.json.Decoder(_Record)
_log_decoder: Final = msgspec.json.Decoder(_LogData)
_encoder: Final = msgspec.json.Encoder()


class Notifier:
    """The notifications of one hub process (see the module docstring).

    Args:
        settings: ``notify`` (the URLs), ``notify_on``, ``notify_match``, ``public_url``,
            ``notify_cooldown``, ``notify_timeout``, ``notify_attempts``, ``notify_outbox``.
        engine: where the outbox, cooldowns and claims are kept (already open when
            :meth:`start` is called).
        summary: a container's agent summary (its JSON object), or None.
    """

    def __init__(self, settings: Settings, engine: Engine, summary: Callable[[str], Any]) -> None:
        self.settings = settings
        self.engine = engine
        self.destinations: list[Destination] = [
            destination(index, url) for index, url in enumerate(settings.notify)
        ]
        self.counts: Counter[tuple[str, int]] = Counter()
        """Notices by (result, destination index)."""
        self._summary = summary
        self._states = frozenset(settings.notify_on)
        self._match = re.compile(settings.notify_match) if settings.notify_match else None
        self._queue: deque[Notice] = deque()
        self._wake: asyncio.Event | None = None
        self._outbox: OrderedDict[str, None] = OrderedDict()
        """Keys of the outbox records this process knows of, oldest first (for the bound)."""
        self._busy: set[str] = set()
        """Keys of the records this process is delivering now."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- what the node tells ------------------------------------------------------------

    def on_attention(self, container_id: str, attention: Attention | None) -> None:
        """A session's attention state changed: queue a notice if its state is notified."""
        if attention is None or attention.state not in self._states:
            return
        request = attention.request
        self._enqueue(
            Notice(
                id=_notice_id(
                    container_id,
                    attention.state,
                    attention.reason,
                    request.id if request is not None else "",
                    attention.since,
                ),
                containerID=container_id,
                state=attention.state,
                reason=attention.reason,
                since=format_time(attention.since),
                link=self._link(container_id),
                request=request.to_json() if request is not None else None,
                summary=self._summary(container_id),
            )
        )

    def on_log(self, container_id: str, data: bytes) -> None:
        """A stored ``log``'s raw data: queue a notice if its message matches."""
        if self._match is None:
            return
        try:
            message = _log_decoder.decode(data).message
        except msgspec.DecodeError:
            return
        if not message or self._match.search(message) is None:
            return
        now = time.time()
        line = message if len(message) <= _LINE else message[: _LINE - 1] + "…"
        self._enqueue(
            Notice(
                id=_notice_id(container_id, "match", "", "", now),
                containerID=container_id,
                state="match",
                reason="log line matched",
                since=format_time(now),
                link=self._link(container_id),
                summary=self._summary(container_id),
                line=line,
            )
        )

    def _link(self, container_id: str) -> str | None:
        base = self.settings.public_url
        return f"{base}/#view={quote(container_id, safe='')}" if base else None

    def _enqueue(self, notice: Notice) -> None:
        queue = self._queue
        if len(queue) >= self.settings.notify_outbox:
            dropped = queue.popleft()
            self._count("dropped")
            _log.warning("notification_dropped", container=dropped.containerID, why="queue full")
        queue.append(notice)
        if self._wake is not None:
            self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering: what the outbox still holds first, then new notices."""
        self._wake = asyncio.Event()
        if self._queue:
            self._wake.set()
        self._session = aiohttp.ClientSession()
        self._loops = [
            asyncio.create_task(self._pump()),
            asyncio.create_task(self._sweeps()),
        ]

    async def stop(self) -> None:
        """Stop at once; what is not delivered stays in the outbox for the next start (of this
        process or another, which may take it at once: the claims are let go)."""
        busy = list(self._busy)
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops = []
        self._tasks.clear()
        for key in busy:
            with contextlib.suppress(EngineError, StoreError):
                await self.engine.claim(_SEND_KIND, key, self._owner, _LET_GO)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the background -----------------------------------------------------------------

    async def _pump(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                notice = self._queue.popleft()
                try:
                    await self._accept(notice)
                except (EngineError, StoreError) as exc:
                    _log.warning(
                        "notification_not_kept", container=notice.containerID, error=str(exc)
                    )
                    self._count("dropped")

    async def _sweeps(self) -> None:
        while True:
            try:
                await self._sweep()
            except (EngineError, StoreError) as exc:
                _log.warning("notification_outbox_unreadable", error=str(exc))
            await asyncio.sleep(_SWEEP_INTERVAL)

    async def _sweep(self) -> None:
        """Deliver the outbox records no task of this process is on (after a restart, or
        left by a process that went away)."""
        now = time.time()
        for key, value in (await self.engine.records(_KIND)).items():
            if key in self._busy:
                continue
            try:
                record = _record_decoder.decode(value)
            except (msgspec.DecodeError, msgspec.ValidationError):
                await self.engine.delete_record(_KIND, key)
                continue
            self._track(key)
            self._spawn(key, record, max(0.0, record.due - now))

    async def _accept(self, notice: Notice) -> None:
        cooldown = self.settings.notify_cooldown
        if cooldown > 0:
            key = f"{notice.containerID}|{notice.state}"
            if not await self.engine.claim(_COOLDOWN_KIND, key, notice.id, cooldown):
                self._count("cooldown")
                _log.info("notification_cooldown", container=notice.containerID, state=notice.state)
                return
        now = time.time()
        for dest in self.destinations:
            key = f"{notice.id}|{dest.index}"
            record = _Record(notice, dest.index, 0, now)
            await self.engine.put_record(_KIND, key, _encoder.encode(record))
            await self._track_new(key)
            self._spawn(key, record, 0.0)

    def _track(self, key: str) -> None:
        self._outbox[key] = None

    async def _track_new(self, key: str) -> None:
        """Count a new record; beyond ``notify_outbox``, drop the oldest not being sent."""
        self._outbox[key] = None
        while len(self._outbox) > self.settings.notify_outbox:
            oldest = next(iter(self._outbox))
            del self._outbox[oldest]
            if oldest in self._busy:
                continue
            await self.engine.delete_record(_KIND, oldest)
            self._count("dropped", _dest_of(oldest))
            _log.warning("notification_dropped", why="outbox full")

    def _spawn(self, key: str, record: _Record, delay: float) -> None:
        if key in self._busy:
            return
        self._busy.add(key)
        task = asyncio.create_task(self._deliver(key, record, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, key: str, record: _Record, delay: float) -> None:
        """Deliver one record, retrying with backoff; remove it from the outbox at the end."""
        try:
            await self._attempts(key, record, delay)
        except (EngineError, StoreError) as exc:
            # The record stays in the outbox: a later sweep takes it again.
            _log.warning("notification_outbox_unavailable", error=str(exc))
        finally:
            self._busy.discard(key)

    async def _forget(self, key: str) -> None:
        """The notice is done with (sent, failed for good, or undeliverable): out of the
        outbox, here and in the engine."""
        await self.engine.delete_record(_KIND, key)
        self._outbox.pop(key, None)

    async def _attempts(self, key: str, record: _Record, delay: float) -> None:
        engine = self.engine
        settings = self.settings
        if delay > 0:
            await asyncio.sleep(delay)
        if record.dest >= len(self.destinations):
            await self._forget(key)  # the hub no longer has that destination
            return
        dest = self.destinations[record.dest]
        fields = {"container": record.notice.containerID, "state": record.notice.state}
        while True:
            hold = settings.notify_timeout + _CLAIM_MARGIN
            if not await engine.claim(_SEND_KIND, key, self._owner, hold):
                _log.info("notification_taken_elsewhere", destination=dest.index, **fields)
                return
            if key not in await engine.records(_KIND):
                self._outbox.pop(key, None)
                _log.info("notification_already_done", destination=dest.index, **fields)
                return
            record.attempts += 1
            status, error = await self._post(dest, record.notice)
            if status is not None and 200 <= status < 300:
                await engine.claim(_SEND_KIND, key, self._owner, _DELIVERED_TTL)
                await self._forget(key)
                self._count("sent", dest.index)
                _log.info(
                    "notification_sent",
                    destination=dest.index,
                    format=dest.format,
                    attempts=record.attempts,
                    **fields,
                )
                return
            why = error or f"HTTP {status}"
            lasting = status is not None and 400 <= status < 500 and status not in (408, 429)
            if lasting or record.attempts >= settings.notify_attempts:
                await self._forget(key)
                self._count("failed", dest.index)
                _log.warning(
                    "notification_failed",
                    destination=dest.index,
                    format=dest.format,
                    attempts=record.attempts,
                    error=why,
                    **fields,
                )
                return
            wait = min(_BACKOFF_FIRST * 2 ** (record.attempts - 1), _BACKOFF_MAX)
            record.due = time.time() + wait
            await engine.put_record(_KIND, key, _encoder.encode(record))
            self._count("retried", dest.index)
            _log.info(
                "notification_retry",
                destination=dest.index,
                format=dest.format,
                attempts=record.attempts,
                error=why,
                retry_in=wait,
                **fields,
            )
            await asyncio.sleep(wait)

    async def _post(self, dest: Destination, notice: Notice) -> tuple[int | None, str | None]:
        """One request: its status, or None and the failure in words (never the URL)."""
        assert self._session is not None
        body, headers = render(dest, notice)
        timeout = self.settings.notify_timeout
        try:
            async with self._session.post(
                dest.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                return response.status, None
        except TimeoutError:
            return None, f"no answer in {timeout:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return None, type(exc).__name__

    def _count(self, result: str, index: int | None = None) -> None:
        if index is not None:
            self.counts[result, index] += 1
            return
        for dest in self.destinations:
            self.counts[result, dest.index] += 1


def _notice_id(container_id: str, state: str, reason: str, request: str, since: float) -> str:
    """The same for the same event, whichever process derives it."""
    return f"{container_id}|{state}|{reason}|{request}|{round(since * 1000)}"


def _dest_of(key: str) -> int | None:
    tail = key.rpartition("|")[2]
    return int(tail) if tail.isdigit() else None
