"""The engine contract: every guarantee of ``tailhub.engine.base``, as tests.

A test module runs the contract against one engine by defining an ``engines`` fixture that
returns a :class:`Harness` built from one factory, and one empty ``Test*`` subclass of each
``*Contract`` class that applies (``test_local.py``). Adding an engine is one factory:

    async def make(place: Path, options: Options) -> Engine:
        '''A new, unopened engine over the state kept at ``place``.'''

``place`` is a directory of the test's own; the same ``place`` means the same kept state,
and a new ``place`` fresh state: an engine on a server keys its state by it, or wipes the
server the first time it is given a ``place`` (no test uses an engine after opening another
at a new place, so a wipe is what "Redis was flushed" means to the first).
:class:`RestartContract` applies to engines whose state outlives a close (``keeps_state``).
Nothing here knows which engine it tests.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from tailhub.engine import (
    DUPLICATE,
    Engine,
    EngineError,
    Entry,
    Published,
    SessionInfo,
    StoredMessage,
)
from tailhub.protocol import encode_published
from tests.helpers import UNIT

__all__ = [
    "CommandContract",
    "Harness",
    "HistoryContract",
    "Opened",
    "Options",
    "PublishContract",
    "RecordContract",
    "Recorder",
    "RestartContract",
    "SessionContract",
    "entries",
    "payload",
]

TIMESTAMP = "2026-01-01T00:00:00.000Z"


@dataclass(frozen=True, slots=True)
class Options:
    """What a test asks of the engine it makes."""

    max_sessions: int = 100
    max_messages: int = 100_000
    max_age: float = 7 * 86400.0


MakeEngine = Callable[[Path, Options], Awaitable[Engine]]


class Recorder:
    """An :class:`~tailhub.engine.base.EngineHandler` that records every call, on its loop."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, list[bytes]]] = []
        self.delivered: dict[str, list[bytes]] = {}
        self.durable_seqs: dict[str, int] = {}
        self.gaps_reported: list[tuple[str, int, int, str]] = []
        self.received_commands: list[tuple[str, bytes]] = []
        self.command_takers = 1
        self.availability_changes: list[tuple[bool, str]] = []
        self.notices: list[tuple[str, bytes]] = []
        self.off_loop = 0
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def _note(self) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if not on_loop:
            self.off_loop += 1
        self._changed.set()

    def deliver(self, container_id: str, kind: str, payloads: list[bytes]) -> None:
        self.runs.append((container_id, kind, list(payloads)))
        self.delivered.setdefault(container_id, []).extend(payloads)
        self._note()

    def durable(self, positions: Sequence[tuple[str, int]]) -> None:
        for container_id, seq in positions:
            self.durable_seqs[container_id] = max(seq, self.durable_seqs.get(container_id, 0))
        self._note()

    def gap(self, container_id: str, after: int, resumed: int, reason: str) -> None:
        self.gaps_reported.append((container_id, after, resumed, reason))
        self._note()

    def command(self, container_id: str, payload: bytes) -> int:
        self.received_commands.append((container_id, payload))
        self._note()
        return self.command_takers

    def availability(self, available: bool, reason: str) -> None:
        self.availability_changes.append((available, reason))
        self._note()

    def notice(self, container_id: str, payload: bytes) -> None:
        self.notices.append((container_id, payload))
        self._note()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (events, no fixed sleep) until ``condition()`` holds."""
        async with asyncio.timeout(5 * UNIT):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def until_delivered(self, container_id: str, count: int) -> list[bytes]:
        """Wait for ``count`` deliveries of ``container_id``; return them all."""
        await self.until(lambda: len(self.delivered.get(container_id, [])) >= count)
        return self.delivered[container_id]

    async def until_durable(self, container_id: str, seq: int) -> None:
        await self.until(lambda: self.durable_seqs.get(container_id, 0) >= seq)


class Opened:
    """An opened engine, its recording handler, and helpers that publish and wait."""

    def __init__(self, engine: Engine, handler: Recorder, place: Path, options: Options) -> None:
        self.engine = engine
        self.handler = handler
        self.place = place
        self.options = options

    async def publish(
        self, container_id: str, kind: str, batch: Sequence[Entry], now: float = 1000.0
    ) -> Published:
        """Publish one run; return what ``done`` reported (once)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Published] = loop.create_future()
        calls: list[Published] = []

        def done(published: Published) -> None:
            calls.append(published)
            if not answer.done():
                answer.set_result(published)

        self.engine.publish(container_id, kind, batch, now, done)
        async with asyncio.timeout(5 * UNIT):
            published = await answer
        await asyncio.sleep(0)  # a second call of done would show here
        assert [published] == calls
        return published

    async def logs(
        self, container_id: str, count: int, *, start: int = 1, now: float = 1000.0, **kw: object
    ) -> Published:
        """Publish a run of ``count`` log lines numbered from ``start``."""
        return await self.publish(container_id, "log", entries(count, start=start, **kw), now)


def entries(
    count: int,
    *,
    start: int = 1,
    producer: str = "",
    ids: bool = False,
    status: str | None = None,
    exit_code: int | None = None,
) -> list[Entry]:
    """``count`` entries with data ``{"line": n}``; ``ids``: the publisher id is ``n``."""
    return [
        Entry(
            b'{"line":%d}' % n,
            TIMESTAMP,
            producer,
            n if ids else None,
            status,
            exit_code,
        )
        for n in range(start, start + count)
    ]


def payload(kind: str, container_id: str, seq: int, data: bytes) -> bytes:
    """What subscribers and history get for a stored message (the one encoding)."""
    return encode_published(kind, container_id, TIMESTAMP, seq, msgspec.Raw(data))


def lines(container_id: str, seqs: Sequence[int], numbers: Sequence[int]) -> list[bytes]:
    """The payloads of log lines ``numbers`` stored with ``seqs``."""
    return [
        payload("log", container_id, seq, b'{"line":%d}' % n)
        for seq, n in zip(seqs, numbers, strict=True)
    ]


class Harness:
    """Makes, opens, restarts and finally closes engines of one implementation.

    Args:
        make: a new engine over the state kept at ``place``.
        root: where places are made (the test's ``tmp_path``).
        keeps_state: a closed engine's state is found again by the next one on its place.
    """

    def __init__(self, make: MakeEngine, root: Path, *, keeps_state: bool) -> None:
        self._make = make
        self._root = root
        self.keeps_state = keeps_state
        self._places = itertools.count()
        self._open: list[Opened] = []

    async def open(self, options: Options | None = None) -> Opened:
        """A new engine over fresh state, opened with a :class:`Recorder`."""
        place = self._root / f"engine-{next(self._places)}"
        return await self._start(place, options or Options())

    async def restart(self, opened: Opened) -> Opened:
        """Close ``opened`` and open a new engine over its state, as a hub restart does."""
        await self.close_one(opened)
        return await self._start(opened.place, opened.options)

    async def close_one(self, opened: Opened) -> None:
        self._open.remove(opened)
        await opened.engine.close()

    async def _start(self, place: Path, options: Options) -> Opened:
        engine = await self._make(place, options)
        handler = Recorder()
        await engine.open(handler)
        opened = Opened(engine, handler, place, options)
        self._open.append(opened)
        return opened

    async def close(self) -> None:
        for opened in self._open:
            await opened.engine.close()
        self._open.clear()


def _statuses(sessions: Sequence[SessionInfo]) -> list[tuple[str, str, bool]]:
    return [(s.container_id, s.status, s.active) for s in sessions]


class PublishContract:
    """seq, de-duplication, fan-out and durability of published runs."""

    async def test_seqs_start_at_one_and_stay_gapless_over_runs(self, engines: Harness) -> None:
        """Each run's seqs continue the container's, from 1, with no gap; per container."""
        one = await engines.open()
        first = await one.logs("a", 3)
        other = await one.logs("b", 2)
        second = await one.logs("a", 2, start=4)
        assert ([1, 2, 3], [1, 2], [4, 5], 5) == (
            first.seqs,
            other.seqs,
            second.seqs,
            second.last_seq,
        )
        assert (None, True, False) == (first.refused, first.started, second.started)

    async def test_every_run_is_delivered_once_in_order_as_encoded(self, engines: Harness) -> None:
        """A listening handler gets each stored run exactly once, in seq order, encoded once."""
        one = await engines.open()
        one.engine.listen("a")
        await one.logs("a", 3)
        await one.logs("a", 2, start=4)
        got = await one.handler.until_delivered("a", 5)
        await one.engine.check()
        assert lines("a", range(1, 6), range(1, 6)) == got
        assert [3, 2] == [len(p) for c, _, p in one.handler.runs if c == "a"]

    async def test_runs_are_stored_in_publish_order(self, engines: Harness) -> None:
        """Reading returns the runs as published, with their receive times."""
        one = await engines.open()
        for i in range(5):
            await one.logs("a", 2, start=2 * i + 1, now=100.0 + i)
        kept = await one.engine.read("a")
        expected = lines("a", range(1, 11), range(1, 11))
        assert (expected, [100.0 + (s - 1) // 2 for s in range(1, 11)]) == (
            [m.payload for m in kept],
            [m.time for m in kept],
        )
        assert list(range(1, 11)) == [m.seq for m in kept]

    async def test_an_entry_without_a_timestamp_gets_the_receive_time(
        self, engines: Harness
    ) -> None:
        """An entry with no timestamp is stamped with the run's receive time, once encoded."""
        one = await engines.open()
        await one.publish("a", "log", [Entry(b'{"n":1}', None), Entry(b'{"n":2}', "t")], 1000.0)
        kept = await one.engine.read("a")
        assert [
            encode_published("log", "a", "1970-01-01T00:16:40.000Z", 1, msgspec.Raw(b'{"n":1}')),
            encode_published("log", "a", "t", 2, msgspec.Raw(b'{"n":2}')),
        ] == [m.payload for m in kept]

    async def test_repeated_producer_ids_are_dropped(self, engines: Harness) -> None:
        """A (producer, id) already stored is reported DUPLICATE, not stored, not delivered."""
        one = await engines.open()
        one.engine.listen("a")
        first = await one.logs("a", 3, producer="p", ids=True)
        again = await one.logs("a", 4, producer="p", ids=True)  # ids 1..4: only 4 is new
        other = await one.logs("a", 1, producer="q", ids=True)  # another producer's id 1
        assert ([1, 2, 3], [DUPLICATE] * 3 + [4], [5]) == (first.seqs, again.seqs, other.seqs)
        kept = await one.engine.read("a")
        assert [1, 2, 3, 4, 5] == [m.seq for m in kept]
        got = await one.handler.until_delivered("a", 5)
        assert lines("a", [1, 2, 3, 4, 5], [1, 2, 3, 4, 1]) == got

    async def test_a_repeat_inside_one_run_is_dropped(self, engines: Harness) -> None:
        """Within one run, an id at or below one already in it is a duplicate too."""
        one = await engines.open()
        batch = [*entries(2, producer="p", ids=True), *entries(2, producer="p", ids=True)]
        published = await one.publish("a", "log", batch)
        assert ([1, 2, DUPLICATE, DUPLICATE], 2) == (published.seqs, published.last_seq)

    async def test_runs_of_many_containers_in_one_turn_are_each_stored(
        self, engines: Harness
    ) -> None:
        """Runs of several containers published in one turn (on Redis: one write round, one
        script call): each container gets its own gapless seqs in publish order and its own
        messages, its repeats are dropped, and a container beyond the session limit is
        refused while the others are stored."""
        one = await engines.open(Options(max_sessions=3))
        await one.logs("a", 2, producer="p", ids=True)
        await one.logs("b", 1)
        await one.logs("c", 1)
        loop = asyncio.get_running_loop()
        answers: list[asyncio.Future[Published]] = []
        for container_id, batch in (
            ("a", entries(3, start=2, producer="p", ids=True)),
            ("b", entries(2, start=2)),
            ("a", entries(1, start=5, producer="p", ids=True)),
            ("c", entries(1, start=2)),
            ("d", entries(1)),
        ):
            answer: asyncio.Future[Published] = loop.create_future()
            answers.append(answer)
            one.engine.publish(container_id, "log", batch, 1000.0, answer.set_result)
        async with asyncio.timeout(5 * UNIT):
            got = [await answer for answer in answers]
        assert [[DUPLICATE, 3, 4], [2, 3], [5], [2]] == [p.seqs for p in got[:4]]
        assert ("max_sessions", []) == (got[4].refused, got[4].seqs)
        kept = {c: await one.engine.read(c) for c in "abcd"}
        assert {"a": 5, "b": 3, "c": 2, "d": 0} == {
            c: len(messages) for c, messages in kept.items()
        }
        for messages in kept.values():
            assert [(n, n) for n in range(1, len(messages) + 1)] == [
                (m.seq, msgspec.json.decode(m.payload)["data"]["line"]) for m in messages
            ]

    async def test_a_run_of_only_repeats_changes_nothing(self, engines: Harness) -> None:
        """Only duplicates: nothing stored, nothing delivered, seq unchanged."""
        one = await engines.open()
        one.engine.listen("a")
        await one.logs("a", 2, producer="p", ids=True)
        await one.handler.until_delivered("a", 2)
        again = await one.logs("a", 2, producer="p", ids=True)
        assert ([DUPLICATE, DUPLICATE], 2) == (again.seqs, again.last_seq)
        await one.engine.check()
        assert (2, 2) == (len(one.handler.delivered["a"]), len(await one.engine.read("a")))

    async def test_durable_names_every_stored_message(self, engines: Harness) -> None:
        """durable() reaches the last seq of each container, on the event loop."""
        one = await engines.open()
        await one.logs("a", 3)
        await one.logs("b", 1)
        await one.handler.until_durable("a", 3)
        await one.handler.until_durable("b", 1)
        assert 0 == one.handler.off_loop

    async def test_read_after_done_sees_the_run(self, engines: Harness) -> None:
        """A read started after a run's done finds the run."""
        one = await engines.open()
        published = await one.logs("a", 4)
        kept = await one.engine.read("a", after=2)
        assert [3, 4] == [m.seq for m in kept] == published.seqs[2:]

    async def test_other_kinds_are_stored_and_delivered_as_sent(self, engines: Harness) -> None:
        """A status run is stored and delivered with its type."""
        one = await engines.open()
        one.engine.listen("a")
        batch = [Entry(b'{"status":"busy"}', TIMESTAMP, status="busy")]
        published = await one.publish("a", "status", batch)
        got = await one.handler.until_delivered("a", 1)
        expected = payload("status", "a", 1, b'{"status":"busy"}')
        assert ([1], [expected], [expected]) == (
            published.seqs,
            got,
            [m.payload for m in await one.engine.read("a")],
        )


class HistoryContract:
    """Reads, positions, epochs and retention."""

    async def test_reads_select_after_tail_time_and_limit(self, engines: Harness) -> None:
        """after, tail, since_time and limit select exactly, oldest first, paged."""
        one = await engines.open()
        for n in range(1, 21):
            await one.logs("a", 1, start=n, now=float(n))
        read = one.engine.read

        async def seqs(**kw: object) -> list[int]:
            return [m.seq for m in await read("a", **kw)]  # type: ignore[arg-type]

        assert list(range(16, 21)) == await seqs(tail=5)
        assert [11, 12, 13] == await seqs(after=10, limit=3)
        assert list(range(15, 21)) == await seqs(since_time=15.0)
        assert [18, 19] == await seqs(after=10, tail=3, limit=2)
        assert [] == await seqs(after=20)
        assert [] == [m.seq for m in await read("nobody")]
        paged: list[StoredMessage] = []
        after = 0
        while page := await read("a", after=after, limit=7):
            paged.extend(page)
            after = page[-1].seq
        assert list(range(1, 21)) == [m.seq for m in paged]

    async def test_reads_start_and_end_inside_runs(self, engines: Harness) -> None:
        """Messages stored together in one run are read from, and up to, any one of them,
        as encoded, also when repeats were dropped from the run."""
        one = await engines.open()
        await one.logs("a", 5, producer="p", ids=True)
        mixed = [
            *entries(5, producer="p", ids=True),  # repeats of 1..5
            Entry(b'{"line":6}', "t6", "p", 6),
            Entry(b'{"line":99}', "t7", "p", 2),  # a repeat whose head the next one shares
            Entry(b'{"line":7}', "t7", "p", 7),
            Entry(b'{"line":8}', "t8", "p", 8),
        ]
        again = await one.publish("a", "log", mixed)
        await one.logs("a", 4, start=9)
        assert [DUPLICATE] * 5 + [6, DUPLICATE, 7, 8] == again.seqs
        stamps = {6: "t6", 7: "t7", 8: "t8"}
        full = [
            encode_published(
                "log", "a", stamps.get(n, TIMESTAMP), n, msgspec.Raw(b'{"line":%d}' % n)
            )
            for n in range(1, 13)
        ]
        read = one.engine.read

        async def payloads(**kw: object) -> list[bytes]:
            return [m.payload for m in await read("a", **kw)]  # type: ignore[arg-type]

        assert full == await payloads()
        assert full[3:6] == await payloads(after=3, limit=3)
        assert full[6:10] == await payloads(after=6, limit=4)
        assert full[-6:] == await payloads(tail=6)
        assert full[10:] == await payloads(after=10, tail=6)
        assert full[6:8] == await payloads(after=5, tail=6, limit=2)

    async def test_position_and_epoch(self, engines: Harness) -> None:
        """position gives last and first seq and an epoch that stays while history does.

        It names what was handed on to listeners: a subscriber reads history up to it and gets
        what follows live."""
        one = await engines.open()
        one.engine.listen("a")
        empty = await one.engine.position("a")
        published = await one.logs("a", 3)
        await one.handler.until_delivered("a", 3)
        position = await one.engine.position("a")
        again = await one.engine.position("a")
        known = one.engine.known_position("a")
        if known is not None:  # an engine that knows it without I/O agrees with position
            assert position == known
        assert ((0, 0), (3, 1)) == (empty[:2], position[:2])
        assert position.epoch
        assert position == again == (3, 1, published.epoch)

    async def test_position_is_fixed_at_the_call(self, engines: Harness) -> None:
        """A run this process publishes after position() is called is not counted in its
        answer, though stored before it is awaited; one published before is."""
        one = await engines.open()
        one.engine.listen("a")
        await one.logs("a", 2)
        await one.handler.until_delivered("a", 2)
        asked = one.engine.position("a")
        later = await one.logs("a", 1, start=3)
        position = await asked
        before = one.engine.position("a")
        await one.logs("a", 1, start=4)
        assert ([3], 2, 3) == (later.seqs, position.last_seq, (await before).last_seq)

    async def test_fresh_state_has_a_new_epoch(self, engines: Harness) -> None:
        """Two engines over different state give a container different epochs."""
        one = await engines.open()
        first = await one.logs("a", 1)
        two = await engines.open()
        second = await two.logs("a", 1)
        assert first.epoch != second.epoch

    async def test_prune_keeps_the_newest_and_never_renumbers(self, engines: Harness) -> None:
        """Retention removes the oldest messages; what is kept keeps its seq."""
        one = await engines.open(Options(max_messages=5, max_age=1000.0))
        for n in range(1, 9):
            await one.logs("a", 1, start=n, now=float(n))
        await one.engine.prune(100.0)
        kept = await one.engine.read("a")
        position = await one.engine.position("a")
        assert (list(range(4, 9)), 8, 4) == ([m.seq for m in kept], position[0], position[1])
        after = await one.logs("a", 1, start=9, now=101.0)
        assert [9] == after.seqs

    async def test_prune_by_age(self, engines: Harness) -> None:
        """Messages received before now - max_age go; the count says how many."""
        one = await engines.open(Options(max_age=10.0))
        for n in range(1, 6):
            await one.logs("a", 1, start=n, now=float(n * 10))
        removed = await one.engine.prune(45.0)
        kept = await one.engine.read("a")
        assert (3, [4, 5]) == (removed, [m.seq for m in kept])


class SessionContract:
    """Session start, refresh, limit, end, expiry and listing."""

    async def test_first_stored_message_starts_a_session(self, engines: Harness) -> None:
        """The first stored message starts a running session; a touch starts none."""
        one = await engines.open()
        one.engine.touch("b", 5.0)
        await one.logs("a", 2, now=10.0)
        session = await one.engine.session("a")
        assert session is not None
        assert ("a", "running", 10.0, 10.0, True, 2, 1, 2) == (
            session.container_id,
            session.status,
            session.started_at,
            session.last_activity,
            session.active,
            session.last_seq,
            session.first_seq,
            session.messages,
        )
        assert session.stored_bytes > 0
        assert session.epoch
        assert None is await one.engine.session("b")

    async def test_messages_and_touch_refresh_last_activity(self, engines: Harness) -> None:
        """A later message or heartbeat moves last_activity; started_at stays."""
        one = await engines.open()
        await one.logs("a", 1, now=10.0)
        await one.logs("a", 1, start=2, now=20.0)
        one.engine.touch("a", 30.0)
        session = await one.engine.session("a")
        assert session is not None
        assert (10.0, 30.0) == (session.started_at, session.last_activity)

    async def test_the_limit_refuses_and_changes_nothing(self, engines: Harness) -> None:
        """Beyond max_sessions a run is refused with max_sessions; nothing is stored."""
        one = await engines.open(Options(max_sessions=1))
        await one.logs("a", 1)
        refused = await one.logs("b", 2)
        more = await one.logs("a", 1, start=2)
        assert ("max_sessions", [], 0) == (refused.refused, refused.seqs, refused.last_seq)
        assert "MAX_SESSIONS" in refused.reason
        assert [2] == more.seqs
        assert ([], None, (0, 0)) == (
            await one.engine.read("b"),
            await one.engine.session("b"),
            (await one.engine.position("b"))[:2],
        )
        await one.engine.check()
        assert "b" not in one.handler.delivered

    async def test_complete_ends_the_session_and_frees_its_slot(self, engines: Harness) -> None:
        """A complete run ends its session (ended), with the exit code; room for another."""
        one = await engines.open(Options(max_sessions=1))
        await one.logs("a", 1, now=10.0)
        done = await one.publish("a", "complete", [Entry(b"{}", TIMESTAMP, exit_code=0)], 11.0)
        other = await one.logs("b", 1, now=12.0)
        session = await one.engine.session("a")
        assert session is not None
        assert (True, "completed", 0, "complete", 11.0, False) == (
            done.ended,
            session.status,
            session.exit_code,
            session.end_reason,
            session.ended_at,
            session.active,
        )
        assert (None, True) == (other.refused, other.started)

    async def test_exit_codes_and_statuses(self, engines: Harness) -> None:
        """A failing complete ends in error; a status message sets its status."""
        one = await engines.open()
        await one.publish("a", "status", [Entry(b"{}", TIMESTAMP, status="thinking")])
        status = await one.engine.session("a")
        await one.publish("b", "complete", [Entry(b"{}", TIMESTAMP, exit_code=3)])
        failed = await one.engine.session("b")
        await one.publish("c", "error", [Entry(b"{}", TIMESTAMP)])
        error = await one.engine.session("c")
        assert status is not None
        assert failed is not None
        assert error is not None
        assert [("thinking", True), ("error", False, 3), ("error", True)] == [
            (status.status, status.active),
            (failed.status, failed.active, failed.exit_code),
            (error.status, error.active),
        ]

    async def test_a_new_session_after_an_end(self, engines: Harness) -> None:
        """A container's message after its session ended starts a new one; seq goes on."""
        one = await engines.open()
        await one.publish("a", "complete", [Entry(b"{}", TIMESTAMP, exit_code=0)], 10.0)
        again = await one.logs("a", 1, now=20.0)
        session = await one.engine.session("a")
        assert session is not None
        assert (True, [2], "running", 20.0, True) == (
            again.started,
            again.seqs,
            session.status,
            session.started_at,
            session.active,
        )

    async def test_expire_ends_each_timed_out_session_once(self, engines: Harness) -> None:
        """expire ends sessions idle for timeout, each once, spares the busy; without a
        final message the status is error and nothing is stored."""
        one = await engines.open()
        await one.logs("idle", 2, now=10.0)
        await one.logs("busy", 1, now=10.0)
        one.engine.touch("busy", 25.0)
        ended = await one.engine.expire(30.0, 10.0)
        again = await one.engine.expire(31.0, 10.0)
        session = await one.engine.session("idle")
        busy = await one.engine.session("busy")
        assert ["idle"] == [s.container_id for s in ended]
        assert ([], "timeout", 30.0, "error", 2) == (
            again,
            ended[0].end_reason,
            ended[0].ended_at,
            ended[0].status,
            len(await one.engine.read("idle")),
        )
        assert session is not None
        assert busy is not None
        assert (False, True) == (session.active, busy.active)

    async def test_expire_stores_the_final_message(self, engines: Harness) -> None:
        """A given final status is stored as the ended session's last message and delivered;
        the session takes its status and reports its seq."""
        one = await engines.open()
        one.engine.listen("quiet")
        await one.logs("quiet", 2, now=10.0)
        final = Entry(b'{"status":"stalled","reason":"timeout"}', TIMESTAMP, status="stalled")
        ended = await one.engine.expire(30.0, 10.0, final)
        got = await one.handler.until_delivered("quiet", 3)
        kept = await one.engine.read("quiet")
        expected = payload("status", "quiet", 3, b'{"status":"stalled","reason":"timeout"}')
        assert (["quiet"], "stalled", 3, "timeout") == (
            [s.container_id for s in ended],
            ended[0].status,
            ended[0].last_seq,
            ended[0].end_reason,
        )
        assert (expected, expected, 3) == (got[-1], kept[-1].payload, kept[-1].seq)

    async def test_end_session(self, engines: Harness) -> None:
        """end_session ends an active session once; None when none is active."""
        one = await engines.open()
        await one.logs("a", 1)
        ended = await one.engine.end_session("a", "revoked", 50.0)
        twice = await one.engine.end_session("a", "revoked", 51.0)
        assert ended is not None
        assert ("revoked", 50.0, None) == (ended.end_reason, ended.ended_at, twice)

    async def test_listing_order_filter_and_pages(self, engines: Harness) -> None:
        """Active first by start, then ended, latest ended first; filtered; paged by cursor."""
        one = await engines.open()
        for i, name in enumerate(["r1", "r2", "e1", "e2", "r3"]):
            await one.logs(name, 1, now=10.0 + i)
        await one.publish("e1", "complete", [Entry(b"{}", TIMESTAMP, exit_code=0)], 20.0)
        await one.publish("e2", "complete", [Entry(b"{}", TIMESTAMP, exit_code=1)], 21.0)
        listing = await one.engine.sessions()
        assert ["r1", "r2", "r3", "e2", "e1"] == [s.container_id for s in listing.sessions]
        assert None is listing.cursor
        active = await one.engine.sessions(status="active")
        ended = await one.engine.sessions(status="ended")
        failed = await one.engine.sessions(status="error")
        assert (["r1", "r2", "r3"], ["e2", "e1"], ["e2"]) == (
            [s.container_id for s in active.sessions],
            [s.container_id for s in ended.sessions],
            [s.container_id for s in failed.sessions],
        )
        pages: list[list[str]] = []
        cursor = None
        while True:
            page = await one.engine.sessions(limit=2, cursor=cursor)
            pages.append([s.container_id for s in page.sessions])
            if page.cursor is None:
                break
            cursor = page.cursor
        assert [["r1", "r2"], ["r3", "e2"], ["e1"]] == pages

    async def test_a_bad_cursor_is_an_engine_error(self, engines: Harness) -> None:
        """A cursor the engine did not give is refused with EngineError."""
        one = await engines.open()
        try:
            await one.engine.sessions(cursor="not a cursor")
        except EngineError:
            return
        raise AssertionError("a bad cursor was accepted")


class CommandContract:
    """Commands reach the process that holds the container's connection."""

    async def test_command_reaches_an_attached_container(self, engines: Harness) -> None:
        """With a connection attached the handler takes it; detached, nobody does."""
        one = await engines.open()
        assert 0 == await one.engine.command("a", b"cmd0")
        one.engine.attach("a")
        one.engine.attach("a")
        one.handler.command_takers = 2
        taken = await one.engine.command("a", b"cmd1")
        session_publishers = await _publishers(one, "a")
        one.engine.detach("a")
        still = await one.engine.command("a", b"cmd2")
        one.engine.detach("a")
        gone = await one.engine.command("a", b"cmd3")
        assert (2, 2, 0) == (taken, still, gone)
        assert [("a", b"cmd1"), ("a", b"cmd2")] == one.handler.received_commands
        assert 2 == session_publishers

    async def test_a_notice_is_not_handed_back_to_its_sender(self, engines: Harness) -> None:
        """The sender tells its own subscribers: its handler never gets its own notice (the
        copies other processes get are tested with two processes on Redis)."""
        one = await engines.open()
        one.engine.listen("a")
        one.engine.listen("*")
        one.engine.notice("a", b'{"type":"attention"}')
        await one.logs("a", 1)  # a run published after it has come back: so would the notice
        assert [] == one.handler.notices


async def _publishers(one: Opened, container_id: str) -> int:
    await one.logs(container_id, 1)
    session = await one.engine.session(container_id)
    return 0 if session is None else session.publishers


class RecordContract:
    """Per-session metadata, shared records with expiry, and claims."""

    async def test_metadata_is_listed_with_its_session(self, engines: Harness) -> None:
        """set_meta attaches a value to the session; None removes it."""
        one = await engines.open()
        await one.logs("a", 1)
        await one.engine.set_meta("a", "summary", b'"writing tests"')
        await one.engine.set_meta("a", "state", b'"idle"')
        await one.engine.set_meta("a", "state", None)
        session = await one.engine.session("a")
        listed = (await one.engine.sessions()).sessions
        assert session is not None
        assert {"summary": b'"writing tests"'} == session.meta == listed[0].meta

    async def test_records_put_replace_delete(self, engines: Harness) -> None:
        """Records are kept per kind and key, replaced, deleted; kinds do not mix."""
        one = await engines.open()
        await one.engine.put_record("revoked", "t1", b"1")
        await one.engine.put_record("revoked", "t2", b"2")
        await one.engine.put_record("revoked", "t1", b"3")
        await one.engine.put_record("outbox", "n1", b"x")
        await one.engine.delete_record("revoked", "t2")
        await one.engine.delete_record("revoked", "absent")
        assert ({"t1": b"3"}, {"n1": b"x"}, {}) == (
            await one.engine.records("revoked"),
            await one.engine.records("outbox"),
            await one.engine.records("none"),
        )

    async def test_an_expired_record_is_gone(self, engines: Harness) -> None:
        """A record whose ttl has run out is not returned."""
        one = await engines.open()
        await one.engine.put_record("revoked", "old", b"1", ttl=0.0)
        await one.engine.put_record("revoked", "new", b"2", ttl=3600.0)
        assert {"new": b"2"} == await one.engine.records("revoked")

    async def test_claim_is_taken_by_one_owner(self, engines: Harness) -> None:
        """One owner holds a claim until its ttl ends; it may renew it."""
        one = await engines.open()
        first = await one.engine.claim("outbox", "n1", "p1", 60.0)
        other = await one.engine.claim("outbox", "n1", "p2", 60.0)
        renew = await one.engine.claim("outbox", "n1", "p1", 60.0)
        short = await one.engine.claim("outbox", "n2", "p1", 0.0)
        after = await one.engine.claim("outbox", "n2", "p2", 60.0)
        assert (True, False, True, True, True) == (first, other, renew, short, after)


class RestartContract:
    """What an engine that keeps state finds again after every process restarted."""

    async def test_seq_and_producer_ids_continue(self, engines: Harness) -> None:
        """After a clean restart seqs continue and repeats are still dropped; same epoch."""
        one = await engines.open()
        before = await one.logs("a", 3, producer="p", ids=True)
        one = await engines.restart(one)
        again = await one.logs("a", 4, producer="p", ids=True)
        assert ([DUPLICATE] * 3 + [4], before.epoch) == (again.seqs, again.epoch)
        assert [1, 2, 3, 4] == [m.seq for m in await one.engine.read("a")]

    async def test_sessions_are_kept(self, engines: Harness) -> None:
        """Active and ended sessions come back with status, times, exit code and counts."""
        one = await engines.open(Options(max_sessions=2))
        await one.logs("run", 2, now=10.0)
        await one.publish("run", "status", [Entry(b"{}", TIMESTAMP, status="busy")], 11.0)
        await one.logs("done", 1, now=12.0)
        await one.publish("done", "complete", [Entry(b"{}", TIMESTAMP, exit_code=2)], 13.0)
        one.engine.touch("run", 14.0)
        before = (await one.engine.sessions()).sessions
        one = await engines.restart(one)
        after = (await one.engine.sessions()).sessions
        assert before == after
        assert [("run", "busy", True), ("done", "error", False)] == _statuses(after)
        assert (14.0, 2, 3) == (after[0].last_activity, after[1].exit_code, after[0].messages)

    async def test_active_sessions_count_against_the_limit(self, engines: Harness) -> None:
        """Sessions active before a restart still take their slots."""
        one = await engines.open(Options(max_sessions=1))
        await one.logs("a", 1)
        one = await engines.restart(one)
        refused = await one.logs("b", 1)
        assert "max_sessions" == refused.refused

    async def test_metadata_records_and_claims_are_kept(self, engines: Harness) -> None:
        """Metadata, live records and held claims come back; expired records do not."""
        one = await engines.open()
        await one.logs("a", 1)
        await one.engine.set_meta("a", "summary", b'"s"')
        await one.engine.put_record("revoked", "t1", b"1")
        await one.engine.put_record("revoked", "gone", b"2", ttl=0.0)
        await one.engine.claim("outbox", "n1", "p1", 3600.0)
        one = await engines.restart(one)
        session = await one.engine.session("a")
        assert session is not None
        assert ({"summary": b'"s"'}, {"t1": b"1"}, False) == (
            session.meta,
            await one.engine.records("revoked"),
            await one.engine.claim("outbox", "n1", "p2", 60.0),
        )
