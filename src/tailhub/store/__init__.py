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

__all__ = [
    "ContainerInfo",
    "DurableCallback",
    "HistoryStore",
    "MemoryStore",
    "Retention",
    "StoreError",
    "StoreSnapshot",
    "StoredMessage",
]
