"""The engine a hub's settings choose, and the settings it is given."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tailhub.config import Settings
from tailhub.engine import Engine, Entry, Published
from tailhub.engine.base import QuietHandler
from tailhub.server.engines import make_engine


def _ignore(_batch: int, _seconds: float) -> None:
    return None


async def _complete(engine: Engine, container_id: str, now: float) -> None:
    done: asyncio.Future[Published] = asyncio.get_running_loop().create_future()
    engine.publish(container_id, "complete", [Entry(b"{}", "t", exit_code=0)], now, done.set_result)
    await done


class TestMakeEngine:
    @pytest.mark.parametrize("history", ["memory", "sqlite"])
    async def test_ended_sessions_are_kept_as_long_as_history(
        self, history: str, tmp_path: Path
    ) -> None:
        """An ended session is listed until the history retention age has passed."""
        settings = Settings(history=history, data_dir=tmp_path, retention_age=60.0)
        engine = make_engine(settings, _ignore)
        await engine.open(QuietHandler())
        try:
            await _complete(engine, "old", 1000.0)
            await _complete(engine, "new", 1050.0)
            await engine.prune(1070.0)
            listed = [s.container_id for s in (await engine.sessions()).sessions]
        finally:
            await engine.close()
        assert ["new"] == listed

    async def test_memory_lists_the_last_thousand_ended(self, tmp_path: Path) -> None:
        """In memory, at most 1,000 ended sessions are listed, the newest."""
        engine = make_engine(Settings(history="memory", max_sessions=2000), _ignore)
        await engine.open(QuietHandler())
        try:
            for i in range(1001):
                await _complete(engine, f"c{i}", 1000.0 + i)
            page = await engine.sessions(limit=2000)
        finally:
            await engine.close()
        assert (1000, "c1000", "c1") == (
            len(page.sessions),
            page.sessions[0].container_id,
            page.sessions[-1].container_id,
        )
