"""The HTTP side of the hub's port: aiohttp's request handler, with the hub's bounds.

Every connection that is not a WebSocket upgraded by :mod:`tailhub.server.listener` is served
by an :class:`HttpConnection`, aiohttp's own ``RequestHandler`` with three differences:

- A request head that aiohttp's parser refuses is answered with a fixed body (the status and
  its words), never with the parser's message, which quotes the request line, and so any token
  in it. The log gets one line naming the kind of error, never the bytes received.
- A kept-alive connection that sends no complete request head within ``keepalive_timeout``
  (idle, or part of a head) is closed; aiohttp's own default is about an hour.
- The connection's place in the per-address count (:class:`~tailhub.server.limits.Addresses`)
  is given back when it ends.

Request bodies are bounded in time by the routes that read them (``body_timeout``, see
:mod:`tailhub.server.api`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from tailhub.server.limits import Addresses, address_of
from tailhub.server.trim import MemoryTrim

__all__ = ["HttpConnection", "http_factory"]

_log = structlog.get_logger("tailhub.http")


class HttpConnection(RequestHandler):
    """One HTTP connection of the hub's port.

    Args:
        manager: aiohttp's server (``AppRunner.server``), which dispatches requests to the app.
        addresses: the per-address count this connection was admitted to.
        kwargs: aiohttp's ``RequestHandler`` arguments (``loop``, ``keepalive_timeout``, ...).
    """

    def __init__(
        self, manager: web.Server, addresses: Addresses, trim: MemoryTrim, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._addresses = addresses
        self._trim = trim
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._address = address_of(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self._address is not None:
            self._addresses.release(self._address)
            self._address = None
            self._trim.http_closed()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request head the parser refused with a fixed body; else as aiohttp does."""
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            status, phrase = 400, HTTPStatus.BAD_REQUEST.phrase
        _log.info("bad_request", remote=self._address, status=status, error=type(exc).__name__)
        response = web.Response(status=status, text=f"{status} {phrase}\n")
        response.force_close()
        return response


def http_factory(
    manager: web.Server, addresses: Addresses, trim: MemoryTrim, **kwargs: Any
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory the listener hands non-WebSocket connections to.

    Args:
        manager: aiohttp's server (``AppRunner.server``).
        addresses: the per-address count.
        trim: told when a connection ends, to give its memory back.
        kwargs: ``RequestHandler`` arguments (``keepalive_timeout``, ``access_log``, ...).
    """
    loop = asyncio.get_running_loop()

    def make() -> asyncio.Protocol:
        return HttpConnection(manager, addresses, trim, loop=loop, **kwargs)

    return make
