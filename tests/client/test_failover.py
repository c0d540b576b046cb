"""Several hub URLs: the SDK and ``tailhub run`` move to the next hub process when one is down.

Real hub processes on free ports. Hub A is SIGKILLed mid-stream and the client must carry on
on hub B. Here the two hubs do not share an engine (each has its own SQLite history, its own
seqs and its own de-duplication), so what is asserted is what holds for separate hubs:
the client moved, nothing raised, B's history is one unbroken, in-order run of the stream
that reaches its end, and every line is stored on A or on B. With hubs that share one
engine, B's history is A's as well, and the same tests then also hold the stronger line
marked ``SHARED ENGINE`` in each: every line exactly once, in order, seqs 1..N.
:class:`TestSharedEngine` holds it for ``tailhub run`` over two hubs on one real Redis.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailhub.client import (
    Backoff,
    HubClient,
    HubUnreachableError,
    Message,
    Publisher,
    Subscribed,
    Subscriber,
)
from tests.client.procs import cli_env, finish, run_cli, start_cli
from tests.engine.redis_servers import RedisServer
from tests.helpers import TOKEN, UNIT, HubProcess, free_port, wait_for

FAST = Backoff(initial=0.05, maximum=0.3)
RUN = ("run", "--reconnect-max", "0.3", "--ack-timeout", str(10 * UNIT))


@pytest.fixture
def second(tmp_path: Path) -> Iterator[HubProcess]:
    """Hub B: another ``tailhub serve`` with the same token, its own port and data dir."""
    process = HubProcess(tmp_path / "hub-b").start()
    yield process
    process.stop()


def _dead_url() -> str:
    """A URL where nothing listens."""
    return f"ws://127.0.0.1:{free_port()}/"


async def _history(hub: HubProcess, container_id: str) -> list[Message]:
    async with Subscriber(container_id, url=hub.url, token=TOKEN, follow=False) as sub:
        return [message async for message in sub]


def _texts(messages: list[Message]) -> list[str]:
    return [m.data["message"] for m in messages if m.type == "log"]


def _assert_unbroken_tail(stored: list[str], sent: list[str]) -> int:
    """``stored`` is ``sent[k:]`` for some k (in order, no gap, none twice); returns k."""
    assert stored, "nothing reached the second hub"
    start = sent.index(stored[0])
    assert stored == sent[start:]
    return start


class TestPublisherFailover:
    async def test_first_url_down_at_start(self, second: HubProcess, cid: str) -> None:
        """The first URL refuses connections: the publisher delivers to the second."""
        urls = f"{_dead_url()},{second.url}"
        async with Publisher(cid, url=urls, token=TOKEN, backoff=FAST) as pub:
            for n in range(5):
                await pub.log(f"l{n}")
            assert await pub.flush(timeout=10 * UNIT)
            assert pub.url == second.url
        assert [f"l{n}" for n in range(5)] == _texts(await _history(second, cid))

    async def test_hub_killed_moves_to_next(
        self, hub: HubProcess, second: HubProcess, cid: str
    ) -> None:
        """Hub A SIGKILLed mid-stream: the publisher moves to hub B without an error, and
        every message is stored on A or B; B holds an unbroken run of the stream to its end."""
        sent = [f"m{n}" for n in range(600)]
        errors: list[object] = []
        killed = asyncio.Event()
        async with Publisher(
            cid, url=[hub.url, second.url], token=TOKEN, backoff=FAST, on_error=errors.append
        ) as pub:

            async def stream() -> None:
                for n, text in enumerate(sent):
                    if n == 300:
                        await killed.wait()
                    await pub.log(text)
                    await asyncio.sleep(0)

            streaming = asyncio.create_task(stream())
            await wait_for(lambda: pub.acked_id >= 50, 10 * UNIT)
            hub.kill()
            killed.set()
            await asyncio.wait_for(streaming, 20 * UNIT)
            assert await pub.flush(timeout=20 * UNIT)
            assert pub.url == second.url
            assert pub.failure is None
        assert errors == []
        on_b = _texts(await _history(second, cid))
        start = _assert_unbroken_tail(on_b, sent)
        assert start <= 300  # everything published after the kill reached B
        hub.start()  # A's history, as it was stored before the kill
        on_a = _texts(await _history(hub, cid))
        assert on_a == sent[: len(on_a)]
        assert set(sent) == set(on_a) | set(on_b)
        # SHARED ENGINE: B's history is A's; then: sent == on_b, seqs 1..600.

    async def test_every_url_down_then_one_up(self, tmp_path: Path, cid: str) -> None:
        """No hub answers: messages wait in the spool; the second hub comes up, gets them."""
        later = HubProcess(tmp_path / "later")
        async with Publisher(cid, url=[_dead_url(), later.url], token=TOKEN, backoff=FAST) as pub:
            await pub.log("early")
            assert not await pub.flush(timeout=0.3 * UNIT)
            assert isinstance(pub.last_error, HubUnreachableError)
            later.start()
            try:
                assert await pub.flush(timeout=10 * UNIT)
                assert ["early"] == _texts(await _history(later, cid))
            finally:
                later.stop()


class TestSubscriberFailover:
    async def test_first_url_down_at_start(self, second: HubProcess, cid: str) -> None:
        """Connecting tries every URL once: the second answers."""
        async with Publisher(cid, url=second.url, token=TOKEN) as pub:
            await pub.log("one")
            assert await pub.flush(timeout=10 * UNIT)
        urls = [_dead_url(), second.url]
        async with Subscriber(cid, url=urls, token=TOKEN, follow=False) as sub:
            assert ["one"] == _texts([message async for message in sub])
            assert sub.url == second.url

    async def test_every_url_down_at_start(self) -> None:
        """No URL answers on connecting: HubUnreachableError, with the last one's reason."""
        with pytest.raises(HubUnreachableError, match="connection refused"):
            async with Subscriber("c-none", url=[_dead_url(), _dead_url()], token=TOKEN):
                pass

    async def test_hub_killed_moves_to_next(self, hub: HubProcess, second: HubProcess) -> None:
        """A '*' subscriber on hub A, A SIGKILLed: it moves to B and receives B's messages."""
        replies: asyncio.Queue[Subscribed] = asyncio.Queue()
        async with Subscriber(
            "*",
            url=[hub.url, second.url],
            token=TOKEN,
            backoff=FAST,
            on_subscribed=replies.put_nowait,
        ) as sub:
            await sub.wait_subscribed()
            hub.kill()
            received: list[Message] = []

            async def read() -> None:
                async for message in sub:
                    received.append(message)
                    if message.data.get("message") == "after 2":
                        return

            reading = asyncio.create_task(read())
            await asyncio.wait_for(replies.get(), 10 * UNIT)  # the first subscribe's reply
            await asyncio.wait_for(replies.get(), 20 * UNIT)  # B's reply
            assert sub.url == second.url
            async with Publisher("c-after", url=second.url, token=TOKEN) as pub:
                for n in range(3):
                    await pub.log(f"after {n}")
                assert await pub.flush(timeout=10 * UNIT)
            await asyncio.wait_for(reading, 10 * UNIT)
        assert ["after 0", "after 1", "after 2"] == _texts(received)
        assert sub.reconnects == 1


class TestHubClient:
    async def test_first_url_down(self, second: HubProcess) -> None:
        """Requests go to the first URL that answers."""
        async with HubClient(url=f"{_dead_url()},{second.url}", token=TOKEN) as client:
            assert isinstance(await client.sessions(), list)
            assert client.url == second.url


async def _run_and_kill(hub: HubProcess, second: HubProcess, container_id: str) -> list[str]:
    """``tailhub run --url A,B`` printing 600 lines; A SIGKILLed once line 100 reached it.

    Returns the lines the command printed, once the run has ended with the command's exit
    code 0 and no traceback.
    """
    code = (
        "import time\n"
        "for n in range(600):\n"
        "    print(f'line {n}', flush=True)\n"
        "    time.sleep(0.003)\n"
    )
    env = cli_env(hub, TAILHUB_URL=f"{hub.url},{second.url}")
    runner = await start_cli(
        None, *RUN, "-q", "--container-id", container_id, "--", sys.executable, "-c", code, env=env
    )
    async with (
        asyncio.timeout(20 * UNIT),
        Subscriber(container_id, url=hub.url, token=TOKEN) as sub,
    ):
        async for message in sub:
            if message.data.get("message") == "line 100":
                break
    hub.kill()
    result = await finish(runner, 30 * UNIT)
    assert result.status == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [f"line {n}" for n in range(600)]


class TestRunFailover:
    async def test_hub_killed_mid_run(self, hub: HubProcess, second: HubProcess) -> None:
        """``tailhub run --url A,B``, A SIGKILLed mid-run: CMD's exit code, no traceback, and
        every line is stored on A or B; B holds an unbroken run of them up to the complete."""
        sent = await _run_and_kill(hub, second, "f1")
        history_b = await _history(second, "f1")
        start = _assert_unbroken_tail(_texts(history_b), sent)
        assert start <= 101
        assert history_b[-1].type == "complete"
        assert [m.seq for m in history_b] == list(range(1, len(history_b) + 1))
        hub.start()
        on_a = _texts(await _history(hub, "f1"))
        assert on_a == sent[: len(on_a)]
        assert set(sent) == set(on_a) | set(_texts(history_b))
        # SHARED ENGINE (TestSharedEngine): then _texts(history_b) == sent, seqs gapless.

    async def test_first_url_down(self, second: HubProcess) -> None:
        """``tailhub run --url DEAD,B``: every line reaches B, and no line says the hub is
        unreachable (one URL down is no news while the next answers)."""
        env = cli_env(second, TAILHUB_URL=f"{_dead_url()},{second.url}")
        result = await run_cli(
            None, *RUN, "--container-id", "f2", "--", "sh", "-c", "echo one; echo two", env=env
        )
        assert result.status == 0, result.stderr
        assert "cannot reach" not in result.stderr
        assert ["one", "two"] == _texts(await _history(second, "f2"))

    @pytest.mark.parametrize(
        ("value", "words"),
        [
            ("ws://127.0.0.1:1,,ws://127.0.0.1:2", "URL 2 is empty"),
            ("ws://127.0.0.1:1,", "URL 2 is empty"),
            ("ws://127.0.0.1:1,ftp://127.0.0.1:2", "'ftp://127.0.0.1:2' (hub URL 2 of 2)"),
        ],
    )
    async def test_bad_list(self, value: str, words: str) -> None:
        """A bad URL list stops ``tailhub run`` before CMD starts, with one line saying why."""
        env = cli_env(None, TAILHUB_URL=value)
        result = await run_cli(None, "run", "--", "sh", "-c", "echo ran", env=env)
        assert result.status != 0
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert words in lines[0]
        assert lines[0].startswith("tailhub: invalid hub URL")


class TestSharedEngine:
    @pytest.fixture
    def pair(self, tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
        """Hubs A and B: two ``tailhub serve --redis`` processes on one real redis-server."""
        redis = RedisServer(tmp_path / "redis").start()
        hubs = [HubProcess(tmp_path / f"hub-{n}", args=["--redis", redis.url]) for n in "ab"]
        try:
            for process in hubs:
                process.start()
            yield hubs[0], hubs[1]
        finally:
            for process in hubs:
                if process.proc is not None and process.proc.poll() is None:
                    process.stop()
            redis.stop()

    async def test_hub_killed_mid_run_loses_and_repeats_nothing(
        self, pair: tuple[HubProcess, HubProcess]
    ) -> None:
        """``tailhub run --url A,B`` on hubs that share an engine, A SIGKILLed mid-run: B
        holds every line exactly once, in order, with seqs 1..N, and then the complete."""
        hub, second = pair
        sent = await _run_and_kill(hub, second, "f3")
        history = await _history(second, "f3")
        assert _texts(history) == sent
        assert [m.seq for m in history] == list(range(1, len(history) + 1))
        assert history[-1].type == "complete"
