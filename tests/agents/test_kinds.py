"""The kind of step each event is, as the CLI colours it."""

from __future__ import annotations

from tailhub.agents import event_kind
from tests.agents.streams import CLAUDE, CODEX


class TestEventKind:
    def test_claude_stream(self) -> None:
        """Text, thinking, tool calls, their results, system events and the result."""
        assert [
            "system",
            "text",
            "tool",
            "tool_result",
            "thinking",
            "tool",
            "tool_result",
            "tool",
            "tool",
            "tool_result",
            "tool_result",
            "system",
            "system",
            "system",
            "tool",
            "text",
            "system",
            "system",
            "other",
            "result",
        ] == [event_kind("claude", event) for event, _, _ in CLAUDE]

    def test_codex_stream(self) -> None:
        """Items by type; a tool item is a call while it runs and a result once completed."""
        assert [
            "system",
            "system",
            "thinking",
            "tool",
            "tool_result",
            "tool_result",
            "tool",
            "tool_result",
            "tool_result",
            "other",
            "text",
            "result",
            "system",
            "tool",
            "system",
            "result",
        ] == [event_kind("codex", event) for event, _, _ in CODEX]

    def test_odd_values(self) -> None:
        """Anything that is not an event of a known shape is other."""
        odd = [None, "x", [], {"type": "assistant", "message": "x"}, {"type": "assistant"}]
        assert ["other"] * 5 == [event_kind("claude", value) for value in odd]
        assert "other" == event_kind("codex", {"type": "item.completed", "item": 3})
