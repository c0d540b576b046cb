"""What a token allows: a role over a set of containers, and the one rule for each action.

A :class:`Grant` is what authentication leaves on a connection (or an HTTP request): the
shared token gives :data:`ADMIN`; a scoped token (a JWT, see :mod:`tailhub.auth`) gives its
``role`` over its ``containers``, a list of IDs or glob patterns (``fnmatch``: ``task-*``).

The roles, and what each may do with a container its patterns match:

- ``publisher``: publish for it (and so receive its commands), read it; nothing else.
- ``viewer``: read it (subscribe, history, the session list).
- ``operator``: read it and send it commands.
- ``admin``: everything, for every container, and the token endpoints; its patterns are
  not consulted.

Nothing here does I/O. The answer for a container is cached per grant (each connection has
its own), so that the check on the publish path is one dict lookup after the first message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Final

__all__ = ["ADMIN", "Grant", "Role"]

_CACHE_LIMIT: Final = 4096
"""Containers whose answer one grant remembers; past it the cache starts again."""


class Role(StrEnum):
    """The roles a token can name (its ``role`` claim)."""

    PUBLISHER = "publisher"
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


_PUBLISHES: Final = frozenset({Role.PUBLISHER, Role.ADMIN})
_COMMANDS: Final = frozenset({Role.OPERATOR, Role.ADMIN})


@dataclass(slots=True, eq=False)
class Grant:
    """A role over containers, from one presented token.

    Args:
        role: what the token may do.
        containers: the IDs or glob patterns it may do it to (ignored for ``admin``).
        exp: when the token expires (Unix seconds), or None for never.
        jti: the token's id (for revocation), or None (the shared token has none).
        sub: who the token was given to, for the log, or None.
    """

    role: Role
    containers: tuple[str, ...] = ()
    exp: float | None = None
    jti: str | None = None
    sub: str | None = None
    _covers: dict[str, bool] = field(default_factory=dict, repr=False)
    _all: bool = field(init=False, repr=False)
    publishes_everywhere: bool = field(init=False, repr=False)
    """Whether the grant may publish for every container (no per-container check)."""

    def __post_init__(self) -> None:
        self._all = self.role is Role.ADMIN or "*" in self.containers
        self.publishes_everywhere = self._all and self.role in _PUBLISHES

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def everything(self) -> bool:
        """Whether the grant covers every container (no check needed)."""
        return self._all

    def covers(self, container_id: str) -> bool:
        """Whether ``container_id`` is one of the grant's containers (its patterns match)."""
        if self._all:
            return True
        known = self._covers.get(container_id)
        if known is not None:
            return known
        answer = any(fnmatchcase(container_id, pattern) for pattern in self.containers)
        if len(self._covers) >= _CACHE_LIMIT:
            self._covers.clear()
        self._covers[container_id] = answer
        return answer

    def may_read(self, container_id: str) -> bool:
        """Subscribe to it, read its history, see its session: every role, in scope."""
        return self.covers(container_id)

    def may_publish(self, container_id: str) -> bool:
        """Publish for it (and receive its commands): ``publisher`` and ``admin``."""
        return self.role in _PUBLISHES and self.covers(container_id)

    def may_command(self, container_id: str) -> bool:
        """Send it commands: ``operator`` and ``admin``."""
        return self.role in _COMMANDS and self.covers(container_id)

    def describe(self) -> dict[str, object]:
        """The grant as the ``authenticated`` reply and ``GET /api/whoami`` show it.

        Never holds a secret: the role, the containers (``["*"]`` for admin), and the
        token's ``sub``, ``exp`` and ``jti`` where it has them.
        """
        return {
            "role": self.role.value,
            "containers": ["*"] if self.is_admin else list(self.containers),
            "sub": self.sub,
            "exp": self.exp,
            "jti": self.jti,
            "publish": self.role in _PUBLISHES,
            "command": self.role in _COMMANDS,
        }

    @classmethod
    def of(
        cls,
        role: str,
        containers: Iterable[str],
        *,
        exp: float | None = None,
        jti: str | None = None,
        sub: str | None = None,
    ) -> Grant:
        """A grant from claim values, checked.

        Raises:
            ValueError: an unknown role, or a role other than admin with no containers.
        """
        try:
            checked = Role(role)
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise ValueError(f"role must be one of {roles}, not {role!r}") from None
        patterns = tuple(containers)
        if checked is not Role.ADMIN and not patterns:
            raise ValueError(f"a {checked.value} token needs at least one container")
        return cls(checked, patterns, exp, jti, sub)

    def fresh(self) -> Grant:
        """A copy with its own cache: one per connection, for the same token."""
        return Grant(self.role, self.containers, self.exp, self.jti, self.sub)


ADMIN: Final = Grant(Role.ADMIN)
"""The grant of the shared token: everything. Its cache is never used (``everything``)."""
