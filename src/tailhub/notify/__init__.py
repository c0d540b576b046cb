"""Notifications of attention states: destinations (webhook, Slack, Discord, ntfy) and a sender.

- :mod:`tailhub.notify.destinations`: which format a ``--notify`` URL gets, and the request
  each format makes (no I/O).
- :class:`Notifier`: the outbox kept through the engine, delivered in the background with
  retries, a cooldown, and once per notice across hub processes.
"""

from tailhub.notify.destinations import FORMATS, Destination, Notice, destination, render
from tailhub.notify.sender import RESULTS, Notifier

__all__ = ["FORMATS", "RESULTS", "Destination", "Notice", "Notifier", "destination", "render"]
