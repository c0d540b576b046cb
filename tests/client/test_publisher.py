"""The Publisher against a real hub: acks, resend across hub restarts, commands, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tailhub.client import (
    AuthenticationError,
    Backoff,
    HubClient,
    HubUnreachableError,
    Message,
    MessageTooLargeError,
    Publisher,
    PublisherClosedError,
    Subscriber,
)
from tests.helpers import TOKEN, UNIT, HubProcess, increasing, wait_for

FAST = Backoff(initial=0.05, maximum=0.3)


def _publisher(hub: HubProcess, container_id: str = "c-pub", **kwargs: object) -> Publisher:
    return Publisher(container_id, url=hub.url, token=TOKEN, backoff=FAST, **kwargs)  # type: ignore[arg-type]


async def _history(hub: HubProcess, container_id: str) -> list[Message]:
    async with Subscriber(container_id, url=hub.url, token=TOKEN, follow=False) as sub:
        return [message async for message in sub]


def _texts(messages: list[Message]) -> list[str]:
    return [m.data["message"] for m in messages if m.type == "log"]


class TestPublisher:
    async def test_acked(self, shared_hub: HubProcess, cid: str) -> None:
        """Every message is acknowledged; flush says so and nothing stays pending."""
        hub = shared_hub
        async with _publisher(hub, cid) as pub:
            await pub.status("running")
            ids = [await pub.log(f"line {n}") for n in range(50)]
            await pub.complete(0, duration=12)
            assert await pub.flush(timeout=10 * UNIT)
            assert (pub.pending, pub.last_id, pub.acked_id) == (0, 52, 52)
        assert list(range(2, 52)) == ids
        history = await _history(hub, cid)
        assert [f"line {n}" for n in range(50)] == _texts(history)
        assert list(range(1, 53)) == [m.seq for m in history]
        assert history[-1].data == {"exitCode": 0, "duration": 12}

    async def test_hub_down_at_start(self, tmp_path: Path) -> None:
        """Messages published while no hub runs are delivered once it starts."""
        hub = HubProcess(tmp_path / "hub")
        async with _publisher(hub) as pub:
            for n in range(5):
                await pub.log(f"early {n}")
            assert not await pub.flush(timeout=0.2 * UNIT)
            assert isinstance(pub.last_error, HubUnreachableError)
            hub.start()
            try:
                assert await pub.flush(timeout=10 * UNIT)
                assert [f"early {n}" for n in range(5)] == _texts(await _history(hub, "c-pub"))
            finally:
                hub.stop()

    async def test_hub_killed_and_restarted(self, hub: HubProcess) -> None:
        """A hub SIGKILLed mid-stream and restarted: every message stored once, in order."""
        killed = asyncio.Event()
        async with _publisher(hub) as pub:

            async def stream() -> None:
                for n in range(600):
                    if n == 300:
                        await killed.wait()
                    await pub.log(f"m{n}")
                    await asyncio.sleep(0)

            streaming = asyncio.create_task(stream())
            await wait_for(lambda: pub.acked_id >= 50, 10 * UNIT)
            hub.kill()
            killed.set()
            hub.start()
            await asyncio.wait_for(streaming, 20 * UNIT)
            assert await pub.flush(timeout=20 * UNIT)
        history = await _history(hub, "c-pub")
        assert [f"m{n}" for n in range(600)] == _texts(history)
        assert increasing([m.seq for m in history])

    async def test_file_spool_survives_publisher_restart(
        self, hub: HubProcess, tmp_path: Path
    ) -> None:
        """A publisher closed with unacked messages; the next one on the file sends them once."""
        spool = tmp_path / "spool"
        hub.stop()
        first = _publisher(hub, spool_path=spool)
        await first.start()
        for n in range(10):
            await first.log(f"s{n}")
        assert not await first.close(timeout=0)
        assert first.pending == 10
        hub.start()
        second = _publisher(hub, spool_path=spool)
        assert first.producer == second.producer
        async with second:
            await second.log("s10")
            assert await second.flush(timeout=10 * UNIT)
        assert [f"s{n}" for n in range(11)] == _texts(await _history(hub, "c-pub"))

    async def test_resent_ids_not_stored_twice(
        self, shared_hub: HubProcess, cid: str, tmp_path: Path
    ) -> None:
        """Acked ids sent again (a spool replayed by hand) are dropped by the hub."""
        hub = shared_hub
        spool = tmp_path / "spool"
        async with _publisher(hub, cid, spool_path=spool) as pub:
            for n in range(3):
                await pub.log(f"d{n}")
            assert await pub.flush(timeout=10 * UNIT)
        # Forget the acks: the journal without its "A" lines makes every message unacked.
        lines = spool.read_bytes().splitlines(keepends=True)
        spool.write_bytes(b"".join(line for line in lines if not line.startswith(b"A ")))
        async with _publisher(hub, cid, spool_path=spool) as again:
            assert again.pending == 3
            assert await again.flush(timeout=10 * UNIT)
        assert _texts(await _history(hub, cid)) == ["d0", "d1", "d2"]

    async def test_command_reaches_on_command(self, shared_hub: HubProcess, cid: str) -> None:
        """A command sent to the container arrives at on_command with its data."""
        hub = shared_hub
        received: asyncio.Queue[Message] = asyncio.Queue()
        async with _publisher(hub, cid, on_command=received.put_nowait) as pub:
            await pub.status("running")
            await pub.wait_connected(timeout=10 * UNIT)
            assert await pub.flush(timeout=10 * UNIT)
            async with HubClient(url=hub.url, token=TOKEN) as client:
                assert await client.command(cid, "input", text="yes\n") == 1
            command = await asyncio.wait_for(received.get(), 10 * UNIT)
        assert (
            command.type,
            command.data["action"],
            command.data["text"],
        ) == ("command", "input", "yes\n")

    async def test_async_command_handler(self, shared_hub: HubProcess, cid: str) -> None:
        """An async on_command is run as a task."""
        hub = shared_hub
        done = asyncio.Event()

        async def handler(command: Message) -> None:
            await asyncio.sleep(0)
            done.set()

        async with _publisher(hub, cid, on_command=handler) as pub:
            await pub.wait_connected(timeout=10 * UNIT)
            await pub.status("running")
            assert await pub.flush(timeout=10 * UNIT)
            async with HubClient(url=hub.url, token=TOKEN) as client:
                await client.command(cid, "cancel")
            await asyncio.wait_for(done.wait(), 10 * UNIT)

    async def test_wrong_token_stops(self, shared_hub: HubProcess, cid: str) -> None:
        """A refused token stops the publisher: failure set, on_error told, publish raises."""
        hub = shared_hub
        errors: list[Exception] = []
        pub = Publisher(cid, url=hub.url, token="wrong", backoff=FAST, on_error=errors.append)
        async with pub:
            with pytest.raises(AuthenticationError, match="refused the token"):
                await pub.wait_connected(timeout=10 * UNIT)
            assert isinstance(pub.failure, AuthenticationError)
            assert [pub.failure] == errors
            with pytest.raises(PublisherClosedError):
                await pub.log("x")
            assert "wrong" not in str(pub.failure)

    async def test_too_large(self, shared_hub: HubProcess, cid: str) -> None:
        """A message above the hub's frame limit raises instead of being spooled."""
        hub = shared_hub
        async with _publisher(hub, cid, max_message_size=1000) as pub:
            with pytest.raises(MessageTooLargeError, match="larger than"):
                await pub.log("x" * 1000)
            assert pub.last_id == 0

    async def test_spool_full_drop(self, tmp_path: Path) -> None:
        """With overflow="drop", a full spool drops new messages and counts them."""
        hub = HubProcess(tmp_path / "hub")
        async with _publisher(hub, max_pending=3, overflow="drop") as pub:
            ids = [await pub.log(f"x{n}") for n in range(5)]
            assert (ids, pub.dropped) == ([1, 2, 3, None, None], 2)
            await pub.close(timeout=0)

    async def test_spool_full_block(self, tmp_path: Path) -> None:
        """With overflow="block", publishing waits for room."""
        hub = HubProcess(tmp_path / "hub")
        async with _publisher(hub, max_pending=2) as pub:
            await pub.log("a")
            await pub.log("b")
            blocked = asyncio.create_task(pub.log("c"))
            for _ in range(20):
                await asyncio.sleep(0)
            assert not blocked.done()
            hub.start()
            try:
                assert await asyncio.wait_for(blocked, 10 * UNIT) == 3
                assert await pub.flush(timeout=10 * UNIT)
            finally:
                hub.stop()

    async def test_closed(self, shared_hub: HubProcess, cid: str) -> None:
        """Publishing after close raises PublisherClosedError; closing twice is harmless."""
        hub = shared_hub
        pub = _publisher(hub, cid)
        await pub.start()
        assert await pub.close()
        assert await pub.close()
        with pytest.raises(PublisherClosedError):
            await pub.log("late")

    async def test_bad_arguments(self, shared_hub: HubProcess, cid: str) -> None:
        """Unknown levels and statuses, and a container ID with '*', are refused."""
        hub = shared_hub
        with pytest.raises(ValueError, match="'\\*' only"):
            _publisher(hub, "a*")
        async with _publisher(hub, cid) as pub:
            with pytest.raises(ValueError, match="level"):
                await pub.log("x", level="loud")
            with pytest.raises(ValueError, match="status"):
                await pub.status("sleeping")
