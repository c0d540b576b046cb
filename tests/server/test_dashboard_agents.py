"""The dashboard's agent view and "needs me", in real headless Chromium against a real hub.

Agent events are published as ``tailhub run --agent`` publishes them (a ``log`` whose
``data.metadata`` is ``{"agent": ..., "event": ...}``), from the sample streams of
``tests/agents/streams.py``. Screenshots go to ``test-output/dashboard/``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, expect

from tests.agents.streams import CLAUDE, CODEX, MODEL
from tests.helpers import UNIT, HubProcess, receive_type, wait_for
from tests.server.attention import QUESTION, WAITING, inject
from tests.server.test_dashboard import Dashboard, Publisher, connect_publisher, open_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

DOCS = Path(__file__).resolve().parents[2] / "docs"


async def publish_event(
    pub: Publisher, container: str, agent: str, event: Any, message: str, level: str = "info"
) -> None:
    """Publishes one agent event the way ``tailhub run --agent`` does."""
    await pub.log(container, message, level=level, metadata={"agent": agent, "event": event})


async def publish_stream(
    pub: Publisher, container: str, agent: str, stream: list[tuple[dict[str, Any], str, str]]
) -> None:
    for event, message, level in stream:
        await publish_event(pub, container, agent, event, message, level)


def step(page_or_pane: Any, call_id: str) -> Locator:
    """The timeline row of a tool call (or Codex item) by its id."""
    return page_or_pane.locator(f'.arow[data-id="{call_id}"]')


async def open_step(row: Locator) -> None:
    await row.locator(".a-toggle").click()
    await expect(row.locator(".a-toggle")).to_have_attribute("aria-expanded", "true")


class TestAgentView:
    async def test_claude_run_calls_diffs_subagent_raw_toggle_and_live_cost(
        self, dashboard: Dashboard, publisher: Publisher
    ) -> None:
        """Each tool call shows with its result, an Edit as a diff, a subagent under its Task;
        the header follows the run live; the raw view is a click away; the list and top bar
        show the cost."""
        cid = "claude-1"
        *before_result, (result, result_line, result_level) = CLAUDE
        await publish_stream(publisher, cid, "claude", before_result)
        await publisher.flush()

        await dashboard.open(hash=f"#view={cid}")
        page = dashboard.page
        head = page.locator(".agent-head")
        await expect(head.locator(".agent-model")).to_have_text(MODEL)
        await expect(head.locator(".agent-cost")).to_have_text("$ \N{EN DASH}")

        # A failed Bash call, joined to its result: command, output, exit code.
        bash = step(page, "toolu_01")
        await expect(bash.locator(".a-text")).to_have_text("Bash: pytest -q → exit 1")
        await expect(bash.locator(".a-state")).to_have_text("exit 1")
        await expect(bash.locator(".a-state")).to_have_class(re.compile(r"\bst-failed\b"))
        await expect(bash.locator(".a-details")).to_have_count(0)  # collapsed by default
        await open_step(bash)
        details = bash.locator(".a-details")
        await expect(details.locator(".d-cmd")).to_have_text("$ pytest -q")
        await expect(details).to_contain_text("FAILED tests/test_app.py::test_add")
        await expect(details.locator(".d-bad").last).to_have_text("exit 1")

        # The Edit as a diff, from its structuredPatch.
        edit = step(page, "toolu_02")
        await expect(edit.locator(".a-text")).to_have_text("Edit src/app.py (+3 \N{MINUS SIGN}1)")
        await open_step(edit)
        diff = edit.locator(".a-details")
        await expect(diff.locator(".d-file")).to_have_text("src/app.py")
        await expect(diff.locator(".d-hunk")).to_have_text("@@ -1,2 +1,4 @@")
        await expect(diff.locator(".d-del")).to_have_text(["-    return a - b"])
        await expect(diff.locator(".d-add")).to_have_text(["+    return a + b", "+", "+# fixed"])

        # The subagent's steps are nested under the Task call that started them.
        task = step(page, "toolu_03")
        await expect(task.locator(".a-children")).to_have_text("1 step")
        await expect(step(page, "toolu_s1")).to_have_count(0)
        await open_step(task)
        nested = step(page, "toolu_s1")
        await expect(nested).to_have_class(re.compile(r"\bnested\b"))
        await expect(nested.locator(".a-text")).to_have_text("Read README.md → ok")
        task_box = await task.bounding_box()
        nested_box = await nested.bounding_box()
        assert task_box is not None
        assert nested_box is not None
        assert nested_box["y"] > task_box["y"]

        # The header's cost follows the run live; a call left without a result says so.
        search = step(page, "srvtoolu_01").locator(".a-state")
        await expect(search).to_have_text("running")
        await publish_event(publisher, cid, "claude", result, result_line, result_level)
        await expect(search).to_have_text("no result")
        await expect(head.locator(".agent-cost")).to_have_text("$0.042")
        await expect(head.locator(".agent-turns")).to_have_text("5 turns · 5 tool calls")
        await expect(head.locator(".agent-activity")).to_have_text("done: success")
        await expect(head.locator(".ctx-text")).to_have_text("context 1.1%")
        await expect(head.locator(".agent-took")).to_have_text("12.0 s")
        await dashboard.screenshot("agent-view")
        later = copy.deepcopy(result)
        later["total_cost_usd"] = 0.1234
        await publish_event(publisher, cid, "claude", later, "result: success · $0.123")
        await expect(head.locator(".agent-cost")).to_have_text("$0.123")

        # The session list and the top bar show the cost the hub adds up.
        card = dashboard.session(cid)
        await expect(card.locator(".fact-cost")).to_have_text("$0.123")
        await expect(card.locator(".fact-activity")).to_have_text("done: success")
        await expect(page.locator("#fleet-cost")).to_have_text("Fleet $0.123")

        # The raw view shows the log's lines; the agent view comes back.
        raw = page.get_by_role("button", name="Raw view")
        await raw.click()
        await expect(page.locator(".agent-viewport")).to_be_hidden()
        await expect(dashboard.rows()).to_have_count(len(CLAUDE) + 1)
        await expect(dashboard.rows().first).to_contain_text(f"init · {MODEL}")
        await page.get_by_role("button", name="Agent view").click()
        await expect(page.locator(".agent-viewport")).to_be_visible()
        await expect(dashboard.page.locator(".pane > .viewport")).to_be_hidden()
        await expect(bash.locator(".a-details")).to_have_count(1)  # still open
        dashboard.assert_no_errors()

    async def test_codex_run_shell_file_change_and_turns(
        self, shared_dashboard: Dashboard, shared_publisher: Publisher
    ) -> None:
        """A Codex run: its turns, a command with output and exit code, a file change."""
        cid = "codex-1"
        stream = copy.deepcopy(CODEX)
        change = stream[5][0]["item"]["changes"][0]
        change["diff"] = "@@ -1 +1 @@\n-return a - b\n+return a + b\n"
        await publish_stream(shared_publisher, cid, "codex", stream)
        await shared_publisher.flush()
        await shared_dashboard.open(hash=f"#view={cid}")
        page = shared_dashboard.page
        await expect(page.locator(".agent-kind")).to_have_text("Codex")
        await expect(page.locator(".arow.k-turn")).to_have_text(
            [re.compile("Turn 1"), re.compile("Turn 2")]
        )
        shell = step(page, "item_1")
        await expect(shell.locator(".a-text")).to_have_text("shell: pytest -q → exit 1")
        await expect(shell.locator(".a-state")).to_have_text("exit 1")
        await open_step(shell)
        await expect(shell.locator(".d-cmd")).to_have_text("$ bash -lc 'pytest -q'")
        await expect(shell.locator(".d-out")).to_have_text("1 failed, 4 passed")
        files = step(page, "item_2")
        await open_step(files)
        await expect(files.locator(".d-file")).to_have_text(
            ["src/app.py (update)", "tests/test_new.py (add)"]
        )
        await expect(files.locator(".d-add")).to_have_text("+return a + b")
        await expect(files.locator(".d-del")).to_have_text("-return a - b")
        # The second turn failed while its command ran: the command never got a result.
        unfinished = step(page, "item_7")
        await expect(unfinished.locator(".a-state")).to_have_text("no result")
        await expect(page.locator(".agent-turns")).to_have_text("2 turns · 5 tool calls")
        await shared_dashboard.screenshot("agent-codex")
        shared_dashboard.assert_no_errors()

    async def test_hostile_results_are_inert_and_cut_and_bad_events_show_raw(
        self, shared_dashboard: Dashboard, shared_publisher: Publisher
    ) -> None:
        """Escape sequences, markup and a huge output stay text, cut with *Show all*; events
        the view cannot read are shown raw and the rest still works."""
        cid = "hostile"
        pub = shared_publisher
        call = {
            "type": "assistant",
            "message": {
                "id": "m1",
                "model": MODEL,
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "cat x"}}
                ],
            },
            "parent_tool_use_id": None,
        }
        big = "\x1b[31m<img src=x onerror=window.__xss=1>\x1b[0m\x1b]0;title\x07 <b>bold</b>\n"
        big += "".join(f"line {i} " + "x" * 2000 + "\n" for i in range(300))
        output = {
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": big}],
            },
            "parent_tool_use_id": None,
        }
        await publish_event(pub, cid, "claude", {"type": "assistant", "message": "oops"}, "odd")
        await publish_event(pub, cid, "claude", ["not", "an", "event"], "odder")
        await publish_event(pub, cid, "claude", call, "Bash: cat x")
        await publish_event(pub, cid, "claude", output, "Bash: cat x → ok")
        await pub.flush()
        await shared_dashboard.open(hash=f"#view={cid}")
        page = shared_dashboard.page
        await expect(page.locator(".arow.k-raw")).to_have_count(2)
        await open_step(page.locator(".arow.k-raw").first)
        await expect(page.locator(".arow.k-raw .a-details")).to_contain_text('"message": "oops"')

        row = step(page, "t1")
        await open_step(row)
        lines = row.locator(".a-details .dl")
        await expect(lines.nth(1)).to_have_text("<img src=x onerror=window.__xss=1> <b>bold</b>")
        assert await page.locator(".agent-viewport img, .agent-viewport b").count() == 0
        assert await page.evaluate("window.__xss") is None
        show_all = row.get_by_role("button", name="Show all")
        await expect(show_all).to_be_visible()
        count = await lines.count()
        assert count < 50
        longest = max(len(t) for t in await lines.all_text_contents())
        assert longest <= 1001
        await show_all.click()
        await expect(show_all).to_have_count(0)

        async def all_shown() -> bool:
            return await lines.count() > 300

        await wait_for(all_shown)
        shared_dashboard.assert_no_errors()


async def _open_with_calls(dash: Any, hub: HubProcess, cid: str, count: int) -> tuple[Any, Any]:
    """Publish ``count`` answered tool calls of ``cid``, open its agent view on ``dash``, and
    wait until the header counts them and the list shows the last one answered (the header
    may count from the hub's summary before the backlog is in the list); the page and the
    header's turn count."""
    async with connect_publisher(hub) as pub:
        await publish_calls(pub, cid, 0, count)
        await pub.flush()
    await dash.open(hash=f"#view={cid}")
    page = dash.page
    turns = page.locator(".agent-turns")
    await expect(turns).to_have_text(f"{count:,} turns · {count:,} tool calls")
    await expect(step(page, f"call-{count - 1}").locator(".a-state")).to_have_text("exit 0")
    return page, turns


class TestManyEvents:
    async def test_ten_thousand_events_stay_virtualised_and_resume_after_a_restart(
        self, browser: Browser, fast_hub: HubProcess
    ) -> None:
        """10,000 events: the DOM holds a window of rows. Killed and restarted, the hub is
        rejoined with `since`: a result for a call made before is joined to it, once."""
        cid = "busy-agent"
        async with open_page(browser, fast_hub) as dash:
            # Half before the page opens (its backlog), half live while it watches.
            page, turns = await _open_with_calls(dash, fast_hub, cid, 2500)
            async with connect_publisher(fast_hub) as pub:
                await publish_calls(pub, cid, 2500, 5000)
                await pub.flush()
            await expect(turns).to_have_text(
                "5,000 turns · 5,000 tool calls", timeout=60_000 * UNIT
            )
            await expect(step(page, "call-4999").locator(".a-state")).to_have_text("exit 0")
            assert await page.locator(".arow").count() < 200
            await page.locator(".agent-viewport").press("Home")
            await expect(step(page, "call-0")).to_be_visible()
            assert await page.locator(".arow").count() < 200
            await page.locator(".agent-viewport").press("End")

            async with connect_publisher(fast_hub) as pub:
                await publish_event(pub, cid, "claude", tool_call(5000), "Bash: echo 5000")
                await pub.flush()
            await expect(step(page, "call-5000").locator(".a-state")).to_have_text("running")

            fast_hub.kill()
            await expect(page.locator("#conn")).not_to_have_attribute("data-state", "open")
            fast_hub.start()
            async with connect_publisher(fast_hub) as pub:
                await publish_event(pub, cid, "claude", tool_result(5000), "Bash: echo 5000 → ok")
                await publish_calls(pub, cid, 5001, 5003)
                await pub.flush()
            await expect(page.locator("#conn-text")).to_have_text("Live")
            await expect(step(page, "call-5000").locator(".a-state")).to_have_text("exit 0")
            await expect(turns).to_have_text("5,003 turns · 5,003 tool calls")
            await expect(step(page, "call-5002").locator(".a-state")).to_have_text("exit 0")
            assert await step(page, "call-5000").count() == 1
            await dash.screenshot("agent-many-events")
            dash.assert_no_errors(allowed=Dashboard.HUB_DOWN)

    async def test_home_while_steps_stream_in_stays_at_the_top(
        self, browser: Browser, fast_hub: HubProcess
    ) -> None:
        """Home pressed while steps are still being added takes the view to the first one,
        and it stays there as more arrive (the list does not take the view back to the end)."""
        cid = "home-agent"
        async with open_page(browser, fast_hub) as dash:
            page, turns = await _open_with_calls(dash, fast_hub, cid, 2500)
            await page.locator(".agent-viewport").press("Home")
            async with connect_publisher(fast_hub) as pub:
                await publish_calls(pub, cid, 2500, 2600)
                await pub.flush()
            await expect(turns).to_have_text("2,600 turns · 2,600 tool calls")
            await expect(step(page, "call-0")).to_be_visible()
            dash.assert_no_errors()


def tool_call(n: int) -> dict[str, Any]:
    return {
        "type": "assistant",
        "message": {
            "id": f"msg-{n}",
            "model": MODEL,
            "content": [
                {
                    "type": "tool_use",
                    "id": f"call-{n}",
                    "name": "Bash",
                    "input": {"command": f"echo {n}"},
                }
            ],
            "usage": {"input_tokens": 10, "output_tokens": 5},
        },
        "parent_tool_use_id": None,
    }


def tool_result(n: int) -> dict[str, Any]:
    return {
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": f"call-{n}", "content": str(n)}],
        },
        "parent_tool_use_id": None,
    }


async def publish_calls(pub: Publisher, cid: str, start: int, stop: int) -> None:
    for n in range(start, stop):
        await publish_event(pub, cid, "claude", tool_call(n), f"Bash: echo {n}")
        await publish_event(pub, cid, "claude", tool_result(n), f"Bash: echo {n} → ok")


PERMISSION = {
    "type": "control_request",
    "request_id": "req_1",
    "request": {
        "subtype": "can_use_tool",
        "tool_name": "Bash",
        "input": {"command": "rm -rf build <b>now</b>"},
    },
}
"""Claude Code asking for a permission, as it sends it (the request of :data:`WAITING`)."""
ANSWERED = {
    "type": "control_response",
    "response": {"subtype": "success", "request_id": "req_1", "response": {"behavior": "deny"}},
}
"""The answer to :data:`PERMISSION`, as ``tailhub run`` publishes what it wrote."""


async def next_command(pub: Publisher) -> dict[str, Any]:
    """The next command the hub routes to this publisher's container (acks skipped), without
    the time the hub stamped on it."""
    message: dict[str, Any] = await receive_type(pub.ws, "command", timeout=10 * UNIT)
    assert isinstance(message.pop("timestamp"), str)
    return message


class TestNeedsMe:
    async def test_waiting_request_answers_filter_title_and_notification(
        self, dashboard: Dashboard, publisher: Publisher
    ) -> None:
        """A waiting session shows its request; Approve, Deny and a reply reach the
        container as the documented commands; the filter, count and title follow; a session
        that starts waiting while the tab is hidden raises a browser notification."""
        await publisher.log("asker", "about to ask")
        await publisher.log("calm", "nothing to ask")
        await publisher.flush()
        page = dashboard.page
        await page.context.grant_permissions(["notifications"], origin=dashboard.hub.http)
        await dashboard.open(hash="#view=asker")
        await expect(page.locator("#conn-text")).to_have_text("Live")
        panel = page.get_by_role("region", name="asker needs you")
        await expect(dashboard.session("calm")).to_be_visible()
        await expect(panel).to_be_hidden()
        await expect(page.get_by_role("button", name="Approve for asker")).to_be_hidden()
        await expect(page).to_have_title("tailhub")

        # The agent asks for a permission: the hub turns the session waiting and says so.
        await publisher.log(
            "asker",
            "permission request: Bash: rm -rf build <b>now</b>",
            level="warn",
            metadata={"agent": "claude", "event": PERMISSION},
        )
        await publisher.flush()
        await expect(panel).to_be_visible()
        await expect(panel.locator(".needs-head")).to_contain_text("Waiting for you: permission")
        await expect(panel.locator(".needs-tool")).to_have_text("Bash")
        await expect(panel.locator(".needs-input")).to_contain_text(
            '"command": "rm -rf build <b>now</b>"'
        )
        assert await panel.locator("b").count() == 0
        await expect(page.locator("#needs-me-count")).to_have_text("1")
        await expect(page).to_have_title("(1) tailhub")
        await expect(dashboard.session("asker").locator(".fact-needs")).to_have_text(
            "needs you: Bash: rm -rf build <b>now</b>"
        )
        await dashboard.screenshot("needs-me")

        # The filter shows only the sessions that wait.
        await page.get_by_role("button", name=re.compile("^Needs me")).click()
        await expect(page.locator(".session")).to_have_count(1)
        await expect(dashboard.session("asker")).to_be_visible()

        # Approve and Deny carry the request's id; a reply its text.
        await page.get_by_role("button", name="Approve for asker").click()
        assert await next_command(publisher) == {
            "type": "command",
            "containerID": "asker",
            "data": {"action": "approve", "requestId": "req_1"},
        }
        await expect(panel.locator(".needs-outcome")).to_have_text("approve sent to 1 connection")
        await page.get_by_label("Reason to deny, for asker").fill("not that")
        await page.get_by_role("button", name="Deny for asker").click()
        assert (await next_command(publisher))["data"] == {
            "action": "deny",
            "requestId": "req_1",
            "message": "not that",
        }
        reply = page.get_by_role("textbox", name="Reply to asker")
        await reply.fill("use pytest -x")
        await reply.press("Enter")
        assert (await next_command(publisher))["data"] == {
            "action": "reply",
            "text": "use pytest -x",
        }
        await expect(reply).to_have_value("")

        # A question shows its options; choosing one replies with it.
        await inject(page, "asker", QUESTION)
        await expect(panel.locator(".needs-question")).to_have_text("Which test runner?")
        await expect(page.get_by_role("button", name="Approve for asker")).to_be_hidden()
        await page.get_by_role("button", name="Answer pytest").click()
        assert (await next_command(publisher))["data"] == {"action": "reply", "text": "pytest"}

        # Answered (tailhub run publishes the answer it wrote): the hub clears the state, the
        # controls go, the count and title follow.
        await publisher.log(
            "asker",
            "permission answered",
            metadata={"agent": "claude", "event": ANSWERED},
        )
        await publisher.flush()
        await expect(panel).to_be_hidden()
        await expect(page.locator("#needs-me-count")).to_be_hidden()
        await expect(page).to_have_title("tailhub")
        await expect(page.locator(".session")).to_have_count(0)
        await page.get_by_role("button", name=re.compile("^Needs me")).click()
        await expect(page.locator(".session")).to_have_count(2)

        # In the background, a session that starts waiting raises a notification.
        await page.evaluate(
            """() => {
                Object.defineProperty(document, "visibilityState", {value: "hidden",
                                                                    configurable: true});
                document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
        await inject(page, "calm", WAITING)
        shown = await page.evaluate(
            """async () => {
                const { notifications } = await import("/static/js/needs-me.js");
                return notifications.map((n) => [n.title, n.body, n.tag]);
            }"""
        )
        body = "permission: Bash: rm -rf build <b>now</b>"
        assert shown == [["calm needs you", body, "tailhub-calm"]]
        dashboard.assert_no_errors()

    async def test_sessions_field_is_taken_unless_a_push_is_newer(
        self, shared_dashboard: Dashboard
    ) -> None:
        """The session objects' `attention` field sets the state; a field left out (a hub
        that does not derive attention) and a push newer than the reply are kept."""
        await shared_dashboard.open()
        seen = await shared_dashboard.page.evaluate(
            """async ([waiting]) => {
                const { AttentionStore } = await import("/static/js/attention.js");
                const store = new AttentionStore();
                const changes = [];
                store.listeners.add((id, _, after) => changes.push([id, after?.state ?? null]));
                store.fromSessions([
                    {containerID: "a", active: true, attention: waiting},
                    {containerID: "b", active: true},
                    {containerID: "c", active: false, attention: {state: "done", reason: "x"}},
                    {containerID: "c", active: true, attention: null},
                    {containerID: "d", active: true, attention: {state: "bogus"}},
                ]);
                const first = store.waitingIds();
                store.receive({type: "attention", containerID: "b", data: waiting});
                store.fromSessions([{containerID: "b", active: true, attention: null}]);
                const kept = store.waiting("b")?.request?.id ?? null;
                store.fromSessions([{containerID: "a", active: true, attention: null}]);
                return {first, kept, changes, a: store.get("a")};
            }""",
            [WAITING],
        )
        assert seen == {
            "first": ["a"],
            "kept": "req_1",
            "changes": [["a", "waiting"], ["b", "waiting"], ["a", None]],
            "a": None,
        }
        shared_dashboard.assert_no_errors()


class TestTimelineModel:
    async def test_odd_events_new_runs_and_the_merged_summary(
        self, shared_dashboard: Dashboard
    ) -> None:
        """A result before its call, wrong field types and non-objects never throw; a new run
        starts the timeline afresh; the header's numbers never go below the hub's."""
        await shared_dashboard.open()
        seen = await shared_dashboard.page.evaluate(
            """async () => {
                const { toEntry, startsRun } = await import("/static/js/entry.js");
                const { AgentTimeline, mergeSummary } = await import("/static/js/agent-model.js");
                let seq = 0;
                let previous;
                const entry = (type, data) => {
                    const e = toEntry({type, containerID: "m", seq: ++seq, data});
                    e.runStart = startsRun(previous, e);
                    previous = e;
                    return e;
                };
                const ev = (event, message = "x") =>
                    entry("log", {level: "info", message, metadata: {agent: "claude", event}});
                const t = new AgentTimeline();
                const odd = [
                    {type: "user", message: {content: [{type: "tool_result",
                        tool_use_id: "early", content: "done"}]}},
                    {type: "assistant", message: {id: 5, content: "text, not blocks"}},
                    {type: "assistant", message: {id: "m1", content: [null, 3,
                        {type: "tool_use", id: {}, name: ["Bash"], input: "rm"}],
                        usage: {input_tokens: "many", output_tokens: -4}}},
                    {type: "result", total_cost_usd: "free", modelUsage: {x: null}},
                    42,
                    null,
                ];
                for (const event of odd) t.add(ev(event));
                const kinds = t.steps.map((s) => s.kind);
                const tokens = {...t.summary.tokens};
                t.add(entry("complete", {exitCode: 0}));
                t.add(entry("status", {status: "starting"}));
                t.add(ev({type: "assistant", message: {id: "n1", content: [
                    {type: "text", text: "second run"}], usage: {input_tokens: 7}}}));
                const afterRun = t.steps.map((s) => s.kind);
                const merged = mergeSummary(
                    {kind: "claude", turns: 9, tokens: {input: 100, output: 5},
                     toolCalls: {Bash: 2}, costUsd: 0.5, contextWindow: 1000, activity: "x"},
                    t.summary);
                return {kinds, tokens, afterRun, merged: {
                    turns: merged.turns, input: merged.tokens.input, cost: merged.costUsd,
                    calls: merged.toolCalls, ctx: merged.contextPct, lastText: merged.lastText}};
            }"""
        )
        assert seen["kinds"] == ["tool", "raw", "turn", "tool", "result", "raw", "raw"]
        assert seen["tokens"] == {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}
        assert seen["afterRun"] == ["turn", "text"]
        assert seen["merged"] == {
            "turns": 9,
            "input": 100,
            "cost": 0.5,
            "calls": {"Bash": 2},
            "ctx": 0.7,
            "lastText": "second run",
        }
        shared_dashboard.assert_no_errors()
