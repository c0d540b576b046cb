"""The Subscriber against a real hub: backlog, live, follow=False, resume after a restart."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tailhub.client import (
    AuthenticationError,
    Backoff,
    HubUnreachableError,
    Message,
    Publisher,
    Subscribed,
    Subscriber,
)
from tests.helpers import TOKEN, UNIT, HubProcess, increasing

FAST = Backoff(initial=0.05, maximum=0.3)


async def _publish(hub: HubProcess, container_id: str, texts: list[str]) -> None:
    async with Publisher(container_id, url=hub.url, token=TOKEN, backoff=FAST) as pub:
        for text in texts:
            await pub.log(text)
        assert await pub.flush(timeout=10 * UNIT)


async def _take(iterator: AsyncIterator[Message], count: int) -> list[Message]:
    taken = []
    async with asyncio.timeout(10 * UNIT):
        while len(taken) < count:
            taken.append(await anext(iterator))
    return taken


def _texts(messages: list[Message]) -> list[str]:
    return [m.data["message"] for m in messages]


def _sub(hub: HubProcess, container_id: str = "c-sub", **kwargs: object) -> Subscriber:
    return Subscriber(container_id, url=hub.url, token=TOKEN, backoff=FAST, **kwargs)  # type: ignore[arg-type]


class TestSubscriber:
    async def test_backlog_then_live(self, shared_hub: HubProcess, cid: str) -> None:
        """History from since=0, then live messages, in seq order without a gap."""
        hub = shared_hub
        await _publish(hub, cid, ["a", "b", "c"])
        replies: list[Subscribed] = []
        async with _sub(hub, cid, since=0, on_subscribed=replies.append) as sub:
            first = await _take(sub, 3)
            await _publish(hub, cid, ["d", "e"])
            later = await _take(sub, 2)
        assert _texts(first + later) == ["a", "b", "c", "d", "e"]
        assert [m.seq for m in first + later] == [1, 2, 3, 4, 5]
        assert [Subscribed(cid, 3, 1, False)] == replies

    async def test_live_only(self, shared_hub: HubProcess, cid: str) -> None:
        """Without since/tail/from, only what is published after subscribing."""
        hub = shared_hub
        await _publish(hub, cid, ["old"])
        async with _sub(hub, cid) as sub:
            await sub.wait_subscribed()
            await _publish(hub, cid, ["new"])
            assert _texts(await _take(sub, 1)) == ["new"]

    async def test_follow_false_ends_after_backlog(self, shared_hub: HubProcess, cid: str) -> None:
        """follow=False yields the history that existed at subscribe time, then stops."""
        hub = shared_hub
        await _publish(hub, cid, [f"m{n}" for n in range(5)])
        async with _sub(hub, cid, follow=False) as sub:
            assert [f"m{n}" for n in range(5)] == _texts([m async for m in sub])
        async with _sub(hub, cid, follow=False, tail=2) as sub:
            assert _texts([m async for m in sub]) == ["m3", "m4"]
        async with _sub(hub, cid, follow=False, since=3) as sub:
            assert [m.seq async for m in sub] == [4, 5]
        async with _sub(hub, cid, follow=False, since=5) as sub:
            assert [m async for m in sub] == []

    async def test_unknown_container(self, shared_hub: HubProcess, cid: str) -> None:
        """A container with no history: seq 0 in subscribed, and nothing to read."""
        hub = shared_hub
        async with _sub(hub, "nobody", follow=False) as sub:
            assert [m async for m in sub] == []
            assert sub.subscribed is not None
            assert sub.subscribed.seq == 0

    @pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
    async def test_resume_after_hub_restart(self, hub: HubProcess, how: signal.Signals) -> None:
        """Hub killed (1006) or stopped (1001) and restarted: resumes with since, missing and
        repeating nothing."""
        async with _sub(hub, since=0) as sub:
            await _publish(hub, "c-sub", [f"m{n}" for n in range(10)])
            before = await _take(sub, 10)
            hub.stop(how)
            hub.start()
            await _publish(hub, "c-sub", [f"m{n}" for n in range(10, 20)])
            after = await _take(sub, 10)
            assert sub.reconnects >= 1
        assert [f"m{n}" for n in range(20)] == _texts(before + after)
        seqs = [m.seq for m in before + after]
        assert list(range(1, 11)) == seqs[:10]
        assert increasing(seqs)

    async def test_resume_live_only_without_gap(self, hub: HubProcess) -> None:
        """A live-only subscription resumes from the seq of its subscribed reply."""
        async with _sub(hub) as sub:
            await sub.wait_subscribed()
            hub.kill()
            hub.start()
            await _publish(hub, "c-sub", ["while away"])
            assert _texts(await _take(sub, 1)) == ["while away"]

    async def test_truncated(self, tmp_path: Path) -> None:
        """History beyond retention: subscribed says truncated, the backlog starts at firstSeq."""
        env = {"TAILHUB_HISTORY": "memory", "TAILHUB_RETENTION_MESSAGES": "3"}
        hub = HubProcess(tmp_path / "hub", env=env).start()
        try:
            await _publish(hub, "c-sub", [f"m{n}" for n in range(6)])
            async with _sub(hub, since=1, follow=False) as sub:
                messages = [m async for m in sub]
                assert Subscribed("c-sub", 6, 4, True) == sub.subscribed
            assert [m.seq for m in messages] == [4, 5, 6]
        finally:
            hub.stop()

    async def test_pattern(self, shared_hub: HubProcess, cid: str) -> None:
        """A pattern gets live messages of every matching container, and no other."""
        hub = shared_hub
        async with _sub(hub, "job-*") as sub:
            await sub.wait_subscribed()
            await _publish(hub, "other", ["no"])
            await _publish(hub, "job-1", ["one"])
            await _publish(hub, "job-2", ["two"])
            got = await _take(sub, 2)
        assert [(m.container_id, m.data["message"]) for m in got] == [
            ("job-1", "one"),
            ("job-2", "two"),
        ]

    async def test_no_reconnect(self, hub: HubProcess) -> None:
        """With reconnect=False a lost connection ends the iteration with HubUnreachableError."""
        async with _sub(hub, reconnect=False) as sub:
            await sub.wait_subscribed()
            hub.kill()
            with pytest.raises(HubUnreachableError, match="lost the connection"):
                await _take(sub, 1)

    async def test_wrong_token(self, shared_hub: HubProcess, cid: str) -> None:
        """A wrong token fails on entering, with a message that does not show it."""
        hub = shared_hub
        with pytest.raises(AuthenticationError, match="refused the token") as caught:
            async with Subscriber(cid, url=hub.url, token="secret-wrong"):
                pass
        assert "secret-wrong" not in str(caught.value)

    async def test_hub_down(self, tmp_path: Path) -> None:
        """No hub: HubUnreachableError on entering, naming the URL."""
        hub = HubProcess(tmp_path / "hub")
        with pytest.raises(HubUnreachableError, match=f"127.0.0.1:{hub.port}"):
            async with Subscriber("c-sub", url=hub.url, token=TOKEN):
                pass

    def test_arguments(self) -> None:
        """At most one start point; patterns need follow."""
        with pytest.raises(ValueError, match="at most one"):
            Subscriber("c", url="ws://h:1", since=1, tail=2)
        with pytest.raises(ValueError, match="live only"):
            Subscriber("c-*", url="ws://h:1", follow=False)
        with pytest.raises(ValueError, match="not from_"):
            Subscriber("c", url="ws://h:1", from_="2024-01-01T00:00:00Z", follow=False)
        with pytest.raises(ValueError, match="RFC 3339"):
            Subscriber("c", url="ws://h:1", from_="yesterday")
