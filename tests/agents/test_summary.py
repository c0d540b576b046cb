"""The summary reducer: what a session's events add up to."""

from __future__ import annotations

import json
from typing import Any

from tailhub.agents import AgentSummary, decode_event
from tests.agents.streams import CLAUDE, CLAUDE_SUMMARY, CODEX, CODEX_SUMMARY, lines


def _summarise(kind: str, events: list[Any]) -> AgentSummary:
    summary = AgentSummary(kind)
    for event in events:
        decoded = decode_event(event if isinstance(event, str) else json.dumps(event))
        if decoded is not None:
            summary.update(decoded)
    return summary


class TestClaude:
    def test_sample_stream_sums(self) -> None:
        """Turns, tool calls, split usage counted once, subagents, cost, context, result."""
        assert CLAUDE_SUMMARY == _summarise("claude", lines(CLAUDE)).to_json()

    def test_live_numbers_before_the_result(self) -> None:
        """Before the result: turns counted from messages, activity is the last tool call."""
        before_subagent_result = [event for event, _, _ in CLAUDE[:9]]
        summary = _summarise("claude", before_subagent_result).to_json()
        assert 3 == summary["turns"]
        assert "Read README.md" == summary["activity"]
        assert {"Bash": 1, "Edit": 1, "Task": 1, "Read": 1} == summary["toolCalls"]
        assert {"input": 145, "output": 145, "cacheRead": 4500, "cacheWrite": 600} == summary[
            "tokens"
        ]
        assert summary["costUsd"] is None
        assert summary["contextPct"] is None
        assert summary["result"] is None
        assert "I'll fix the failing test first." == summary["lastText"]

    def test_split_usage_counted_once(self) -> None:
        """Three lines of one message: tokens are the largest seen, not the sum."""
        line = {
            "type": "assistant",
            "message": {
                "id": "m1",
                "content": [{"type": "text", "text": "a"}],
                "usage": {"input_tokens": 10, "output_tokens": 5},
            },
        }
        later = json.loads(json.dumps(line))
        later["message"]["usage"]["output_tokens"] = 9
        summary = _summarise("claude", [line, later, line]).to_json()
        assert 1 == summary["turns"]
        assert {"input": 10, "output": 9, "cacheRead": 0, "cacheWrite": 0} == summary["tokens"]

    def test_repeated_tool_call_counted_once(self) -> None:
        """The same tool_use id seen twice is one call."""
        event = {
            "type": "assistant",
            "message": {"id": "m", "content": [{"type": "tool_use", "id": "t", "name": "Bash"}]},
        }
        assert {"Bash": 1} == _summarise("claude", [event, event]).to_json()["toolCalls"]

    def test_result_before_any_turn(self) -> None:
        """A result with nothing before it: its numbers are taken, nothing raised."""
        event = {"type": "result", "subtype": "error_during_execution", "is_error": True}
        summary = _summarise("claude", [event]).to_json()
        assert "error_during_execution" == summary["result"]
        assert 0 == summary["turns"]
        assert summary["costUsd"] is None

    def test_malformed_events_count_nothing(self) -> None:
        """Events with wrong field types, missing ids or odd values add only what they can."""
        events = [
            '{"type": "assistant", "message": {"id": 5}}',
            '{"type": "assistant", "message": {"id": "m", "usage": {"input_tokens": "many"}}}',
            '{"type": "result", "subtype": "success", "total_cost_usd": "free"}',
            "not json",
            {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Bash"}]}},
            {
                "type": "assistant",
                "message": {"id": "neg", "usage": {"input_tokens": -5, "output_tokens": 3}},
            },
            {"type": "assistant", "message": "a string"},
            {"type": "result", "num_turns": -1},
        ]
        summary = _summarise("claude", events).to_json()
        assert {"Bash": 1} == summary["toolCalls"]
        assert 1 == summary["turns"]
        assert {"input": 0, "output": 3, "cacheRead": 0, "cacheWrite": 0} == summary["tokens"]
        assert summary["costUsd"] is None
        assert "unknown" == summary["result"]

    def test_model_from_messages_when_no_init(self) -> None:
        """Without an init event, the main thread's messages name the model."""
        event = {"type": "assistant", "message": {"id": "m", "model": "claude-opus-4-1"}}
        assert "claude-opus-4-1" == _summarise("claude", [event]).to_json()["model"]


class TestCodex:
    def test_sample_stream_sums(self) -> None:
        """Turns, items as tool calls, uncached input, the failed last turn."""
        assert CODEX_SUMMARY == _summarise("codex", lines(CODEX)).to_json()

    def test_activity_while_running(self) -> None:
        """While a command runs, activity names it; a completed turn clears it."""
        running = [event for event, _, _ in CODEX[:4]]
        summary = _summarise("codex", running).to_json()
        assert "shell: pytest -q" == summary["activity"]
        assert summary["result"] is None

    def test_odd_usage(self) -> None:
        """Cached tokens above the input, missing counts: nothing negative, nothing raised."""
        events = [
            {"type": "turn.completed", "usage": {"input_tokens": 5, "cached_input_tokens": 50}},
            {"type": "turn.completed"},
            {"type": "item.completed"},
            {"type": "item.completed", "item": {"type": "mcp_tool_call"}},
        ]
        summary = _summarise("codex", events).to_json()
        assert {"input": 0, "output": 0, "cacheRead": 5, "cacheWrite": 0} == summary["tokens"]
        assert {"mcp__unknown__unknown": 1} == summary["toolCalls"]
