"""Recognising agent events in output lines, and the line and level each is shown with."""

from __future__ import annotations

import json

import pytest

from tailhub.agents import Recognised, Recogniser
from tests.agents.streams import CLAUDE, CODEX, lines


def _line(event: dict[str, object]) -> str:
    return json.dumps(event)


class TestClaudeStream:
    @pytest.mark.parametrize("mode", ["auto", "claude"])
    def test_every_event_described(self, mode: str) -> None:
        """Each event of the sample stream gets its own line and level, in order."""
        recogniser = Recogniser(mode)  # type: ignore[arg-type]
        got = [recogniser.recognise(line) for line in lines(CLAUDE)]
        expected = [Recognised("claude", summary, level) for _, summary, level in CLAUDE]
        assert expected == got

    def test_result_failed(self) -> None:
        """A run that ends in error is an error line, with its denials counted."""
        recogniser = Recogniser("claude")
        event = {
            "type": "result",
            "subtype": "error_max_turns",
            "is_error": True,
            "num_turns": 1,
            "total_cost_usd": 1.5,
            "duration_ms": 61234,
            "permission_denials": [{"tool_name": "Bash", "tool_use_id": "t", "tool_input": {}}],
        }
        assert Recognised(
            "claude",
            "result: error_max_turns · 1 turn · $1.50 · 61.2 s · 1 permission denial",
            "error",
        ) == recogniser.recognise(_line(event))

    def test_failed_tool_without_exit_code(self) -> None:
        """A failed tool other than Bash shows the first line of its error."""
        recogniser = Recogniser("claude")
        call = {
            "type": "assistant",
            "message": {
                "id": "m",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "x"}}
                ],
            },
        }
        result = {
            "type": "user",
            "message": {
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": "File does not exist.\nmore",
                    }
                ]
            },
        }
        recogniser.recognise(_line(call))
        assert Recognised("claude", "Read x → error: File does not exist.", "error") == (
            recogniser.recognise(_line(result))
        )

    def test_result_for_unknown_call(self) -> None:
        """A tool result whose call was never seen is still described."""
        recogniser = Recogniser("claude")
        result = {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "tool_use_id": "zz", "content": "x"}]},
        }
        assert Recognised("claude", "tool result → ok", "info") == recogniser.recognise(
            _line(result)
        )

    def test_write_new_file(self) -> None:
        """A Write that creates a file counts its lines as added."""
        recogniser = Recogniser("claude")
        call = {
            "type": "assistant",
            "message": {
                "id": "m",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "w1",
                        "name": "Write",
                        "input": {"file_path": "new.py", "content": "a\nb\n"},
                    }
                ],
            },
        }
        result = {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "tool_use_id": "w1", "content": "ok"}]},
            "tool_use_result": {"type": "create", "filePath": "new.py", "content": "a\nb\n"},
        }
        assert Recognised("claude", "Write new.py", "info") == recogniser.recognise(_line(call))
        assert Recognised("claude", "Write new.py (+2 \N{MINUS SIGN}0)", "info") == (
            recogniser.recognise(_line(result))
        )

    def test_user_prompt(self) -> None:
        """A user message with plain text content is shown as the prompt."""
        event = {"type": "user", "message": {"role": "user", "content": "fix the tests\nplease"}}
        assert Recognised("claude", "user: fix the tests", "info") == Recogniser(
            "claude"
        ).recognise(_line(event))


class TestCodexStream:
    @pytest.mark.parametrize("mode", ["auto", "codex"])
    def test_every_event_described(self, mode: str) -> None:
        """Each event of the sample stream gets its own line and level, in order."""
        recogniser = Recogniser(mode)  # type: ignore[arg-type]
        got = [recogniser.recognise(line) for line in lines(CODEX)]
        expected = [Recognised("codex", summary, level) for _, summary, level in CODEX]
        assert expected == got

    def test_declined_and_failed_items(self) -> None:
        """A declined command warns; a failed patch or MCP call is an error."""
        recogniser = Recogniser("codex")
        declined = {
            "type": "item.completed",
            "item": {
                "id": "1",
                "type": "command_execution",
                "command": "rm x",
                "status": "declined",
            },
        }
        patch = {
            "type": "item.completed",
            "item": {"id": "2", "type": "file_change", "changes": [], "status": "failed"},
        }
        mcp = {
            "type": "item.completed",
            "item": {
                "id": "3",
                "type": "mcp_tool_call",
                "server": "s",
                "tool": "t",
                "status": "failed",
                "error": {"message": "timed out"},
            },
        }
        got = [recogniser.recognise(_line(e)) for e in (declined, patch, mcp)]
        assert [
            Recognised("codex", "shell: rm x → declined", "warn"),
            Recognised("codex", "file change → failed", "error"),
            Recognised("codex", "mcp s.t → failed: timed out", "error"),
        ] == got


class TestPlainLines:
    @pytest.mark.parametrize(
        "line",
        [
            "plain text",
            "",
            "[1, 2, 3]",
            '{"level": "info", "msg": "a JSON log line"}',
            '{"type": "custom", "value": 1}',
            '{"type": "error", "message": "could be anyone\'s"}',
            '{"type": "assistant", "text": "no message object"}',
            '{"type": "system"}',
            '{"type": "assistant", "message": {',
            '{"type": 3}',
        ],
    )
    def test_not_an_event_before_the_stream_is_known(self, line: str) -> None:
        """Text, JSON that is no known event, and broken JSON stay plain lines."""
        assert Recogniser("auto").recognise(line) is None

    def test_none_recognises_nothing(self) -> None:
        """--agent none: even a perfect event is a plain line."""
        assert Recogniser("none").recognise(lines(CLAUDE)[0]) is None

    def test_unknown_mode(self) -> None:
        with pytest.raises(ValueError, match="agent must be one of"):
            Recogniser("gemini")  # type: ignore[arg-type]

    def test_plain_lines_between_events(self) -> None:
        """Once the stream is known, text lines and JSON without a type are still plain."""
        recogniser = Recogniser("auto")
        assert recogniser.recognise(lines(CODEX)[0]) is not None
        assert recogniser.recognise("warning: something") is None
        assert recogniser.recognise('{"no": "type"}') is None
        assert "codex" == recogniser.agent


class TestUnknownAndMalformed:
    def test_unknown_type_kept_once_stream_known(self) -> None:
        """An event type tailhub does not know is kept as an event, named by its type."""
        recogniser = Recogniser("auto")
        recogniser.recognise(lines(CLAUDE)[0])
        event = {"type": "auth_status", "subtype": "refreshing", "future": [1, 2]}
        assert Recognised("claude", "auth_status: refreshing", "info") == recogniser.recognise(
            _line(event)
        )

    def test_wrong_field_types_shown_raw(self) -> None:
        """A known event with fields of the wrong types is kept, shown as the line itself."""
        recogniser = Recogniser("claude")
        line = '{"type": "assistant", "message": {"id": 5, "content": "x"}}'
        assert Recognised("claude", line, "info") == recogniser.recognise(line)

    def test_long_raw_line_cut(self) -> None:
        """A malformed event shown raw is cut to a readable length."""
        recogniser = Recogniser("codex")
        line = json.dumps({"type": "turn.completed", "usage": "x" * 1000})
        got = recogniser.recognise(line)
        assert got is not None
        assert 300 == len(got.summary)
        assert got.summary.endswith("…")

    def test_missing_ids_and_odd_values(self) -> None:
        """Blocks without ids, empty content, null usage: described, never raised."""
        recogniser = Recogniser("claude")
        events = [
            {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Bash"}]}},
            {"type": "assistant", "message": {"content": []}},
            {"type": "assistant", "message": {"content": [{"type": "image"}], "usage": None}},
            {"type": "user", "message": {"content": [{"type": "tool_result"}]}},
            {"type": "result", "subtype": "success"},
            {"type": "system", "subtype": "api_retry"},
            {"type": "system", "subtype": "compact_boundary"},
            {"type": "system", "subtype": "hook_response"},
            {"type": "rate_limit_event"},
            {"type": "rate_limit_event", "rate_limit_info": {"status": "rejected"}},
            {"type": "control_request", "request": {"subtype": "interrupt"}},
            {"type": "control_request"},
            {"type": "stream_event", "event": "odd"},
        ]
        got = [recogniser.recognise(_line(e)) for e in events]
        assert [
            ("Bash", "info"),
            ("assistant", "info"),
            ("assistant", "info"),
            ("tool result → ok", "info"),
            ("result: success", "info"),
            ("API retry", "warn"),
            ("context compacted", "info"),
            ("system: hook_response", "info"),
            ("rate limit", "info"),
            ("rate limit: rejected", "warn"),
            ("control request: interrupt", "warn"),
            ("control request", "warn"),
            ("stream: event", "debug"),
        ] == [(r.summary, r.level) for r in got if r is not None]
