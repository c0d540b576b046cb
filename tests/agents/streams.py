"""Sample agent streams, written from the formats' documentation, with what they add up to.

``CLAUDE`` is what ``claude -p ... --output-format stream-json --verbose`` prints for a short
run: a split assistant message (two lines, one ``message.id``), a failed Bash call, an Edit with
its ``structuredPatch``, a subagent (``Task``) with its own tool call, a server tool, an API
retry, a rate-limit notice, a token delta, a compaction, a permission request, an event type
tailhub does not know, and the result. ``CODEX`` is what ``codex exec --json`` prints for two
turns, the second of which fails. Each line is paired with the summary line and level expected.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SESSION = "sess-1a2b3c4d5e"
MODEL = "claude-sonnet-4-5-20250929"
THREAD = "0199a213-81c0-7800-8aa1-bbab2a035a53"


def _usage(inp: int, out: int, read: int, write: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "service_tier": "standard",
    }


def _assistant(
    msg_id: str,
    blocks: list[dict[str, Any]],
    usage: dict[str, Any],
    parent: str | None = None,
    model: str = MODEL,
) -> dict[str, Any]:
    return {
        "type": "assistant",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": None,
            "usage": usage,
        },
        "parent_tool_use_id": parent,
        "session_id": SESSION,
        "uuid": f"uuid-{msg_id}-{len(blocks)}",
    }


def _result_of(
    call_id: str,
    content: Any,
    *,
    error: bool = False,
    parent: str | None = None,
    tool_use_result: Any = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call_id,
                    "content": content,
                    "is_error": error,
                }
            ],
        },
        "parent_tool_use_id": parent,
        "session_id": SESSION,
        "uuid": f"uuid-result-{call_id}",
    }
    if tool_use_result is not None:
        event["tool_use_result"] = tool_use_result
    return event


RESETS_AT = 1784283600
_RESETS = datetime.fromtimestamp(RESETS_AT, UTC).strftime("%Y-%m-%d %H:%M UTC")

CLAUDE: list[tuple[dict[str, Any], str, str]] = [
    (
        {
            "type": "system",
            "subtype": "init",
            "cwd": "/work",
            "session_id": SESSION,
            "tools": ["Bash", "Edit", "Read", "Write", "Task", "WebSearch"],
            "mcp_servers": [],
            "model": MODEL,
            "permissionMode": "acceptEdits",
            "apiKeySource": "none",
            "uuid": "uuid-init",
        },
        f"init · {MODEL} · 6 tools · session sess-1a2",
        "info",
    ),
    (
        _assistant(
            "msg_01",
            [{"type": "text", "text": "I'll fix the failing test first.\nThen run the suite."}],
            _usage(10, 20, 1000, 500),
        ),
        "I'll fix the failing test first.",
        "info",
    ),
    (
        _assistant(
            "msg_01",
            [
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "Bash",
                    "input": {"command": "pytest -q", "description": "Run the tests"},
                }
            ],
            _usage(10, 45, 1000, 500),
        ),
        "Bash: pytest -q",
        "info",
    ),
    (
        _result_of(
            "toolu_01",
            "Exit code 1\nFAILED tests/test_app.py::test_add - assert -1 == 3",
            error=True,
            tool_use_result="Error: Exit code 1\nFAILED tests/test_app.py::test_add",
        ),
        "Bash: pytest -q → exit 1",
        "error",
    ),
    (
        _assistant(
            "msg_02",
            [
                {
                    "type": "thinking",
                    "thinking": "The assertion expects 3, so add subtracts.",
                    "signature": "c2ln",
                }
            ],
            _usage(30, 60, 1500, 0),
        ),
        "thinking: The assertion expects 3, so add subtracts.",
        "info",
    ),
    (
        _assistant(
            "msg_02",
            [
                {
                    "type": "tool_use",
                    "id": "toolu_02",
                    "name": "Edit",
                    "input": {
                        "file_path": "src/app.py",
                        "old_string": "return a - b",
                        "new_string": "return a + b",
                    },
                }
            ],
            _usage(30, 60, 1500, 0),
        ),
        "Edit src/app.py",
        "info",
    ),
    (
        _result_of(
            "toolu_02",
            "The file src/app.py has been updated.",
            tool_use_result={
                "filePath": "src/app.py",
                "oldString": "return a - b",
                "newString": "return a + b",
                "originalFile": "def add(a, b):\n    return a - b\n",
                "structuredPatch": [
                    {
                        "oldStart": 1,
                        "oldLines": 2,
                        "newStart": 1,
                        "newLines": 4,
                        "lines": [
                            " def add(a, b):",
                            "-    return a - b",
                            "+    return a + b",
                            "+",
                            "+# fixed",
                        ],
                    }
                ],
                "userModified": False,
                "replaceAll": False,
            },
        ),
        "Edit src/app.py (+3 \N{MINUS SIGN}1)",
        "info",
    ),
    (
        _assistant(
            "msg_03",
            [
                {
                    "type": "tool_use",
                    "id": "toolu_03",
                    "name": "Task",
                    "input": {
                        "description": "Check the docs",
                        "prompt": "Read README.md and say whether add is documented.",
                        "subagent_type": "general-purpose",
                    },
                }
            ],
            _usage(5, 30, 2000, 100),
        ),
        "Task: Check the docs (general-purpose)",
        "info",
    ),
    (
        _assistant(
            "msg_sub1",
            [
                {
                    "type": "tool_use",
                    "id": "toolu_s1",
                    "name": "Read",
                    "input": {"file_path": "README.md"},
                }
            ],
            _usage(100, 10, 0, 0),
            parent="toolu_03",
            model="claude-haiku-4-5",
        ),
        "↳ Read README.md",
        "info",
    ),
    (
        _result_of("toolu_s1", "# app\nadd(a, b) adds.", parent="toolu_03"),
        "↳ Read README.md → ok",
        "info",
    ),
    (
        _result_of("toolu_03", [{"type": "text", "text": "The docs describe add."}]),
        "Task: Check the docs (general-purpose) → ok",
        "info",
    ),
    (
        {
            "type": "system",
            "subtype": "api_retry",
            "attempt": 1,
            "max_retries": 10,
            "retry_delay_ms": 2000,
            "error_status": 529,
            "error": "overloaded_error",
            "session_id": SESSION,
            "uuid": "uuid-retry",
        },
        "API retry 1/10 in 2.0 s: 529 overloaded_error",
        "warn",
    ),
    (
        {
            "type": "rate_limit_event",
            "rate_limit_info": {
                "status": "allowed",
                "resetsAt": RESETS_AT,
                "rateLimitType": "five_hour",
                "isUsingOverage": False,
            },
            "session_id": SESSION,
            "uuid": "uuid-rate",
        },
        f"rate limit: allowed (five_hour, resets {_RESETS})",
        "info",
    ),
    (
        {
            "type": "stream_event",
            "event": {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "All"},
            },
            "parent_tool_use_id": None,
            "session_id": SESSION,
            "uuid": "uuid-delta",
        },
        "stream: text_delta",
        "debug",
    ),
    (
        _assistant(
            "msg_04",
            [
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_01",
                    "name": "web_search",
                    "input": {"query": "pytest parametrize"},
                }
            ],
            _usage(8, 12, 2100, 0),
        ),
        'web_search "pytest parametrize"',
        "info",
    ),
    (
        _assistant(
            "msg_05",
            [{"type": "text", "text": "All tests pass now."}],
            _usage(4, 25, 2200, 50),
        ),
        "All tests pass now.",
        "info",
    ),
    (
        {
            "type": "system",
            "subtype": "compact_boundary",
            "compact_metadata": {"trigger": "auto", "pre_tokens": 156594},
            "session_id": SESSION,
            "uuid": "uuid-compact",
        },
        "context compacted (auto, 156,594 tokens before)",
        "info",
    ),
    (
        {
            "type": "control_request",
            "request_id": "req-1",
            "request": {
                "subtype": "can_use_tool",
                "tool_name": "Bash",
                "input": {"command": "rm -rf build"},
            },
        },
        "permission request: Bash: rm -rf build",
        "warn",
    ),
    (
        {"type": "tool_progress", "tool_use_id": "toolu_01", "elapsed_time_seconds": 3},
        "tool_progress",
        "info",
    ),
    (
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "duration_ms": 12000,
            "duration_api_ms": 9000,
            "num_turns": 5,
            "result": "All tests pass now.",
            "session_id": SESSION,
            "total_cost_usd": 0.042,
            "usage": _usage(57, 172, 8800, 650),
            "modelUsage": {
                MODEL: {
                    "inputTokens": 57,
                    "outputTokens": 172,
                    "cacheReadInputTokens": 8800,
                    "cacheCreationInputTokens": 650,
                    "webSearchRequests": 1,
                    "costUSD": 0.04,
                    "contextWindow": 200000,
                },
                "claude-haiku-4-5": {
                    "inputTokens": 100,
                    "outputTokens": 10,
                    "costUSD": 0.002,
                    "contextWindow": 200000,
                },
            },
            "permission_denials": [],
            "uuid": "uuid-result",
            "a_field_from_the_future": {"kept": True},
        },
        "result: success · 5 turns · $0.042 · 12.0 s",
        "info",
    ),
]

CLAUDE_SUMMARY: dict[str, Any] = {
    "kind": "claude",
    "model": MODEL,
    "sessionId": SESSION,
    "turns": 5,
    "toolCalls": {"Bash": 1, "Edit": 1, "Task": 1, "Read": 1, "web_search": 1},
    "tokens": {"input": 157, "output": 182, "cacheRead": 8800, "cacheWrite": 650},
    "costUsd": 0.042,
    "contextPct": 1.1,
    "contextWindow": 200000,
    "activity": None,
    "lastText": "All tests pass now.",
    "result": "success",
}
"""The sums of ``CLAUDE``: msg_01 counted once (its output grew from 20 to 45 tokens), the
subagent's tokens and tool call included, context 4 + 2200 + 50 of 200,000 tokens."""


def _item(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "item": item}


CODEX: list[tuple[dict[str, Any], str, str]] = [
    ({"type": "thread.started", "thread_id": THREAD}, f"thread started {THREAD}", "info"),
    ({"type": "turn.started"}, "turn started", "info"),
    (
        _item("item.completed", {"id": "item_0", "type": "reasoning", "text": "**Planning**"}),
        "reasoning: **Planning**",
        "info",
    ),
    (
        _item(
            "item.started",
            {
                "id": "item_1",
                "type": "command_execution",
                "command": "bash -lc 'pytest -q'",
                "aggregated_output": "",
                "exit_code": None,
                "status": "in_progress",
            },
        ),
        "shell: pytest -q",
        "info",
    ),
    (
        _item(
            "item.completed",
            {
                "id": "item_1",
                "type": "command_execution",
                "command": "bash -lc 'pytest -q'",
                "aggregated_output": "1 failed, 4 passed\n",
                "exit_code": 1,
                "status": "failed",
            },
        ),
        "shell: pytest -q → exit 1",
        "error",
    ),
    (
        _item(
            "item.completed",
            {
                "id": "item_2",
                "type": "file_change",
                "changes": [
                    {"path": "src/app.py", "kind": "update"},
                    {"path": "tests/test_new.py", "kind": "add"},
                ],
                "status": "completed",
            },
        ),
        "file change: update src/app.py, add tests/test_new.py",
        "info",
    ),
    (
        _item(
            "item.started",
            {
                "id": "item_3",
                "type": "mcp_tool_call",
                "server": "docs",
                "tool": "search",
                "arguments": {"q": "add"},
                "result": None,
                "error": None,
                "status": "in_progress",
            },
        ),
        "mcp docs.search",
        "info",
    ),
    (
        _item(
            "item.completed",
            {
                "id": "item_3",
                "type": "mcp_tool_call",
                "server": "docs",
                "tool": "search",
                "arguments": {"q": "add"},
                "result": {"content": [{"type": "text", "text": "found"}]},
                "error": None,
                "status": "completed",
            },
        ),
        "mcp docs.search → ok",
        "info",
    ),
    (
        _item("item.completed", {"id": "item_4", "type": "web_search", "query": "pytest"}),
        'web search: "pytest"',
        "info",
    ),
    (
        _item(
            "item.updated",
            {
                "id": "item_5",
                "type": "todo_list",
                "items": [
                    {"text": "fix add", "completed": True},
                    {"text": "run tests", "completed": False},
                ],
            },
        ),
        "todo: 1/2 done",
        "info",
    ),
    (
        _item(
            "item.completed",
            {"id": "item_6", "type": "agent_message", "text": "Fixed add; the tests pass."},
        ),
        "Fixed add; the tests pass.",
        "info",
    ),
    (
        {
            "type": "turn.completed",
            "usage": {"input_tokens": 1200, "cached_input_tokens": 200, "output_tokens": 345},
        },
        "turn completed · 1,200 in (200 cached) · 345 out",
        "info",
    ),
    ({"type": "turn.started"}, "turn started", "info"),
    (
        _item(
            "item.started",
            {
                "id": "item_7",
                "type": "command_execution",
                "command": "make lint",
                "aggregated_output": "",
                "exit_code": None,
                "status": "in_progress",
            },
        ),
        "shell: make lint",
        "info",
    ),
    (
        {"type": "error", "message": "stream disconnected; reconnecting 1/5"},
        "error: stream disconnected; reconnecting 1/5",
        "error",
    ),
    (
        {"type": "turn.failed", "error": {"message": "stream disconnected"}},
        "turn failed: stream disconnected",
        "error",
    ),
]

CODEX_SUMMARY: dict[str, Any] = {
    "kind": "codex",
    "model": None,
    "sessionId": THREAD,
    "turns": 2,
    "toolCalls": {"shell": 2, "file_change": 1, "mcp__docs__search": 1, "web_search": 1},
    "tokens": {"input": 1000, "output": 345, "cacheRead": 200, "cacheWrite": 0},
    "costUsd": None,
    "contextPct": None,
    "contextWindow": None,
    "activity": None,
    "lastText": "Fixed add; the tests pass.",
    "result": "failed",
}


def lines(stream: list[tuple[dict[str, Any], str, str]]) -> list[str]:
    """The stream as the agent prints it: one compact JSON object a line."""
    return [json.dumps(event, separators=(",", ":")) for event, _, _ in stream]
