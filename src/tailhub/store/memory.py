"""History kept in the hub's memory: for tests, and for hubs that need no restart safety."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence

from tailhub.store.base import (
    ContainerInfo,
    DurableCallback,
    Retention,
    SessionRow,
    StoredMessage,
    StoreSnapshot,
    new_epoch,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    """A :class:`~tailhub.store.base.HistoryStore` in memory; durable for the process' life.

    It keeps no sessions, metadata or records (the ``save_*`` methods do nothing) and
    reserves no seqs: nothing of it outlives the process, and each container's epoch is
    random, made with its first message, so a new process means new epochs.
    """

    def __init__(self, retention: Retention | None = None) -> None:
        self._retention = retention or Retention()
        self._messages: dict[str, deque[StoredMessage]] = {}
        self._info: dict[str, ContainerInfo] = {}
        self._epochs: dict[str, str] = {}
        self._producers: dict[tuple[str, str], int] = {}
        self._on_durable: DurableCallback | None = None
        self._pending: dict[str, int] = {}
        self._flush_scheduled = False

    async def open(
        self, on_durable: DurableCallback, on_reserved: DurableCallback | None = None
    ) -> StoreSnapshot:
        self._on_durable = on_durable
        return StoreSnapshot(
            containers={
                cid: ContainerInfo(i.last_seq, i.first_seq, i.messages, i.bytes)
                for cid, i in self._info.items()
            },
            producers=dict(self._producers),
        )

    def append_run(
        self,
        container_id: str,
        first_seq: int,
        time: float,
        payloads: Sequence[bytes],
        ids: Sequence[tuple[str, int | None]] | None = None,
    ) -> None:
        if not payloads:
            return
        kept = self._messages.get(container_id)
        if kept is None:
            kept = self._messages[container_id] = deque()
        info = self._info.get(container_id)
        if info is None:
            info = self._info[container_id] = ContainerInfo()
            self._epochs[container_id] = new_epoch()
        count = len(payloads)
        last = first_seq + count - 1
        kept.extend(map(StoredMessage, range(first_seq, last + 1), [time] * count, payloads))
        info.last_seq = last
        info.messages += count
        info.bytes += sum(map(len, payloads))
        if info.first_seq == 0:
            info.first_seq = first_seq
        if len(kept) > self._retention.max_messages:
            self._drop_oldest(container_id, len(kept) - self._retention.max_messages)
        if ids is not None:
            producers = self._producers
            for producer, pub_id in ids:
                if pub_id is not None:
                    producers[(container_id, producer)] = pub_id
        self._pending[container_id] = last
        if not self._flush_scheduled and self._on_durable is not None:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._report_durable)

    def _report_durable(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        if self._on_durable is not None and pending:
            self._on_durable(list(pending.items()))

    def _drop_oldest(self, container_id: str, count: int) -> int:
        kept = self._messages[container_id]
        info = self._info[container_id]
        count = min(count, len(kept))
        for _ in range(count):
            dropped = kept.popleft()
            info.messages -= 1
            info.bytes -= len(dropped.payload)
        info.first_seq = kept[0].seq if kept else 0
        return count

    def info(self, container_id: str) -> ContainerInfo | None:
        return self._info.get(container_id)

    def epoch(self, container_id: str) -> str:
        return self._epochs.get(container_id, "")

    def save_session(self, row: SessionRow) -> None:
        return None

    def forget_sessions(self, container_ids: Sequence[str]) -> None:
        return None

    def save_meta(self, container_id: str, name: str, value: bytes | None) -> None:
        return None

    def save_record(self, kind: str, key: str, value: bytes | None, expires: float | None) -> None:
        return None

    def save_claim(self, kind: str, key: str, owner: str | None, expires: float) -> None:
        return None

    async def sync(self) -> None:
        return None

    async def read(
        self,
        container_id: str,
        *,
        after: int = 0,
        tail: int | None = None,
        since_time: float | None = None,
        limit: int | None = None,
    ) -> list[StoredMessage]:
        kept = self._messages.get(container_id)
        if not kept:
            return []
        # Kept seqs are gapless (only the oldest are dropped): a seq's index is arithmetic.
        start = max(0, after + 1 - kept[0].seq)
        if since_time is not None:
            items = [m for m in itertools.islice(kept, start, None) if m.time >= since_time]
            start, end = 0, len(items)
        else:
            end = len(kept)
        if tail is not None:
            start = max(start, end - tail)
        if limit is not None:
            end = min(end, start + limit)
        if since_time is not None:
            return items[start:end]
        return list(itertools.islice(kept, start, end))

    async def prune(self, now: float) -> int:
        removed = 0
        cutoff = now - self._retention.max_age
        for container_id, kept in list(self._messages.items()):
            old = 0
            for message in kept:
                if message.time >= cutoff:
                    break
                old += 1
            over = len(kept) - self._retention.max_messages
            count = max(old, over)
            if count > 0:
                removed += self._drop_oldest(container_id, count)
            if not kept:
                del self._messages[container_id]
        if self._producers:
            # Dedupe state goes with the last message it could repeat (see base.py).
            for key in [key for key in self._producers if key[0] not in self._messages]:
                del self._producers[key]
        return removed

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        if self._pending:
            self._report_durable()
