"""Publishers and subscribers on a token file against a real hub: a renewed token keeps
their connection, a refused one waits for the next instead of stopping them."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import pytest

from tailhub.client import (
    AuthenticationError,
    ConfigurationError,
    HubError,
    Message,
    Publisher,
    Subscriber,
)
from tests.client.test_publisher import FAST, _history, _texts
from tests.helpers import TOKEN, UNIT, HubProcess, make_token, wait_for

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CHECK = 0.02
"""Seconds between two reads of the token file in these tests."""


def _write(path: Path, token: str) -> None:
    """Replace the token file at once, as a secrets mount does (a rename, never a half file)."""
    scratch = path.with_suffix(".new")
    scratch.write_text(token + "\n")
    scratch.replace(path)


def _token(cid: str) -> tuple[str, str]:
    """A publisher token for ``cid`` and its jti."""
    jti = uuid.uuid4().hex
    return make_token("publisher", cid, jti=jti), jti


async def _revoke(http: aiohttp.ClientSession, hub: HubProcess, jti: str) -> None:
    async with http.post(f"{hub.http}/api/tokens/revoked", json={"jti": jti}, headers=ADMIN) as r:
        assert 200 == r.status, await r.text()


def _on_file(hub: HubProcess, cid: str, file: Path, errors: list[HubError]) -> Publisher:
    """A publisher for ``cid`` on the token file ``file``, telling ``errors`` what it reports."""
    return Publisher(
        cid, url=hub.url, token_file=file, token_check=CHECK, backoff=FAST, on_error=errors.append
    )


def _closed_for(hub: HubProcess, jti: str) -> list[str]:
    """The hub's log lines saying it closed a connection because token ``jti`` was revoked
    (written before the revocation's answer)."""
    return [
        line for line in hub.log().splitlines() if "token_revoked_closed" in line and jti in line
    ]


class TestTokenFile:
    async def test_renewed_token_is_sent_on_the_open_connection(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, cid: str, tmp_path: Path
    ) -> None:
        """A new token in the file is sent on the open connection, which then outlives the
        old token: revoking the old one closes nothing, and publishing goes on."""
        hub = shared_hub
        file = tmp_path / "token"
        first, first_jti = _token(cid)
        _write(file, first)
        pub = _on_file(hub, cid, file, [])
        async with pub:
            await pub.log("before")
            assert await pub.flush(timeout=10 * UNIT)
            _write(file, _token(cid)[0])
            await wait_for(lambda: pub.renewals == 1, 10 * UNIT)
            await _revoke(http, hub, first_jti)
            await pub.log("after")
            assert await pub.flush(timeout=10 * UNIT)
            assert (True, None) == (pub.connected, pub.failure)
        assert ["before", "after"] == _texts(await _history(hub, cid))
        assert [] == _closed_for(hub, first_jti)

    async def test_refused_renewal_keeps_the_connection(
        self, shared_hub: HubProcess, cid: str, tmp_path: Path
    ) -> None:
        """A new token the hub refuses is reported once and changes nothing: the connection
        keeps its token and publishing goes on; the next good token is taken."""
        hub = shared_hub
        file = tmp_path / "token"
        _write(file, _token(cid)[0])
        errors: list[HubError] = []
        pub = _on_file(hub, cid, file, errors)
        async with pub:
            await pub.wait_connected(timeout=10 * UNIT)
            _write(file, make_token("publisher", cid, ttl=-5))
            await wait_for(lambda: bool(errors))
            assert isinstance(errors[0], AuthenticationError)
            await pub.log("still streaming")
            assert await pub.flush(timeout=10 * UNIT)
            assert (True, None, 0, 1) == (pub.connected, pub.failure, pub.renewals, len(errors))
            _write(file, _token(cid)[0])
            await wait_for(lambda: pub.renewals == 1, 10 * UNIT)
        assert ["still streaming"] == _texts(await _history(hub, cid))

    async def test_refused_token_waits_for_a_new_one(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, cid: str, tmp_path: Path
    ) -> None:
        """A connection closed with 4401 (its token revoked) does not stop the publisher: it
        reports the refusal, keeps what is published meanwhile, and sends it once the file
        holds a token the hub takes."""
        hub = shared_hub
        file = tmp_path / "token"
        first, first_jti = _token(cid)
        _write(file, first)
        errors: list[HubError] = []
        pub = _on_file(hub, cid, file, errors)
        async with pub:
            await pub.wait_connected(timeout=10 * UNIT)
            await _revoke(http, hub, first_jti)
            assert 1 == len(_closed_for(hub, first_jti))
            await wait_for(lambda: any(isinstance(e, AuthenticationError) for e in errors))
            await pub.log("while refused")
            assert (None, 1, False) == (pub.failure, pub.pending, pub.connected)
            _write(file, _token(cid)[0])
            assert await pub.flush(timeout=10 * UNIT)
            assert pub.failure is None
        assert ["while refused"] == _texts(await _history(hub, cid))

    async def test_refused_at_handshake_waits_for_a_new_one(
        self, shared_hub: HubProcess, cid: str, tmp_path: Path
    ) -> None:
        """An expired token in the file at start (HTTP 401) is waited out the same way."""
        hub = shared_hub
        file = tmp_path / "token"
        _write(file, make_token("publisher", cid, ttl=-5))
        errors: list[HubError] = []
        pub = _on_file(hub, cid, file, errors)
        async with pub:
            await pub.log("queued")
            await wait_for(lambda: bool(errors))
            assert isinstance(errors[0], AuthenticationError)
            assert (False, None) == (pub.connected, pub.failure)
            _write(file, _token(cid)[0])
            await pub.wait_connected(timeout=10 * UNIT)
            assert await pub.flush(timeout=10 * UNIT)
        assert ["queued"] == _texts(await _history(hub, cid))

    async def test_without_a_file_a_refused_token_still_stops(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, cid: str
    ) -> None:
        """A token given directly has nothing to wait for: 4401 stops the publisher."""
        hub = shared_hub
        token, jti = _token(cid)
        pub = Publisher(cid, url=hub.url, token=token, backoff=FAST)
        async with pub:
            await pub.wait_connected(timeout=10 * UNIT)
            await _revoke(http, hub, jti)
            await wait_for(lambda: pub.failure is not None)
            assert isinstance(pub.failure, AuthenticationError)

    def test_bad_settings(self, tmp_path: Path) -> None:
        """A token and a token file together, or an unusable file, are refused at once."""
        file = tmp_path / "token"
        _write(file, "t")
        with pytest.raises(ConfigurationError, match="not both"):
            Publisher("c", url="ws://h:1", token="t", token_file=file)
        with pytest.raises(ConfigurationError, match="cannot read the token file"):
            Publisher("c", url="ws://h:1", token_file=tmp_path / "missing")
        with pytest.raises(ValueError, match="token_check"):
            Publisher("c", url="ws://h:1", token_file=file, token_check=0)


class TestSubscriberTokenFile:
    async def test_renewed_on_the_open_connection(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, cid: str, tmp_path: Path
    ) -> None:
        """A follower sends a new token from its file on the open connection: revoking the
        old token then closes nothing, and messages keep coming."""
        hub = shared_hub
        file = tmp_path / "token"
        jti = uuid.uuid4().hex
        _write(file, make_token("viewer", cid, jti=jti))
        got: list[Message] = []
        async with Subscriber(cid, url=hub.url, token_file=file, token_check=CHECK) as sub:
            await sub.wait_subscribed()
            reading = asyncio.create_task(_collect(sub, got))
            _write(file, make_token("viewer", cid))
            await wait_for(lambda: sub.renewals == 1, 10 * UNIT)
            await _revoke(http, hub, jti)
            await _publish(hub, cid, "after the old token")
            await wait_for(lambda: len(got) == 1, 10 * UNIT)
            assert (0, False) == (sub.reconnects, reading.done())
        assert ["after the old token"] == _texts(got)
        assert [] == _closed_for(hub, jti)

    async def test_revoked_then_resumed(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, cid: str, tmp_path: Path
    ) -> None:
        """Closed with 4401 (its token revoked), a follower waits for a new token in its
        file, then resumes where it was: what was published meanwhile comes once, in order."""
        hub = shared_hub
        file = tmp_path / "token"
        jti = uuid.uuid4().hex
        _write(file, make_token("viewer", cid, jti=jti))
        await _publish(hub, cid, "one")
        got: list[Message] = []
        async with Subscriber(
            cid, url=hub.url, token_file=file, token_check=CHECK, since=0, backoff=FAST
        ) as sub:
            reading = asyncio.create_task(_collect(sub, got))
            await wait_for(lambda: len(got) == 1, 10 * UNIT)
            await _revoke(http, hub, jti)
            assert 1 == len(_closed_for(hub, jti))
            await _publish(hub, cid, "two")
            assert not reading.done()
            # An expired token first: refused at the handshake, waited out the same way.
            refusals = _handshake_refusals(hub)
            _write(file, make_token("viewer", cid, ttl=-5))
            await wait_for(lambda: _handshake_refusals(hub) > refusals, 10 * UNIT)
            assert (0, False) == (sub.reconnects, reading.done())
            _write(file, make_token("viewer", cid))
            await wait_for(lambda: len(got) == 2, 10 * UNIT)
            assert (1, False) == (sub.reconnects, reading.done())
        assert ["one", "two"] == _texts(got)
        assert [1, 2] == [m.seq for m in got]

    async def test_without_reconnect_a_refusal_ends_it(
        self, http: aiohttp.ClientSession, shared_hub: HubProcess, cid: str, tmp_path: Path
    ) -> None:
        """reconnect=False: a 4401 ends the iteration with AuthenticationError, file or not."""
        hub = shared_hub
        file = tmp_path / "token"
        jti = uuid.uuid4().hex
        _write(file, make_token("viewer", cid, jti=jti))
        async with Subscriber(
            cid, url=hub.url, token_file=file, token_check=CHECK, reconnect=False
        ) as sub:
            await sub.wait_subscribed()
            await _revoke(http, hub, jti)
            with pytest.raises(AuthenticationError):
                await asyncio.wait_for(sub.__anext__(), 10 * UNIT)


def _handshake_refusals(hub: HubProcess) -> int:
    """How many WebSocket handshakes the hub has refused for their token so far."""
    return sum('"auth_failed"' in line and '"handshake"' in line for line in hub.log().splitlines())


async def _collect(sub: Subscriber, into: list[Message]) -> None:
    async for message in sub:
        into.append(message)


async def _publish(hub: HubProcess, cid: str, text: str) -> None:
    async with Publisher(cid, url=hub.url, token=TOKEN, backoff=FAST) as pub:
        await pub.log(text)
        assert await pub.flush(timeout=10 * UNIT)
