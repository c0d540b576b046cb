"""A token kept in a file, and its renewal on an open connection (publisher and subscriber).

Secrets mounts (Docker, Kubernetes) and rotation scripts replace a token by writing the
file anew. A client given such a file reads it before every connection attempt and, while
connected, every ``check`` seconds: a token there that the connection does not hold yet is
sent on it (``{"type": "auth", "token": ...}``), and the hub's ``authenticated`` answer makes
it the connection's token. A token the hub refuses is not sent again; the connection keeps
what it had, and the next token written to the file is tried.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from tailhub.client._env import read_token_file, resolve_token, resolve_token_file
from tailhub.client._errors import ConfigurationError

__all__ = ["TokenFile", "token_source"]

_log = logging.getLogger("tailhub.client")
_encode = msgspec.json.Encoder().encode


class TokenFile:
    """The token a file holds, read again on demand, and where its renewal on one connection
    stands.

    Args:
        path: the file.
        check: seconds between two reads while watching or waiting for a new token.

    Raises:
        ConfigurationError: the file cannot be read, is not UTF-8, or is empty.
        ValueError: ``check`` is not positive.
    """

    def __init__(self, path: Path, check: float) -> None:
        if not check > 0:
            raise ValueError("token_check must be > 0")
        self.path = path
        self.check = check
        self.token = read_token_file(path)
        """The token read last."""
        self.granted: str | None = None
        """The token the hub holds for the current connection (None: not connected)."""
        self.renewals = 0
        """Tokens the hub took on an open connection."""
        self._renewing: str | None = None
        self._refused: str | None = None
        self._problem = ""

    def read(self) -> str:
        """Read the file again and return the token held: the file's, or the one read before
        when the file cannot be read now (being replaced, say; logged once per problem)."""
        try:
            self.token = read_token_file(self.path)
        except ConfigurationError as exc:
            if str(exc) != self._problem:
                self._problem = str(exc)
                _log.warning("tailhub client: %s; keeping the token read before", exc)
        else:
            self._problem = ""
        return self.token

    def connected(self, token: str | None) -> None:
        """A connection opened with ``token``."""
        self.granted, self._renewing, self._refused = token, None, None

    def accepted(self) -> None:
        """The hub answered ``authenticated``: the token sent is the connection's now."""
        if self._renewing is not None:
            self.granted, self._renewing = self._renewing, None
            self.renewals += 1

    def refused(self) -> bool:
        """The hub sent an ``unauthorized`` error that names no message. True when it refuses
        the token sent (the connection keeps its own, and that token is not sent again);
        False when it tells that the connection's own token expired or was revoked, and the
        close (4401) that follows is what to act on."""
        if self._renewing is None:
            return False
        self._refused, self._renewing = self._renewing, None
        return True

    def due(self) -> bytes | None:
        """The ``auth`` frame for a token the file holds that was neither granted to the
        connection nor sent on it yet; None when there is none."""
        token = self.read()
        if token in (self.granted, self._renewing, self._refused):
            return None
        self._renewing = token
        return _encode({"type": "auth", "token": token})

    async def watch(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """While connected (cancel it when the connection ends): every ``check`` seconds, pass
        a due ``auth`` frame to ``send``."""
        while True:
            await asyncio.sleep(self.check)
            frame = self.due()
            if frame is not None:
                await send(frame)

    async def other_than(self, token: str | None, stop: Callable[[], bool]) -> None:
        """Return once the file holds a token other than ``token`` (the one refused), or
        ``stop()`` is true; reads it at once, then every ``check`` seconds."""
        while not stop():
            if self.read() != token:
                return
            await asyncio.sleep(self.check)


def token_source(
    token: str | None, token_file: str | os.PathLike[str] | None, check: float
) -> tuple[str | None, TokenFile | None]:
    """A client's token and, when it comes from a token file, that file to renew from:
    ``token``, else ``token_file`` or ``$TAILHUB_TOKEN_FILE``, else :func:`resolve_token`.

    Raises:
        ConfigurationError: both ``token`` and ``token_file``; as :class:`TokenFile` and
            :func:`resolve_token_file` do.
        ValueError: ``check`` is not positive (with a token file).
    """
    if token and token_file:
        raise ConfigurationError("pass a token or a token file, not both")
    path = None if token else resolve_token_file(token_file)
    if path is None:
        return resolve_token(token), None
    kept = TokenFile(path, check)
    return kept.token, kept
