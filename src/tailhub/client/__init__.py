"""The tailhub SDK: publish a container's messages to a hub, and read them back.

It depends on :mod:`tailhub.protocol` alone (never on the server side) and on aiohttp.

- :class:`Publisher`: the container side; acked, spooled, resent after reconnects.
- :class:`Subscriber`: the viewer side; an async iterator that resumes with ``since``.
- :class:`HubClient`: one-off requests (sessions list, commands).
- ``resolve_urls`` (``resolve_url``: the first), ``resolve_token``, ``resolve_container_id``:
  where the settings come from (explicit value, then ``TAILHUB_URL``/``WS_SERVER``, which may
  list several hub processes comma-separated, ``TAILHUB_TOKEN`` or ``TAILHUB_TOKEN_FILE``,
  ``CONTAINER_ID``); ``read_token_file`` reads a token file.
- The exceptions, all under :class:`HubError` (see ``tailhub.client._errors``).
"""

from tailhub.client._backoff import Backoff, Rotation
from tailhub.client._env import (
    DEFAULT_URL,
    display_url,
    read_token_file,
    resolve_container_id,
    resolve_token,
    resolve_url,
    resolve_urls,
)
from tailhub.client._errors import (
    AuthenticationError,
    ConfigurationError,
    ForbiddenError,
    HubClosedError,
    HubError,
    HubUnreachableError,
    MessageTooLargeError,
    NoContainerError,
    PublisherClosedError,
    RequestError,
)
from tailhub.client._message import Message, Subscribed
from tailhub.client._publisher import CommandHandler, ErrorHandler, Overflow, Publisher
from tailhub.client._requests import HubClient
from tailhub.client._spool import Spool
from tailhub.client._subscriber import Subscriber

__all__ = [
    "DEFAULT_URL",
    "AuthenticationError",
    "Backoff",
    "CommandHandler",
    "ConfigurationError",
    "ErrorHandler",
    "ForbiddenError",
    "HubClient",
    "HubClosedError",
    "HubError",
    "HubUnreachableError",
    "Message",
    "MessageTooLargeError",
    "NoContainerError",
    "Overflow",
    "Publisher",
    "PublisherClosedError",
    "RequestError",
    "Rotation",
    "Spool",
    "Subscribed",
    "Subscriber",
    "display_url",
    "read_token_file",
    "resolve_container_id",
    "resolve_token",
    "resolve_url",
    "resolve_urls",
]
