"""Running ``tailhub`` commands as real child processes, against a test hub."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import UNIT, HubProcess

__all__ = ["Result", "cli_env", "finish", "run_cli", "start_cli"]


@dataclass(frozen=True)
class Result:
    """How a finished command ended."""

    status: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def cli_env(hub: HubProcess | None, **extra: str) -> dict[str, str]:
    """The environment of a CLI child: the hub's URL and token, no stray settings.

    ``TAILHUB_DATA_DIR`` points at an empty place so no token file of this machine is found.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TAILHUB_") and k not in ("WS_SERVER", "CONTAINER_ID")
    }
    env["TAILHUB_DATA_DIR"] = str(Path(hub.data_dir if hub else "/nonexistent") / "cli")
    if hub is not None:
        env["TAILHUB_URL"] = hub.url
        if hub.token:
            env["TAILHUB_TOKEN"] = hub.token
    env.update(extra)
    return env


async def start_cli(
    hub: HubProcess | None, *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """Start ``python -m tailhub ARGS`` with pipes for stdin, stdout and stderr."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tailhub",
        *args,
        env=env or cli_env(hub),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, limit: float = 20 * UNIT) -> Result:
    """Wait for ``proc`` to end (killing it after ``limit`` seconds) and collect its output."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"command did not finish in {limit} s; stdout={out[-2000:]!r} stderr={err[-2000:]!r}"
        ) from None
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def run_cli(
    hub: HubProcess | None,
    *args: str,
    env: dict[str, str] | None = None,
    limit: float = 20 * UNIT,
) -> Result:
    """Run ``python -m tailhub ARGS`` to its end."""
    return await finish(await start_cli(hub, *args, env=env), limit)
