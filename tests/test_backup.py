"""``tailhub backup``: a copy of the history made while a real hub writes, restored and read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

from tailhub.client import Publisher
from tailhub.store.sqlite import SCHEMA_VERSION
from tests.client.procs import cli_env, run_cli
from tests.helpers import TOKEN, UNIT, HubProcess, wait_for


async def _write_until(hub: HubProcess, stop: asyncio.Event, acked: list[int]) -> None:
    """Publish numbered lines as fast as acks allow; ``acked[0]`` is the count acknowledged."""
    async with Publisher("busy", url=hub.url, token=TOKEN, heartbeat_interval=None) as pub:
        n = 0
        while not stop.is_set():
            for _ in range(50):
                n += 1
                await pub.log(f"line {n}")
            assert await pub.flush(timeout=10 * UNIT)
            acked[0] = n


class TestBackup:
    async def test_while_writing_restored_and_read(self, tmp_path: Path) -> None:
        """A backup taken while the hub commits holds everything acked before it began,
        gapless; a hub started on the copy serves it; the writer never stopped."""
        hub = HubProcess(tmp_path / "hub").start()
        stop = asyncio.Event()
        acked = [0]
        writer = asyncio.create_task(_write_until(hub, stop, acked))
        copy = tmp_path / "backup" / "history-copy.db"
        copy.parent.mkdir()
        try:
            await wait_for(lambda: acked[0] >= 2000, 20 * UNIT)
            before = acked[0]
            result = await run_cli(
                hub, "backup", str(copy), "--data-dir", str(hub.data_dir), env=cli_env(None)
            )
            assert result.status == 0, result.stderr
            during = acked[0]
            await wait_for(lambda: acked[0] >= during + 500, 20 * UNIT)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await writer
            hub.stop()
        assert result.stderr == ""
        line = result.stdout.strip()
        assert line.startswith(
            f"backed up {hub.data_dir / 'history.db'} to {copy}: "
            f"schema {SCHEMA_VERSION}, 1 container, "
        )
        assert sorted(p.name for p in copy.parent.iterdir()) == ["history-copy.db"]  # no WAL
        with contextlib.closing(sqlite3.connect(copy)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        restored_dir = tmp_path / "restored"
        restored_dir.mkdir()
        copy.rename(restored_dir / "history.db")
        restored = HubProcess(restored_dir).start()
        try:
            logs = await run_cli(restored, "logs", "busy", "--json")
        finally:
            restored.stop()
        assert logs.status == 0, logs.stderr
        messages = [json.loads(text) for text in logs.lines]
        count = len(messages)
        assert before <= count
        assert [m["seq"] for m in messages] == list(range(1, count + 1))
        assert [m["data"]["message"] for m in messages] == [
            f"line {n}" for n in range(1, count + 1)
        ]
        size = (restored_dir / "history.db").stat().st_size
        assert line.endswith(
            f": schema {SCHEMA_VERSION}, 1 container, {count} messages, {size} bytes"
        )

    async def test_refusals(self, tmp_path: Path) -> None:
        """No database, or a target that exists: one line each, nothing overwritten."""
        missing = await run_cli(None, "backup", str(tmp_path / "x.db"), "--data-dir", str(tmp_path))
        assert (missing.status, missing.stderr) == (
            1,
            f"tailhub: no history database at {tmp_path / 'history.db'} (give the hub's data "
            "directory with --data-dir or TAILHUB_DATA_DIR)\n",
        )
        (tmp_path / "history.db").write_bytes(b"")
        taken = tmp_path / "taken.db"
        taken.write_text("keep me")
        exists = await run_cli(None, "backup", str(taken), "--data-dir", str(tmp_path))
        assert (exists.status, exists.stderr) == (
            1,
            f"tailhub: {taken} already exists; give a new file name\n",
        )
        assert taken.read_text() == "keep me"
