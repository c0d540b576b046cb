"""What every request handler of one application shares, stored on the app under one key."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from tailhub.auth import Authenticator
from tailhub.config import Settings
from tailhub.core.node import Node
from tailhub.notify import Notifier
from tailhub.server.limits import Addresses
from tailhub.server.trim import MemoryTrim

__all__ = ["STATE", "ServerState"]


@dataclass(slots=True)
class ServerState:
    settings: Settings
    node: Node
    auth: Authenticator
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """Closing handshakes in flight, kept referenced until done."""
    drained: asyncio.Event | None = None
    """Set at shutdown, once the last connection of the hub's own transport has gone."""
    addresses: Addresses = field(default_factory=Addresses)
    """Open TCP connections per client address (``max_connections_per_ip``)."""
    unauthenticated: int = 0
    """WebSocket connections open and still without a token (``max_unauthenticated``)."""
    trim: MemoryTrim = field(default_factory=MemoryTrim)
    """Gives the memory that ended connections freed back to the system."""
    notifier: Notifier | None = None
    """Sends notifications of attention states (None: no ``--notify`` destination)."""


STATE = web.AppKey("tailhub_state", ServerState)
