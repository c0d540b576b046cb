"""The engine: what hub processes agree on (see :mod:`tailhub.engine.base`)."""

from tailhub.engine.base import (
    DUPLICATE,
    Engine,
    EngineError,
    EngineHandler,
    Entry,
    EntryLike,
    Position,
    PublishDone,
    Published,
    SessionInfo,
    SessionPage,
    StoredMessage,
    next_page_size,
)

__all__ = [
    "DUPLICATE",
    "Engine",
    "EngineError",
    "EngineHandler",
    "Entry",
    "EntryLike",
    "Position",
    "PublishDone",
    "Published",
    "SessionInfo",
    "SessionPage",
    "StoredMessage",
    "next_page_size",
]
