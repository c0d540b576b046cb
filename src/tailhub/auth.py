"""Tokens: the shared secret, the generated token file, and redaction of tokens from text.

Every comparison of a presented token with a known one runs in constant time.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from pathlib import Path

from tailhub.paths import token_path

__all__ = [
    "Authenticator",
    "bearer_token",
    "load_or_create_token",
    "redact",
]

_SECRET_IN_TEXT = re.compile(
    r"(?i)((?:token|auth_token|authorization)[=:]\s*(?:bearer\s+)?)[^&\s\"',;]+"
)


def redact(text: str) -> str:
    """Replace every ``token=...`` or ``Authorization: ...`` value in ``text`` with ``***``."""
    return _SECRET_IN_TEXT.sub(r"\1***", text)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def load_or_create_token(data_dir: Path) -> tuple[str, Path, bool]:
    """Read the hub's generated token from ``data_dir``, making one on first use.

    Returns:
        The token, the file it is kept in (mode 0600), and whether it was just created.

    Raises:
        OSError: the directory or file cannot be created or read.
    """
    path = token_path(data_dir)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token, path, False
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # history may hold secrets too
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)
    return token, path, True


class Authenticator:
    """Checks presented tokens against the hub's shared token, in constant time."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the shared token must not be empty")
        self._token = token.encode("utf-8")

    def check(self, presented: str | None) -> bool:
        """True when ``presented`` is the shared token."""
        if not presented:
            return False
        try:
            # A header aiohttp could not decode as UTF-8 keeps its bytes as surrogates.
            given = presented.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return False  # lone surrogates (from JSON escapes): no token has them
        return hmac.compare_digest(self._token, given)
