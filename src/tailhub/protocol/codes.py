"""Error codes and WebSocket close codes of the tailhub protocol.

Error codes travel in ``{"type": "error", "data": {"code": ..., "error": ...}}`` replies; the
connection stays open after them. Close codes end a connection; the 4xxx range mirrors HTTP
statuses so a client can tell whether reconnecting can help (it can after 1001, 1011 and 4429,
it cannot after 4401 or 4403 without a new token).
"""

from enum import IntEnum, StrEnum

__all__ = ["CloseCode", "ErrorCode"]


class ErrorCode(StrEnum):
    """Machine-readable reason in an ``error`` reply."""

    INVALID_JSON = "invalid_json"
    """The frame is not valid UTF-8 JSON."""
    INVALID_MESSAGE = "invalid_message"
    """Valid JSON, but not an object, or a field is missing or of the wrong kind."""
    UNKNOWN_TYPE = "unknown_type"
    """The ``type`` field names no message this hub knows."""
    UNAUTHORIZED = "unauthorized"
    """No valid token was presented."""
    FORBIDDEN = "forbidden"
    """The token is valid but does not allow this message."""
    MAX_SESSIONS = "max_sessions"
    """Publishing would open one more session than ``MAX_SESSIONS`` allows."""
    NO_CONTAINER = "no_container"
    """A command names a container that has no connection to the hub."""
    RATE_LIMITED = "rate_limited"
    """The connection publishes faster than the configured rate; the message was dropped."""
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    """The connection already holds the most subscriptions allowed."""
    NOT_SUBSCRIBED = "not_subscribed"
    """``unsubscribe`` for a subscription this connection does not hold."""
    NOT_PENDING = "not_pending"
    """``approve`` or ``deny`` for a request the session is not waiting on; nothing was sent."""
    UNAVAILABLE = "unavailable"
    """The hub cannot serve the request right now (history store failing)."""


class CloseCode(IntEnum):
    """WebSocket close codes the hub sends."""

    NORMAL = 1000
    GOING_AWAY = 1001
    """The hub is shutting down; reconnect later and resume with ``since``."""
    POLICY = 1008
    """The connection's ``Origin`` is not allowed."""
    TOO_BIG = 1009
    """A frame exceeded the maximum message size."""
    INTERNAL = 1011
    NOT_AUTHENTICATED = 4401
    FORBIDDEN = 4403
    TIMED_OUT = 4408
    """The peer did not answer a ping within one heartbeat round."""
    TOO_SLOW = 4429
    """The reader fell too far behind, or the peer sent too many messages."""
