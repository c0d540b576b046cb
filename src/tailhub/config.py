"""The hub's settings: one frozen object built from flags and environment, then validated.

Every setting has a default, an environment variable and a flag; a flag wins over the
variable. Times are in milliseconds, as in the original hub, unless a unit is given
(``500ms``, ``30s``, ``5m``, ``2h``, ``7d``); sizes are bytes unless a unit is given
(``64KiB``, ``1MiB``). A bad value raises :class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import (
    SplitResult,
    parse_qs,
    unquote,
    unquote_plus,
    urlencode,
    urlsplit,
    urlunsplit,
)

from tailhub.paths import default_data_dir

__all__ = [
    "LOG_LEVELS",
    "NOTIFY_FORMATS",
    "NOTIFY_STATES",
    "OPTIONS",
    "ConfigError",
    "Option",
    "RedisTarget",
    "Settings",
    "build_settings",
    "parse_redis_url",
    "redact_url",
    "url_passwords",
]

LOG_LEVELS: Final = ("trace", "debug", "info", "warn", "error", "fatal")
NOTIFY_FORMATS: Final = ("json", "slack", "discord", "ntfy")
"""What a ``--notify`` URL's ``format=`` may name (see :mod:`tailhub.notify`)."""
NOTIFY_STATES: Final = ("waiting", "failed", "done", "stalled")


class ConfigError(Exception):
    """A setting with a value the hub cannot use; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its field on :class:`Settings`, variable, flag, default and kind."""

    name: str
    env: str
    default: str | None
    kind: str
    help: str
    short_flag: str = ""
    multiple: bool = False
    """The flag may be given more than once (the variable is then comma-separated)."""

    @property
    def flag(self) -> str:
        return self.short_flag or "--" + self.name.replace("_", "-")


OPTIONS: Final = (
    Option("port", "PORT", "8080", "port", "listen port"),
    Option("host", "HOST", "0.0.0.0", "str", "listen address"),
    Option("auth_token", "AUTH_TOKEN", None, "secret", "shared token every connection presents"),
    Option(
        "token_secret",
        "TAILHUB_TOKEN_SECRET",
        None,
        "signing",
        "secret that signs scoped tokens (HS256), 32 characters or more",
    ),
    Option(
        "jwt_public_key",
        "TAILHUB_JWT_PUBLIC_KEY",
        None,
        "path",
        "PEM public key file: also accept RS256/ES256 scoped tokens it verifies",
    ),
    Option(
        "revocation_interval",
        "TAILHUB_REVOCATION_INTERVAL",
        "2s",
        "ms",
        "how often the hub reads revoked tokens from the engine (ms)",
    ),
    Option("heartbeat_interval", "HEARTBEAT_INTERVAL", "30000", "ms", "ping round (ms)"),
    Option("session_timeout", "SESSION_TIMEOUT", "300000", "ms", "idle session end (ms)"),
    Option("max_sessions", "MAX_SESSIONS", "100", "count", "most active sessions"),
    Option("log_level", "LOG_LEVEL", "info", "level", "hub log level"),
    Option("data_dir", "TAILHUB_DATA_DIR", None, "path", "token file and history database"),
    Option("history", "TAILHUB_HISTORY", "sqlite", "history", "history store: sqlite|memory"),
    Option(
        "retention_messages",
        "TAILHUB_RETENTION_MESSAGES",
        "100000",
        "count",
        "messages kept per container",
    ),
    Option("retention_age", "TAILHUB_RETENTION_AGE", "7d", "ms", "how long messages are kept"),
    Option(
        "startup_check_timeout",
        "TAILHUB_STARTUP_CHECK_TIMEOUT",
        "30s",
        "ms0",
        "time the start-up damage check of the history database may take (ms; 0: skip it)",
    ),
    Option(
        "max_message_size",
        "TAILHUB_MAX_MESSAGE_SIZE",
        "1MiB",
        "size",
        "largest frame accepted (close 1009 above it)",
    ),
    Option(
        "max_fragments",
        "TAILHUB_MAX_FRAGMENTS",
        "1024",
        "count",
        "most frames one WebSocket message may be split into (close 1009 above it)",
    ),
    Option(
        "max_pings",
        "TAILHUB_MAX_PINGS",
        "10",
        "count",
        "WebSocket pings and pongs a second one connection may send, in bursts of as many"
        " (close 4429 above it)",
    ),
    Option("max_connections", "TAILHUB_MAX_CONNECTIONS", "20000", "count", "most connections"),
    Option(
        "max_request_messages",
        "TAILHUB_MAX_REQUEST_MESSAGES",
        "10000",
        "count",
        "most messages one HTTP publish request may carry (413 above it)",
    ),
    Option(
        "max_subscriptions",
        "TAILHUB_MAX_SUBSCRIPTIONS",
        "100",
        "count",
        "most subscriptions per connection",
    ),
    Option(
        "publish_rate",
        "TAILHUB_PUBLISH_RATE",
        "20000",
        "count0",
        "messages per second one connection may publish (0: no limit)",
    ),
    Option(
        "max_queue",
        "TAILHUB_MAX_QUEUE",
        "8MiB",
        "size",
        "bytes a reader may fall behind before it is closed with 4429",
    ),
    Option(
        "max_store_lag",
        "TAILHUB_MAX_STORE_LAG",
        "250000",
        "count",
        "messages history may lag behind before publishes are refused (unavailable)",
    ),
    Option(
        "max_store_lag_bytes",
        "TAILHUB_MAX_STORE_LAG_BYTES",
        "64MiB",
        "size",
        "bytes of messages history may lag behind before publishes are refused (unavailable)",
    ),
    Option(
        "max_head",
        "TAILHUB_MAX_HEAD",
        "64KiB",
        "size",
        "bytes a connection's first request head may have; a longer one is refused (431)",
    ),
    Option(
        "auth_timeout",
        "TAILHUB_AUTH_TIMEOUT",
        "5000",
        "ms",
        "time a new connection has to send its request head, and a WebSocket without a"
        " token to send one (ms)",
    ),
    Option(
        "max_unauthenticated",
        "TAILHUB_MAX_UNAUTHENTICATED",
        "1000",
        "count",
        "most WebSocket connections still without a token (apart from max-connections)",
    ),
    Option(
        "max_connections_per_ip",
        "TAILHUB_MAX_CONNECTIONS_PER_IP",
        "15000",
        "count0",
        "most open TCP connections from one client address (0: no limit)",
    ),
    Option(
        "keepalive_timeout",
        "TAILHUB_KEEPALIVE_TIMEOUT",
        "30s",
        "ms",
        "time an HTTP connection may stay idle, or send its next request head, between"
        " requests (ms)",
    ),
    Option(
        "body_timeout",
        "TAILHUB_BODY_TIMEOUT",
        "30s",
        "ms",
        "time a client has to send a whole request body (ms)",
    ),
    Option(
        "allowed_origins",
        "TAILHUB_ALLOWED_ORIGINS",
        "",
        "list",
        "comma-separated browser origins allowed (empty: any)",
    ),
    Option(
        "redis_url",
        "TAILHUB_REDIS_URL",
        None,
        "redis",
        "keep history, sessions and fan-out in Redis (redis://host:port/db, rediss:// for"
        " TLS, unix:///path/to/redis.sock?db=N, redis+cluster://host:port for Redis Cluster)"
        " so many hub processes act as one",
        short_flag="--redis",
    ),
    Option(
        "redis_requests",
        "TAILHUB_REDIS_REQUESTS",
        "64",
        "count",
        "requests a hub process has in flight to Redis at once (reads, sessions, scripts);"
        " more wait their turn",
    ),
    Option(
        "workers",
        "TAILHUB_WORKERS",
        "1",
        "count",
        "hub processes sharing the port (SO_REUSEPORT); more than 1 needs --redis",
    ),
    Option(
        "stall_after",
        "TAILHUB_STALL_AFTER",
        "5m",
        "ms",
        "a running session that publishes nothing for this long is stalled (ms)",
    ),
    Option(
        "notify",
        "TAILHUB_NOTIFY",
        "",
        "urls",
        "webhook URL to notify of attention states (repeatable; the variable is"
        " comma-separated; format=json|slack|discord|ntfy in the query chooses the format)",
        multiple=True,
    ),
    Option(
        "notify_on",
        "TAILHUB_NOTIFY_ON",
        "waiting,failed,stalled",
        "states",
        "attention states that notify (waiting, failed, done, stalled)",
    ),
    Option(
        "notify_match",
        "TAILHUB_NOTIFY_MATCH",
        None,
        "regex",
        "also notify of log lines whose message matches this regular expression",
    ),
    Option(
        "public_url",
        "TAILHUB_PUBLIC_URL",
        None,
        "url",
        "the dashboard's address as people open it, for links in notifications",
    ),
    Option(
        "notify_cooldown",
        "TAILHUB_NOTIFY_COOLDOWN",
        "5m",
        "ms0",
        "least time between two notifications of one session and state (ms; 0: none)",
    ),
    Option(
        "notify_timeout",
        "TAILHUB_NOTIFY_TIMEOUT",
        "10s",
        "ms",
        "time one webhook request may take before it is cut (ms)",
    ),
    Option(
        "notify_attempts",
        "TAILHUB_NOTIFY_ATTEMPTS",
        "5",
        "count",
        "attempts per notification and destination before it is recorded failed",
    ),
    Option(
        "notify_outbox",
        "TAILHUB_NOTIFY_OUTBOX",
        "10000",
        "count",
        "most notifications waiting to be delivered (the oldest is dropped beyond it)",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the hub is configured with. Times are in seconds, sizes in bytes."""

    port: int = 8080
    host: str = "0.0.0.0"
    auth_token: str | None = None
    token_secret: str | None = None
    jwt_public_key: Path | None = None
    revocation_interval: float = 2.0
    heartbeat_interval: float = 30.0
    session_timeout: float = 300.0
    max_sessions: int = 100
    log_level: str = "info"
    data_dir: Path = field(default_factory=default_data_dir)
    history: str = "sqlite"
    retention_messages: int = 100_000
    retention_age: float = 7 * 86400.0
    startup_check_timeout: float = 30.0
    max_message_size: int = 1 << 20
    max_fragments: int = 1024
    max_pings: int = 10
    max_connections: int = 20_000
    max_request_messages: int = 10_000
    max_subscriptions: int = 100
    publish_rate: int = 20_000
    max_queue: int = 8 << 20
    max_store_lag: int = 250_000
    max_store_lag_bytes: int = 64 << 20
    max_head: int = 64 << 10
    auth_timeout: float = 5.0
    max_unauthenticated: int = 1000
    max_connections_per_ip: int = 15_000
    keepalive_timeout: float = 30.0
    body_timeout: float = 30.0
    allowed_origins: tuple[str, ...] = ()
    redis_url: str | None = None
    redis_requests: int = 64
    workers: int = 1
    stall_after: float = 300.0
    notify: tuple[str, ...] = ()
    notify_on: tuple[str, ...] = ("waiting", "failed", "stalled")
    notify_match: str | None = None
    public_url: str | None = None
    notify_cooldown: float = 300.0
    notify_timeout: float = 10.0
    notify_attempts: int = 5
    notify_outbox: int = 10_000

    def __repr__(self) -> str:
        # Webhook URLs and the token are secrets: never in a log line or a traceback.
        shown = {
            name: "(hidden)" if name in ("auth_token", "notify") else getattr(self, name)
            for name in self.__dataclass_fields__
        }
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


_MIN_SIGNING: Final = 32
"""The shortest token secret (HS256 wants 256 bits); ``tailhub.auth`` checks the same."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS: Final = {None: 0.001, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS: Final = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 10**6,
    "mib": 1 << 20,
    "gb": 10**9,
    "gib": 1 << 30,
}


_REDIS_FORMS: Final = (
    "redis://host:port/db, rediss://... for TLS, unix:///path/to/redis.sock?db=N for a "
    "Unix socket, or redis+cluster://host:port for Redis Cluster"
)
_PASSWORD_PARAMETER: Final = re.compile(r"(?i)((?:^|&)password=)([^&]*)")


def _unsplit_url(parts: SplitResult) -> str:
    """:func:`urllib.parse.urlunsplit`, keeping ``//`` when the authority is empty: a Unix
    socket's ``unix:///path/to/redis.sock`` stays that, not ``unix:/path/to/redis.sock``."""
    joined = urlunsplit(parts)
    if not parts.netloc and parts.scheme and not joined.startswith(f"{parts.scheme}://"):
        joined = f"{parts.scheme}://{joined.removeprefix(parts.scheme + ':')}"
    return joined


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, in its user part and in any ``password``
    query parameter (redis-py reads both): what logs and errors show."""
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.hostname or ""
            if parts.port is not None:
                host = f"{host}:{parts.port}"
            parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
        if parts.query:
            parts = parts._replace(query=_PASSWORD_PARAMETER.sub(r"\1***", parts.query))
        return _unsplit_url(parts)
    except ValueError:
        return "(an unparsable URL)"


def url_passwords(url: str) -> list[str]:
    """Every password ``url`` carries (see :func:`redact_url`), as written and as decoded:
    what no log line may contain. Empty for a URL that cannot be parsed."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    written = [password] if password else []
    written += [found[2] for found in _PASSWORD_PARAMETER.finditer(parts.query) if found[2]]
    return sorted(
        {form for value in written for form in (value, unquote(value), unquote_plus(value))}
    )


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A Redis URL, checked (see :func:`parse_redis_url`)."""

    url: str
    """What redis-py is given: the scheme without ``+cluster``, the query without ``waitaof``."""
    cluster: bool
    """``redis+cluster://`` or ``rediss+cluster://``: a Redis Cluster, given any node."""
    unix: bool
    """``unix://``: one server, reached over its Unix socket."""
    wait_aof: bool
    """``waitaof=1``: a write is acked once the server's AOF has it on disk."""


def parse_redis_url(raw: str) -> RedisTarget:
    """Check a ``--redis`` URL (also what ``tailhub migrate`` is given).

    Takes ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS),
    ``unix://[user:password@]/path/to/redis.sock?db=N`` and ``redis+cluster://host:port``
    (``rediss+cluster://``); a password may also be a ``password=`` query parameter, and
    ``waitaof=1`` (one server only) is the hub's own.

    Raises:
        ValueError: words saying what is wrong, which never hold the password.
    """
    try:
        parts = urlsplit(raw)
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    cluster = scheme.endswith("+cluster")
    base = scheme.removesuffix("+cluster")
    unix = base == "unix" and not cluster
    if not (unix and parts.path) and (base not in ("redis", "rediss") or not parts.hostname):
        raise ValueError(f"must be {_REDIS_FORMS}")
    query = parse_qs(parts.query)
    wait_aof = query.pop("waitaof", ["0"])[-1] in ("1", "true", "yes")
    if wait_aof and cluster:
        raise ValueError(
            "has waitaof=1, which is for one server (on Redis Cluster, each master's "
            "appendfsync decides when a write is on disk)"
        )
    url = _unsplit_url(parts._replace(scheme=base, query=urlencode(query, doseq=True)))
    return RedisTarget(url, cluster, unix, wait_aof)


def _redis_url(raw: str) -> str | None:
    url = raw.strip()
    if not url:
        return None
    parse_redis_url(url)
    return url


def _notify_url(raw: str) -> str:
    """A ``--notify`` URL, checked; the error words never repeat the URL (a secret)."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ValueError("is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    chosen = parse_qs(parts.query).get("format")
    if chosen is not None and chosen[-1] not in NOTIFY_FORMATS:
        raise ValueError(f"has format={chosen[-1][:16]!r}: use {', '.join(NOTIFY_FORMATS)}")
    return raw


def _convert(option: Option, raw: str) -> object:
    kind = option.kind
    if kind == "redis":
        return _redis_url(raw)
    if kind == "urls":
        return tuple(_notify_url(part.strip()) for part in raw.split(",") if part.strip())
    if kind == "states":
        states = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
        unknown = [state for state in states if state not in NOTIFY_STATES]
        if unknown:
            raise ValueError(f"names {unknown[0][:32]!r}: use {', '.join(NOTIFY_STATES)}")
        return states
    if kind == "regex":
        try:
            re.compile(raw)
        except re.error as exc:
            raise ValueError(f"is not a regular expression ({exc})") from None
        return raw or None
    if kind == "url":
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return raw.rstrip("/")
    if kind in ("str", "secret", "signing"):
        if kind != "str" and raw == "":
            return None
        if kind == "signing" and len(raw) < _MIN_SIGNING:
            raise ValueError(f"must be at least {_MIN_SIGNING} characters")
        return raw
    if kind == "path":
        return Path(raw).expanduser()
    if kind == "list":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "level":
        level = raw.lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level
    if kind == "history":
        if raw not in ("sqlite", "memory"):
            raise ValueError("must be sqlite or memory")
        return raw
    if kind in ("ms", "ms0"):
        match = _DURATION.match(raw)
        if match is None:
            raise ValueError("must be a duration in milliseconds (or with a unit: 30s, 5m, 7d)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        if seconds <= 0 and kind == "ms":
            raise ValueError("must be greater than 0")
        return seconds
    if kind == "size":
        match = _SIZE.match(raw)
        if match is None:
            raise ValueError("must be a size in bytes (or with a unit: 64KiB, 1MiB)")
        size = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
        if size <= 0:
            raise ValueError("must be greater than 0")
        return size
    try:
        number = int(raw.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None
    if kind == "port" and not 0 <= number <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    if kind == "count" and number < 1:
        raise ValueError("must be 1 or more")
    if kind == "count0" and number < 0:
        raise ValueError("must be 0 or more")
    return number


def build_settings(values: dict[str, tuple[str | None, bool]]) -> Settings:
    """Build settings from raw strings.

    Args:
        values: for each option name, its raw value (None for the default) and whether it
            came from the command line rather than the environment, for the error message.

    Raises:
        ConfigError: naming the variable (and flag) whose value is unusable.
    """
    converted: dict[str, object] = {}
    for option in OPTIONS:
        raw, from_flag = values.get(option.name, (None, False))
        if raw is None:
            raw = option.default
        if raw is None:
            continue
        try:
            converted[option.name] = _convert(option, raw)
        except ValueError as exc:
            where = f"{option.flag} (also {option.env})" if from_flag else option.env
            shown = "(hidden)" if option.kind in ("secret", "signing", "urls") else repr(raw)
            if option.kind == "redis":
                shown = repr(redact_url(raw))
            raise ConfigError(f"invalid {where}: {shown} {exc}") from None
    workers = converted.get("workers", 1)
    if isinstance(workers, int) and workers > 1 and converted.get("redis_url") is None:
        where = "--workers (also TAILHUB_WORKERS)"
        raise ConfigError(
            f"invalid {where}: {workers} processes need --redis (TAILHUB_REDIS_URL): without"
            " Redis, seq, history and sessions live in one process"
        )
    return Settings(**converted)  # type: ignore[arg-type]
