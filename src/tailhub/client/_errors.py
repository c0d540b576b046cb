"""What can go wrong talking to a hub, as one small exception tree.

::

    HubError                    anything the SDK raises about a hub
    ├── ConfigurationError      a URL or spool file the SDK cannot use (also ValueError)
    ├── HubUnreachableError     no connection: refused, name not found, timed out, lost
    ├── AuthenticationError     the token is missing or wrong (HTTP 401, close 4401)
    ├── ForbiddenError          the token does not allow this (close 4403, ``forbidden``)
    ├── HubClosedError          the hub closed the connection; a retry cannot fix it
    ├── RequestError            the hub answered a request with an ``error`` reply
    │   └── NoContainerError    a command for a container with no connection
    ├── MessageTooLargeError    a message larger than the hub accepts (also ValueError)
    └── PublisherClosedError    publishing on a publisher that was closed or stopped

Every message is one line a person can act on; none ever contains a token.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ForbiddenError",
    "HubClosedError",
    "HubError",
    "HubUnreachableError",
    "MessageTooLargeError",
    "NoContainerError",
    "PublisherClosedError",
    "RequestError",
]


class HubError(Exception):
    """Base class of every error the SDK raises about a hub."""


class ConfigurationError(HubError, ValueError):
    """A setting the SDK cannot use: a malformed URL, an unreadable spool file."""


class HubUnreachableError(HubError):
    """No WebSocket connection could be opened: the hub is down, unknown or too slow.

    Reconnecting later can help; :class:`~tailhub.client.Publisher` and
    :class:`~tailhub.client.Subscriber` do so on their own once connected.
    """


class AuthenticationError(HubError):
    """The hub did not accept the token (HTTP 401 at the handshake, or close code 4401)."""


class ForbiddenError(HubError):
    """The token is valid but not allowed to do this (close code 4403 or ``forbidden``)."""


class HubClosedError(HubError):
    """The hub closed the connection with a code that says reconnecting will not help.

    Attributes:
        code: the WebSocket close code (1008 origin refused, 1009 frame too big, ...).
    """

    def __init__(self, code: int, words: str) -> None:
        super().__init__(words)
        self.code = code


class RequestError(HubError):
    """The hub answered with an ``error`` reply.

    Attributes:
        code: the protocol error code (``invalid_message``, ``no_container``, ...).
        words: the hub's explanation.
        id: the publisher ``id`` of the refused message, when it had one.
    """

    def __init__(self, code: str, words: str, *, id: int | None = None) -> None:
        super().__init__(f"{words} ({code})" if words else code)
        self.code = code
        self.words = words
        self.id = id


class NoContainerError(RequestError):
    """A command named a container that has no connection to the hub; nothing was queued."""


class MessageTooLargeError(HubError, ValueError):
    """A message whose frame is larger than the hub's maximum message size."""


class PublisherClosedError(HubError):
    """The publisher was closed, or stopped after a fatal error, and takes no more messages."""
