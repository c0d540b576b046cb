"""The messages of the tailhub protocol, as typed values.

Inbound frames decode to one of the ``Client*`` classes below (see :mod:`tailhub.protocol.codec`).
A container's published message keeps its ``data`` as the raw JSON it sent, checked but not
rebuilt, so unknown fields a client adds travel through unchanged and the hub encodes each
message exactly once.

The classes made for every published message (:class:`Envelope`, :class:`AuthField`,
:class:`LogData`, :class:`Publish`) are left out of the cyclic garbage collector
(``gc=False``): they hold only strings, numbers, raw JSON and a dict of raw JSON, so they can
be in no reference cycle, and a collector that never counts them runs less often.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = [
    "LEVELS",
    "PUBLISH_TYPES",
    "ROUTED_TYPES",
    "STATUSES",
    "Auth",
    "ClientMessage",
    "Command",
    "Envelope",
    "Publish",
    "SessionsRequest",
    "Subscribe",
    "Unsubscribe",
]

LEVELS: Final = ("debug", "info", "warn", "error")
STATUSES: Final = ("starting", "running", "completed", "error", "cancelled")
PUBLISH_TYPES: Final = frozenset({"log", "status", "heartbeat", "complete", "error"})
"""Types a container publishes for its ``containerID``."""
ROUTED_TYPES: Final = frozenset({"log", "status", "complete", "error"})
"""Published types that are stamped with ``seq``, stored and routed to subscribers.

A ``heartbeat`` only refreshes the session and is answered; it is not history."""


class AuthField(msgspec.Struct, gc=False):
    token: str | None = None


class Envelope(msgspec.Struct, gc=False):
    """The fields any client frame may carry; ``data`` stays raw until the type is known."""

    type: str
    containerID: str | None = None
    timestamp: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    auth: AuthField | None = None
    token: str | None = None
    since: int | None = None
    tail: int | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    id: int | None = None
    producer: str | None = None
    epoch: str | None = None
    status: str | None = None
    limit: int | None = None
    cursor: str | None = None


class LogData(msgspec.Struct, gc=False):
    level: str
    message: str
    metadata: dict[str, msgspec.Raw] | None = None
    """Checked to be an object; its values are not decoded (the hub only passes them on)."""


class StatusData(msgspec.Struct):
    status: str
    message: str | None = None


class HeartbeatData(msgspec.Struct):
    timestamp: str | None = None
    uptime: float | None = None


class CompleteData(msgspec.Struct):
    exitCode: int
    message: str | None = None
    duration: float | None = None


class ErrorData(msgspec.Struct):
    error: str
    code: str | None = None
    details: Any = None


class CommandData(msgspec.Struct):
    action: str
    text: str | None = None
    requestId: str | None = None
    message: str | None = None


class Publish(msgspec.Struct, frozen=True, gc=False):
    """A container's message for ``container_id``, checked and normalised.

    ``data`` is the JSON object to send on, as bytes; ``timestamp`` is the container's own,
    or None for the hub to fill in. ``status`` is the normalised status of a ``status`` message
    and ``exit_code`` that of a ``complete``: the session registry needs them. ``metadata`` is
    a ``log``'s ``data.metadata`` with its values undecoded (None when it had none), for the
    hub's readers of agent events.
    """

    type: str
    container_id: str
    data: msgspec.Raw
    timestamp: str | None = None
    id: int | None = None
    producer: str = ""
    token: str | None = None
    status: str | None = None
    exit_code: int | None = None
    level: str | None = None
    metadata: dict[str, msgspec.Raw] | None = None


class Subscribe(msgspec.Struct, frozen=True):
    """Subscribe to one container, or to a pattern (``*`` is every container).

    At most one of ``since`` (every message with a greater ``seq``), ``tail`` (the last N)
    and ``from_time`` (Unix seconds, messages the hub received at or after it) is set.
    """

    container_id: str
    since: int | None = None
    tail: int | None = None
    from_time: float | None = None
    token: str | None = None
    epoch: str | None = None
    """The history epoch the client last saw; another one means its ``since`` is void."""

    @property
    def is_pattern(self) -> bool:
        return "*" in self.container_id


class Unsubscribe(msgspec.Struct, frozen=True):
    container_id: str
    token: str | None = None


class Command(msgspec.Struct, frozen=True):
    """A command for a container's own connection; ``data`` is sent on as is."""

    container_id: str
    action: str
    data: msgspec.Raw
    token: str | None = None


class SessionsRequest(msgspec.Struct, frozen=True):
    """The session listing: only ``status`` (or ``active``/``ended``), ``limit`` at most,
    continuing from ``cursor``."""

    token: str | None = None
    status: str | None = None
    limit: int | None = None
    cursor: str | None = None


class Auth(msgspec.Struct, frozen=True):
    token: str | None = None


ClientMessage = Publish | Subscribe | Unsubscribe | Command | SessionsRequest | Auth

Kind = Literal["publish", "subscribe", "unsubscribe", "command", "sessions", "auth"]
