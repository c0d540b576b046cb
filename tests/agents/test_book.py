"""The hub's side: summaries per container from published log data, and fleet totals."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from tailhub.agents import AgentBook, fleet_totals, looks_like_agent
from tests.agents.streams import CLAUDE, CLAUDE_SUMMARY, CODEX, CODEX_SUMMARY


def _data(agent: str, event: Any, message: str = "summary") -> bytes:
    return json.dumps(
        {"level": "info", "message": message, "metadata": {"agent": agent, "event": event}}
    ).encode()


class TestAgentBook:
    def test_streams_per_container(self) -> None:
        """Each container's events build its own summary, as the reducer would."""
        book = AgentBook()
        for event, _, _ in CLAUDE:
            assert book.observe("c1", msgspec.Raw(_data("claude", event)))
        for event, _, _ in CODEX:
            assert book.observe("c2", _data("codex", event))
        assert CLAUDE_SUMMARY == book.to_json("c1")
        assert CODEX_SUMMARY == book.to_json("c2")
        assert book.to_json("c3") is None

    def test_as_the_runner_lays_it_out(self) -> None:
        """Compact data as tailhub run sends it: events the summary does not read are passed
        over undecoded, and the summary is the same."""
        book = AgentBook()
        counted = []
        for event, words, level in CLAUDE:
            line = json.dumps(event, separators=(",", ":")).encode()
            data = msgspec.json.encode(
                {
                    "level": level,
                    "message": words,
                    "metadata": {"agent": "claude", "event": msgspec.Raw(line)},
                }
            )
            counted.append(book.observe("c", msgspec.Raw(data)))
        unread = {"user", "stream_event", "rate_limit_event", "control_request"}
        assert [event["type"] not in unread for event, _, _ in CLAUDE] == counted
        assert CLAUDE_SUMMARY == book.to_json("c")

    def test_not_agent_data(self) -> None:
        """Plain logs, other agents, events of the wrong shape, broken JSON: nothing counted."""
        book = AgentBook()
        refused = [
            b'{"level": "info", "message": "the agent said hi"}',
            _data("gemini", {"type": "assistant"}),
            _data("claude", {"type": "assistant", "message": {"id": 5}}),
            _data("claude", "not an object"),
            b'{"level": "info", "message": "x", "metadata": {"agent": "claude"}}',
            b'{"level": "info", "message": "x", "metadata": "agent"}',
            b'{"level": "info", "message": "x", "metadata": {"agent": "claude", "event"',
        ]
        assert [False] * len(refused) == [book.observe("c", data) for data in refused]
        assert book.get("c") is None

    def test_the_byte_test(self) -> None:
        """The hot path's byte search finds agent data and passes plain logs."""
        assert looks_like_agent(msgspec.Raw(_data("claude", {"type": "result"})))
        assert not looks_like_agent(msgspec.Raw(b'{"level":"info","message":"agent smith"}'))

    def test_forget_and_limit(self) -> None:
        """forget() starts a container afresh; beyond the limit the stalest is dropped."""
        book = AgentBook(limit=2)
        event = CODEX[1][0]
        for name in ("a", "b", "a", "c"):
            book.observe(name, _data("codex", event))
        assert book.get("b") is None
        assert book.get("a") is not None
        book.forget("a")
        assert book.get("a") is None

    def test_kind_change_starts_over(self) -> None:
        """A container that switches from one stream to the other gets a new summary."""
        book = AgentBook()
        book.observe("c", _data("codex", CODEX[1][0]))
        book.observe("c", _data("claude", CLAUDE[0][0]))
        summary = book.to_json("c")
        assert summary is not None
        assert ("claude", 0) == (summary["kind"], summary["turns"])

    def test_kept_and_restored(self) -> None:
        """What changed is handed out once; a restored summary counts on from its numbers."""
        book = AgentBook()
        for event, _, _ in CODEX[:12]:
            book.observe("c", _data("codex", event))
        kept = book.take_changed()
        assert ["c"] == list(kept)
        assert {} == book.take_changed()
        again = AgentBook()
        assert again.restore("c", json.loads(json.dumps(kept["c"])))
        assert kept["c"] == again.to_json("c")
        for event, _, _ in CODEX[12:]:
            again.observe("c", _data("codex", event))
        final = again.to_json("c")
        assert final is not None
        assert (CODEX_SUMMARY["turns"], CODEX_SUMMARY["tokens"], CODEX_SUMMARY["result"]) == (
            final["turns"],
            final["tokens"],
            final["result"],
        )

    def test_restore_refuses_other_values(self) -> None:
        """Values that are no summary are refused; odd numbers inside one are dropped."""
        book = AgentBook()
        assert not book.restore("c", {"kind": "gemini"})
        assert not book.restore("c", "claude")
        assert book.restore("c", {"kind": "claude", "turns": -1, "tokens": {"input": "x"}})
        restored = book.to_json("c")
        assert restored is not None
        assert (0, 0) == (restored["turns"], restored["tokens"]["input"])


class TestFleetTotals:
    def test_totals(self) -> None:
        """Sessions by status, running, failed, and cost and tokens summed over agents."""
        tokens = {"input": 1, "output": 2, "cacheRead": 3, "cacheWrite": 4}
        sessions = [
            {"status": "running", "active": True, "agent": {"costUsd": 0.5, "tokens": tokens}},
            {"status": "error", "active": False, "agent": {"costUsd": None, "tokens": tokens}},
            {"status": "completed", "active": False, "agent": None},
            {"status": "running", "active": True},
        ]
        assert {
            "sessions": 4,
            "byStatus": {"running": 2, "error": 1, "completed": 1},
            "running": 2,
            "failed": 1,
            "agents": 2,
            "costUsd": 0.5,
            "tokens": {"input": 2, "output": 4, "cacheRead": 6, "cacheWrite": 8},
        } == fleet_totals(sessions)

    def test_empty(self) -> None:
        assert 0 == fleet_totals([])["sessions"]
