"""HubClient: the sessions list and commands, against a real hub."""

from __future__ import annotations

import pytest

from tailhub.client import (
    AuthenticationError,
    HubClient,
    NoContainerError,
    Publisher,
    RequestError,
)
from tests.helpers import TOKEN, UNIT, HubProcess


class TestHubClient:
    async def test_sessions(self, shared_hub: HubProcess, cid: str) -> None:
        """A publishing container is listed with its status and counts."""
        hub = shared_hub
        async with Publisher(cid, url=hub.url, token=TOKEN) as pub:
            await pub.status("running")
            await pub.log("hello")
            assert await pub.flush(timeout=10 * UNIT)
            async with HubClient(url=hub.url, token=TOKEN) as client:
                sessions = await client.sessions()
        [session] = [s for s in sessions if s["containerID"] == cid]
        assert (session["status"], session["messages"], session["active"]) == (
            "running",
            2,
            True,
        )

    async def test_command_to_nobody(self, shared_hub: HubProcess, cid: str) -> None:
        """A command for a container with no connection: NoContainerError, nothing queued."""
        hub = shared_hub
        async with HubClient(url=hub.url, token=TOKEN) as client:
            with pytest.raises(NoContainerError) as caught:
                await client.command("nobody", "cancel")
        assert caught.value.code == "no_container"

    async def test_invalid_command(self, shared_hub: HubProcess, cid: str) -> None:
        """An input without text is refused with the hub's words; the connection stays usable."""
        hub = shared_hub
        async with HubClient(url=hub.url, token=TOKEN) as client:
            with pytest.raises(RequestError, match="text") as caught:
                await client.command("c", "input")
            assert caught.value.code == "invalid_message"
            assert isinstance(await client.sessions(), list)

    async def test_wrong_token(self, shared_hub: HubProcess, cid: str) -> None:
        """A wrong token fails at connect."""
        hub = shared_hub
        with pytest.raises(AuthenticationError):
            async with HubClient(url=hub.url, token="nope"):
                pass
