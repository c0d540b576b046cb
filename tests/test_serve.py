"""``tailhub serve`` as a person starts it: the line on a terminal, and a broken install."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp

from tests.helpers import UNIT, HubProcess, free_port

SRC = Path(__file__).resolve().parents[1] / "src"


def _read_tty_line(fd: int, timeout: float) -> str:
    """The first line written to the terminal whose master side is ``fd``."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no line on the terminal in time: {data!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            data += os.read(fd, 4096)
    return data.split(b"\n", 1)[0].decode().rstrip("\r")


class TestStartLine:
    def test_on_a_terminal(self, tmp_path: Path) -> None:
        """On a terminal, stdout gets one plain line: the dashboard and where the token is."""
        hub = HubProcess(tmp_path / "hub", token=None)
        master, slave = os.openpty()
        hub.data_dir.mkdir(parents=True)
        with hub.log_path.open("wb") as log:
            proc = subprocess.Popen(
                hub.command(), env=hub.environment(), stdout=slave, stderr=log, stdin=slave
            )
        os.close(slave)
        try:
            line = _read_tty_line(master, 20 * UNIT)
        finally:
            proc.terminate()
            proc.wait(20 * UNIT)
            os.close(master)
        assert line == f"dashboard http://127.0.0.1:{hub.port}/ · token in {hub.data_dir}/token"

    def test_not_when_piped_or_quiet(self, tmp_path: Path) -> None:
        """Piped (a service's journal), or at LOG_LEVEL=warn, only the JSON log is written."""
        hub = HubProcess(tmp_path / "hub").start()
        hub.stop()
        assert "dashboard http" not in hub.log()
        quiet = HubProcess(tmp_path / "quiet", env={"LOG_LEVEL": "warn"})
        master, slave = os.openpty()
        quiet.data_dir.mkdir(parents=True)
        proc = subprocess.Popen(
            quiet.command(), env=quiet.environment(), stdout=slave, stderr=subprocess.DEVNULL
        )
        os.close(slave)
        try:
            deadline = time.monotonic() + 20 * UNIT
            while not _listening(quiet.port):
                assert time.monotonic() < deadline, "hub did not start"
                time.sleep(0.02)
        finally:
            proc.terminate()
            proc.wait(20 * UNIT)
        try:
            written = os.read(master, 4096)  # all the hub wrote; EIO once it is gone
        except OSError:
            written = b""
        finally:
            os.close(master)
        assert written == b""


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class TestMissingDashboard:
    async def test_logged_and_explained(self, tmp_path: Path) -> None:
        """An installation without the dashboard's files: an error in the log at start,
        and / answers with a page that says what is wrong; the API still works."""
        broken = tmp_path / "site"
        shutil.copytree(SRC / "tailhub", broken / "tailhub")
        shutil.rmtree(broken / "tailhub" / "server" / "static")
        hub = HubProcess(tmp_path / "hub", env={"PYTHONPATH": str(broken)}, port=free_port())
        hub.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(hub.http + "/") as response:
                    page = await response.text()
                    assert response.status == 500
                    assert response.content_type == "text/html"
                async with http.get(hub.http + "/healthz") as health:
                    assert health.status == 200
        finally:
            hub.stop()
        assert "The dashboard is not installed" in page
        assert str(broken / "tailhub" / "server" / "static") in page
        missing = [e for e in hub.log_events() if e.get("event") == "dashboard_missing"]
        assert len(missing) == 1
        assert missing[0]["level"] == "error"
        assert missing[0]["static_dir"] == str(broken / "tailhub" / "server" / "static")
