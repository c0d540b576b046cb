"""Faults around the hub rather than input to it: SIGKILL during a `tailhub run`, a full disk,
and a database damaged on disk."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.client.procs import finish, start_cli
from tests.helpers import UNIT, HubProcess, client_frame, increasing, wait_for
from tests.hostile.harness import CANARY_TOKEN, FULL, Arena, Figures, RawSocket, record, size

pytestmark = pytest.mark.hostile

MiB = 1 << 20
TEXT = 1


async def last_seq(arena: Arena, container: str) -> int:
    """The container's last ``seq`` as the hub lists it; 0 while unknown or unreachable."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{arena.hub.http}/api/sessions/{container}", headers=arena.auth) as answer,
        ):
            if answer.status != 200:
                return 0
            return int((await answer.json())["lastSeq"])
    except aiohttp.ClientError:
        return 0


async def history(arena: Arena, container: str) -> list[dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{arena.hub.http}/api/sessions/{container}/logs", headers=arena.auth
        ) as answer,
    ):
        body = await answer.read()
        assert answer.status == 200, body[:300]
    return [json.loads(line) for line in body.splitlines()]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted for the test (the tests run as root), unmounted after: room for three
    times what the disk-full attack publishes (history and its write-ahead log), which the
    test fills with a ballast file before it starts."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size(128, 1024)}m,mode=0700", "tmpfs", str(disk)],
        check=True,
    )
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with a ballast file; its path."""
    ballast = disk / "ballast"
    descriptor = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 16, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, b"\0" * block)
    finally:
        os.close(descriptor)
    return ballast


class TestFaults:
    async def test_sigkill_during_run(self, tmp_path: Path) -> None:
        """The hub SIGKILLed five times during a `tailhub run` (20,000 lines; CI: 2,000),
        restarted each time on the same data directory: the run's history has every line
        once, in order, and the control pair resumes without loss."""
        lines = size(2_000, 20_000)
        kills = 5
        async with Arena(
            tmp_path, "SIGKILL x5 during tailhub run", unit="lines", restarts=True
        ) as arena:
            hub = arena.hub
            code = (
                "import time\n"
                f"for n in range({lines}):\n"
                "    print(f'line {n}', flush=True)\n"
                "    if n % 20 == 0: time.sleep(0.005)\n"
            )
            runner = await start_cli(
                hub,
                "run",
                "--reconnect-max",
                "0.3",
                "--ack-timeout",
                str(10 * UNIT),
                "-q",
                "--container-id",
                "killed",
                "--",
                sys.executable,
                "-c",
                code,
            )
            for kill in range(1, kills + 1):
                target = kill * lines // (kills + 1)

                async def reached(target: int = target) -> bool:
                    return await last_seq(arena, "killed") >= target

                try:
                    await wait_for(reached, 60 * UNIT)
                except TimeoutError:
                    runner.kill()
                    _, err = await runner.communicate()
                    raise AssertionError(
                        f"kill {kill}: the run stalled at seq {await last_seq(arena, 'killed')}"
                        f" (waiting for {target}); its stderr: {err[-1500:]!r}"
                    ) from None
                await asyncio.to_thread(hub.kill)
                await asyncio.to_thread(hub.start)
            result = await finish(runner, 120 * UNIT)
            assert result.status == 0, result.stderr[-2000:]
            stored = await history(arena, "killed")
            logs = [m["data"]["message"] for m in stored if m["type"] == "log"]  # type: ignore[index]
            assert logs == [f"line {n}" for n in range(lines)]
            # Gapless between crashes, strictly increasing across them.
            assert increasing([int(m["seq"]) for m in stored])  # type: ignore[call-overload]
            arena.tried = lines
            arena.figures.notes.append(f"{kills} kills; RSS after is the last restart's")
            await arena.finish()

    async def test_disk_full(self, tmp_path: Path, small_disk: Path) -> None:
        """History on a tmpfs filled to the last byte: publishes are refused (`unavailable`)
        rather than acked and lost, memory stays bounded, and once space is freed the hub
        takes messages again and every acked message is in history."""
        env = {"TAILHUB_MAX_STORE_LAG_BYTES": "8MiB"}
        count = size(300, 3000)
        async with Arena(
            tmp_path, "disk full", unit="100 KB messages", env=env, data_dir=small_disk / "hub"
        ) as arena:
            ballast = await asyncio.to_thread(fill, small_disk)
            sock = await RawSocket.websocket(arena.hub.port, "/", arena.auth)
            acked: set[int] = set()
            refused: set[int] = set()
            others: list[object] = []
            pending: set[int] = set()

            async def read() -> None:
                with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                    while True:
                        opcode, payload = await sock.frame(timeout=120 * UNIT)
                        if opcode != TEXT:
                            continue
                        reply = json.loads(payload)
                        number = int(reply.get("producer", "p-1")[1:])
                        pending.discard(number)
                        if reply["type"] == "ack":
                            acked.add(number)
                            refused.discard(number)
                        elif reply["data"]["code"] == "unavailable":
                            refused.add(number)
                        else:
                            arena.observe("error frame", payload)
                            others.append(reply)

            def message(number: int) -> bytes:
                body = {
                    "type": "log",
                    "containerID": "disk",
                    "id": 1,
                    "producer": f"p{number}",
                    "data": {"level": "info", "message": f"{number} " + "d" * 100_000},
                }
                return client_frame(TEXT, json.dumps(body).encode(), mask=b"\0" * 4)

            reader = asyncio.create_task(read())
            for number in range(count):
                pending.add(number)
                await sock.send(message(number))
                arena.tried += 1
            await wait_for(lambda: len(refused) > 0 or reader.done(), 30 * UNIT)
            arena.figures.notes.append(
                f"disk full: {len(acked)} acked, {len(refused)} refused of {count}"
            )
            assert refused, "the hub never refused a publish while the disk was full"
            # Space again: what was pending is committed, and refused messages are taken once
            # sent again (as the SDK does, a moment after each refusal).
            ballast.unlink()
            for _ in range(100):
                await wait_for(lambda: not pending or reader.done(), 60 * UNIT)
                again = sorted(refused - acked)
                if not again or reader.done():
                    break
                await asyncio.sleep(0.2)
                for number in again:
                    refused.discard(number)
                    pending.add(number)
                    await sock.send(message(number))
            reader.cancel()
            sock.close()
            missing = sorted(set(range(count)) - acked)
            assert not missing, f"never acked after recovery: {missing[:20]}; {others[:3]}"
            stored = await history(arena, "disk")
            numbers = [int(str(m["data"]["message"]).split()[0]) for m in stored]  # type: ignore[index]
            assert sorted(numbers) == list(range(count)), "lost or duplicated after disk full"
            await arena.finish(peak_budget=128 * MiB)

    async def test_corrupted_database(self, tmp_path: Path) -> None:
        """Garbage over pages of a history.db a real hub wrote: the hub refuses to start with
        one line saying the file is damaged (its start-up check), or, for damage that check
        does not see, starts and reports not ready as soon as a read fails; reads never crash
        it and no answer shows the database's path or the token."""
        trials = size(4, 20)
        figures = Figures(attack="corrupted database", mode="full" if FULL else "ci")
        figures.unit = "damaged files"
        pristine = tmp_path / "pristine"
        hub = HubProcess(pristine, token=CANARY_TOKEN).start()
        try:
            line = json.dumps({"type": "log", "data": {"level": "info", "message": "c" * 300}})
            body = ("\n".join([line] * 1000) + "\n").encode()
            async with aiohttp.ClientSession() as session:
                for container in range(12):
                    async with session.post(
                        f"{hub.http}/api/sessions/c{container}/messages",
                        data=io.BytesIO(body),
                        headers={
                            "Authorization": f"Bearer {CANARY_TOKEN}",
                            "Content-Type": "application/x-ndjson",
                        },
                    ) as answer:
                        assert answer.status == 200
        finally:
            hub.stop()
        database = (pristine / "history.db").read_bytes()
        outcomes: list[str] = []
        try:
            await _damage_and_start(tmp_path, database, trials, figures, outcomes)
        finally:
            figures.notes.append(f"outcomes: {outcomes}")
            figures.passed = not (figures.crashes or figures.tracebacks or figures.canary_leaks)
            figures.passed = figures.passed and len(outcomes) == trials
            record(figures)
        assert figures.passed, figures
        shutil.rmtree(pristine, ignore_errors=True)


async def _damage_and_start(
    tmp_path: Path, database: bytes, trials: int, figures: Figures, outcomes: list[str]
) -> None:
    """Start a hub on ``trials`` damaged copies of ``database`` and judge each outcome."""
    page = int.from_bytes(database[16:18], "big") or 65536
    pages = len(database) // page
    rng = random.Random(len(database))
    for trial in range(trials):
        data = tmp_path / f"damaged-{trial}"
        data.mkdir()
        damaged = bytearray(database)
        for number in rng.sample(range(2, pages), min(pages - 2, 1 + trial % 4)):
            damaged[number * page : (number + 1) * page] = rng.randbytes(page)
        (data / "history.db").write_bytes(bytes(damaged))
        hub = HubProcess(data, token=CANARY_TOKEN)
        hub.log_path = tmp_path / f"damaged-{trial}.log"
        figures.tried += 1
        try:
            hub.start()
        except RuntimeError:
            assert hub.proc is not None
            lines = [x for x in hub.log().splitlines() if x.strip()]
            assert hub.proc.returncode == 1, hub.log()
            outcomes.append("refused" if len(lines) == 1 else f"refused in {len(lines)} lines")
            assert len(lines) == 1, lines
            assert "damaged" in lines[0], lines
        else:
            try:
                outcomes.append(await _damaged_hub_answers(hub, str(data)))
            finally:
                if hub.proc is not None and hub.proc.poll() is not None:
                    figures.crashes += 1
                hub.stop()
        log = hub.log()
        figures.tracebacks += log.count("Traceback")
        figures.canary_leaks += log.count(CANARY_TOKEN)


async def _damaged_hub_answers(hub: HubProcess, data_dir: str) -> str:
    """Read every container's history from a hub started on a damaged database (the start-up
    check does not see every damage): a read that fails must make it not ready at once, and
    no answer may show the database's path. Its outcome, for the figures."""
    headers = {"Authorization": f"Bearer {CANARY_TOKEN}"}
    failed = 0
    async with aiohttp.ClientSession() as session:
        for container in range(12):
            async with session.get(
                f"{hub.http}/api/sessions/c{container}/logs", headers=headers
            ) as answer:
                body = await answer.read()
                assert answer.status in (200, 404, 503), (answer.status, body[:300])
                assert CANARY_TOKEN.encode() not in body
            if answer.status == 503 or b'"unavailable"' in body:
                failed += 1
                async with session.get(f"{hub.http}/readyz") as ready:
                    text = await ready.text()
                    assert ready.status == 503, f"a read failed, yet /readyz says {text}"
                    assert data_dir not in text, text
    return f"started, {failed} reads failed"
