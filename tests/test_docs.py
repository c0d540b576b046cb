"""The shell commands of README.md and docs/*.md, run as written.

Every fenced block whose info string is ``sh``, ``bash`` or ``shell`` runs, in document order,
under ``bash -euo pipefail`` in a scratch copy of the checkout, unless the line just before its
fence is a marker:

- ``<!-- doc-test: skip (REASON) -->``: not run here; the reason is required (a Docker
  engine, systemd, root, minutes of benchmark).
- ``<!-- doc-test: background -->``: started and left running for the blocks after it
  (a hub, a container, a follower); ``background until "TEXT"`` waits until TEXT appears in
  its output first. It is stopped (its whole process group) when the file is done.

What a reader would fill in is filled in, and nothing else: the hub's address (``hub:8080``,
``hub.internal:8080`` and ``localhost:8080`` become the test hub's ``127.0.0.1:PORT``) and the
token (``TAILHUB_TOKEN=...`` gets the hub's token). The environment is a fresh machine's: an
empty ``HOME``, ``PORT`` set to the test hub's port and ``TAILHUB_URL`` to its address (as a
reader using another port would set them), ``TOKEN`` the hub's token once it runs, and on
``PATH`` a stand-in ``claude`` (it reads its stdin to the end, says what it works on, then
works until it is stopped) before this checkout's Python environment. A block that starts
``tailhub serve`` brings its own hub; before any other block, a hub is started on ``PORT``
if none listens there, with the default data directory under ``HOME`` (the token file the CLI
finds).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import UNIT, free_port

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = ("sh", "bash", "shell")
MARKER = re.compile(
    r"<!--\s*doc-test:\s*(?P<mode>skip|background)\b\s*"
    r"(?:\((?P<reason>[^)]*)\))?\s*(?:until\s+\"(?P<until>[^\"]+)\")?\s*-->"
)
HOSTS = re.compile(r"\b(?:hub|hub\.internal|localhost):8080\b")
BLOCK_TIMEOUT = 300 * UNIT
"""The README's first block installs tailhub with pip: allow for a slow package index."""

FAKE_CLAUDE = """#!{python}
import sys, time
data = sys.stdin.read()
print(f"read {{len(data)}} bytes of stdin; working on: {{sys.argv[-1]}}", flush=True)
time.sleep(600)
"""


@dataclass(frozen=True)
class Block:
    """One shell block of a document."""

    path: Path
    line: int
    code: str
    mode: str  # "run", "skip" or "background"
    reason: str = ""
    until: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The shell blocks of ``path``, with what the marker before each says to do."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if not fence.startswith("```") or fence == "```":
            i += 1
            continue
        info = fence[3:].strip().split()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if info and info[0] in SHELLS:
            before = lines[i - 1].strip() if i > 0 else ""
            marker = MARKER.fullmatch(before)
            mode = marker["mode"] if marker else "run"
            found.append(
                Block(
                    path,
                    i + 1,
                    "\n".join(lines[i + 1 : end]) + "\n",
                    mode,
                    (marker["reason"] or "").strip() if marker else "",
                    marker["until"] if marker else None,
                )
            )
        i = end + 1
    return found


ALL = [block for path in DOCS for block in blocks_of(path)]


class TestMarkers:
    def test_every_skip_says_why(self) -> None:
        """A block that is not run here says why, and most blocks do run."""
        for block in ALL:
            if block.mode == "skip":
                assert block.reason, f"{block.where}: doc-test: skip needs (a reason)"
        runnable = [b for b in ALL if b.mode != "skip"]
        assert len(runnable) >= 10, [b.where for b in runnable]

    def test_markers_sit_on_shell_blocks(self) -> None:
        """A marker is followed by a shell block (a misplaced one would silently do nothing)."""
        for path in DOCS:
            lines = path.read_text(encoding="utf-8").splitlines()
            for n, line in enumerate(lines):
                if "doc-test:" in line:
                    assert MARKER.fullmatch(line.strip()), f"{path.name}:{n + 1}: bad marker"
                    fence = lines[n + 1].strip() if n + 1 < len(lines) else ""
                    assert fence in {f"```{shell}" for shell in SHELLS}, f"{path.name}:{n + 1}"

    def test_no_package_index_install(self) -> None:
        """tailhub is installed from its checkout: no doc tells to install it from an index."""
        for path in DOCS:
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"pip3? install (-U |--upgrade )?tailhub\b", text), path.name


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Machine:
    """The scratch machine a document's blocks run on, and the processes they left running."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.home = scratch / "home"
        self.home.mkdir()
        self.checkout = scratch / "checkout"
        shutil.copytree(
            ROOT,
            self.checkout,
            ignore=shutil.ignore_patterns(
                ".git",
                ".venv",
                "test-output",
                "results",
                "__pycache__",
                "*.egg-info",
                ".mypy_cache",
                ".ruff_cache",
                ".pytest_cache",
                "node_modules",
            ),
        )
        bin_dir = scratch / "bin"
        bin_dir.mkdir()
        claude = bin_dir / "claude"
        claude.write_text(FAKE_CLAUDE.format(python=sys.executable))
        claude.chmod(0o755)
        self.port = free_port()
        self.token: str | None = None
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TAILHUB_")
            and k not in ("AUTH_TOKEN", "WS_SERVER", "CONTAINER_ID", "VIRTUAL_ENV", "PORT")
        }
        self.env = {
            **inherited,
            "HOME": str(self.home),
            "PORT": str(self.port),
            "TAILHUB_URL": f"ws://127.0.0.1:{self.port}",
            "PATH": os.pathsep.join(
                [str(bin_dir), str(Path(sys.executable).parent), inherited.get("PATH", "")]
            ),
        }
        self.background: list[tuple[Block, subprocess.Popen[bytes], Path]] = []
        self.hub: subprocess.Popen[bytes] | None = None

    @property
    def token_file(self) -> Path:
        return self.home / ".local" / "share" / "tailhub" / "token"

    def prepare(self, block: Block) -> str:
        """A hub for the block (unless it brings its own), and the block with what a reader
        fills in."""
        if "tailhub serve" not in block.code and not _listening(self.port):
            self.start_hub()
        code = HOSTS.sub(f"127.0.0.1:{self.port}", block.code)
        if self.token is not None:
            code = code.replace("TAILHUB_TOKEN=...", f"TAILHUB_TOKEN={self.token}")
        return code

    def start_hub(self) -> None:
        log = (self.scratch / "hub.log").open("ab")
        env = {**self.env, "HOST": "127.0.0.1"}
        self.hub = subprocess.Popen(
            [sys.executable, "-m", "tailhub", "serve"], env=env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 20 * UNIT
        while not _listening(self.port):
            assert self.hub.poll() is None, (self.scratch / "hub.log").read_text()
            assert time.monotonic() < deadline, "the test hub did not start"
            time.sleep(0.02)
        self.learn_token()

    def learn_token(self) -> None:
        self.token = self.token_file.read_text().strip()
        self.env["TOKEN"] = self.token

    def run(self, block: Block) -> None:
        code = self.prepare(block)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, (
            f"{block.where} exited with {result.returncode}:\n{code}\n"
            f"stdout:\n{result.stdout.decode(errors='replace')[-3000:]}\n"
            f"stderr:\n{result.stderr.decode(errors='replace')[-3000:]}"
        )

    def start(self, block: Block) -> None:
        code = self.prepare(block)
        output = self.scratch / f"background-{len(self.background)}.log"
        with output.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", code],
                cwd=self.checkout,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((block, proc, output))
        if block.until is None:
            return
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while block.until not in output.read_text(errors="replace"):
            assert proc.poll() is None, (
                f"{block.where} exited with {proc.returncode} before printing "
                f"{block.until!r}:\n{output.read_text(errors='replace')[-3000:]}"
            )
            assert time.monotonic() < deadline, f"{block.where}: no {block.until!r} in time"
            time.sleep(0.05)
        if "tailhub serve" in block.code:
            self.learn_token()

    def stop(self) -> None:
        for _, proc, _ in reversed(self.background):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20 * UNIT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.hub is not None:
            self.hub.terminate()
            try:
                self.hub.wait(20 * UNIT)
            except subprocess.TimeoutExpired:
                self.hub.kill()
                self.hub.wait()


RUNNABLE = [path for path in DOCS if any(b.mode != "skip" for b in blocks_of(path))]


@pytest.mark.parametrize("path", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_commands_run_as_written(path: Path, tmp_path: Path) -> None:
    """Each document's runnable shell blocks succeed, in order, on a fresh machine."""
    machine = Machine(tmp_path)
    try:
        for block in blocks_of(path):
            if block.mode == "run":
                machine.run(block)
            elif block.mode == "background":
                machine.start(block)
    finally:
        machine.stop()
