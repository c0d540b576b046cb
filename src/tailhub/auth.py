"""Tokens: the shared token, scoped tokens (JWTs), the generated files, redaction.

Two kinds of token are accepted. The shared token (``AUTH_TOKEN``, or the one the hub
generates) gives :data:`~tailhub.grants.ADMIN`; it is compared in constant time. A JSON Web
Token, recognised by its shape (three base64url parts joined by dots), gives the
:class:`~tailhub.grants.Grant` its claims name once PyJWT has verified it: HS256 with the
hub's token secret (``TAILHUB_TOKEN_SECRET``, else a secret the hub generates and keeps
beside its token file), or RS256/ES256 with the public key ``--jwt-public-key`` names.

Claims: ``role`` (publisher, viewer, operator, admin), ``containers`` (IDs or glob patterns;
required except for admin), ``exp`` (required), and ``iat``, ``sub``, ``jti`` (optional; a
token without ``jti`` cannot be revoked).
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import jwt

from tailhub.grants import ADMIN, Grant
from tailhub.paths import secret_path, token_path

__all__ = [
    "MIN_SECRET_LENGTH",
    "Authenticator",
    "TokenError",
    "bearer_token",
    "claims_of",
    "load_or_create_secret",
    "load_or_create_token",
    "load_public_key",
    "looks_like_jwt",
    "mint",
    "read_secret",
    "redact",
]

MIN_SECRET_LENGTH: Final = 32
"""The shortest token secret accepted (HS256 wants at least 256 bits)."""
_JWT_SHAPE: Final = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_PUBLIC_ALGORITHMS: Final = ("RS256", "ES256")

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


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # history may hold secrets too
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    path.chmod(0o600)


def read_secret(data_dir: Path) -> str | None:
    """The token secret a hub generated in ``data_dir``, or None when there is none.

    Raises:
        OSError: the file exists but cannot be read.
    """
    try:
        secret = secret_path(data_dir).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return secret or None


def load_or_create_secret(data_dir: Path) -> str:
    """The secret that signs scoped tokens (HS256), made on first use; kept mode 0600.

    Raises:
        OSError: the directory or file cannot be created or read.
    """
    secret = read_secret(data_dir)
    if secret is None:
        secret = secrets.token_urlsafe(48)
        _write_private(secret_path(data_dir), secret)
    return secret


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
    token = secrets.token_urlsafe(32)
    _write_private(path, token)
    return token, path, True


def load_public_key(path: Path) -> str:
    """The PEM public key in ``path`` (RSA or EC), checked.

    Raises:
        ValueError: the file cannot be read, or holds no PEM public key; the words say which.
    """
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read --jwt-public-key {path}: {exc}") from None
    try:
        load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        raise ValueError(
            f"--jwt-public-key {path} holds no PEM public key (-----BEGIN PUBLIC KEY-----)"
        ) from None
    return text


def looks_like_jwt(text: str) -> bool:
    """Whether ``text`` has a JWT's shape: three base64url parts joined by dots."""
    return len(text) < 16384 and _JWT_SHAPE.match(text) is not None


class TokenError(Exception):
    """A presented token the hub refuses; the words say why and never quote the token."""


def mint(
    secret: str,
    role: str,
    containers: Sequence[str],
    ttl: float,
    *,
    sub: str | None = None,
    now: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """A scoped token signed with ``secret`` (HS256), and its claims.

    Raises:
        ValueError: an unknown role, no containers for a role that needs them, a ttl that
            is not positive, or a secret too short.
    """
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the token secret must be at least {MIN_SECRET_LENGTH} characters")
    if not ttl > 0:
        raise ValueError("the ttl must be more than 0 seconds")
    grant = Grant.of(role, containers)
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "role": grant.role.value,
        "containers": list(grant.containers),
        "iat": issued,
        "exp": issued + max(1, round(ttl)),
        "jti": uuid.uuid4().hex,
    }
    if sub:
        claims["sub"] = sub
    return jwt.encode(claims, secret, algorithm="HS256"), claims


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, NOT verified (for showing a token, never for trusting it).

    Raises:
        TokenError: not a JWT whose payload can be read.
    """
    if not looks_like_jwt(token):
        raise TokenError("not a JWT (three base64url parts joined by dots)")
    try:
        return dict(jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        raise TokenError("a JWT whose claims cannot be read") from None


def _grant_of(claims: dict[str, Any]) -> Grant:
    role = claims.get("role")
    containers = claims.get("containers", [])
    if isinstance(containers, str):
        containers = [containers]
    if not isinstance(role, str):
        raise TokenError("the token has no role claim")
    if not isinstance(containers, list) or not all(isinstance(c, str) and c for c in containers):
        raise TokenError("the containers claim must be a list of IDs or patterns")
    jti = claims.get("jti")
    sub = claims.get("sub")
    try:
        return Grant.of(
            role,
            containers,
            exp=float(claims["exp"]),
            jti=jti if isinstance(jti, str) and jti else None,
            sub=sub if isinstance(sub, str) and sub else None,
        )
    except ValueError as exc:
        raise TokenError(str(exc)) from None


class Authenticator:
    """Turns presented tokens into grants: the shared token, or a verified JWT.

    Args:
        token: the shared token (admin).
        secret: the HS256 secret scoped tokens are signed with, or None (none accepted).
        public_key: a PEM public key for RS256/ES256 tokens, or None.

    Raises:
        ValueError: an empty shared token, or a secret shorter than
            :data:`MIN_SECRET_LENGTH`.
    """

    def __init__(
        self, token: str, *, secret: str | None = None, public_key: str | None = None
    ) -> None:
        if not token:
            raise ValueError("the shared token must not be empty")
        if secret is not None and len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the token secret must be at least {MIN_SECRET_LENGTH} characters")
        self._token = token.encode("utf-8")
        self._secret = secret
        self._public_key = public_key
        self.revoked: frozenset[str] = frozenset()
        """The ids (``jti``) of revoked tokens, as last read from the engine."""

    def mint(
        self, role: str, containers: Sequence[str], ttl: float, *, sub: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A scoped token signed with this hub's secret, and its claims (see :func:`mint`).

        Raises:
            ValueError: as :func:`mint`, or this hub has no secret to sign with.
        """
        if self._secret is None:
            raise ValueError("this hub has no token secret to sign with")
        return mint(self._secret, role, containers, ttl, sub=sub)

    def revoke(self, jtis: Iterable[str]) -> None:
        """Refuse tokens with these ids from now on (added to :attr:`revoked`)."""
        self.revoked = self.revoked | frozenset(jtis)

    def grant(self, presented: str | None, now: float | None = None) -> Grant:
        """What ``presented`` allows: the shared token is admin, a valid JWT its claims.

        Returns a new grant for each call (its cache belongs to one connection).

        Raises:
            TokenError: no token, a wrong one, or a JWT that is forged, expired, revoked or
                lacks a claim.
        """
        if not presented:
            raise TokenError("no token")
        if self.check(presented):
            return ADMIN
        if not looks_like_jwt(presented):
            raise TokenError("invalid token")
        try:
            header = jwt.get_unverified_header(presented)
        except jwt.PyJWTError:
            raise TokenError("invalid token") from None
        algorithm = str(header.get("alg"))
        key: str | None
        if algorithm == "HS256":
            key = self._secret
        elif algorithm in _PUBLIC_ALGORITHMS:
            key = self._public_key
        else:
            key = None
        if key is None:
            raise TokenError("invalid token: this hub does not accept its signing algorithm")
        try:
            claims = jwt.decode(
                presented,
                key,
                algorithms=[algorithm],
                options={"require": ["exp", "role"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.PyJWTError:
            raise TokenError("invalid token") from None
        grant = _grant_of(claims)
        if grant.exp is not None and grant.exp <= (time.time() if now is None else now):
            raise TokenError("the token has expired")
        if grant.jti is not None and grant.jti in self.revoked:
            raise TokenError("the token has been revoked")
        return grant

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
