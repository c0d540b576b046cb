"""The hub's own logs: structlog, one JSON object per line, never a token.

The pipeline is: filter by level, add the level name and an ISO timestamp, redact secrets,
render JSON (or colours on a terminal). Redaction is a step of the pipeline, so no call site
has to remember it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final, TextIO

import structlog

from tailhub.auth import redact

__all__ = ["LEVEL_NUMBERS", "configure_logging", "redact_event"]

LEVEL_NUMBERS: Final = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
_SECRET_KEYS: Final = frozenset({"token", "auth_token", "authorization", "password", "secret"})


def redact_event(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop secret-named keys and scrub ``token=`` values from every string in the event."""
    for key in list(event):
        value = event[key]
        if key.lower() in _SECRET_KEYS:
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


def configure_logging(level: str, stream: TextIO | None = None) -> None:
    """Set up structlog for the hub process at ``level`` (trace ... fatal)."""
    out = stream or sys.stderr
    renderer: Any
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVEL_NUMBERS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
