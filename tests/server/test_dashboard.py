"""The dashboard in real headless Chromium against a real hub process.

The tests publish over a real WebSocket as a container would and watch the page with
Playwright's auto-waiting expectations, never a fixed sleep. One Chromium serves the module
(a fresh browser context per test); tests that look at the whole session list, restart the
hub or flood it get a hub of their own, the others share one and use their own container
IDs. Screenshots go to ``test-output/dashboard/`` at the repository root.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    WebSocketRoute,
    async_playwright,
    expect,
)

from tests.helpers import (
    CANARY_SECRET,
    UNIT,
    HubProcess,
    increasing,
    receive_json,
    receive_type,
    wait_for,
)
from tests.server.attention import WAITING, inject

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = os.environ.get("TAILHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"
EXPECT_MS = 10_000 * UNIT
"""How long an expectation waits (ms): generous, since it returns as soon as it holds."""

expect.set_options(timeout=EXPECT_MS)


class Publisher:
    """A container's connection: publishes with ids and waits until the hub has stored them."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.producer = uuid.uuid4().hex
        self.last_id = 0

    async def send(
        self, container: str, kind: str, data: dict[str, Any], timestamp: str | None = None
    ) -> None:
        self.last_id += 1
        message = {
            "type": kind,
            "containerID": container,
            "id": self.last_id,
            "producer": self.producer,
            "data": data,
        }
        if timestamp:
            message["timestamp"] = timestamp
        await self.ws.send_str(json.dumps(message))

    async def log(
        self,
        container: str,
        message: str,
        level: str = "info",
        timestamp: str | None = None,
        **extra: Any,
    ) -> None:
        data = {"level": level, "message": message, **extra}
        await self.send(container, "log", data, timestamp)

    async def flush(self) -> None:
        """Returns once every message sent so far is stored (the hub's acks are cumulative)."""
        while True:
            reply = await receive_json(self.ws, timeout=30 * UNIT)
            if reply.get("type") == "error":
                raise AssertionError(f"the hub refused a message: {reply}")
            if reply.get("type") == "ack" and reply["id"] >= self.last_id:
                return


class Dashboard:
    """A browser page on the hub's dashboard that records every JavaScript error."""

    def __init__(self, page: Page, hub: HubProcess) -> None:
        self.page = page
        self.hub = hub
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    async def open(self, *, token: str | None = None, hash: str = "") -> None:
        query = f"?token={token or self.hub.token}" if token != "" else ""
        await self.page.goto(f"{self.hub.http}/{query}{hash}")

    def session(self, container: str) -> Locator:
        return self.page.locator(f'.session[data-cid="{container}"]')

    async def choose(self, container: str) -> None:
        await self.session(container).locator(".session-open").click()

    def rows(self, pane: int = 0) -> Locator:
        return self.page.locator(".pane").nth(pane).locator(".row")

    async def seqs(self, pane: int = 0) -> list[int]:
        """The ``seq`` of every row in the DOM of a pane, top to bottom."""
        values: list[str] = (
            await self.page.locator(".pane")
            .nth(pane)
            .locator(".row")
            .evaluate_all("rows => rows.map(row => row.dataset.seq)")
        )
        return [int(value) for value in values]

    async def screenshot(self, name: str) -> Path:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path

    HUB_DOWN = re.compile(
        r"WebSocket connection to .* failed|Failed to load resource: net::ERR_[A-Z_]+$"
    )
    """What Chromium itself reports while a test has the hub down: the refused WebSocket
    handshakes of the page reconnecting, and a request the page had in flight when the hub
    was killed (the fleet totals, asked for with the session list), refused or cut short
    (``net::ERR_CONNECTION_REFUSED``, ``ERR_CONTENT_LENGTH_MISMATCH``, ...). A response with
    an HTTP error status is still an error."""

    def assert_no_errors(self, allowed: re.Pattern[str] | None = None) -> None:
        errors = [e for e in self.errors if not (allowed and allowed.search(e))]
        assert errors == []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:  # pragma: no cover - depends on the machine
            # The browser tests are a required part of the suite: no Chromium is a failure.
            pytest.fail(
                f"Chromium cannot start ({exc.message.splitlines()[0]}); "
                "install Debian's chromium (scripts/test does)"
            )
        yield browser
        await browser.close()


@pytest.fixture
def fast_hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A hub without a publish rate limit, for the test that floods it."""
    process = HubProcess(tmp_path / "fast-hub", args=["--publish-rate", "0"]).start()
    yield process
    process.stop()


@asynccontextmanager
async def open_page(browser: Browser, hub: HubProcess) -> AsyncIterator[Dashboard]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield Dashboard(await context.new_page(), hub)
    finally:
        await context.close()


@asynccontextmanager
async def connect_publisher(hub: HubProcess) -> AsyncIterator[Publisher]:
    async with aiohttp.ClientSession() as session, session.ws_connect(hub.ws_url()) as ws:
        yield Publisher(ws)


@pytest_asyncio.fixture(loop_scope="module")
async def dashboard(browser: Browser, hub: HubProcess) -> AsyncIterator[Dashboard]:
    """A page on a hub of the test's own."""
    async with open_page(browser, hub) as page:
        yield page


@pytest_asyncio.fixture(loop_scope="module")
async def shared_dashboard(browser: Browser, shared_hub: HubProcess) -> AsyncIterator[Dashboard]:
    """A page on the module's shared hub."""
    async with open_page(browser, shared_hub) as page:
        yield page


@pytest_asyncio.fixture(loop_scope="module")
async def publisher(hub: HubProcess) -> AsyncIterator[Publisher]:
    async with connect_publisher(hub) as publisher:
        yield publisher


@pytest_asyncio.fixture(loop_scope="module")
async def shared_publisher(shared_hub: HubProcess) -> AsyncIterator[Publisher]:
    async with connect_publisher(shared_hub) as publisher:
        yield publisher


class TestSessionsAndLiveLog:
    async def test_list_backlog_and_live_line(
        self, dashboard: Dashboard, publisher: Publisher
    ) -> None:
        """The list shows each session; a container's backlog, then its live lines, appear."""
        await publisher.send("build-1", "status", {"status": "running", "message": "cloning"})
        for i in range(3):
            await publisher.log("build-1", f"backlog line {i}")
        await publisher.log("agent-2", "all done")
        await publisher.send("agent-2", "complete", {"exitCode": 0, "duration": 61_000})
        await publisher.flush()

        await dashboard.open()
        page = dashboard.page
        await expect(page).not_to_have_url(re.compile("token="))
        await expect(dashboard.session("build-1").locator(".badge")).to_have_text("running")
        await expect(dashboard.session("agent-2").locator(".badge")).to_have_text(
            "completed · exit 0"
        )
        await expect(page.locator("#session-summary")).to_have_text("1 active · 1 ended")

        await dashboard.choose("build-1")
        await expect(dashboard.rows()).to_have_count(4)
        await expect(dashboard.rows().first).to_contain_text("status → running: cloning")
        await expect(dashboard.rows().last).to_contain_text("backlog line 2")

        await publisher.log("build-1", "a live line", level="warn")
        await expect(dashboard.rows().last).to_contain_text("a live line")
        await expect(dashboard.rows().last).to_have_class(re.compile(r"\blv-warn\b"))
        await expect(dashboard.session("build-1")).to_contain_text("5 msgs")
        await expect(page.locator(".pane-info")).to_have_text("5 lines")
        assert await dashboard.seqs() == [1, 2, 3, 4, 5]

        async with page.expect_download() as download_info:
            await page.locator(".pane summary", has_text="Download").click()
            await page.get_by_role("button", name="NDJSON (as received)").click()
        download = await download_info.value
        saved = Path(await download.path())
        lines = (await asyncio.to_thread(saved.read_text)).splitlines()
        assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]

        await dashboard.screenshot("overview")
        dashboard.assert_no_errors()

    async def test_several_containers_side_by_side_and_merged(
        self, shared_dashboard: Dashboard, shared_publisher: Publisher
    ) -> None:
        """Ticked containers get a pane each, or one merged pane with a container column."""
        # Container clocks decide the merged order, whatever order the backlogs arrive in.
        await shared_publisher.log("left", "left one", timestamp="2024-05-01T10:00:01.000Z")
        await shared_publisher.log("right", "right one", timestamp="2024-05-01T10:00:02.000Z")
        await shared_publisher.log("left", "left two", timestamp="2024-05-01T10:00:03.000Z")
        await shared_publisher.flush()
        await shared_dashboard.open()
        page = shared_dashboard.page

        await shared_dashboard.choose("left")
        await shared_dashboard.session("right").get_by_role("checkbox").check()
        await expect(page.locator(".pane")).to_have_count(2)
        await expect(shared_dashboard.rows(0)).to_have_count(2)
        await expect(shared_dashboard.rows(1)).to_have_count(1)

        await page.get_by_text("Merged", exact=True).click()
        await expect(page.locator(".pane")).to_have_count(1)
        await expect(shared_dashboard.rows()).to_have_text(
            [
                re.compile("left.*left one"),
                re.compile("right.*right one"),
                re.compile("left.*left two"),
            ]
        )
        await shared_publisher.log("right", "right live")
        await expect(shared_dashboard.rows().last).to_contain_text("right live")
        await expect(page).to_have_url(re.compile(r"#view=left%2Cright&layout=merged$"))
        await shared_dashboard.screenshot("merged")
        shared_dashboard.assert_no_errors()


class TestFilteringAndRendering:
    async def test_level_filter_search_ansi_and_metadata(
        self, shared_dashboard: Dashboard, shared_publisher: Publisher
    ) -> None:
        """Levels and search filter the lines; ANSI renders as colour; markup stays text."""
        await shared_publisher.log("filters", "debug detail", level="debug")
        await shared_publisher.log(
            "filters", "\x1b[1;31mred alert\x1b[0m and \x1b[38;5;82mgreen\x1b[0m"
        )
        await shared_publisher.log("filters", "disk almost full", level="warn")
        await shared_publisher.log(
            "filters",
            "<img src=x onerror=window.__xss=1> boom",
            level="error",
            metadata={"disk": "/dev/sda", "free": 3},
        )
        await shared_publisher.flush()
        await shared_dashboard.open(hash="#view=filters")
        page = shared_dashboard.page
        rows = shared_dashboard.rows()
        await expect(rows).to_have_count(4)

        red = rows.nth(1).locator(".ansi-fg-1.ansi-bold")
        await expect(red).to_have_text("red alert")
        await expect(rows.nth(1).locator(".ansi", has_text="green")).to_have_css(
            "color", "rgb(95, 255, 0)"
        )
        await expect(rows.nth(3)).to_contain_text("<img src=x onerror=window.__xss=1> boom")
        assert await page.locator(".pane img").count() == 0
        assert await page.evaluate("window.__xss") is None

        await page.get_by_label("debug").uncheck()
        await page.get_by_label("info", exact=True).uncheck()
        await expect(rows).to_have_count(2)
        await expect(page.locator(".pane-info")).to_have_text("2 of 4 lines")
        await page.get_by_label("debug").check()
        await page.get_by_label("info", exact=True).check()
        await expect(rows).to_have_count(4)

        search = page.get_by_label("Search the log")
        await search.fill("DISK")
        # "disk" is in the warn line's text and in the error line's metadata.
        await expect(rows).to_have_count(2)
        await expect(rows.first.locator("mark")).to_have_text("disk")
        await page.get_by_label("Only matching lines").uncheck()
        await expect(rows).to_have_count(4)
        await expect(page.locator(".pane mark")).to_have_count(1)

        toggle = rows.nth(3).get_by_role("button", name="Show metadata")
        await toggle.click()
        meta = rows.nth(3).locator(".cell-meta")
        await expect(meta).to_contain_text('"free": 3')
        await expect(rows.nth(3).locator(".meta-toggle")).to_have_attribute("aria-expanded", "true")
        await search.press("Escape")
        await expect(page.locator(".pane mark")).to_have_count(0)
        await shared_dashboard.screenshot("filters")
        shared_dashboard.assert_no_errors()

    async def test_ansi_parser_keeps_only_text_and_colours(
        self, shared_dashboard: Dashboard
    ) -> None:
        """Cursor moves, titles, hyperlinks and control characters never reach the page."""
        await shared_dashboard.open()
        parsed = await shared_dashboard.page.evaluate(
            """async () => {
                const { parseAnsi } = await import("/static/js/ansi.js");
                const text = "a\\x1b]0;title\\x07b\\x1b]8;;http://x\\x1b\\\\link\\x1b]8;;\\x1b\\\\"
                    + "\\x1b[2K\\x1b[1;32mok\\x1b[39m!\\x07\\x1b(B\\x1b[0m\\tz\\x1b[";
                return parseAnsi(text).map((s) => [s.text, s.style && s.style.fg]);
            }"""
        )
        assert parsed == [["ablink", None], ["ok", 2], ["!", None], ["\tz", None]]
        shared_dashboard.assert_no_errors()

    async def test_container_log_resume_point_under_any_delivery_order(
        self, shared_dashboard: Dashboard
    ) -> None:
        """Repeats and early live messages are dropped or placed; `since` never skips a gap."""
        await shared_dashboard.open()
        seen = await shared_dashboard.page.evaluate(
            """async () => {
                const { ContainerLog } = await import("/static/js/container-log.js");
                const msg = (seq) => ({type: "log", containerID: "c", seq,
                                       data: {level: "info", message: `m${seq}`}});
                const log = new ContainerLog("c");
                const seqs = () => log.entries.map((e) => e.seq);
                const out = {};
                out.first = log.subscribeMessage(10);
                log.add(msg(48));  // live, through "*", before the reply
                log.subscribed({seq: 47, firstSeq: 1, truncated: false}, 10);
                out.afterReply = log.resumeFrom;  // the tail asked for starts at 38
                for (let s = 38; s <= 50; s++) log.add(msg(s));
                for (const s of [49, 50, 40]) log.add(msg(s));  // delivered twice
                out.tail = seqs();
                out.resume = log.subscribeMessage(10);
                log.subscribed({seq: 60, firstSeq: 1, truncated: false}, 10);
                log.add(msg(55));  // live, through "*", before the backlog
                out.withGap = log.resumeFrom;
                for (let s = 51; s <= 60; s++) log.add(msg(s));
                out.filled = log.resumeFrom;
                out.unique = new Set(seqs()).size === log.entries.length;
                out.sorted = seqs().every((s, i, all) => i === 0 || all[i - 1] < s);
                log.subscribed({seq: 100, firstSeq: 80, truncated: true}, 10);
                out.truncated = [log.resumeFrom, log.lost];
                out.earlier = log.earlierMessage(5);
                out.reset = log.subscribed({seq: 3, firstSeq: 1, truncated: false}, 10);
                out.afterReset = [log.entries.length, log.resumeFrom];
                return out;
            }"""
        )
        assert seen["first"] == {"type": "subscribe", "containerID": "c", "tail": 10}
        assert seen["afterReply"] == 37
        assert seen["tail"] == list(range(38, 51))
        assert seen["resume"] == {"type": "subscribe", "containerID": "c", "since": 50}
        assert seen["withGap"] == 50
        assert seen["filled"] == 60
        assert seen["unique"] is True
        assert seen["sorted"] is True
        assert seen["truncated"] == [79, 19]
        assert seen["earlier"] == {"type": "subscribe", "containerID": "c", "since": 79}
        assert seen["reset"] is True
        assert seen["afterReset"] == [0, None]
        shared_dashboard.assert_no_errors()


class TestConnection:
    async def test_token_form_refuses_a_wrong_token(self, shared_dashboard: Dashboard) -> None:
        """Without a token the page asks for one, says when it is refused, then connects."""
        await shared_dashboard.open(token="")
        page = shared_dashboard.page
        field = page.get_by_label("Access token")
        await expect(field).to_be_visible()
        await field.fill("not-the-token")
        await page.get_by_role("button", name="Connect").click()
        await expect(page.get_by_role("alert")).to_contain_text("refused")
        await field.fill(shared_dashboard.hub.token or "")
        await page.get_by_role("button", name="Connect").click()
        await expect(page.locator("#conn-text")).to_have_text("Live")
        await expect(page.locator("#session-summary")).to_have_text(
            re.compile(r"^\d+ active · \d+ ended$")
        )

        await page.get_by_role("button", name="Change token").click()
        await expect(field).to_be_visible()
        await field.press("Escape")
        await expect(field).to_be_hidden()
        await expect(page.locator("#conn-text")).to_have_text("Live")
        shared_dashboard.assert_no_errors()

    async def test_hub_restart_loses_and_repeats_nothing(
        self, dashboard: Dashboard, hub: HubProcess
    ) -> None:
        """Killed and restarted, the hub is rejoined with `since`: every seq exactly once."""
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(hub.ws_url()) as ws:
                publisher = Publisher(ws)
                for i in range(1, 11):
                    await publisher.log("resume", f"line {i}")
                await publisher.flush()
            await dashboard.open(hash="#view=resume")
            page = dashboard.page
            await expect(dashboard.rows()).to_have_count(10)

            hub.kill()
            await expect(page.locator("#conn")).not_to_have_attribute("data-state", "open")
            hub.start()
            async with session.ws_connect(hub.ws_url()) as ws:
                publisher = Publisher(ws)
                for i in range(11, 21):
                    await publisher.log("resume", f"line {i}")
                await publisher.flush()
                await expect(page.locator("#conn-text")).to_have_text("Live")
                for i in range(21, 26):
                    await publisher.log("resume", f"line {i}")
                await publisher.flush()

        await expect(dashboard.rows()).to_have_count(25)
        seqs = await dashboard.seqs()
        assert (list(range(1, 11)), True) == (seqs[:10], increasing(seqs))
        texts = await dashboard.rows().locator(".cell-msg").all_text_contents()
        assert texts == [f"line {i}" for i in range(1, 26)]
        dashboard.assert_no_errors(allowed=Dashboard.HUB_DOWN)


class TestManyLines:
    async def test_twenty_thousand_lines_stay_virtualised(
        self, browser: Browser, fast_hub: HubProcess
    ) -> None:
        """20,000 lines arrive live; the DOM holds only a window; scrolling up pauses."""
        async with (
            open_page(browser, fast_hub) as dashboard,
            connect_publisher(fast_hub) as publisher,
        ):
            page = dashboard.page
            await publisher.log("flood", "line 00000")
            await publisher.flush()
            await dashboard.open(hash="#view=flood")
            await expect(dashboard.rows()).to_have_count(1)

            total = 20_000
            for i in range(1, total):
                level = ("debug", "info", "warn", "error")[i % 4]
                await publisher.log("flood", f"line {i:05} \x1b[36mcyan {i}\x1b[0m", level=level)
            await publisher.flush()
            info = page.locator(".pane-info")
            await expect(info).to_have_text("20,000 lines", timeout=60_000 * UNIT)
            await expect(dashboard.rows().last).to_contain_text("line 19999")
            assert await dashboard.rows().count() < 150

            viewport = page.locator(".viewport")
            await viewport.press("Home")
            await expect(dashboard.rows().first).to_contain_text("line 00000")
            jump = page.locator(".jump-live")
            await expect(jump).to_be_visible()
            middle = await viewport.evaluate(
                "v => { v.scrollTop = v.scrollHeight / 2; return v.scrollTop; }"
            )
            assert middle > 0
            await expect(page.locator('.row[data-seq="10001"]')).to_be_attached()
            assert await dashboard.rows().count() < 150

            await publisher.log("flood", "one more")
            await publisher.flush()
            await expect(info).to_have_text("20,001 lines")
            await expect(jump).to_have_text("Jump to live (1 new)")
            await expect(page.locator('.row[data-seq="10001"]')).to_be_attached()
            await jump.click()
            await expect(dashboard.rows().last).to_contain_text("one more")
            await expect(jump).to_be_hidden()

            await page.get_by_label("Search the log").fill("line 0123")
            await expect(info).to_have_text("10 of 20,001 lines")
            await dashboard.screenshot("many-lines")

            # A fresh page starts from the last 5,000 and fetches older ones on demand.
            await page.reload()
            await expect(info).to_have_text("5,000 lines")
            await page.get_by_role("button", name="Load earlier lines").click()
            await expect(info).to_have_text("10,000 lines")
            await viewport.press("Home")
            await expect(dashboard.rows().first).to_have_attribute("data-seq", "10002")
            dashboard.assert_no_errors()


async def publishers_of(hub: HubProcess, container: str) -> int:
    """How many connections publish for ``container``'s active session, as the hub says."""
    async with aiohttp.ClientSession() as session, session.ws_connect(hub.ws_url()) as ws:
        await ws.send_str(json.dumps({"type": "sessions"}))
        reply = await receive_type(ws, "sessions")
    sessions = reply["data"]["sessions"]
    return next(s["publishers"] for s in sessions if s["containerID"] == container and s["active"])


def pretend_connected(container: str, message: str | bytes) -> str | bytes:
    """A hub frame, with ``container`` listed as having a publisher when it is a sessions reply
    (the page's list is then as stale as it can be for the 5 s between two refreshes)."""
    if isinstance(message, bytes) or '"sessions"' not in message:
        return message
    reply = json.loads(message)
    if reply.get("type") != "sessions":
        return message
    for session in reply["data"]["sessions"]:
        if session["containerID"] == container:
            session["publishers"] = max(1, session["publishers"])
    return json.dumps(reply)


class TestSteering:
    async def test_input_eof_and_cancel_reach_a_running_command(
        self, shared_dashboard: Dashboard, shared_hub: HubProcess, tmp_path: Path
    ) -> None:
        """Enter sends a line to the command's stdin, EOF closes it, a confirmed Cancel stops it."""
        script = 'read line; echo "got:$line"; read rest || echo "got:eof"; sleep 60'
        runner_log = tmp_path / "runner.log"
        with runner_log.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "tailhub", "run", "--hub", shared_hub.url],
                *["--token", shared_hub.token or "", "--container-id", "steer", "--grace", "10"],
                *["--stdin", "hub"],
                *["--", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            page = shared_dashboard.page
            await shared_dashboard.open()
            await expect(shared_dashboard.session("steer").locator(".badge")).to_have_text(
                "running"
            )
            await shared_dashboard.choose("steer")
            rows = shared_dashboard.rows()
            outcome = page.locator(".pane .steer-outcome")

            field = page.get_by_label("Input for steer")
            await field.fill("hello")
            await field.press("Enter")
            await expect(outcome).to_have_text("input sent to 1 connection")
            await expect(field).to_have_value("")
            await expect(rows.filter(has_text="got:hello")).to_have_count(1)

            await page.get_by_role("button", name="Send end of input (EOF) to steer").click()
            await expect(outcome).to_have_text("EOF sent to 1 connection")
            await expect(rows.filter(has_text="got:eof")).to_have_count(1)

            # The confirmation is inline; Escape takes it back and nothing is sent.
            cancel = page.get_by_role("button", name="Cancel steer", exact=True)
            await cancel.click()
            keep = page.get_by_role("button", name="Keep running")
            await expect(keep).to_be_focused()
            await shared_dashboard.screenshot("steer-confirm")
            await keep.press("Escape")
            await expect(keep).to_be_hidden()
            await expect(cancel).to_be_focused()
            await cancel.press("Enter")
            await page.get_by_role("button", name="Yes, cancel steer").click()
            await expect(outcome).to_have_text("cancel sent to 1 connection")
            await expect(rows.filter(has_text="cancel requested")).to_have_count(1)
            await expect(page.locator(".pane-head .badge")).to_contain_text("cancelled")
            await expect(page.locator(".pane-head .badge")).not_to_contain_text("exit")
            await expect(shared_dashboard.session("steer").locator(".badge")).to_have_text(
                "cancelled"
            )
            await expect(rows.filter(has_text="cancelled after")).to_have_count(1)
            await expect(field).to_be_hidden()
            assert await asyncio.wait_for(proc.wait(), 20 * UNIT) == 143
        finally:
            if proc.returncode is None:
                proc.terminate()  # passed on to the command's process group
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 20 * UNIT)
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        shared_dashboard.assert_no_errors()

    async def test_no_publisher_no_steering_and_a_stale_offer_says_no_container(
        self, shared_dashboard: Dashboard, shared_hub: HubProcess
    ) -> None:
        """A container without a publisher gets no controls; one listed as having one (the list
        is refreshed every 5 s) shows the hub's no_container; offline, the controls are off."""
        async with connect_publisher(shared_hub) as gone:
            await gone.log("orphan", "left without a goodbye")
            await gone.log("ghost", "left too")
            await gone.flush()

        async def gone_from_hub() -> bool:
            return await publishers_of(shared_hub, "orphan") == 0

        await wait_for(gone_from_hub)

        routes: list[WebSocketRoute] = []
        held = False

        def route(ws: WebSocketRoute) -> None:
            routes.append(ws)
            if held:
                return  # nobody answers the page's auth: it stays "connecting"
            server = ws.connect_to_server()
            server.on_message(lambda message: ws.send(pretend_connected("ghost", message)))

        page = shared_dashboard.page
        await page.route_web_socket(re.compile(r"^wss?://"), route)
        await shared_dashboard.open()
        pane_badge = page.locator(".pane-head .badge")

        await shared_dashboard.choose("orphan")
        await expect(pane_badge).to_have_text("running")
        await expect(page.get_by_label("Input for orphan")).to_be_hidden()
        await expect(page.get_by_role("button", name="Cancel orphan", exact=True)).to_have_count(0)

        await shared_dashboard.choose("ghost")
        await expect(pane_badge).to_have_text("running")
        await page.get_by_role("button", name="Cancel ghost", exact=True).click()
        await page.get_by_role("button", name="Yes, cancel ghost").click()
        await expect(page.locator(".pane .steer-outcome")).to_have_text(
            re.compile(r"^cancel not sent: no_container: .*ghost")
        )
        await expect(page.locator(".toast")).to_have_count(0)
        await shared_dashboard.screenshot("steer-no-container")

        field = page.get_by_label("Input for ghost")
        await expect(field).to_be_enabled()
        held = True
        await routes[-1].close()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "connecting")
        await expect(field).to_be_disabled()
        await expect(page.get_by_role("button", name="Cancel ghost", exact=True)).to_be_disabled()
        held = False
        await routes[-1].close()
        await expect(page.locator("#conn-text")).to_have_text("Live")
        await expect(field).to_be_enabled()
        shared_dashboard.assert_no_errors()


async def _box(locator: Locator) -> dict[str, float]:
    box = await locator.bounding_box()
    assert box is not None
    return box


class TestReadingLogs:
    async def test_wrap_sticky_columns_dates_json_stderr_and_runs(
        self, shared_dashboard: Dashboard, shared_publisher: Publisher
    ) -> None:
        """Time and level stay in view scrolled sideways; Wrap lines wraps; older lines show
        their date; a JSON message expands as fields; stderr is its own filter; a new run of
        the container is marked and counted from its start."""
        pub = shared_publisher
        cid = "reader"
        await pub.log(cid, "from an earlier day", timestamp="2024-05-01T10:00:00.000Z")
        await pub.log(cid, "long " + "x" * 600 + " END")
        await pub.log(cid, "cannot find config, using defaults", level="warn", stream="stderr")
        await pub.log(cid, '{"tool": "bash", "args": {"cmd": "ls -la"}, "ok": true}')
        await pub.send(cid, "complete", {"exitCode": 0, "duration": 1200})
        await pub.send(cid, "status", {"status": "starting"})
        await pub.log(cid, "second run begins")
        await pub.flush()

        await shared_dashboard.open(hash=f"#view={cid}")
        page = shared_dashboard.page
        rows = shared_dashboard.rows()
        await expect(rows).to_have_count(7)

        # Dates on times before today; today's lines show the time alone.
        await expect(rows.nth(0).locator(".cell-time")).to_have_text(
            re.compile(r"^2024-05-0[12] \d\d:\d\d:\d\d\.\d{3}$")
        )
        await expect(rows.nth(1).locator(".cell-time")).to_have_text(
            re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$")
        )

        # stderr: its own label and filter choice, whatever its level.
        stderr = rows.filter(has_text="cannot find config")
        await expect(stderr.locator(".cell-level")).to_have_text("STDERR")
        await page.get_by_label("warn", exact=True).uncheck()
        await expect(rows.filter(has_text="cannot find config")).to_have_count(1)
        await page.get_by_label("stderr", exact=True).uncheck()
        await expect(rows.filter(has_text="cannot find config")).to_have_count(0)
        await page.get_by_label("stderr", exact=True).check()
        await page.get_by_label("warn", exact=True).check()

        # A message that is a JSON object expands as fields, nothing cut off.
        json_row = rows.filter(has_text='"tool"')
        await json_row.get_by_role("button", name="Show fields").click()
        await expect(json_row.locator(".cell-meta")).to_contain_text('"cmd": "ls -la"')

        # The second run is marked, and the container's card counts from its start.
        second = rows.filter(has_text="status → starting")
        await expect(second).to_have_class(re.compile(r"\brun-start\b"))
        await expect(second.locator(".run-marker")).to_have_text(re.compile(r"^new run · "))
        await expect(shared_dashboard.session(cid)).to_contain_text("2 msgs")

        # Scrolled sideways: the long line's end comes into view, time and level stay.
        viewport = page.locator(".pane .viewport")
        long_row = rows.filter(has_text="long xxx")
        await viewport.evaluate("v => { v.scrollLeft = v.scrollWidth; }")
        await expect(long_row.locator(".cell-msg")).to_contain_text("END")
        view = await _box(viewport)
        time_box = await _box(long_row.locator(".cell-time"))
        level_box = await _box(long_row.locator(".cell-level"))
        assert view["x"] - 1 <= time_box["x"] < view["x"] + 40
        assert time_box["x"] + time_box["width"] <= level_box["x"]
        assert level_box["x"] + level_box["width"] < view["x"] + view["width"]
        await shared_dashboard.screenshot("scrolled-sideways")

        # Wrapped: no sideways scrolling, the long line takes several lines, rows never overlap.
        await page.get_by_label("Wrap lines").check()
        await expect(viewport).to_have_class(re.compile(r"\bwrap\b"))
        assert await viewport.evaluate("v => v.scrollWidth <= v.clientWidth")
        wrapped = await _box(long_row)
        assert wrapped["height"] >= 3 * 20
        message = await _box(long_row.locator(".cell-msg"))
        assert message["y"] + message["height"] <= wrapped["y"] + wrapped["height"] + 1
        tops = await rows.evaluate_all(
            "rows => rows.map(r => [r.getBoundingClientRect().top, r.offsetHeight])"
        )
        tops.sort()
        for (top, height), (next_top, _) in itertools.pairwise(tops):
            assert next_top >= top + height - 1
        await shared_dashboard.screenshot("wrapped")
        await page.get_by_label("Wrap lines").uncheck()
        shared_dashboard.assert_no_errors()


class TestSessionList:
    async def test_attention_first_status_filter_compact_and_cancelled(
        self, dashboard: Dashboard, publisher: Publisher
    ) -> None:
        """Sessions that need attention come first; the status filter narrows the list; a
        cancelled run says so; compact cards fit 40 sessions on a laptop screen."""
        for n in range(37):
            await publisher.send(f"agent-{n:02d}", "status", {"status": "running"})
        await publisher.send("broken", "status", {"status": "running"})
        await publisher.send("broken", "complete", {"exitCode": 2, "message": "exited with 2"})
        await publisher.send("stopped", "status", {"status": "cancelled", "message": "cancelled"})
        await publisher.send(
            "stopped", "complete", {"exitCode": 143, "message": "cancelled", "cancelled": True}
        )
        await publisher.send("finished", "complete", {"exitCode": 0, "duration": 5000})
        await publisher.flush()

        page = dashboard.page
        await page.set_viewport_size({"width": 1440, "height": 900})
        await dashboard.open()
        cards = page.locator(".session")
        await expect(cards).to_have_count(40)
        await expect(cards.first).to_have_attribute("data-cid", "broken")
        await expect(cards.first).to_have_class(re.compile(r"\battention\b"))
        await expect(dashboard.session("broken").locator(".badge")).to_have_text("error · exit 2")
        await expect(dashboard.session("stopped").locator(".badge")).to_have_text("cancelled")
        await expect(page.locator("#session-summary")).to_have_text(
            "37 active · 3 ended · 1 need attention"
        )

        status = page.get_by_label("Show sessions")
        await status.select_option("attention")
        await expect(cards).to_have_count(1)
        await expect(page.locator("#status-filter option[value=attention]")).to_have_text(
            "Needs attention (1)"
        )
        await status.select_option("cancelled")
        await expect(cards).to_have_count(1)
        await expect(cards.first).to_have_attribute("data-cid", "stopped")
        await status.select_option("all")
        await expect(cards).to_have_count(40)

        # Compact: one line per session, all 40 in view without scrolling the list.
        await page.get_by_label("Compact").check()
        listed = page.locator("#session-list")
        await expect(listed).to_have_class(re.compile(r"\bcompact\b"))
        assert await listed.evaluate("l => l.scrollHeight <= l.clientHeight")
        first, last = await _box(cards.first), await _box(cards.last)
        assert first["height"] <= 20
        assert last["y"] + last["height"] <= 900
        await dashboard.screenshot("compact-40-sessions")
        await page.reload()
        await expect(page.get_by_label("Compact")).to_be_checked()
        dashboard.assert_no_errors()


def _scoped_token(role: str, *containers: str) -> str:
    """A scoped token signed with the test hubs' secret, as an organisation's service would."""
    now = int(time.time())
    claims = {"role": role, "containers": list(containers), "iat": now, "exp": now + 600}
    return jwt.encode({**claims, "sub": f"{role}-page"}, CANARY_SECRET, algorithm="HS256")


class TestRoles:
    async def test_viewer_sees_no_steering_operator_does(
        self, shared_dashboard: Dashboard, shared_hub: HubProcess
    ) -> None:
        """With a viewer token the page offers no input or cancel; with an operator's it does.

        The container is ``tailhub run`` with a publisher token for itself alone.
        """
        container = "roles-run"
        publisher = _scoped_token("publisher", container)
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "tailhub", "run", "--hub", shared_hub.url],
            *["--token", publisher, "--container-id", container, "--grace", "10"],
            *["--", "sh", "-c", "echo started; sleep 60"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            page = shared_dashboard.page
            cancel = page.get_by_role("button", name=f"Cancel {container}", exact=True)
            await shared_dashboard.open(token=_scoped_token("operator", "roles-*"))
            await expect(shared_dashboard.session(container).locator(".badge")).to_have_text(
                "running"
            )
            await shared_dashboard.choose(container)
            await expect(shared_dashboard.rows().filter(has_text="started")).to_have_count(1)
            await expect(cancel).to_be_visible()
            await expect(page.locator("#role")).to_have_text("operator · roles-*")

            await shared_dashboard.open(token=_scoped_token("viewer", "roles-*"))
            await expect(page.locator("#role")).to_have_text("viewer · roles-*")
            await shared_dashboard.choose(container)
            await expect(shared_dashboard.rows().filter(has_text="started")).to_have_count(1)
            await expect(shared_dashboard.session(container).locator(".badge")).to_have_text(
                "running"
            )
            await expect(cancel).to_be_hidden()
            await expect(page.get_by_label(f"Input for {container}")).to_be_hidden()
            # An agent waiting for a person is shown, but a viewer cannot answer it.
            await inject(page, container, WAITING)
            await expect(page.locator(".needs-tool").first).to_have_text("Bash")
            await expect(page.locator(".needs-actions")).to_be_hidden()
            # Sessions outside the token's scope are not listed.
            await expect(page.locator(".session:not([data-cid^='roles-'])")).to_have_count(0)
            await shared_dashboard.screenshot("viewer-no-steering")
        finally:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 20 * UNIT)
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        shared_dashboard.assert_no_errors()
