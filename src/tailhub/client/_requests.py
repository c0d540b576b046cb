"""One-off requests to a hub over a short-lived connection: the sessions list and commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp

from tailhub.client._connect import Connected, close_error, open_websocket, reply_failure
from tailhub.client._env import display_url, resolve_token, resolve_urls
from tailhub.client._errors import HubUnreachableError
from tailhub.client._message import Message

__all__ = ["HubClient"]


class HubClient(Connected):
    """A connection for requests: list sessions, send commands to containers.

    ::

        async with HubClient() as hub:
            for session in await hub.sessions():
                print(session["containerID"], session["status"])
            await hub.command("build-42", "cancel")

    Args:
        url: the hub; default ``$TAILHUB_URL``, ``$WS_SERVER``, ``ws://localhost:8080``.
            Several processes of one hub: a comma-separated string or a sequence of URLs,
            tried in turn until one answers.
        token: default ``$TAILHUB_TOKEN``, else the token file of a hub on this machine.
        timeout: seconds allowed for connecting, and for each reply.

    Raises:
        ConfigurationError: a bad URL.
    """

    def __init__(
        self,
        *,
        url: str | Sequence[str] | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.urls = resolve_urls(url)
        """Every URL of the hub, in the order they are tried."""
        self.url = self.urls[0]
        """The URL connected to (the first until :meth:`connect`)."""
        self._token = resolve_token(token)
        self._timeout = timeout

    async def connect(self) -> None:
        """Open the connection (done by ``async with`` on entry).

        Each URL is tried once, in turn, until one answers.

        Raises:
            HubUnreachableError: no URL of the hub can be reached (the last one's reason).
            AuthenticationError, ForbiddenError: the token is refused.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession()
        if self._ws is not None:
            return
        last = len(self.urls) - 1
        for index, url in enumerate(self.urls):
            try:
                ws = await open_websocket(
                    self._session, url, self._token, connect_timeout=self._timeout
                )
            except HubUnreachableError:
                if index == last:
                    raise
                continue
            self._ws, self.url = ws, url
            return

    async def sessions(self) -> list[dict[str, Any]]:
        """The hub's sessions, active and recently ended (see the protocol's ``sessions``).

        Raises:
            HubError: no connection, the hub refused, or no reply in time.
        """
        reply = await self.request({"type": "sessions"}, "sessions")
        sessions = reply.data.get("sessions")
        return [item for item in sessions if isinstance(item, dict)] if sessions else []

    async def command(self, container_id: str, action: str, **fields: Any) -> int:
        """Send a command (``cancel``, ``input`` with ``text``, or one of your own).

        Args:
            container_id: the container to send it to.
            action: the ``action`` field.
            **fields: more fields of ``data`` (``text=`` for ``input``).

        Returns:
            How many of the container's connections the hub delivered it to.

        Raises:
            NoContainerError: the container has no connection to the hub; nothing was queued.
            HubError: no connection, the hub refused, or no reply in time.
        """
        data = {"action": action, **fields}
        request = {"type": "command", "containerID": container_id, "data": data}
        reply = await self.request(request, "command_sent")
        delivered = reply.data.get("delivered")
        return delivered if isinstance(delivered, int) else 1

    async def request(self, message: dict[str, Any], expect: str) -> Message:
        """Send ``message`` and wait for the reply of type ``expect`` (skipping others).

        Raises:
            RequestError: the hub answered with an ``error``.
            HubError: the connection closed, or no reply within the timeout.
        """
        await self.connect()
        assert self._ws is not None
        ws = self._ws
        shown = display_url(self.url)
        try:
            await ws.send_json(message)
            while True:
                msg = await ws.receive(timeout=self._timeout)
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    code = msg.data if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code
                    failure = close_error(
                        code if isinstance(code, int) else None, had_token=bool(self._token)
                    )
                    raise failure or HubUnreachableError(
                        f"the hub at {shown} closed the connection before answering"
                    )
                try:
                    reply = Message.from_frame(msg.data)
                except ValueError:
                    continue
                if reply.type == expect:
                    return reply
                if reply.type == "error" and reply.seq is None:
                    raise reply_failure(reply, had_token=bool(self._token))
        except TimeoutError:
            raise HubUnreachableError(
                f"the hub at {shown} did not answer in {self._timeout:g} s"
            ) from (None)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise HubUnreachableError(f"lost the connection to the hub at {shown}: {exc}") from None
