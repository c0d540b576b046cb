"""The history store contract: every guarantee of ``tailhub.store.base``, as tests.

A test module runs the whole contract against one implementation by defining a ``harness``
fixture that returns a :class:`Harness` and one empty ``Test*`` subclass of each ``*Contract``
class below (``test_memory.py``, ``test_sqlite.py``). Nothing here knows which implementation
it tests.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailhub.store.base import (
    ContainerInfo,
    HistoryStore,
    Retention,
    StoredMessage,
    StoreSnapshot,
)
from tests.helpers import UNIT

__all__ = [
    "AgainstModelContract",
    "AppendContract",
    "DurabilityContract",
    "Harness",
    "ReadContract",
    "ReadYourWritesContract",
    "ReopenContract",
    "RetentionContract",
]

MakeStore = Callable[[Path, Retention | None], HistoryStore]


class Opened:
    """An opened store and everything its ``on_durable`` callback reported."""

    def __init__(self, store: HistoryStore, place: Path, retention: Retention | None) -> None:
        self.store = store
        self.place = place
        self.retention = retention
        self.snapshot = StoreSnapshot()
        self.durable: dict[str, int] = {}
        self.reports: list[list[tuple[str, int]]] = []
        self.off_loop_reports = 0
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def on_durable(self, pairs: Sequence[tuple[str, int]]) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if not on_loop:
            self.off_loop_reports += 1
            return
        self.reports.append(list(pairs))
        for container_id, seq in pairs:
            self.durable[container_id] = max(seq, self.durable.get(container_id, 0))
        self._changed.set()

    async def until_durable(self, container_id: str, seq: int) -> None:
        """Wait for ``on_durable`` to name ``seq`` (or later) of ``container_id``."""
        async with asyncio.timeout(5 * UNIT):
            while self.durable.get(container_id, 0) < seq:
                self._changed.clear()
                await self._changed.wait()


class Harness:
    """Makes, opens, reopens and finally closes stores of one implementation.

    Args:
        make: a new store kept at ``place`` (a directory, created on demand by the store).
        root: where places are made (the test's ``tmp_path``).
        reopen_same: reopening reuses the closed store object (a store that keeps history
            for the life of the process), instead of making a new one at the same place.
    """

    def __init__(self, make: MakeStore, root: Path, *, reopen_same: bool) -> None:
        self._make = make
        self._root = root
        self._reopen_same = reopen_same
        self._places = itertools.count()
        self._open: list[Opened] = []

    async def open(self, retention: Retention | None = None) -> Opened:
        """A new store at a fresh place, opened."""
        place = self._root / f"store-{next(self._places)}"
        return await self._start(self._make(place, retention), place, retention)

    async def reopen(self, opened: Opened) -> Opened:
        """Close ``opened`` and open its place again, as a hub restart does."""
        await opened.store.close()
        self._open.remove(opened)
        store = opened.store if self._reopen_same else self._make(opened.place, opened.retention)
        return await self._start(store, opened.place, opened.retention)

    async def _start(self, store: HistoryStore, place: Path, retention: Retention | None) -> Opened:
        opened = Opened(store, place, retention)
        opened.snapshot = await store.open(opened.on_durable)
        self._open.append(opened)
        return opened

    async def close(self) -> None:
        for opened in self._open:
            await opened.store.close()
        self._open.clear()


def append(
    store: HistoryStore,
    container_id: str,
    seqs: range,
    *,
    time: Callable[[int], float] = float,
    producer: str = "",
    pub_id: bool = False,
) -> list[StoredMessage]:
    """Append one message per seq (payload ``<container>:<seq>``); return what was appended."""
    messages = []
    for seq in seqs:
        message = StoredMessage(seq, time(seq), f"{container_id}:{seq}".encode())
        store.append_run(
            container_id,
            seq,
            message.time,
            [message.payload],
            [(producer, seq)] if pub_id else None,
        )
        messages.append(message)
    return messages


def info_of(messages: Sequence[StoredMessage], last_seq: int) -> ContainerInfo:
    """The ContainerInfo a store holding exactly ``messages`` must report."""
    return ContainerInfo(
        last_seq=last_seq,
        first_seq=messages[0].seq if messages else 0,
        messages=len(messages),
        bytes=sum(len(m.payload) for m in messages),
    )


class AppendContract:
    """``append`` queues without blocking or failing; ``info`` counts what is queued."""

    async def test_info_counts_appends_before_anything_is_awaited(self, harness: Harness) -> None:
        """info() reflects appends at once, with no await in between."""
        opened = await harness.open()
        sent = append(opened.store, "c-1", range(1, 4))
        assert info_of(sent, 3) == opened.store.info("c-1")

    async def test_unknown_container_has_no_info(self, harness: Harness) -> None:
        """info() of a container never appended to is None."""
        opened = await harness.open()
        assert opened.store.info("nobody") is None

    async def test_append_after_close_does_not_raise(self, harness: Harness) -> None:
        """append() never fails its caller, not even on a closed store."""
        opened = await harness.open()
        await opened.store.close()
        opened.store.append_run("c-1", 1, 1.0, [b"late"])

    async def test_interleaved_containers_each_keep_seq_order(self, harness: Harness) -> None:
        """Appends interleaved across containers read back per container in seq order."""
        opened = await harness.open()
        sent: dict[str, list[StoredMessage]] = {"a": [], "b": []}
        for seq in range(1, 51):
            for container_id in sent:
                sent[container_id] += append(opened.store, container_id, range(seq, seq + 1))
        assert sent == {c: await opened.store.read(c) for c in sent}


class ReadYourWritesContract:
    """A read started after an append returns it, durable or not."""

    async def test_read_right_after_append_returns_it(self, harness: Harness) -> None:
        """read() issued right after append() returns the message."""
        opened = await harness.open()
        sent = append(opened.store, "c-1", range(1, 2))
        assert sent == await opened.store.read("c-1")

    async def test_read_after_a_burst_returns_all(self, harness: Harness) -> None:
        """A read after thousands of appends (many batches) returns every one, in order."""
        opened = await harness.open()
        sent = append(opened.store, "c-1", range(1, 5001))
        assert sent == await opened.store.read("c-1")

    async def test_read_sees_appends_before_it_while_more_follow(self, harness: Harness) -> None:
        """A read started, then followed at once by more appends, still has the earlier ones."""
        opened = await harness.open()
        sent = append(opened.store, "c-1", range(1, 11))
        reading = asyncio.ensure_future(opened.store.read("c-1"))
        await asyncio.sleep(0)  # let the read start
        sent += append(opened.store, "c-1", range(11, 21))
        got = await reading
        assert sent[:10] == got[:10]
        assert sent[: len(got)] == got


class ReadContract:
    """``read`` selects by after, tail, since_time and limit, oldest first."""

    @pytest.fixture
    async def opened(self, harness: Harness) -> Opened:
        opened = await harness.open()
        append(opened.store, "c-1", range(1, 11), time=lambda seq: 100.0 + seq)
        return opened

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({}, list(range(1, 11))),
            ({"after": 7}, [8, 9, 10]),
            ({"after": 10}, []),
            ({"tail": 3}, [8, 9, 10]),
            ({"tail": 15}, list(range(1, 11))),
            ({"tail": 50}, list(range(1, 11))),
            ({"tail": 0}, []),
            ({"since_time": 108.0}, [8, 9, 10]),
            ({"since_time": 200.0}, []),
            ({"limit": 2}, [1, 2]),
            ({"limit": 0}, []),
            ({"tail": 5, "limit": 2}, [6, 7]),
            ({"after": 4, "tail": 3}, [8, 9, 10]),
            ({"after": 8, "tail": 5}, [9, 10]),
            ({"since_time": 104.0, "tail": 20}, [4, 5, 6, 7, 8, 9, 10]),
            ({"after": 2, "since_time": 105.0, "limit": 3}, [5, 6, 7]),
        ],
    )
    async def test_selection(
        self, opened: Opened, query: dict[str, int | float], expected: list[int]
    ) -> None:
        """Each combination of after/tail/since_time/limit selects the documented seqs."""
        assert expected == [m.seq for m in await opened.store.read("c-1", **query)]

    async def test_unknown_container_reads_empty(self, opened: Opened) -> None:
        """read() of a container never appended to is empty."""
        expected: list[StoredMessage] = []
        assert expected == await opened.store.read("nobody")

    async def test_payload_and_time_come_back_exactly(self, harness: Harness) -> None:
        """Payload bytes (any bytes) and the receive time come back unchanged."""
        opened = await harness.open()
        payload = bytes(range(256)) + "é✓".encode()
        opened.store.append_run("c-1", 1, 1700000000.123456, [payload])
        assert [StoredMessage(1, 1700000000.123456, payload)] == await opened.store.read("c-1")

    async def test_paging_with_after_and_limit_covers_all_once(self, opened: Opened) -> None:
        """Pages of ``limit`` following ``after`` = last seq cover every message exactly once."""
        seen: list[int] = []
        after = 0
        while page := await opened.store.read("c-1", after=after, limit=3):
            seen += [m.seq for m in page]
            after = page[-1].seq
        assert list(range(1, 11)) == seen


class DurabilityContract:
    """``on_durable`` runs on the loop and names (container, seq) once it is durable."""

    async def test_every_container_is_reported_on_the_loop(self, harness: Harness) -> None:
        """Each container's last seq is reported, always on the event loop."""
        opened = await harness.open()
        append(opened.store, "a", range(1, 101))
        append(opened.store, "b", range(1, 8))
        await opened.until_durable("a", 100)
        await opened.until_durable("b", 7)
        expected = ({"a": 100, "b": 7}, 0)
        assert expected == (opened.durable, opened.off_loop_reports)

    async def test_reported_seq_never_goes_back(self, harness: Harness) -> None:
        """Per container, successive reports name increasing seqs."""
        opened = await harness.open()
        for seq in range(1, 301):
            append(opened.store, "a", range(seq, seq + 1))
            if seq % 50 == 0:
                await asyncio.sleep(0)
        await opened.until_durable("a", 300)
        reported = [seq for report in opened.reports for c, seq in report if c == "a"]
        assert sorted(reported) == reported

    async def test_close_makes_queued_appends_durable(self, harness: Harness) -> None:
        """close() reports every queued append durable before it returns."""
        opened = await harness.open()
        append(opened.store, "a", range(1, 1001))
        await opened.store.close()
        expected = {"a": 1000}
        assert expected == opened.durable

    async def test_durable_messages_are_kept_across_reopen(self, harness: Harness) -> None:
        """What was reported durable is read back after a reopen."""
        opened = await harness.open()
        sent = append(opened.store, "a", range(1, 201))
        await opened.until_durable("a", 200)
        reopened = await harness.reopen(opened)
        assert sent == await reopened.store.read("a")


class RetentionContract:
    """``prune`` keeps the newest ``max_messages`` and what is younger than ``max_age``."""

    async def test_keeps_newest_max_messages(self, harness: Harness) -> None:
        """Beyond max_messages, the oldest go; prune returns how many went since info()."""
        opened = await harness.open(Retention(max_messages=3, max_age=1e9))
        sent = append(opened.store, "a", range(1, 11))
        before = opened.store.info("a")
        removed = await opened.store.prune(20.0)
        after = opened.store.info("a")
        assert before is not None
        assert after is not None
        assert (sent[-3:], info_of(sent[-3:], 10), before.messages - 3) == (
            await opened.store.read("a"),
            after,
            removed,
        )

    async def test_drops_what_is_older_than_max_age(self, harness: Harness) -> None:
        """Messages received before now - max_age go; one received exactly then stays."""
        opened = await harness.open(Retention(max_messages=100, max_age=10.0))
        sent = append(opened.store, "a", range(1, 11), time=lambda seq: 100.0 + seq)
        removed = await opened.store.prune(115.0)
        assert (4, sent[4:], info_of(sent[4:], 10)) == (
            removed,
            await opened.store.read("a"),
            opened.store.info("a"),
        )

    async def test_removes_nothing_within_retention(self, harness: Harness) -> None:
        """Under both limits, prune removes nothing and reads are unchanged."""
        opened = await harness.open(Retention(max_messages=100, max_age=100.0))
        sent = append(opened.store, "a", range(1, 11), time=lambda seq: 100.0 + seq)
        assert (0, sent) == (await opened.store.prune(150.0), await opened.store.read("a"))

    async def test_applies_per_container(self, harness: Harness) -> None:
        """Each container is trimmed to its own newest max_messages."""
        opened = await harness.open(Retention(max_messages=2, max_age=1e9))
        big = append(opened.store, "big", range(1, 6))
        small = append(opened.store, "small", range(1, 3))
        await opened.store.prune(10.0)
        assert (big[-2:], small) == (
            await opened.store.read("big"),
            await opened.store.read("small"),
        )

    async def test_emptied_container_keeps_last_seq_and_drops_producers(
        self, harness: Harness
    ) -> None:
        """A container left empty keeps its last seq but not its producer ids, after reopen too."""
        opened = await harness.open(Retention(max_messages=100, max_age=10.0))
        append(opened.store, "a", range(1, 6), producer="p", pub_id=True)
        append(opened.store, "b", range(1, 3), producer="p", pub_id=True)
        append(opened.store, "b", range(3, 4), time=lambda seq: 995.0)
        await opened.store.prune(1000.0)
        emptied = opened.store.info("a")
        reopened = await harness.reopen(opened)
        assert (ContainerInfo(5, 0, 0, 0), [], ContainerInfo(5, 0, 0, 0), {("b", "p"): 2}) == (
            emptied,
            await reopened.store.read("a"),
            reopened.snapshot.containers.get("a"),
            reopened.snapshot.producers,
        )

    async def test_producer_ids_come_back_with_new_messages(self, harness: Harness) -> None:
        """After its ids were pruned, a producer's next id is kept again (seq goes on)."""
        opened = await harness.open(Retention(max_messages=100, max_age=10.0))
        append(opened.store, "a", range(1, 4), producer="p", pub_id=True)
        await opened.store.prune(1000.0)
        append(opened.store, "a", range(4, 5), time=lambda seq: 1000.0, producer="p", pub_id=True)
        reopened = await harness.reopen(opened)
        assert ({("a", "p"): 4}, 4) == (
            reopened.snapshot.producers,
            reopened.snapshot.containers["a"].last_seq,
        )

    async def test_appends_after_emptying_start_a_new_first_seq(self, harness: Harness) -> None:
        """After a container was emptied, the next append becomes its first_seq."""
        opened = await harness.open(Retention(max_messages=100, max_age=10.0))
        append(opened.store, "a", range(1, 6))
        await opened.store.prune(1000.0)
        sent = append(opened.store, "a", range(6, 8), time=lambda seq: 1000.0)
        assert (sent, info_of(sent, 7)) == (await opened.store.read("a"), opened.store.info("a"))

    async def test_appends_racing_a_prune_are_counted(self, harness: Harness) -> None:
        """Appends made while a prune runs are kept and counted, whatever the prune removed."""
        opened = await harness.open(Retention(max_messages=100, max_age=10.0))
        append(opened.store, "a", range(1, 6))
        pruning = asyncio.ensure_future(opened.store.prune(1000.0))
        await asyncio.sleep(0)
        sent = append(opened.store, "a", range(6, 9), time=lambda seq: 1000.0)
        await pruning
        assert (sent, info_of(sent, 8)) == (await opened.store.read("a"), opened.store.info("a"))


class ReopenContract:
    """``open`` returns what was kept, so seq and producer ids continue."""

    async def test_fresh_store_is_empty(self, harness: Harness) -> None:
        """A store opened for the first time has no containers and no producers."""
        opened = await harness.open()
        snapshot = opened.snapshot
        assert ({}, {}, {}, []) == (
            snapshot.containers,
            snapshot.producers,
            snapshot.skip_to,
            snapshot.sessions,
        )

    async def test_snapshot_has_counters_and_last_producer_ids(self, harness: Harness) -> None:
        """The snapshot restores per-container counters and each producer's last id."""
        opened = await harness.open()
        a = append(opened.store, "a", range(1, 8), producer="p", pub_id=True)
        append(opened.store, "a", range(8, 9), producer="q", pub_id=True)
        a += [StoredMessage(8, 8.0, b"a:8")]
        append(opened.store, "a", range(9, 10), producer="p")  # no id: p keeps 7
        a += [StoredMessage(9, 9.0, b"a:9")]
        b = append(opened.store, "b", range(1, 3))
        reopened = await harness.reopen(opened)
        assert (
            {"a": info_of(a, 9), "b": info_of(b, 2)},
            {("a", "p"): 7, ("a", "q"): 8},
            info_of(a, 9),
        ) == (
            reopened.snapshot.containers,
            reopened.snapshot.producers,
            reopened.store.info("a"),
        )

    async def test_a_run_is_kept_as_its_messages_one_by_one(self, harness: Harness) -> None:
        """append_run keeps what append would for each of its messages in turn: seqs from
        the first on, the run's time, the counts, and each producer's last id (a message
        without one leaves its producer's as it was)."""
        opened = await harness.open()
        sent = append(opened.store, "a", range(1, 3))
        opened.store.append_run(
            "a", 3, 3.0, [b"a:3", b"a:4", b"a:5"], [("p", 7), ("", None), ("p", 9)]
        )
        opened.store.append_run("a", 6, 6.0, [b"a:6", b"a:7"])
        sent += [StoredMessage(seq, 3.0, b"a:%d" % seq) for seq in (3, 4, 5)]
        sent += [StoredMessage(seq, 6.0, b"a:%d" % seq) for seq in (6, 7)]
        assert info_of(sent, 7) == opened.store.info("a")
        reopened = await harness.reopen(opened)
        assert (sent, {("a", "p"): 9}, info_of(sent, 7)) == (
            await reopened.store.read("a"),
            reopened.snapshot.producers,
            reopened.snapshot.containers["a"],
        )

    async def test_appends_continue_after_reopen(self, harness: Harness) -> None:
        """After a reopen, new appends follow the kept ones in one seq order."""
        opened = await harness.open()
        sent = append(opened.store, "a", range(1, 4))
        reopened = await harness.reopen(opened)
        sent += append(reopened.store, "a", range(4, 6))
        assert (sent, info_of(sent, 5)) == (
            await reopened.store.read("a"),
            reopened.store.info("a"),
        )


# -- a random walk against a plain model ---------------------------------------------------

_RETENTION = Retention(max_messages=4, max_age=10.0)
_CONTAINERS = ("a", "b")


@dataclass
class Model:
    """What a store must keep, with retention applied by prune only."""

    kept: dict[str, list[StoredMessage]] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)
    producers: dict[tuple[str, str], int] = field(default_factory=dict)

    def append(
        self, container_id: str, time: float, payload: bytes, producer: str, pub: bool
    ) -> StoredMessage:
        seq = self.last.get(container_id, 0) + 1
        self.last[container_id] = seq
        message = StoredMessage(seq, time, payload)
        self.kept.setdefault(container_id, []).append(message)
        if pub:
            self.producers[(container_id, producer)] = seq
        return message

    def prune(self, now: float) -> None:
        cutoff = now - _RETENTION.max_age
        for container_id, kept in self.kept.items():
            young = [m for m in kept if m.time >= cutoff]
            self.kept[container_id] = young[max(0, len(young) - _RETENTION.max_messages) :]
        for key in [key for key in self.producers if not self.kept.get(key[0])]:
            del self.producers[key]


def select(
    messages: list[StoredMessage], after: int, tail: int | None, limit: int | None
) -> list[StoredMessage]:
    """What ``read`` returns from ``messages`` for these arguments (the documented order)."""
    chosen = [m for m in messages if m.seq > after]
    if tail is not None:
        chosen = chosen[max(0, len(chosen) - tail) :]
    return chosen if limit is None else chosen[:limit]


@dataclass(frozen=True)
class Append:
    container_id: str
    gap: float
    payload: bytes
    producer: str
    with_id: bool


@dataclass(frozen=True)
class Prune:
    ahead: float


@dataclass(frozen=True)
class Read:
    """Reads with every ``tail`` around the number of messages after ``after``, and none."""

    container_id: str
    after: int
    limit: int | None


@dataclass(frozen=True)
class Reopen:
    pass


_containers = st.sampled_from(_CONTAINERS)
_appends = st.builds(
    Append,
    _containers,
    st.floats(0.0, 4.0),
    st.binary(max_size=6),
    st.sampled_from(["", "p"]),
    st.booleans(),
)
_counts = st.none() | st.integers(0, 6)
_steps = st.lists(
    st.one_of(
        _appends,
        _appends,
        st.builds(Prune, st.floats(0.0, 15.0)),
        st.builds(Read, _containers, st.integers(0, 4), _counts),
        st.just(Reopen()),
    ),
    min_size=5,
    max_size=30,
)


def _random_walk() -> Callable[..., Awaitable[None]]:
    """A fresh Hypothesis test: one per implementation, so each keeps its own examples."""

    @settings(
        max_examples=40,
        deadline=None,
        # Each example opens its stores at a fresh place under the one tmp_path; and the walk
        # does real I/O on shared machines, where its pace says nothing about the store.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=_steps)
    async def test_random_walk(
        self: object, harness: Harness, steps: list[Append | Prune | Read | Reopen]
    ) -> None:
        """After every step the store is self-consistent; after a prune it equals the model."""
        model = Model()
        clock = 1000.0
        opened = await harness.open(_RETENTION)
        for step in steps:
            store = opened.store
            match step:
                case Append(container_id, gap, payload, producer, with_id):
                    clock += gap
                    message = model.append(container_id, clock, payload, producer, with_id)
                    pub_id = message.seq if with_id else None
                    store.append_run(
                        container_id, message.seq, clock, [payload], [(producer, pub_id)]
                    )
                    assert [message] == await store.read(container_id, tail=1)
                case Prune(ahead):
                    await store.prune(clock + ahead)
                    model.prune(clock + ahead)
                    for container_id, kept in model.kept.items():
                        assert (kept, info_of(kept, model.last[container_id])) == (
                            await store.read(container_id),
                            store.info(container_id),
                        )
                case Read(container_id, after, limit):
                    everything = await store.read(container_id)
                    newer = sum(1 for m in everything if m.seq > after)
                    for tail in [None, *range(max(0, newer - 2), newer + 4)]:
                        expected = select(everything, after, tail, limit)
                        assert expected == await store.read(
                            container_id, after=after, tail=tail, limit=limit
                        )
                case Reopen():
                    before = {c: store.info(c) for c in model.last}
                    opened = await harness.reopen(opened)
                    assert (before, model.producers) == (
                        opened.snapshot.containers,
                        opened.snapshot.producers,
                    )
            for container_id, last in model.last.items():
                kept = await opened.store.read(container_id)
                untrimmed = model.kept[container_id]
                assert kept == untrimmed[len(untrimmed) - len(kept) :]
                assert len(kept) >= min(len(untrimmed), _RETENTION.max_messages)
                assert info_of(kept, last) == opened.store.info(container_id)
        await harness.close()

    return test_random_walk


class AgainstModelContract:
    """Random appends, prunes, reads and reopens agree with a plain model."""

    test_random_walk: Callable[..., Awaitable[None]]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.test_random_walk = _random_walk()
