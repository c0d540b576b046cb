"""History stores: the interface and its implementations."""

from tailhub.store.base import (
    ContainerInfo,
    DurableCallback,
    HistoryStore,
    Retention,
    StoredMessage,
    StoreError,
    StoreSnapshot,
)
from tailhub.store.memory import MemoryStore
from tailhub.store.sqlite import SqliteStore

__all__ = [
    "ContainerInfo",
    "DurableCallback",
    "HistoryStore",
    "MemoryStore",
    "Retention",
    "SqliteStore",
    "StoreError",
    "StoreSnapshot",
    "StoredMessage",
]
