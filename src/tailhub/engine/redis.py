"""The Redis engine: many hub processes on one Redis (or Redis Cluster) behave as one hub.

It keeps the contract of :mod:`tailhub.engine.base`. How:

Publishing
    Runs published during one turn of the event loop are sent at the end of the turn as one
    pipeline (one round trip); while it is in flight, new runs wait for the next one, so a
    process's runs of one container reach Redis in order. All runs of a pipeline are one call
    of one Lua script (:data:`~tailhub.engine.redis_lua.PUBLISH`; up to
    :data:`_CONTAINERS_PER_CALL` containers a call, and on Cluster one, as a call touches one
    hash slot): for each container in turn, it gives the ``seq``\\ s (the ``seq`` field of
    the container's hash), drops repeated ``(producer, id)``, ``XADD``\\ s each run as one
    entry with the id of its first seq, ``<seq>-0``, and ``MINID ~`` retention, updates the
    session, and publishes what it stored, with seqs and epoch, in one message: seq, history
    and fan-out never disagree.
    Each message goes as the two halves of :func:`tailhub.protocol.encode_published`'s
    encoding around its seq (:func:`~tailhub.protocol.published_head` and
    :func:`~tailhub.protocol.published_tail`; the stream format is in
    :mod:`tailhub.engine.redis_lua`): the script does no work per message unless a run
    repeats an id, and whoever reads a run (this process for its own runs, any process
    for fan-out and history) joins the halves with each seq.

Acks
    A run is durable (:meth:`EngineHandler.durable`) when the script's reply arrives: Redis
    has applied it in memory and, as its ``appendonly``/``appendfsync`` settings say, written
    it to its AOF. With ``?waitaof=1`` in the URL (Redis 7.2 or later; refused at start-up on
    an older server) a ``WAITAOF 1 0 0`` follows each pipeline and runs are durable only once
    it answers, i.e. once the AOF of the master was fsynced.

Epoch
    Each container's hash holds an ``epoch``, created when absent (the creating process's
    random ID and a count of the epochs it made, so never one a container had). Redis losing
    the container's keys (``FLUSHALL``, a restart without persistence) loses it, so the next
    publish or :meth:`position` makes a new one, and ``seq`` starts again at 1 under it.
    Each process also passes, with every publish, the highest ``seq`` of the epoch it has
    handed on: Redis being behind it (it came back with older data) starts a new epoch too,
    before any ``seq`` is given again.

Fan-out
    One Pub/Sub connection per process (on Cluster, one per master holding a listened
    container: sharded Pub/Sub must talk to the slot's owner). A process subscribes with
    ``SSUBSCRIBE`` to ``<prefix>{container}:pub`` for each container it listens to, and with
    ``SUBSCRIBE`` to ``<prefix>*`` while it listens to ``"*"``: the script ``PUBLISH``\\ es
    each stored run there too (on Cluster, a plain ``PUBLISH`` reaches every node, and
    sharded Pub/Sub has no patterns). Each process keeps, per container it listens to, the
    last ``seq`` it delivered and the epoch: a run that starts past it is held back while the
    missing ones are read from the stream (``XRANGE``); what the stream no longer has is
    reported with :meth:`EngineHandler.gap`. After a lost Pub/Sub connection, every listened
    container is caught up from the stream the same way before anything newer is delivered.
    A run under another epoch is reported as a gap ``(last, 1)`` and delivery goes on from
    ``seq`` 1 of the new epoch. Under ``"*"``, a container is followed from the first run of
    it this process sees; after a lost Pub/Sub connection, the containers that received
    messages meanwhile (found in the session index) are followed from the first of those.

Sessions
    Sessions are hashes next to their container's keys; three sorted sets tagged
    ``{tailhub}`` index them: ``active`` (score: start), ``idle`` (score: last activity, kept
    up to date at most once a second per container) and ``ended`` (score: end). A run of a
    container this process does not know to be active first passes the admission script on
    those sets (``MAX_SESSIONS`` across all processes); on Cluster they live in another slot
    than the container, so admission is a separate step before the container's script, and
    later runs of that container wait behind it. The container's script decides the
    session's state, so :meth:`expire` and :meth:`end_session` end a session exactly once
    (the call whose script flipped it reports it).

Commands
    :meth:`attach` subscribes to ``<prefix>{container}:cmd``; :meth:`command` publishes the
    command there and returns how many hub processes received it. Each such process holds at
    least one publishing connection of the container, so 0 means none is connected anywhere.

Notices
    :meth:`notice` publishes on the two fan-out channels of the container (its own and
    ``*``) a message that starts with ``!`` (a run's starts with its epoch, hexadecimal),
    naming the sending process; a process listening to ``*`` takes the copy on that channel,
    another the one on the container's, and the sender neither.

Availability
    Commands run without hidden retries. When Redis cannot be reached, the engine reports it
    once (:meth:`EngineHandler.availability`), refuses publishes with ``unavailable`` (runs
    queued for the pipeline in flight are refused too: their effect is unknown, and a
    publisher that resends them with their ids has the repeats dropped), and retries with
    backoff; when Redis answers again it reloads its scripts, subscribes again and catches
    every listened container up from the stream. A password in the URL is never logged: every
    message names the server by :func:`redact`.

URLs
    What :func:`tailhub.config.parse_redis_url` takes: one server over TCP (``redis://``,
    ``rediss://``) or its Unix socket (``unix://``), or a Redis Cluster (``redis+cluster://``,
    ``rediss+cluster://``), given any of its nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import secrets
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tailhub.config import parse_redis_url, redact_url
from tailhub.engine import redis_lua as lua
from tailhub.engine.base import (
    EngineError,
    EngineHandler,
    EntryLike,
    Position,
    PublishDone,
    Published,
    SessionInfo,
    SessionPage,
    StoredMessage,
)
from tailhub.protocol import TimeFormatter, published_head, published_tail
from tailhub.store.base import SessionRow

__all__ = ["RedisEngine", "redact"]

_log = structlog.get_logger("tailhub.engine.redis")

_CONNECT_TIMEOUT: Final = 2.0
_COMMAND_TIMEOUT: Final = 10.0
_PROBE_INTERVAL: Final = 1.0
_BACKOFF_FIRST: Final = 0.05
_BACKOFF_MAX: Final = 2.0
_IDLE_EVERY: Final = 1.0
_SUBSCRIBE_TIMEOUT: Final = 5.0
_FILL_PAGE: Final = 1000
_LIST_BATCH: Final = 200
_CONTAINERS_PER_CALL: Final = 256
"""Most containers in one call of the PUBLISH script: about 4 ms of Redis's time (15 µs or so
a container with a run of 16 messages), which no other client waits longer than."""
_COMMAND_ANSWER_TIMEOUT: Final = 1.0
_ATTACHED_TTL: Final = 30.0
_LENS: Final = struct.Struct(">II")
_UNSEEN: Final = object()
_ENCODE: Final = msgspec.msgpack.Encoder().encode
"""The PUBLISH script's ARGV[1] (read with Redis's ``cmsgpack``)."""
_STAR_MARGIN: Final = 2.0
_FORGET_AFTER: Final = 600.0
_SEEN_MAX: Final = 1_000_000


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs and error messages."""
    return redact_url(url)


def _tag(container_id: str) -> str:
    # Redis hashes a key on what lies between its first "{" and the first "}" after it: a
    # "}" in the ID would cut the tag short, so it is escaped (and "%", to stay one-to-one).
    return container_id.replace("%", "%25").replace("}", "%7D")


class _Keys:
    """Key and channel names of one container."""

    __slots__ = (
        "attached",
        "channel",
        "cmd",
        "containers",
        "encoded",
        "meta",
        "producers",
        "pub",
        "session",
        "smeta",
        "stream",
    )

    def __init__(self, prefix: str, container_id: str) -> None:
        base = f"{prefix}{{{_tag(container_id)}}}:"
        self.meta = base + "m"
        self.stream = base + "s"
        self.producers = base + "p"
        self.session = base + "ss"
        self.smeta = base + "md"
        self.attached = base + "a"
        self.channel = base + "pub"
        self.pub = self.channel.encode()
        self.cmd = (base + "cmd").encode()
        self.containers = (self.meta, self.stream, self.producers, self.session, self.smeta)
        self.encoded = tuple(key.encode() for key in self.containers)
        """:attr:`containers` as bytes, which redis-py passes on without encoding them."""


@dataclass(slots=True)
class _Run:
    container_id: str
    kind: str
    entries: Sequence[EntryLike]
    now: float
    done: PublishDone


@dataclass(slots=True)
class _Fanout:
    """One stored run as it came over Pub/Sub (or from this process's own reply)."""

    epoch: str
    first: int
    kind: str
    count: int
    blob: bytes = b""
    payloads: list[bytes] | None = None  # None: not yet unpacked from ``blob``

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def messages(self) -> list[bytes]:
        """The run's payloads, each with its seq."""
        if self.payloads is None:
            self.payloads = _unpack(self.blob, self.first)
        return self.payloads


@dataclass(slots=True)
class _Feed:
    """What this process delivered of one container it listens to (directly or via ``*``)."""

    listened: bool
    last: int | None = None
    epoch: str = ""
    queue: deque[_Fanout] = field(default_factory=deque)
    filling: bool = False
    stale: bool = False
    reach: int = 0
    subscribed: bool = False
    heard: float = field(default_factory=time.monotonic)
    ready: asyncio.Future[None] | None = None


@dataclass(slots=True)
class _Request:
    """A command this process sent, waiting for the answers of the processes that got it."""

    done: asyncio.Future[None]
    expected: int | None = None
    answers: int = 0
    taken: int = 0

    def answer(self, taken: int) -> None:
        self.answers += 1
        self.taken += taken
        self.check()

    def check(self) -> None:
        if self.expected is not None and self.answers >= self.expected and not self.done.done():
            self.done.set_result(None)


_NOTICE: Final = b"!"
"""The first byte of a notice on a fan-out channel (a run's message starts with its epoch, a
hexadecimal token): ``!<origin process> <container>\n<payload>``."""


def _kind_of(payload: bytes) -> str:
    # encode_published writes the type first: {"type":"<kind>",...
    return payload[9 : payload.index(b'"', 9)].decode()


def _parse_fanout(message: bytes) -> tuple[str, list[_Fanout]]:
    """The container and runs of a fan-out message (their blobs not unpacked yet).

    ``<epoch> <runs> <container>\n``, a line ``<kind> <first seq> <count> <blob bytes>`` per
    run, then the runs' blobs.
    """
    end = message.index(b"\n")
    epoch, count, container_id = message[:end].decode().split(" ", 2)
    heads: list[list[str]] = []
    pos = end + 1
    for _ in range(int(count)):
        end = message.index(b"\n", pos)
        heads.append(message[pos:end].decode().split(" "))
        pos = end + 1
    out = []
    for kind, first, n, size in heads:
        stop = pos + int(size)
        out.append(_Fanout(epoch, int(first), kind, int(n), message[pos:stop]))
        pos = stop
    return container_id, out


def _unpack(blob: bytes, first: int) -> list[bytes]:
    """The payloads a stored run's blob holds (see :mod:`tailhub.engine.redis_lua`), with
    seqs ``first``, ``first + 1``, ...

    Raises:
        struct.error: ``blob`` is cut short.
    """
    out: list[bytes] = []
    unpack = _LENS.unpack_from
    head = b""
    pos = 0
    end = len(blob)
    seq = first
    while pos < end:
        head_len, tail_len = unpack(blob, pos)
        pos += 8
        if head_len:
            head = blob[pos : pos + head_len]
            pos += head_len
        out.append(b"%b%d%b" % (head, seq, blob[pos : pos + tail_len]))
        pos += tail_len
        seq += 1
    return out


def _messages(entries: Sequence[Any], after: int = 0) -> list[StoredMessage]:
    """The messages with seq above ``after`` that stream ``entries`` hold, in order: an entry
    of a run (fields ``t``, ``n``, ``b``) or of one message (``t``, ``d``)."""
    out: list[StoredMessage] = []
    for entry_id, pairs in entries:
        # XRANGE gives the fields as a dict, a script as a flat list.
        fields = pairs
        if not isinstance(fields, dict):
            fields = dict(zip(pairs[::2], pairs[1::2], strict=True))
        seq = _seq_of(entry_id)
        received = float(fields[b"t"])
        blob = fields.get(b"b")
        if blob is None:
            if seq > after:
                out.append(StoredMessage(seq, received, fields[b"d"]))
            continue
        for payload in _unpack(blob, seq):
            if seq > after:
                out.append(StoredMessage(seq, received, payload))
            seq += 1
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, Any]:
    return {_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _seq_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


class _PubSub:
    """One Pub/Sub connection and the task reading it."""

    def __init__(self, engine: RedisEngine, conn: Connection, name: str) -> None:
        self.engine = engine
        self.conn = conn
        self.name = name
        self.waiting: dict[bytes, list[asyncio.Future[None]]] = {}
        self.unsubscribing: dict[bytes, int] = {}
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self._starting: asyncio.Future[None] | None = None

    async def _start(self) -> None:
        await self.conn.connect()  # type: ignore[no-untyped-call]
        self.task = asyncio.create_task(self._read())

    async def _ensure(self) -> None:
        if self.closed:
            raise EngineError(f"the Pub/Sub connection to {self.name} is closed")
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def subscribe(self, channel: bytes, sharded: bool) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self.waiting.setdefault(channel, []).append(fut)
        await self._ensure()
        await self.conn.send_command("SSUBSCRIBE" if sharded else "SUBSCRIBE", channel)
        await asyncio.wait_for(fut, _SUBSCRIBE_TIMEOUT)

    async def unsubscribe(self, channel: bytes, sharded: bool) -> None:
        await self._ensure()
        self.unsubscribing[channel] = self.unsubscribing.get(channel, 0) + 1
        await self.conn.send_command("SUNSUBSCRIBE" if sharded else "UNSUBSCRIBE", channel)

    async def _read(self) -> None:
        engine = self.engine
        try:
            while True:
                reply = await self.conn.read_response(timeout=math.inf, push_request=True)
                if not isinstance(reply, list) or len(reply) < 3:
                    continue
                kind = reply[0]
                if kind in (b"smessage", b"message"):
                    engine._on_message(reply[1], reply[2])
                elif kind in (b"ssubscribe", b"subscribe"):
                    for fut in self.waiting.pop(reply[1], []):
                        if not fut.done():
                            fut.set_result(None)
                elif kind == b"sunsubscribe" and not self.closed:
                    asked = self.unsubscribing.get(reply[1], 0)
                    if asked > 1:
                        self.unsubscribing[reply[1]] = asked - 1
                    elif asked == 1:
                        del self.unsubscribing[reply[1]]
                    else:
                        engine._on_unsubscribed(reply[1])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            for futures in self.waiting.values():
                for fut in futures:
                    if not fut.done():
                        fut.set_exception(EngineError(f"subscribing on {self.name}: {exc}"))
            self.waiting.clear()
            if not self.closed:
                engine._pubsub_lost(f"Pub/Sub connection to {self.name} lost: {exc}")

    async def close(self) -> None:
        self.closed = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        with contextlib.suppress(Exception):
            await self.conn.disconnect()


class RedisEngine:
    """The engine on Redis or Redis Cluster. See the module docstring.

    Args:
        url: a URL :func:`tailhub.config.parse_redis_url` takes.
        max_sessions: most active sessions across every process.
        retention_messages: messages kept per container.
        retention_age: seconds messages are kept.
        prefix: the start of every key and channel name.

    Raises:
        EngineError: the URL cannot be parsed.
    """

    def __init__(
        self,
        url: str,
        *,
        max_sessions: int = 100,
        retention_messages: int = 100_000,
        retention_age: float = 7 * 86400.0,
        prefix: str = "tailhub:",
        max_requests: int = 64,
    ) -> None:
        self.shown = redact(url)
        try:
            self._target = parse_redis_url(url)
        except ValueError as exc:
            raise EngineError(f"cannot use the Redis URL {self.shown}: it {exc}") from None
        self.max_requests = max(1, max_requests)
        self._gate = asyncio.Semaphore(self.max_requests)
        """Held by every request outside the write pipeline (:meth:`_call`, :meth:`_script`):
        a burst of them (a reconnecting dashboard's subscribers each read a position) waits
        for a connection instead of running the client's pool dry, which it would report as
        Redis being unreachable."""
        self.max_sessions = max_sessions
        self.retention_messages = retention_messages
        self.retention_age = retention_age
        self._prefix = prefix
        self._stamp = TimeFormatter()
        """Formats the receive time of entries that came without a timestamp."""
        g = f"{prefix}{{tailhub}}:"
        self._active_key, self._idle_key, self._ended_key = g + "active", g + "idle", g + "ended"
        self._global = (self._active_key, self._idle_key, self._ended_key)
        self._star_name = prefix + "*"
        self._star = self._star_name.encode()
        self._id = secrets.token_hex(8)
        self._epochs = itertools.count(1)
        self._reply = self._reply_channel(self._id)
        self._plain: set[bytes] = set()
        self._reply_on = False
        self._lost_at: float | None = None
        self._seen: dict[str, tuple[str, int]] = {}
        self._star_recovering = False
        self._requests: dict[int, _Request] = {}
        self._request_ids = itertools.count(1)
        self._cmd_subscribing: dict[bytes, asyncio.Future[None]] = {}
        self._client: Any = None
        self._handler: EngineHandler | None = None
        self._shas: dict[str, str] = {}
        self._keys: dict[str, _Keys] = {}
        self.available = False
        self._closing = False
        # publishing
        self._queues: dict[str, deque[_Run]] = {}
        self._blocked: set[str] = set()
        self._admitted: set[str] = set()
        self._known_active: set[str] = set()
        self._ops: list[tuple[Callable[[Any], None], Callable[[Any], Any]]] = []
        self._idle_sent: dict[str, float] = {}
        self._kick_scheduled = False
        self._flushing: asyncio.Task[None] | None = None
        # fan-out and commands
        self._feeds: dict[str, _Feed] = {}
        self._star_on = False
        self._attached: dict[str, int] = {}
        self._cmd_channels: dict[bytes, str] = {}
        self._pubsubs: dict[str, _PubSub] = {}
        self._recovering: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._probe: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self, handler: EngineHandler) -> None:
        self._handler = handler
        target = self._target
        options: dict[str, Any] = {
            "socket_connect_timeout": _CONNECT_TIMEOUT,
            "socket_timeout": _COMMAND_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
            # The gated requests, the write pipeline and a spare (per node on Cluster).
            "max_connections": self.max_requests + 2,
        }
        if not target.unix:  # TCP only: a Unix socket has no keepalive
            options["socket_keepalive"] = True
        try:
            if target.cluster:
                self._client = RedisCluster.from_url(target.url, **options)
                await self._client.initialize()
            else:
                self._client = aioredis.Redis.from_url(target.url, **options)
            info = await self._client.info("server")
            if target.cluster:
                info = next(iter(info.values())) if info and "redis_version" not in info else info
            version = tuple(int(p) for p in str(info.get("redis_version", "0")).split(".")[:2])
            if version < (7, 0):
                raise EngineError(
                    f"Redis at {self.shown} is {info.get('redis_version')}; tailhub needs 7.0"
                    " or later (sharded Pub/Sub, XADD with explicit ids and MINID ~)"
                )
            if target.wait_aof and version < (7, 2):
                raise EngineError(
                    f"Redis at {self.shown} is {info.get('redis_version')}: waitaof=1 needs"
                    " WAITAOF, which Redis has from 7.2 on"
                )
            await self._load_scripts()
        except EngineError:
            await self._drop_client()
            raise
        except (RedisError, OSError) as exc:
            await self._drop_client()
            raise EngineError(f"cannot reach Redis at {self.shown}: {exc}") from None
        self.available = True
        self._probe = asyncio.create_task(self._probe_loop())
        _log.info("engine_open", engine="redis", url=self.shown, cluster=target.cluster)

    async def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    async def close(self) -> None:
        self._closing = True
        if self.available:
            with contextlib.suppress(Exception):
                self._kick()
                while self._flushing is not None and not self._flushing.done():
                    await asyncio.shield(self._flushing)
        for task in (self._probe, self._recovering, self._flushing, *self._tasks):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._probe, self._recovering, self._flushing, *self._tasks):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for ps in list(self._pubsubs.values()):
            await ps.close()
        self._pubsubs.clear()
        for queue in self._queues.values():
            for run in queue:
                run.done(self._refused(run, "unavailable", "the hub is stopping"))
        self._queues.clear()
        await self._drop_client()

    async def check(self) -> None:
        if self._client is None:
            raise EngineError(f"Redis at {self.shown} is not connected")
        try:
            await asyncio.wait_for(self._client.ping(), _CONNECT_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            raise EngineError(f"Redis at {self.shown} does not answer: {exc}") from None
        if not self.available:
            raise EngineError(f"Redis at {self.shown} is reconnecting")

    async def _load_scripts(self) -> None:
        names = {name: getattr(lua, name) for name in lua.__all__}
        for name, text in names.items():
            if self._target.cluster:
                sha = await self._client.execute_command(
                    "SCRIPT LOAD", text, target_nodes=RedisCluster.PRIMARIES
                )
                if isinstance(sha, dict):
                    sha = next(iter(sha.values()))
            else:
                sha = await self._client.script_load(text)
            self._shas[name] = _text(sha)

    def _keys_of(self, container_id: str) -> _Keys:
        keys = self._keys.get(container_id)
        if keys is None:
            if len(self._keys) > 100_000:
                self._keys.clear()
            keys = self._keys[container_id] = _Keys(self._prefix, container_id)
        return keys

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one script now (outside the write pipeline), loading scripts if Redis lost them."""
        client = self._client
        if client is None:
            raise EngineError(f"Redis at {self.shown} is not connected")
        try:
            async with self._gate:
                try:
                    return await client.evalsha(self._shas[name], len(keys), *keys, *args)
                except NoScriptError:
                    await self._load_scripts()
                    return await client.evalsha(self._shas[name], len(keys), *keys, *args)
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._down(f"Redis at {self.shown} cannot be reached: {exc}")
            raise EngineError(f"Redis at {self.shown} cannot be reached: {exc}") from None
        except RedisError as exc:
            if _is_connection_error(exc):
                self._down(f"Redis at {self.shown} cannot be reached: {exc}")
                raise EngineError(f"Redis at {self.shown} cannot be reached: {exc}") from None
            raise EngineError(f"Redis at {self.shown} refused {name}: {exc}") from None

    async def _call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        try:
            async with self._gate:
                return await fn()
        except (RedisError, OSError, TimeoutError) as exc:
            if isinstance(exc, (OSError, TimeoutError)) or _is_connection_error(exc):
                self._down(f"Redis at {self.shown} cannot be reached: {exc}")
                raise EngineError(f"Redis at {self.shown} cannot be reached: {exc}") from None
            raise EngineError(f"Redis at {self.shown} failed: {exc}") from None

    # -- availability ---------------------------------------------------------------------

    def _stale_feeds(self) -> None:
        # What Pub/Sub brings from now on waits until the feed is caught up from the stream.
        for feed in self._feeds.values():
            feed.stale = True
        if self._lost_at is None:
            self._lost_at = time.time()
        if self._star_on:
            self._star_recovering = True

    def _down(self, reason: str) -> None:
        if self._closing:
            return
        self._stale_feeds()
        if self.available:
            self.available = False
            _log.warning("engine_unavailable", engine="redis", reason=reason)
            if self._handler is not None:
                self._handler.availability(False, reason)
            for queue in self._queues.values():
                for run in queue:
                    run.done(self._refused(run, "unavailable", _unavailable_words(self.shown)))
            self._queues.clear()
            self._blocked.clear()
            self._admitted.clear()
        self._start_recovery()

    def _pubsub_lost(self, reason: str) -> None:
        if self._closing:
            return
        self._stale_feeds()
        _log.warning("engine_pubsub_lost", engine="redis", reason=reason)
        self._start_recovery()

    def _start_recovery(self) -> None:
        if self._closing or (self._recovering is not None and not self._recovering.done()):
            return
        self._recovering = asyncio.create_task(self._recover())

    async def _recover(self) -> None:
        delay = _BACKOFF_FIRST
        while not self._closing:
            try:
                await asyncio.wait_for(self._client.ping(), _CONNECT_TIMEOUT)
                await self._load_scripts()
            except (RedisError, OSError, TimeoutError, EngineError) as exc:
                if self.available:
                    self._down(f"Redis at {self.shown} cannot be reached: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            try:
                await self._rebuild_pubsub()
            except (RedisError, OSError, TimeoutError, EngineError) as exc:
                # Redis answers (publishing goes on); only Pub/Sub is not back yet.
                _log.warning("engine_resubscribe_failed", engine="redis", reason=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            break
        if self._closing:
            return
        was = self.available
        self.available = True
        if not was:
            _log.info("engine_available", engine="redis", url=self.shown)
            if self._handler is not None:
                self._handler.availability(True, f"Redis at {self.shown} answers again")
        for container_id, feed in list(self._feeds.items()):
            feed.stale = True
            self._catch_up(container_id, feed)
        lost, self._lost_at = self._lost_at, None
        if self._star_on and lost is not None:
            self._spawn(self._star_catch_up(lost - _STAR_MARGIN))
        else:
            self._star_recovering = False
        self._kick()

    async def _star_catch_up(self, since: float) -> None:
        """Under ``*``: find the containers that stored messages while Pub/Sub was lost.

        The session index has every container active since (its idle score is at most a
        second behind); each one this process did not follow yet is followed from its first
        message received since then. Runs of new containers that came meanwhile wait.
        """
        client = self._client
        try:
            names: set[str] = set()
            for key in (self._idle_key, self._ended_key):
                found = await self._call(
                    lambda key=key: client.zrangebyscore(key, since, "+inf")  # type: ignore[misc]
                )
                names.update(_text(name) for name in found)
            for container_id in names:
                feed = self._feeds.get(container_id)
                if feed is not None and (feed.last is not None or feed.listened):
                    continue
                keys = self._keys_of(container_id)
                start = int(await self._script("SEEK", [keys.stream], [repr(since)]))
                last, _, epoch = await self.position(container_id)
                if feed is None:
                    feed = self._feeds[container_id] = _Feed(listened=False, subscribed=True)
                feed.epoch = _text(epoch)
                feed.last = start - 1 if start else last
                feed.stale = True
                self._catch_up(container_id, feed)
        except EngineError:
            return  # unavailable again: the next recovery looks again
        finally:
            self._star_recovering = False
        for container_id, feed in list(self._feeds.items()):
            if feed.last is None and not feed.listened and feed.queue:
                feed.last = feed.queue[0].first - 1
                feed.epoch = feed.queue[0].epoch
                self._advance(container_id, feed)

    async def _probe_loop(self) -> None:
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(_PROBE_INTERVAL)
            if not self.available or self._client is None:
                continue
            if time.monotonic() - refreshed > _ATTACHED_TTL / 3:
                refreshed = time.monotonic()
                for container_id in self._attached:
                    self._count_attached(container_id)
                self._forget_idle()
            try:
                await asyncio.wait_for(self._client.ping(), _CONNECT_TIMEOUT)
            except (RedisError, OSError, TimeoutError) as exc:
                self._down(f"Redis at {self.shown} does not answer: {exc}")

    def _forget_idle(self) -> None:
        """Stop following containers seen only under ``*`` that were quiet for a while (a
        later run of one is followed from that run on), and forget old activity stamps."""
        quiet = time.monotonic() - _FORGET_AFTER
        for container_id, feed in list(self._feeds.items()):
            if (
                not feed.listened
                and feed.heard < quiet
                and not (feed.queue or feed.filling or feed.stale)
                and feed.last is not None
            ):
                del self._feeds[container_id]
        stale = time.time() - _FORGET_AFTER
        for container_id in [c for c, t in self._idle_sent.items() if t < stale]:
            del self._idle_sent[container_id]

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- publishing -----------------------------------------------------------------------

    @staticmethod
    def _refused(run: _Run, code: str, reason: str) -> Published:
        return Published(run.container_id, [], 0, "", refused=code, reason=reason)

    def publish(
        self,
        container_id: str,
        kind: str,
        entries: Sequence[EntryLike],
        now: float,
        done: PublishDone,
    ) -> None:
        run = _Run(container_id, kind, entries, now, done)
        if not self.available or self._closing:
            done(self._refused(run, "unavailable", _unavailable_words(self.shown)))
            return
        queue = self._queues.get(container_id)
        if queue is None:
            queue = self._queues[container_id] = deque()
        queue.append(run)
        self._kick()

    def touch(self, container_id: str, now: float) -> None:
        if not self.available:
            return
        keys = self._keys_of(container_id)

        def add(pipe: Any) -> None:
            pipe.evalsha(self._shas["TOUCH"], 1, keys.session, repr(now))

        def result(reply: Any) -> None:
            if reply == 1:
                self._note_idle(container_id, now, force=True)

        self._ops.append((add, result))
        self._kick()

    def _note_idle(self, container_id: str, now: float, *, force: bool = False) -> None:
        sent = self._idle_sent.get(container_id, 0.0)
        if not force and now - sent < _IDLE_EVERY:
            return
        self._idle_sent[container_id] = now
        key = self._idle_key

        def add(pipe: Any) -> None:
            pipe.zadd(key, {container_id: now}, xx=True, gt=True)

        self._ops.append((add, _ignore))
        self._kick()

    def _end_global(self, container_id: str, ended_at: str) -> None:
        self._known_active.discard(container_id)
        self._idle_sent.pop(container_id, None)

        def add(pipe: Any) -> None:
            pipe.evalsha(self._shas["END_GLOBAL"], 3, *self._global, container_id, ended_at)

        self._ops.append((add, _ignore))
        self._kick()

    def _kick(self) -> None:
        if self._kick_scheduled:
            return
        self._kick_scheduled = True
        asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        self._kick_scheduled = False
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self.available and self._client is not None:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                await self._send(*batch)
            except Exception as exc:  # a bug must not stop every later write
                _log.exception("engine_write_failed", engine="redis")
                self._fail_batch(batch[0], exc)

    def _take_batch(
        self,
    ) -> tuple[list[tuple[Callable[[Any], None], Callable[[Any], Any]]], list[str]] | None:
        ops = self._ops
        self._ops = []
        admissions: list[str] = []
        batch: list[tuple[str, list[_Run]]] = []
        for container_id, queue in list(self._queues.items()):
            if container_id in self._blocked:
                continue
            if not queue:
                del self._queues[container_id]
                continue
            if container_id not in self._known_active and container_id not in self._admitted:
                self._blocked.add(container_id)
                admissions.append(container_id)
                ops.append(self._admission_op(container_id, queue[0].now))
                continue
            runs: list[_Run] = []
            while queue:
                run = queue.popleft()
                runs.append(run)
                if run.kind == "complete":
                    break
            if not queue:
                del self._queues[container_id]
            batch.append((container_id, runs))
            # On Cluster one script call touches one hash slot; on one server, a call's Lua
            # runs without letting other clients in, so a round of many containers is cut.
            if self._target.cluster or len(batch) >= _CONTAINERS_PER_CALL:
                ops.append(self._publish_op(batch))
                batch = []
        if batch:
            ops.append(self._publish_op(batch))
        if not ops:
            return None
        return ops, admissions

    def _admission_op(
        self, container_id: str, now: float
    ) -> tuple[Callable[[Any], None], Callable[[Any], Any]]:
        def add(pipe: Any) -> None:
            pipe.evalsha(
                self._shas["ADMIT"], 3, *self._global, container_id, self.max_sessions, repr(now)
            )

        def result(reply: Any) -> None:
            self._blocked.discard(container_id)
            if isinstance(reply, Exception):
                self._fail_queue(container_id, reply)
            elif reply == 1:
                self._admitted.add(container_id)
            else:
                queue = self._queues.pop(container_id, deque())
                words = f"{self.max_sessions} sessions are active, the most allowed (MAX_SESSIONS)"
                for run in queue:
                    run.done(self._refused(run, "max_sessions", words))

        return add, result

    def _fail_queue(self, container_id: str, error: Exception) -> None:
        queue = self._queues.pop(container_id, deque())
        for run in queue:
            run.done(self._refused(run, "unavailable", f"Redis at {self.shown}: {error}"))

    def _script_head(self, now: float) -> list[Any]:
        """The start of the PUBLISH script's ARGV[1] (its container arrays follow)."""
        star = self._star_name
        return [repr(now), self.retention_messages, self._new_epoch(), star, "SPUBLISH"]

    def _new_epoch(self) -> str:
        """An epoch no container had: this process's random ID and a count."""
        return f"{self._id}{next(self._epochs):x}"

    def _container_args(
        self, container_id: str, runs: Sequence[_Run], mode: str
    ) -> tuple[list[Any], list[bytes], list[list[tuple[bytes, bytes]]]]:
        """A container's array in the PUBLISH script's ARGV[1], its runs' blobs, and each
        entry's (head, tail) per run, for delivering them here: empty when this process has
        no subscriber for them (it listens neither to the container nor to ``"*"``). A
        subscriber that comes before they are sent is listened for by then (:meth:`listen`
        reads its position in the same pipeline, ahead of them); one that comes later reads
        them from history."""
        seen_epoch, seen_seq = self._seen.get(container_id, ("", 0))
        wanted = self._star_on or container_id in self._feeds
        arrays: list[Any] = []
        blobs: list[bytes] = []
        parts: list[list[tuple[bytes, bytes]]] = []
        for run in runs:
            status = ""
            exit_code = ""
            if run.kind != "log":
                for entry in run.entries:
                    if entry.status is not None:
                        status = entry.status
                    if entry.exit_code is not None:
                        exit_code = str(entry.exit_code)
                if run.kind == "complete" and exit_code == "":
                    exit_code = "0"
            blob, size, ids, mine = self._run_blob(container_id, run, wanted)
            arrays.append(
                (run.kind, status, exit_code, len(run.entries), repr(run.now), size, ids or "")
            )
            blobs.append(blob)
            parts.append(mine)
        keys = self._keys_of(container_id)
        return [mode, container_id, keys.channel, seen_epoch, seen_seq, arrays], blobs, parts

    def _run_blob(
        self, container_id: str, run: _Run, wanted: bool
    ) -> tuple[bytes, int, list[Any], list[tuple[bytes, bytes]]]:
        """A run's blob (see :mod:`~tailhub.engine.redis_lua`), its payload bytes without
        seqs, its ids for the PUBLISH script (empty: none has one), and, when ``wanted``,
        each entry's (head, tail)."""
        heads: dict[str | None, bytes] = {}  # per timestamp: the head (None: the hub's)
        previous: object = _UNSEEN  # the previous entry's timestamp: a change looks a head up
        head = b""
        mine: list[tuple[bytes, bytes]] = []
        blob: list[bytes] = []
        ids: list[Any] = []
        size = 0
        pack = _LENS.pack
        for n, entry in enumerate(run.entries):
            tail = published_tail(entry.data)
            timestamp = entry.timestamp
            if timestamp == previous:
                blob += (pack(0, len(tail)), tail)
            else:
                previous = timestamp
                known = heads.get(timestamp)
                if known is None:
                    stamp = self._stamp(run.now) if timestamp is None else timestamp
                    known = heads[timestamp] = published_head(run.kind, container_id, stamp)
                sent = b"" if known is head else known
                head = known
                blob += (pack(len(sent), len(tail)), sent, tail)
            size += len(head) + len(tail)
            if wanted:
                mine.append((head, tail))
            if entry.id is not None:
                if not ids and n:
                    ids = ["", False] * n
                ids += (entry.producer, entry.id)
            elif ids:
                ids += ("", False)
        return b"".join(blob), size, ids, mine

    def _publish_op(
        self, batch: list[tuple[str, list[_Run]]]
    ) -> tuple[Callable[[Any], None], Callable[[Any], Any]]:
        """One call of the PUBLISH script for every container of ``batch``, with its runs."""
        head = self._script_head(batch[-1][1][-1].now)
        keys: list[bytes] = []
        blobs: list[bytes] = []
        done: list[tuple[str, list[_Run], list[list[tuple[bytes, bytes]]], bool]] = []
        for container_id, runs in batch:
            admitted = container_id in self._admitted
            array, run_blobs, parts = self._container_args(
                container_id, runs, "1" if admitted else "0"
            )
            head.append(array)
            blobs += run_blobs
            keys += self._keys_of(container_id).encoded
            done.append((container_id, runs, parts, admitted))
        args = (_ENCODE(head), *blobs)

        def add(pipe: Any) -> None:
            pipe.evalsha(self._shas["PUBLISH"], len(keys), *keys, *args)

        def result(reply: Any) -> list[tuple[str, int]]:
            durable: list[tuple[str, int]] = []
            failed = isinstance(reply, Exception)
            for i, (container_id, runs, parts, admitted) in enumerate(done):
                answer = reply if failed else reply[i]
                durable += self._published(container_id, runs, parts, answer, admitted)
            return durable

        return add, result

    def _published(
        self,
        container_id: str,
        runs: list[_Run],
        parts: list[list[tuple[bytes, bytes]]],
        reply: Any,
        admitted: bool,
    ) -> list[tuple[str, int]]:
        if isinstance(reply, Exception):
            for run in runs:
                run.done(self._refused(run, "unavailable", f"Redis at {self.shown}: {reply}"))
            return []
        if reply[0] == b"admit":
            self._known_active.discard(container_id)
            self._admitted.discard(container_id)
            queue = self._queues.setdefault(container_id, deque())
            queue.extendleft(reversed(runs))
            self._kick()
            return []
        if admitted:
            self._admitted.discard(container_id)
        epoch = _text(reply[1])
        last_seq = int(reply[2])
        self._saw(container_id, epoch, last_seq)
        started = reply[3] == 1
        ended = reply[4] == 1
        if ended:
            self._known_active.discard(container_id)
        else:
            self._known_active.add(container_id)
        given = _seqs(reply, runs)
        self._deliver_own(container_id, epoch, runs, parts, given)
        for i, run in enumerate(runs):
            seqs = given[i]
            run.done(
                Published(
                    container_id,
                    seqs,
                    last_seq,
                    epoch,
                    started=started and i == 0,
                    ended=ended and i == len(runs) - 1,
                )
            )
        if ended:
            self._end_global(container_id, repr(runs[-1].now))
        else:
            self._note_idle(container_id, runs[-1].now)
        return [(container_id, last_seq)]

    def _saw(self, container_id: str, epoch: str, seq: int) -> None:
        """Remember the highest seq of an epoch this process handed on (see PUBLISH)."""
        seen = self._seen.get(container_id)
        if seen is None or seen[0] != epoch or seen[1] < seq:
            if len(self._seen) > _SEEN_MAX:
                self._seen.clear()
            self._seen[container_id] = (epoch, seq)

    def _deliver_own(
        self,
        container_id: str,
        epoch: str,
        runs: Sequence[_Run],
        parts: list[list[tuple[bytes, bytes]]],
        given: list[list[int]],
    ) -> None:
        """Deliver this process's stored runs at once, without waiting for Pub/Sub.

        Through the container's feed when it has one (so they are ordered with the runs of
        other processes, and the Pub/Sub copy is dropped as already delivered).
        """
        handler = self._handler
        if handler is None:
            return
        feed = self._feeds.get(container_id)
        for i, run in enumerate(runs):
            if not parts[i]:
                continue  # nobody to deliver to when it was sent (see _container_args)
            if (
                feed is not None
                and feed.last is not None
                and feed.epoch == epoch
                and max(given[i]) <= feed.last
            ):
                continue  # its Pub/Sub copy came first and was delivered
            payloads: list[bytes] = []
            first = 0
            for (head, tail), seq in zip(parts[i], given[i], strict=True):
                if seq:
                    first = first or seq
                    payloads.append(b"%b%d%b" % (head, seq, tail))
            if not payloads:
                continue
            if feed is None and not self._star_on:
                handler.deliver(container_id, run.kind, payloads)
                continue
            stored = _Fanout(epoch, first, run.kind, len(payloads), payloads=payloads)
            if feed is None:
                feed = self._star_feed(container_id, stored)
            feed.queue.append(stored)
        if feed is not None:
            self._advance(container_id, feed)

    async def _send(
        self,
        ops: list[tuple[Callable[[Any], None], Callable[[Any], Any]]],
        admissions: list[str],
    ) -> None:
        pipe = self._client.pipeline(transaction=False)
        for add, _ in ops:
            add(pipe)
        if self._target.wait_aof:
            pipe.execute_command("WAITAOF", 1, 0, 0)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError, TimeoutError) as exc:
            replies = [exc] * len(ops)
            if isinstance(exc, (OSError, TimeoutError)) or _is_connection_error(exc):
                # Unavailable first, so that what the batch held is asked again on recovery.
                self._down(f"Redis at {self.shown} cannot be reached: {exc}")
                self._fail_batch(ops, exc)
                return
        replies = list(replies)[: len(ops)]
        lost = next(
            (r for r in replies if isinstance(r, Exception) and _is_connection_error(r)), None
        )
        if lost is not None:
            self._down(f"Redis at {self.shown} cannot be reached: {lost}")
        redo = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if redo:
            # Redis lost its scripts (restarted, SCRIPT FLUSH): none of those calls ran.
            await self._load_scripts()
            again = await self._resend([ops[i] for i in redo])
            for i, reply in zip(redo, again, strict=True):
                replies[i] = reply
        durable: list[tuple[str, int]] = []
        for (_, result), reply in zip(ops, replies, strict=False):
            try:
                got = result(reply)
            except Exception:  # one failing callback must not cost the others their answer
                _log.exception("engine_callback_failed", engine="redis")
                continue
            if got:
                durable.extend(got)
        if durable and self._handler is not None:
            self._handler.durable(durable)

    async def _resend(
        self, ops: list[tuple[Callable[[Any], None], Callable[[Any], Any]]]
    ) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for add, _ in ops:
            add(pipe)
        try:
            return list(await pipe.execute(raise_on_error=False))[: len(ops)]
        except (RedisError, OSError, TimeoutError) as exc:
            return [exc] * len(ops)

    def _fail_batch(
        self, ops: list[tuple[Callable[[Any], None], Callable[[Any], Any]]], exc: BaseException
    ) -> None:
        error = ConnectionError(str(exc))
        for _, result in ops:
            result(error)

    # -- history --------------------------------------------------------------------------

    async def _ready(self, container_id: str) -> None:
        feed = self._feeds.get(container_id)
        if feed is not None and feed.ready is not None and not feed.ready.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(feed.ready), _SUBSCRIBE_TIMEOUT)

    async def read(
        self,
        container_id: str,
        *,
        after: int = 0,
        tail: int | None = None,
        since_time: float | None = None,
        limit: int | None = None,
    ) -> list[StoredMessage]:
        await self._ready(container_id)
        keys = self._keys_of(container_id)
        client = self._client
        if client is None:
            raise EngineError(f"Redis at {self.shown} is not connected")
        if since_time is not None:
            first = int(await self._script("SEEK", [keys.stream], [repr(since_time)]))
            if first == 0:
                return []
            after = max(after, first - 1)
        if tail is not None:
            if tail <= 0:
                return []
            # An entry holds at least one message: the last ``tail`` entries hold the last
            # ``tail`` messages.
            entries = await self._call(lambda: client.xrevrange(keys.stream, "+", "-", count=tail))
            entries.reverse()
            found = _messages(entries, after)[-tail:]
        else:
            if limit is not None and limit <= 0:
                return []
            entries = await self._script("READ", [keys.stream], [after, "+", limit or 0])
            found = _messages(entries, after)
        return found if limit is None else found[:limit]

    def known_position(self, container_id: str) -> Position | None:
        """Always None: the position lives in Redis (see :meth:`position`)."""
        return None

    def position(self, container_id: str) -> Awaitable[Position]:
        """Read in the write pipeline, queued at the call: after every run this process
        published before it, before every run it publishes after. See
        :meth:`Engine.position`."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.available or self._client is None:
            answer.set_result(EngineError(f"Redis at {self.shown} cannot be reached"))
        else:

            def result(reply: Any) -> None:
                if not answer.done():
                    answer.set_result(reply)

            self._ops.append((self._position_add(self._keys_of(container_id)), result))
            self._kick()
        return self._answer_position(container_id, answer)

    async def _answer_position(self, container_id: str, answer: asyncio.Future[Any]) -> Position:
        await self._ready(container_id)
        try:
            reply = await asyncio.wait_for(answer, _SUBSCRIBE_TIMEOUT)
        except TimeoutError:
            raise EngineError(
                f"Redis at {self.shown} did not answer within {_SUBSCRIBE_TIMEOUT:g} s"
            ) from None
        if isinstance(reply, EngineError):
            raise reply
        if isinstance(reply, Exception):
            raise EngineError(f"Redis at {self.shown} cannot answer: {reply}") from None
        return Position(int(reply[0]), int(reply[1]), _text(reply[2]))

    async def prune(self, now: float) -> int:
        client = self._client
        if client is None:
            return 0
        cutoff = now - self.retention_age
        active = await self._call(lambda: client.zrange(self._active_key, 0, -1))
        ended = await self._call(lambda: client.zrange(self._ended_key, 0, -1, withscores=True))
        removed = 0
        old: list[str] = []
        for name in [*active, *(n for n, _ in ended)]:
            container_id = _text(name)
            keys = self._keys_of(container_id)
            removed += int(
                await self._script("TRIM", [keys.stream], [repr(cutoff), self.retention_messages])
            )
        for name, score in ended:
            if score < cutoff:
                old.append(_text(name))
        for container_id in old:
            keys = self._keys_of(container_id)
            # The container's seq, epoch and producer ids stay, so seq never goes back.
            await self._call(
                lambda keys=keys: client.delete(keys.session, keys.smeta)  # type: ignore[misc]
            )
            await self._call(
                lambda cid=container_id: client.zrem(self._ended_key, cid)  # type: ignore[misc]
            )
        return removed

    # -- fan-out --------------------------------------------------------------------------

    def listen(self, container_id: str) -> None:
        """Subscribe to the container's runs (``"*"``: to every container's).

        The position the feed starts from is read in this process's write pipeline, after
        every run it published before, so all of those come before it and every later run is
        delivered: once the subscription is confirmed, the feed is caught up from the stream,
        and Pub/Sub takes over from there.
        """
        if container_id == "*":
            if not self._star_on:
                self._star_on = True
                self._plain.add(self._star)
                self._spawn(self._subscribe_plain(self._star))
            return
        feed = self._feeds.get(container_id)
        if feed is not None and feed.listened:
            return
        keys = self._keys_of(container_id)
        if feed is not None:
            # Followed under "*" already: keep its place, add the container's own channel.
            feed.listened = True
            self._spawn(self._subscribe_feed(container_id, feed, keys))
            return
        feed = self._feeds[container_id] = _Feed(listened=True, stale=True)
        feed.ready = asyncio.get_running_loop().create_future()
        self._ops.append(self._baseline_op(container_id, feed, keys))
        self._kick()
        self._spawn(self._subscribe_feed(container_id, feed, keys))

    def _baseline_op(
        self, container_id: str, feed: _Feed, keys: _Keys
    ) -> tuple[Callable[[Any], None], Callable[[Any], Any]]:
        def result(reply: Any) -> None:
            if self._feeds.get(container_id) is not feed:
                return
            if isinstance(reply, Exception):
                if not self.available:
                    # Sent again once Redis answers (no pipeline is sent before).
                    self._ops.append(self._baseline_op(container_id, feed, keys))
                else:
                    _log.warning("engine_listen_failed", container=container_id, error=str(reply))
                return
            feed.last = int(reply[0])
            feed.epoch = _text(reply[2])
            if feed.ready is not None and not feed.ready.done():
                feed.ready.set_result(None)
            self._catch_up(container_id, feed)

        return self._position_add(keys), result

    def _position_add(self, keys: _Keys) -> Callable[[Any], None]:
        """Adds the POSITION script for ``keys``'s container to a write pipeline."""
        sha = self._shas["POSITION"]

        def add(pipe: Any) -> None:
            pipe.evalsha(sha, 2, keys.meta, keys.stream, self._new_epoch())

        return add

    async def _subscribe_feed(self, container_id: str, feed: _Feed, keys: _Keys) -> None:
        try:
            await self._pubsub_for(keys.pub).subscribe(keys.pub, True)
        except (RedisError, OSError, TimeoutError, EngineError) as exc:
            self._pubsub_lost(f"cannot subscribe to {container_id!r}: {exc}")
            return
        feed.subscribed = True
        self._catch_up(container_id, feed)

    def _catch_up(self, container_id: str, feed: _Feed) -> None:
        """Once the feed has its start and its subscription, find how far it must reach.

        Every run stored before the subscription took effect is at or below the position
        read after it: the feed delivers up to there from what it holds and from the stream,
        and Pub/Sub brings the rest.
        """
        if self._feeds.get(container_id) is not feed or feed.last is None:
            return
        if feed.subscribed and feed.stale:
            self._spawn(self._reach(container_id, feed))

    async def _reach(self, container_id: str, feed: _Feed) -> None:
        keys = self._keys_of(container_id)
        try:
            reply = await self._script("POSITION", [keys.meta, keys.stream], [self._new_epoch()])
        except EngineError:
            return  # unavailable: recovery comes back here
        if self._feeds.get(container_id) is not feed or feed.last is None:
            return
        epoch = _text(reply[2])
        if epoch != feed.epoch and not feed.filling and self._handler is not None:
            self._reset(self._handler, container_id, feed, epoch)
        feed.reach = max(feed.reach, int(reply[0]))
        feed.stale = False
        self._advance(container_id, feed)

    async def _subscribe_plain(self, channel: bytes) -> None:
        try:
            await self._pubsub_for(None).subscribe(channel, False)
        except (RedisError, OSError, TimeoutError, EngineError) as exc:
            self._pubsub_lost(f"cannot subscribe to {channel.decode(errors='replace')}: {exc}")

    def unlisten(self, container_id: str) -> None:
        if container_id == "*":
            if self._star_on:
                self._star_on = False
                self._plain.discard(self._star)
                for cid in [c for c, f in self._feeds.items() if not f.listened]:
                    del self._feeds[cid]
                self._spawn(self._unsubscribe(None, self._star, False))
            return
        feed = self._feeds.get(container_id)
        if feed is None or not feed.listened:
            return
        if self._star_on:
            feed.listened = False
        else:
            del self._feeds[container_id]
        keys = self._keys_of(container_id)
        self._spawn(self._unsubscribe(keys.pub, keys.pub, True))

    async def _unsubscribe(self, route: bytes | None, channel: bytes, sharded: bool) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError, EngineError):
            await self._pubsub_for(route).unsubscribe(channel, sharded)

    def _pubsub_for(self, channel: bytes | None) -> _PubSub:
        """The Pub/Sub connection for ``channel`` (None: a plain channel, any node)."""
        client = self._client
        if client is None:
            raise EngineError(f"Redis at {self.shown} is not connected")
        if self._target.cluster:
            if channel is None:
                node = client.get_primaries()[0]
                name = "*"
            else:
                node = client.get_node_from_key(channel.decode())
                name = node.name
            kwargs = dict(node.connection_kwargs)
            kwargs.update(host=node.host, port=node.port)
            make: Callable[[], Connection] = lambda: node.connection_class(**kwargs)  # noqa: E731
            shown = f"{node.host}:{node.port}"
        else:
            pool = client.connection_pool
            name = shown = self.shown
            make = lambda: pool.connection_class(**pool.connection_kwargs)  # noqa: E731
        ps = self._pubsubs.get(name)
        if ps is None or ps.closed:
            conn = make()
            ps = self._pubsubs[name] = _PubSub(self, conn, shown)
        return ps

    async def _rebuild_pubsub(self) -> None:
        for ps in list(self._pubsubs.values()):
            await ps.close()
        self._pubsubs.clear()
        if self._target.cluster:
            # Slots may have moved (a sunsubscribe, a MOVED on subscribe): ask the cluster.
            await self._client.nodes_manager.initialize()
        waits = []
        for container_id, feed in self._feeds.items():
            if feed.listened:
                pub = self._keys_of(container_id).pub
                waits.append(self._pubsub_for(pub).subscribe(pub, True))
        for channel in self._cmd_channels:
            waits.append(self._pubsub_for(channel).subscribe(channel, True))
        for channel in self._plain:
            waits.append(self._pubsub_for(None).subscribe(channel, False))
        if self._reply_on:
            waits.append(self._pubsub_for(self._reply).subscribe(self._reply, True))
        for wait in waits:
            await wait
        for feed in self._feeds.values():
            feed.subscribed = feed.listened or self._star_on

    def _on_unsubscribed(self, channel: bytes) -> None:
        # Redis Cluster moved the channel's slot to another master: subscribe there and
        # catch up from the stream.
        if channel in self._cmd_channels or any(
            self._keys_of(c).pub == channel for c, f in self._feeds.items() if f.listened
        ):
            self._pubsub_lost(f"the slot of {channel.decode(errors='replace')} moved")

    def _on_message(self, channel: bytes, data: bytes) -> None:
        command_of = self._cmd_channels.get(channel)
        if command_of is not None:
            self._on_command(command_of, data)
            return
        if channel == self._reply:
            with contextlib.suppress(ValueError):
                request_id, taken = data.split(b" ", 1)
                request = self._requests.get(int(request_id))
                if request is not None:
                    request.answer(int(taken))
            return
        if not channel.endswith(b":pub") and channel != self._star:
            return  # a command channel this process let go of just now
        if data[:1] == _NOTICE:
            self._on_notice(channel, data)
            return
        try:
            container_id, runs = _parse_fanout(data)
        except (ValueError, UnicodeDecodeError):
            _log.warning("engine_bad_fanout", engine="redis", channel=channel[:300])
            return
        feed = self._feeds.get(container_id)
        if feed is None:
            if not self._star_on:
                return
            feed = self._star_feed(container_id, runs[0])
        feed.queue.extend(runs)
        self._advance(container_id, feed)

    def _star_feed(self, container_id: str, run: _Fanout) -> _Feed:
        """Follow a container first seen under ``*`` from ``run`` on (or, while Pub/Sub is
        being caught up, from where the catch-up finds it)."""
        feed = self._feeds[container_id] = _Feed(listened=False, subscribed=True)
        if not self._star_recovering:
            feed.last = run.first - 1
            feed.epoch = run.epoch
        return feed

    @staticmethod
    def _reset(handler: EngineHandler, container_id: str, feed: _Feed, epoch: str) -> None:
        """Redis has a new epoch for the container: report the gap, follow from seq 1, and
        drop queued runs of the old history."""
        handler.gap(
            container_id,
            feed.last or 0,
            1,
            f"history of {container_id!r} was reset in Redis (new epoch {epoch})",
        )
        feed.epoch = epoch
        feed.last = 0
        feed.reach = 0
        feed.queue = deque(run for run in feed.queue if run.epoch == epoch)

    def _advance(self, container_id: str, feed: _Feed) -> None:
        handler = self._handler
        queue = feed.queue
        while (
            queue
            and not (feed.filling or feed.stale)
            and feed.last is not None
            and handler is not None
        ):
            run = queue[0]
            if run.epoch != feed.epoch:
                handler.gap(
                    container_id,
                    feed.last,
                    1,
                    f"history of {container_id!r} was reset in Redis (new epoch {run.epoch})",
                )
                feed.epoch = run.epoch
                feed.last = 0
                feed.reach = 0
            last = feed.last
            if run.last <= last:
                queue.popleft()
                continue
            if run.first > last + 1:
                self._spawn(self._fill(container_id, feed, run.first - 1))
                return
            queue.popleft()
            payloads = run.messages()[last + 1 - run.first :]
            feed.last = run.last
            feed.heard = time.monotonic()
            self._saw(container_id, feed.epoch, run.last)
            handler.deliver(container_id, run.kind, payloads)
        if (
            not queue
            and not (feed.filling or feed.stale)
            and feed.last is not None
            and feed.last < feed.reach
        ):
            self._spawn(self._fill(container_id, feed, feed.reach))

    async def _fill(self, container_id: str, feed: _Feed, upto: int) -> None:
        """Deliver what Pub/Sub missed, from the stream: ``feed.last + 1 .. upto``.

        One fill at a time per feed; nothing newer is delivered before it ends.
        """
        if feed.filling:
            return
        feed.filling = True
        ok = await self._fill_once(container_id, feed, upto)
        feed.filling = False
        if not ok:
            feed.stale = True  # unavailable: recovery catches it up
            return
        self._advance(container_id, feed)

    async def _fill_once(self, container_id: str, feed: _Feed, upto: int) -> bool:
        keys = self._keys_of(container_id)
        handler = self._handler
        try:
            reply = await self._script("POSITION", [keys.meta, keys.stream], [self._new_epoch()])
            epoch = _text(reply[2])
            assert feed.last is not None
            assert handler is not None
            if epoch != feed.epoch:
                self._reset(handler, container_id, feed, epoch)
                return True
            while feed.last < upto:
                entries = await self._script(
                    "READ", [keys.stream], [feed.last, f"{upto}-0", _FILL_PAGE]
                )
                if self._feeds.get(container_id) is not feed:
                    return True
                found = [m for m in _messages(entries, feed.last) if m.seq <= upto]
                if not found:
                    handler.gap(
                        container_id,
                        feed.last,
                        upto + 1,
                        f"Redis no longer keeps {container_id!r} {feed.last + 1}..{upto}",
                    )
                    feed.last = upto
                    break
                first = found[0].seq
                if first > feed.last + 1:
                    handler.gap(
                        container_id,
                        feed.last,
                        first,
                        f"Redis no longer keeps {container_id!r} {feed.last + 1}..{first - 1}",
                    )
                self._deliver_stored(container_id, found)
                feed.last = found[-1].seq
                self._saw(container_id, feed.epoch, feed.last)
        except (EngineError, RedisError, OSError, TimeoutError):
            # Unavailable: recovery catches this feed up once Redis answers.
            return False
        return True

    def _deliver_stored(self, container_id: str, found: list[StoredMessage]) -> None:
        assert self._handler is not None
        kind = ""
        payloads: list[bytes] = []
        for message in found:
            payload = message.payload
            k = _kind_of(payload)
            if k != kind and payloads:
                self._handler.deliver(container_id, kind, payloads)
                payloads = []
            kind = k
            payloads.append(payload)
        if payloads:
            self._handler.deliver(container_id, kind, payloads)

    # -- commands -------------------------------------------------------------------------

    def _count_attached(self, container_id: str) -> None:
        """Keep this process's count of the container's connections in Redis (for listing)."""
        key = self._keys_of(container_id).attached
        count = self._attached.get(container_id, 0)
        field = self._id
        expiry = (time.time() + _ATTACHED_TTL) * 1000

        def add(pipe: Any) -> None:
            if count:
                pipe.hset(key, field, f"{count}:{expiry:.0f}")
            else:
                pipe.hdel(key, field)

        self._ops.append((add, _ignore))
        self._kick()

    def attach(self, container_id: str) -> None:
        count = self._attached.get(container_id, 0)
        self._attached[container_id] = count + 1
        self._count_attached(container_id)
        if count:
            return
        channel = self._keys_of(container_id).cmd
        self._cmd_channels[channel] = container_id

        async def subscribe() -> None:
            try:
                await self._pubsub_for(channel).subscribe(channel, True)
            except (RedisError, OSError, TimeoutError, EngineError) as exc:
                self._pubsub_lost(f"cannot take commands for {container_id!r}: {exc}")
            finally:
                self._cmd_subscribing.pop(channel, None)

        task = asyncio.ensure_future(subscribe())
        self._cmd_subscribing[channel] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def detach(self, container_id: str) -> None:
        count = self._attached.get(container_id, 0)
        if count <= 1:
            self._attached.pop(container_id, None)
            if count == 1:
                channel = self._keys_of(container_id).cmd
                self._cmd_channels.pop(channel, None)
                self._spawn(self._unsubscribe(channel, channel, True))
        else:
            self._attached[container_id] = count - 1
        if count:
            self._count_attached(container_id)

    async def command(self, container_id: str, payload: bytes) -> int:
        """Publish the command; each process that gets it answers how many connections took it.

        Returns the sum of the answers that came within a second (0: no process holds a
        connection of the container, or none of those took it).
        """
        client = self._client
        if client is None:
            raise EngineError(f"Redis at {self.shown} is not connected")
        if not self._reply_on:
            self._reply_on = True
            try:
                await self._pubsub_for(self._reply).subscribe(self._reply, True)
            except (RedisError, OSError, TimeoutError) as exc:
                self._reply_on = False
                raise EngineError(f"Redis at {self.shown} cannot be reached: {exc}") from None
        channel = self._keys_of(container_id).cmd
        subscribing = self._cmd_subscribing.get(channel)
        if subscribing is not None:
            # This process attached just now: its own subscription comes first.
            with contextlib.suppress(Exception):
                await asyncio.shield(subscribing)
        request_id = next(self._request_ids)
        request = _Request(asyncio.get_running_loop().create_future())
        self._requests[request_id] = request
        message = f"{self._id} {request_id}\n".encode() + payload
        try:
            receivers = int(await self._call(lambda: client.spublish(channel, message)))
            request.expected = receivers
            request.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(request.done), _COMMAND_ANSWER_TIMEOUT)
            return request.taken
        finally:
            del self._requests[request_id]

    def notice(self, container_id: str, payload: bytes) -> None:
        """Publish the notice on the container's channel and on the ``*`` channel, after the
        runs whose storing led to it (their script published them already). A process that
        listens to ``*`` takes the copy on that channel only; the others take the one on the
        container's channel; the sender takes neither."""
        if self._client is None:
            return
        message = b"".join(
            (_NOTICE, self._id.encode(), b" ", container_id.encode(), b"\n", payload)
        )
        self._spawn(self._send_notice(self._keys_of(container_id).pub, message))

    async def _send_notice(self, channel: bytes, message: bytes) -> None:
        client = self._client
        if client is None:
            return
        try:
            # Not in the write pipeline: a Cluster pipeline cannot PUBLISH.
            await self._call(lambda: client.spublish(channel, message))
            await self._call(lambda: client.publish(self._star, message))
        except EngineError:
            return  # at most once: what it says is kept as metadata too

    def _on_notice(self, channel: bytes, data: bytes) -> None:
        end = data.find(b"\n")
        try:
            origin, container_id = data[1 : max(end, 0)].decode().split(" ", 1)
        except (ValueError, UnicodeDecodeError):
            return
        if origin == self._id or self._handler is None:
            return  # the sender told its own subscribers
        if channel == self._star:
            if not self._star_on:
                return
        else:
            feed = self._feeds.get(container_id)
            if self._star_on or feed is None or not feed.listened:
                return
        self._handler.notice(container_id, data[end + 1 :])

    def _reply_channel(self, process_id: str) -> bytes:
        return f"{self._prefix}{{reply:{process_id}}}:r".encode()

    def _on_command(self, container_id: str, data: bytes) -> None:
        try:
            end = data.index(b"\n")
            origin, request_id = data[:end].decode().split(" ", 1)
        except (ValueError, UnicodeDecodeError):
            return
        taken = 0
        if self._handler is not None and self._attached.get(container_id):
            taken = self._handler.command(container_id, data[end + 1 :])
        if origin == self._id:
            request = self._requests.get(int(request_id))
            if request is not None:
                request.answer(taken)
            return
        answer = f"{request_id} {taken}".encode()
        channel = self._reply_channel(origin)

        def add(pipe: Any) -> None:
            pipe.spublish(channel, answer)

        self._ops.append((add, _ignore))
        self._kick()

    # -- loading kept state (tailhub migrate) ---------------------------------------------

    async def occupied(self, container_ids: Sequence[str]) -> list[str]:
        """Those of ``container_ids`` Redis already holds something of (a counter, history or
        a session), in the order given.

        Raises:
            EngineError: Redis cannot be reached.
        """
        client = self._client
        found: list[str] = []
        for start in range(0, len(container_ids), _LIST_BATCH):
            batch = container_ids[start : start + _LIST_BATCH]

            async def run(batch: Sequence[str] = batch) -> list[Any]:
                pipe = client.pipeline(transaction=False)
                for container_id in batch:
                    keys = self._keys_of(container_id)
                    pipe.exists(keys.meta, keys.stream, keys.session)
                return list(await pipe.execute())

            counts = await self._call(run)
            found += [c for c, n in zip(batch, counts, strict=True) if n]
        return found

    async def load_messages(self, container_id: str, messages: Sequence[StoredMessage]) -> None:
        """Append kept messages to the container's history as they are, with their seqs and
        receive times: one stream entry each. They must come in seq order, above any loaded
        before; nothing else is written (see :meth:`load_container`).

        Raises:
            EngineError: Redis cannot be reached, or refused an entry (a seq out of order).
        """
        client = self._client
        stream = self._keys_of(container_id).stream

        async def run() -> None:
            pipe = client.pipeline(transaction=False)
            for message in messages:
                fields = {"t": repr(message.time), "d": message.payload}
                pipe.xadd(stream, fields, id=f"{message.seq}-0")
            await pipe.execute()

        if messages:
            await self._call(run)

    async def load_container(
        self,
        container_id: str,
        *,
        epoch: str,
        last_seq: int,
        stored: int,
        stored_bytes: int,
        producers: Mapping[str, int],
        session: SessionRow | None,
    ) -> None:
        """Give a container whose messages were loaded (:meth:`load_messages`) its counters:
        its epoch and last seq (publishing goes on above it, and a subscriber that resumes
        with a position of that epoch resumes where it was), how many messages and bytes were
        stored, each producer's last id (repeats are still dropped), and its session, listed
        as any other.

        Raises:
            EngineError: Redis cannot be reached.
        """
        client = self._client
        keys = self._keys_of(container_id)

        async def run() -> None:
            pipe = client.pipeline(transaction=False)
            pipe.hset(
                keys.meta,
                mapping={
                    "seq": last_seq,
                    "epoch": epoch,
                    "added": stored,
                    "added_bytes": stored_bytes,
                },
            )
            if producers:
                pipe.hset(keys.producers, mapping=dict(producers))
            if session is not None:
                ended = session.ended_at is not None
                pipe.hset(
                    keys.session,
                    mapping={
                        "active": "0" if ended else "1",
                        "status": session.status,
                        "started": repr(session.started_at),
                        "last": repr(session.last_activity),
                        "ended": "" if session.ended_at is None else repr(session.ended_at),
                        "reason": session.end_reason or "",
                        "exit": "" if session.exit_code is None else str(session.exit_code),
                    },
                )
                if session.ended_at is not None:
                    pipe.zadd(self._ended_key, {container_id: session.ended_at})
                else:
                    pipe.zadd(self._active_key, {container_id: session.started_at})
                    pipe.zadd(self._idle_key, {container_id: session.last_activity})
            await pipe.execute()

        await self._call(run)

    # -- sessions -------------------------------------------------------------------------

    async def session(self, container_id: str) -> SessionInfo | None:
        keys = self._keys_of(container_id)
        reply = await self._script("INFO", (*keys.containers, keys.attached), [])
        return _session_info(container_id, reply)

    async def _infos(self, container_ids: Sequence[str]) -> list[SessionInfo | None]:
        if not container_ids:
            return []
        client = self._client

        async def run() -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for cid in container_ids:
                keys = self._keys_of(cid)
                pipe.evalsha(self._shas["INFO"], 6, *keys.containers, keys.attached)
            return list(await pipe.execute(raise_on_error=False))

        replies = await self._call(run)
        if any(isinstance(r, NoScriptError) for r in replies):
            await self._load_scripts()
            replies = await self._call(run)
        out = []
        for cid, reply in zip(container_ids, replies, strict=True):
            if isinstance(reply, Exception):
                raise EngineError(f"Redis at {self.shown} failed: {reply}")
            out.append(_session_info(cid, reply))
        return out

    async def sessions(
        self, *, status: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> SessionPage:
        """See :meth:`Engine.sessions`.

        Walks the active index by start, then the ended index by end, most recent first. A
        session that has ended but is still in the active index (the process that ended it
        moves it in its next round trip) is listed among the ended ones, where it is about to
        be, by any page that walks both indexes. A page that starts among the ended (a later
        page, or ``status="ended"``) cannot see it until it moved: a few milliseconds.
        """
        client = self._client
        if client is None:
            raise EngineError(f"Redis at {self.shown} is not connected")
        phase, score, after = "a", -math.inf, ""
        if cursor:
            try:
                phase, raw_score, after = cursor.split(":", 2)
                score = float(raw_score)
            except ValueError:
                raise EngineError(f"not a session cursor: {cursor[:64]!r}") from None
            if phase not in ("a", "e"):
                raise EngineError(f"not a session cursor: {cursor[:64]!r}")
        if status == "ended" and phase == "a":
            phase, score, after = "e", math.inf, ""
        found: list[SessionInfo] = []
        listed: set[str] = set()
        moving: list[tuple[float, str, SessionInfo]] = []  # ended, still in the active index
        last_key: tuple[str, float, str] | None = None
        while len(found) < limit:
            joining: list[tuple[float, str, SessionInfo | None]] = []
            if phase == "a":
                if status == "ended":
                    break
                rows, _ = await self._index_batch("a", score, after)
                if not rows:
                    phase, score, after = "e", math.inf, ""
                    continue
            else:
                if status == "active":
                    break
                rows, floor = await self._index_batch("e", score, after)
                # The moving sessions this batch reaches (all of them after the last batch),
                # in the index's order: end time, then ID, both descending.
                joining = [
                    row
                    for row in moving
                    if (floor is None or (row[0], row[1]) > floor)
                    and _past_ended_cursor(row[0], row[1], score, after)
                ]
                if not rows and not joining:
                    break
                moving = [row for row in moving if row not in joining]
            infos = await self._infos([cid for cid, _ in rows])
            page = [(sc, cid, info) for (cid, sc), info in zip(rows, infos, strict=True)]
            if joining:
                page = sorted([*page, *joining], key=lambda row: (row[0], row[1]), reverse=True)
            for sc, cid, info in page:
                score, after = sc, cid
                last_key = (phase, sc, cid)
                if info is None or cid in listed:
                    continue
                if phase == "a" and not info.active:
                    assert info.ended_at is not None
                    moving.append((info.ended_at, cid, info))
                    continue
                if phase == "e" and info.active:
                    continue
                if status not in (None, "active", "ended") and info.status != status:
                    continue
                found.append(info)
                listed.add(cid)
                if len(found) >= limit:
                    break
        next_cursor = None
        if len(found) >= limit and last_key is not None:
            p, sc, cid = last_key
            next_cursor = f"{p}:{sc!r}:{cid}"
        return SessionPage(found, next_cursor)

    async def _index_batch(
        self, phase: str, score: float, after: str
    ) -> tuple[list[tuple[str, float]], tuple[float, str] | None]:
        """The next entries ``(container, score)`` of the active index (``phase`` ``"a"``:
        by start, then ID, ascending) or the ended one (``"e"``: by end, then ID,
        descending) past the cursor ``(score, after)``, and the last entry read, as
        ``(score, ID)``, when more may follow (None: the index ends with these).

        At least one entry is returned while any is left: when a whole batch shares the
        cursor's score (sessions started or ended in one turn of a hub's loop, or timed out in
        one sweep), a batch twice as large is read, and so on.
        """
        client = self._client
        wanted = _LIST_BATCH
        while True:
            if phase == "a":
                fetched = await self._call(
                    lambda n=wanted: client.zrangebyscore(  # type: ignore[misc]
                        self._active_key, score, "+inf", start=0, num=n, withscores=True
                    )
                )
                rows = [(_text(m), sc) for m, sc in fetched if sc > score or _text(m) > after]
            else:
                fetched = await self._call(
                    lambda n=wanted: client.zrevrangebyscore(  # type: ignore[misc]
                        self._ended_key, score, "-inf", start=0, num=n, withscores=True
                    )
                )
                rows = [
                    (cid, sc)
                    for m, sc in fetched
                    if _past_ended_cursor(sc, cid := _text(m), score, after)
                ]
            if len(fetched) < wanted:
                return rows, None
            if rows:
                return rows, (fetched[-1][1], _text(fetched[-1][0]))
            wanted *= 2

    async def expire(
        self, now: float, timeout: float, final: EntryLike | None = None
    ) -> list[SessionInfo]:
        """End sessions idle for ``timeout``; each ended one gets ``final`` stored last.

        The check and the end are one run of the container's PUBLISH script, so across all
        processes one call ends a session and stores ``final`` (a ``status`` message; without
        one the status becomes ``error``). Reason: ``timeout``.
        """
        client = self._client
        if client is None or not self.available:
            return []
        limit = now - timeout
        candidates = await self._call(
            lambda: client.zrangebyscore(self._idle_key, "-inf", limit, start=0, num=1000)
        )
        ended: list[SessionInfo] = []
        for name in candidates:
            info = await self._expire_one(_text(name), now, limit, final)
            if info is not None:
                ended.append(info)
        return ended

    async def _expire_one(
        self, container_id: str, now: float, limit: float, final: EntryLike | None
    ) -> SessionInfo | None:
        keys = self._keys_of(container_id)
        runs = [] if final is None else [_Run(container_id, "status", [final], now, _ignore)]
        array, blobs, parts = self._container_args(container_id, runs, f"e{limit!r}")
        head = [*self._script_head(now), array]
        reply = (await self._script("PUBLISH", keys.containers, [_ENCODE(head), *blobs]))[0]
        state = _text(reply[0])
        if state == "alive":
            client = self._client
            await self._call(
                lambda: client.zadd(
                    self._idle_key, {container_id: float(reply[1])}, xx=True, gt=True
                )
            )
            return None
        self._known_active.discard(container_id)
        self._idle_sent.pop(container_id, None)
        if state == "gone":
            await self._script("END_GLOBAL", self._global, [container_id, _text(reply[1])])
            return None
        given = _seqs(reply, runs)
        self._deliver_own(container_id, _text(reply[1]), runs, parts, given)
        await self._script("END_GLOBAL", self._global, [container_id, repr(now)])
        if self._handler is not None and runs:
            self._handler.durable([(container_id, int(reply[2]))])
        return await self.session(container_id)

    async def end_session(self, container_id: str, reason: str, now: float) -> SessionInfo | None:
        return await self._end(container_id, now, "", reason)

    async def _end(
        self, container_id: str, now: float, limit: str, reason: str
    ) -> SessionInfo | None:
        keys = self._keys_of(container_id)
        client = self._client
        reply = await self._script("END", [keys.session], [repr(now), limit, reason])
        state = _text(reply[0])
        if state == "alive":
            await self._call(
                lambda: client.zadd(
                    self._idle_key, {container_id: float(reply[1])}, xx=True, gt=True
                )
            )
            return None
        await self._script("END_GLOBAL", self._global, [container_id, _text(reply[1])])
        self._known_active.discard(container_id)
        self._idle_sent.pop(container_id, None)
        if state != "ended":
            return None
        return await self.session(container_id)

    # -- metadata and records -------------------------------------------------------------

    async def set_meta(self, container_id: str, name: str, value: bytes | None) -> None:
        client = self._client
        key = self._keys_of(container_id).smeta
        if value is None:
            await self._call(lambda: client.hdel(key, name))
        else:
            await self._call(lambda: client.hset(key, name, value))

    def _record_keys(self, kind: str) -> tuple[str, str]:
        base = f"{self._prefix}{{r:{_tag(kind)}}}:"
        return base + "v", base + "x"

    async def put_record(
        self, kind: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> None:
        if ttl is not None and ttl <= 0:
            await self.delete_record(kind, key)
            return
        ms = "" if ttl is None else max(1, math.ceil(ttl * 1000))
        await self._script("PUT_RECORD", self._record_keys(kind), [key, value, ms])

    async def records(self, kind: str) -> dict[str, bytes]:
        reply = await self._script("RECORDS", self._record_keys(kind), [])
        return {_text(reply[i]): bytes(reply[i + 1]) for i in range(0, len(reply), 2)}

    async def delete_record(self, kind: str, key: str) -> None:
        client = self._client
        values, expiries = self._record_keys(kind)

        async def run() -> None:
            pipe = client.pipeline(transaction=False)
            pipe.hdel(values, key)
            pipe.zrem(expiries, key)
            await pipe.execute()

        await self._call(run)

    async def claim(self, kind: str, key: str, owner: str, ttl: float) -> bool:
        name = f"{self._prefix}{{k:{_tag(kind)}}}:{key}"
        if ttl <= 0:
            # Taken and let go at once: it is the owner's if nobody else holds it.
            client = self._client
            holder = await self._call(lambda: client.get(name))
            return holder is None or _text(holder) == owner
        reply = await self._script("CLAIM", [name], [owner, max(1, math.ceil(ttl * 1000))])
        return bool(reply == 1)


def _past_ended_cursor(score: float, container_id: str, cursor: float, after: str) -> bool:
    """Whether an entry of the ended index (read from ``cursor`` down) comes after the
    listing cursor ``(cursor, after)``: ``after`` empty means nothing at ``cursor`` was
    listed yet."""
    return score < cursor or (score == cursor and (after == "" or container_id < after))


def _ignore(_reply: Any) -> None:
    return None


def _is_connection_error(exc: object) -> bool:
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError)) or (
        isinstance(exc, ResponseError) and str(exc).startswith(("LOADING", "CLUSTERDOWN"))
    )


def _unavailable_words(shown: str) -> str:
    return f"history (Redis at {shown}) cannot be reached; message refused, send it again later"


def _seqs(reply: Any, runs: Sequence[_Run]) -> list[list[int]]:
    """Each run's seqs, per entry (0: a repeat), from the PUBLISH script's ``reply``: per run
    the first seq (every entry stored) or the list."""
    given: list[list[int]] = []
    for answer, run in zip(reply[5:], runs, strict=True):
        if isinstance(answer, int):
            given.append(list(range(answer, answer + len(run.entries))))
        else:
            given.append([int(seq) for seq in answer])
    return given


def _session_info(container_id: str, reply: Any) -> SessionInfo | None:
    if not reply:
        return None
    s = _pairs(reply[0])
    seq, epoch, added, added_bytes = reply[1]
    messages = int(reply[2])
    ended = _text(s.get("ended"))
    exit_code = _text(s.get("exit"))
    added_n = int(added or 0)
    estimate = round(int(added_bytes or 0) * messages / added_n) if added_n else 0
    return SessionInfo(
        container_id=container_id,
        status=_text(s.get("status")) or "running",
        started_at=float(_text(s.get("started")) or 0),
        last_activity=float(_text(s.get("last")) or 0),
        ended_at=float(ended) if ended and _text(s.get("active")) != "1" else None,
        end_reason=_text(s.get("reason")) or None,
        exit_code=int(exit_code) if exit_code else None,
        last_seq=int(seq or 0),
        first_seq=int(reply[3]),
        messages=messages,
        stored_bytes=estimate,
        publishers=int(reply[4]),
        epoch=_text(epoch),
        meta={k: bytes(v) for k, v in _pairs(reply[5]).items()},
    )
