"""Where to connect, with which token and as which container: explicit value, environment, file.

The order is the same everywhere (SDK and CLI): an explicit argument wins; then the
environment; then a default. The variables are ``TAILHUB_URL`` (and ``WS_SERVER``, the
original container wrapper's name), ``TAILHUB_TOKEN`` (or ``TAILHUB_TOKEN_FILE``, a file
holding it, which publishers and subscribers watch for a renewed token) and ``CONTAINER_ID``.
``TAILHUB_URL`` may name several processes of one hub, comma-separated: clients move to the
next when one is down.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import yarl

from tailhub.client._errors import ConfigurationError
from tailhub.paths import token_path

__all__ = [
    "CONTAINER_ENV",
    "DEFAULT_URL",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "URL_ENVS",
    "display_url",
    "display_url_list",
    "read_token_file",
    "resolve_container_id",
    "resolve_token",
    "resolve_token_file",
    "resolve_url",
    "resolve_urls",
]

DEFAULT_URL: Final = "ws://localhost:8080"
URL_ENVS: Final = ("TAILHUB_URL", "WS_SERVER")
TOKEN_ENV: Final = "TAILHUB_TOKEN"
TOKEN_FILE_ENV: Final = "TAILHUB_TOKEN_FILE"
CONTAINER_ENV: Final = "CONTAINER_ID"
_SCHEMES: Final = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def resolve_urls(
    explicit: str | Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The hub's WebSocket URLs, in the order to try them.

    ``explicit``, else ``$TAILHUB_URL``, ``$WS_SERVER``, else the default. A string may name
    several hubs separated by commas (``ws://hub1:8080,ws://hub2:8080``): processes of one
    hub (sharing one engine), tried in turn when one is down. A sequence names one URL per
    element. Each URL is normalised as by :func:`resolve_url`.

    Raises:
        ConfigurationError: an empty element (``a,,b``, a trailing comma), or an element that
            is not a usable ``ws``/``wss`` URL; the message names the element.
    """
    environ = os.environ if env is None else env
    source: str | Sequence[str] = explicit or next(
        (environ[name] for name in URL_ENVS if environ.get(name)), DEFAULT_URL
    )
    elements = source.split(",") if isinstance(source, str) else list(source)
    several = len(elements) > 1
    urls: list[str] = []
    for position, element in enumerate(elements, start=1):
        where = f" (hub URL {position} of {len(elements)})" if several else ""
        if not element.strip():
            raise ConfigurationError(
                f"invalid hub URL list {display_url_list(source)!r}: URL {position} is empty"
                " (separate hub URLs with single commas)"
            )
        urls.append(_normalise(element, where))
    return tuple(urls)


def resolve_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The hub's WebSocket URL: ``explicit``, else ``$TAILHUB_URL``, ``$WS_SERVER``, default.

    ``http://`` and ``https://`` become ``ws://`` and ``wss://``; a bare ``host:port`` gets
    ``ws://``. Where the value names several hubs (see :func:`resolve_urls`), the first.

    Raises:
        ConfigurationError: the value is not a usable ``ws``/``wss`` URL (or list of them).
    """
    return resolve_urls(explicit, env)[0]


def _normalise(raw: str, where: str = "") -> str:
    raw = raw.strip()
    if "://" not in raw:
        raw = "ws://" + raw
    try:
        url = yarl.URL(raw)
    except ValueError as exc:
        raise ConfigurationError(f"invalid hub URL {display_url(raw)!r}{where}: {exc}") from None
    scheme = _SCHEMES.get(url.scheme.lower())
    if scheme is None or not url.host:
        raise ConfigurationError(
            f"invalid hub URL {display_url(raw)!r}{where}: expected ws://HOST:PORT or "
            "wss://HOST:PORT"
        )
    return str(url.with_scheme(scheme))


def resolve_token(
    explicit: str | None = None,
    env: Mapping[str, str] | None = None,
    token_file: Path | None = None,
) -> str | None:
    """The token: ``explicit``, else ``$TAILHUB_TOKEN``, else the file ``$TAILHUB_TOKEN_FILE``
    names, else the hub's token file.

    The hub's token file is the one a hub on this machine writes when it runs without
    ``AUTH_TOKEN`` (``token_file``, default ``tailhub.paths.token_path()``, under
    ``$TAILHUB_DATA_DIR``). Returns None when there is none; an unreadable hub token file
    counts as none.

    Raises:
        ConfigurationError: ``$TAILHUB_TOKEN`` and ``$TAILHUB_TOKEN_FILE`` are both set, or
            the file ``$TAILHUB_TOKEN_FILE`` names cannot be read or is empty.
    """
    if explicit:
        return explicit
    environ = os.environ if env is None else env
    named = resolve_token_file(None, environ)
    if named is not None:
        return read_token_file(named)
    from_env = environ.get(TOKEN_ENV)
    if from_env:
        return from_env
    path = token_file or token_path()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def resolve_token_file(
    explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The file to read the token from, and to watch for a renewed one: ``explicit``, else
    ``$TAILHUB_TOKEN_FILE``; None when neither names one.

    Raises:
        ConfigurationError: ``$TAILHUB_TOKEN_FILE`` and ``$TAILHUB_TOKEN`` are both set (one
            token, one place: which one was meant cannot be guessed).
    """
    if explicit:
        return Path(explicit)
    environ = os.environ if env is None else env
    named = environ.get(TOKEN_FILE_ENV)
    if not named:
        return None
    if environ.get(TOKEN_ENV):
        raise ConfigurationError(f"both {TOKEN_ENV} and {TOKEN_FILE_ENV} are set; set one of them")
    return Path(named)


def read_token_file(path: Path) -> str:
    """The token ``path`` holds, without surrounding white space.

    Raises:
        ConfigurationError: the file cannot be read, is not UTF-8 text, or holds nothing;
            the message names the file (never its content).
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the token file {path}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"the token file {path} is not UTF-8 text") from None
    if not text:
        raise ConfigurationError(f"the token file {path} is empty")
    return text


def resolve_container_id(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The container ID: ``explicit``, else ``$CONTAINER_ID``, else the host name.

    Docker sets the host name to the short container ID, as the original wrapper relied on.
    """
    environ = os.environ if env is None else env
    return explicit or environ.get(CONTAINER_ENV) or socket.gethostname()


def display_url_list(urls: str | Sequence[str]) -> str:
    """Every URL of a comma-separated list (or sequence) as :func:`display_url` shows it."""
    elements = urls.split(",") if isinstance(urls, str) else urls
    return ",".join(display_url(element.strip()) if element.strip() else "" for element in elements)


def display_url(url: str) -> str:
    """``url`` without its query string and user info, safe to show (no ``?token=``)."""
    try:
        parsed = yarl.URL(url)
        if parsed.host:
            parsed = parsed.with_user(None)
        return str(parsed.with_query(None).with_fragment(None))
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
