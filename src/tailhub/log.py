"""The hub's own logs: structlog, one JSON object per line, never a token.

The pipeline is: filter by level, add the level name and an ISO timestamp, render any
exception, redact secrets, render JSON (or colours on a terminal). Redaction is a step of the
pipeline, so no call site has to remember it.

Records of the standard ``logging`` module (aiohttp's parser and handler errors, asyncio's
warnings, any library's) go through the same steps: the root logger's only handler formats
them with structlog's ``ProcessorFormatter``, so a library quoting a request line that holds a
token is redacted like any event of the hub's own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Final, TextIO

import structlog

from tailhub.auth import redact

__all__ = ["LEVEL_NUMBERS", "Redactor", "configure_logging", "redact_event"]

LEVEL_NUMBERS: Final = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
_SECRET_KEYS: Final = frozenset(
    {"token", "auth_token", "authorization", "password", "secret", "token_secret"}
)


class Redactor:
    """The pipeline's redaction step.

    Drops secret-named keys, scrubs ``token=`` and ``Authorization:`` values from every string
    of the event, and replaces every occurrence of a known secret (the hub's token), in
    whatever form a library quoted it.

    Args:
        secrets: values that must never be written, whatever surrounds them.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def __call__(
        self, _logger: object, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event):
            value = event[key]
            if key.lower() in _SECRET_KEYS:
                event[key] = "***"
            elif isinstance(value, str):
                event[key] = self.scrub(value)
        return event

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and every ``token=`` value replaced by ``***``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return redact(text)


redact_event: Final = Redactor()
"""The redaction step without known secrets: key names and ``token=`` values only."""


def configure_logging(
    level: str, stream: TextIO | None = None, *, secrets: Iterable[str] = ()
) -> None:
    """Set up structlog, and the standard ``logging`` module, for the hub process.

    Args:
        level: the lowest level written (trace ... fatal), for both.
        stream: where lines go (standard error by default).
        secrets: values never to write (the hub's token), scrubbed from every line.
    """
    out = stream or sys.stderr
    renderer: Any
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    redactor = Redactor(secrets)
    add_level = structlog.processors.add_log_level
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    render_exception = structlog.processors.format_exc_info
    structlog.configure(
        processors=[add_level, stamp, render_exception, redactor, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVEL_NUMBERS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[add_level, stamp, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                render_exception,
                redactor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVEL_NUMBERS[level])
    logging.captureWarnings(True)  # Python's warnings become records of the same pipeline
