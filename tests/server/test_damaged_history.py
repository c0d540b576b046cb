"""A history database with damaged pages, written by a real hub and then broken on disk.

The hub refuses to start from it with one line saying what to do, unless the start-up check is
turned off; then a read that fails makes ``/readyz`` say so, until a read works again.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import TOKEN, HubProcess

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def publish(http: aiohttp.ClientSession, hub: HubProcess, container: str, count: int) -> None:
    line = json.dumps({"type": "log", "data": {"level": "info", "message": "x" * 400}}).encode()
    for _ in range(0, count, 500):
        async with http.post(
            f"{hub.http}/api/sessions/{container}/messages",
            data=b"\n".join([line] * 500),
            headers=AUTH,
        ) as response:
            assert 200 == response.status, await response.text()


def damage(database: Path) -> None:
    """Write garbage over pages in the middle of the file (not its header or first pages)."""
    with sqlite3.connect(database) as conn:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    pages = database.stat().st_size // page_size
    assert pages > 40, pages
    with database.open("r+b") as handle:
        for page in range(pages // 2, pages // 2 + 8):
            handle.seek(page * page_size)
            handle.write(os.urandom(page_size))


@pytest.fixture
async def damaged_dir(tmp_path: Path, http: aiohttp.ClientSession) -> Path:
    """A data directory whose history.db a real hub wrote: a small container first, then a
    large one, whose pages are then damaged."""
    data = tmp_path / "hub"
    hub = HubProcess(data).start()
    try:
        await publish(http, hub, "small", 500)
        await publish(http, hub, "large", 5000)
    finally:
        assert 0 == hub.stop()
    assert not (data / "history.db-wal").exists() or (data / "history.db-wal").stat().st_size == 0
    damage(data / "history.db")
    return data


async def test_a_damaged_database_is_refused_at_start(damaged_dir: Path) -> None:
    """The hub exits 1 with one line naming the file and what to do."""
    hub = HubProcess(damaged_dir)
    try:
        with pytest.raises(RuntimeError, match="exited with 1"):
            hub.start()
    finally:
        if hub.proc is not None and hub.proc.poll() is None:
            hub.stop()  # it started after all: leave no process behind
    lines = [line for line in hub.log().splitlines() if line.startswith("tailhub:")]
    assert 1 == len(lines), hub.log()
    assert "is damaged (PRAGMA quick_check" in lines[0]
    assert str(damaged_dir / "history.db") in lines[0]
    assert "Traceback" not in hub.log()


async def test_read_failures_show_in_readiness_until_a_read_works(
    damaged_dir: Path, http: aiohttp.ClientSession
) -> None:
    """With the check off: a failing read gets 503, /readyz turns 503 (no detail without the
    token), and turns ready again once a read works."""
    hub = HubProcess(damaged_dir, env={"TAILHUB_STARTUP_CHECK_TIMEOUT": "0"}).start()
    try:
        async with http.get(f"{hub.http}/api/sessions/large/logs", headers=AUTH) as response:
            body = await response.read()
            assert 503 == response.status or b'"code":"unavailable"' in body
        async with http.get(f"{hub.http}/readyz") as response:
            assert 503 == response.status
            ready = await response.json()
            assert {
                "status": "unavailable",
                "problems": {"engine": ready["problems"]["engine"]},
            } == ready
            assert "history.db" not in json.dumps(ready)
        async with http.get(f"{hub.http}/readyz", headers=AUTH) as response:
            assert 503 == response.status
            assert "history.db" in (await response.json())["problems"]["engine"]
        async with http.get(f"{hub.http}/api/sessions/small/logs?tail=1", headers=AUTH) as response:
            assert 200 == response.status
            assert 1 == len((await response.read()).splitlines())
        async with http.get(f"{hub.http}/readyz") as response:
            assert 200 == response.status
    finally:
        hub.stop()
