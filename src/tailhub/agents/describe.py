"""One line a person reads for each agent event, and the level it is logged at.

``Edit src/app.py (+3 -1)`` (a minus sign, U+2212), ``Bash: pytest -q → exit 1``,
``I'll fix the failing test first``, ``result: success · 3 turns · $0.042 · 12.0 s``.
A :class:`Describer` remembers the tool calls it has seen (the most recent
:data:`TOOL_MEMORY`), so that a tool's result can name the call it answers.

Levels: ``error`` for a failed tool result, a failed command, a failed turn or run; ``warn``
for API retries, rate limits that bite and permission requests; ``debug`` for token deltas
(``stream_event``); ``info`` for the rest. Nothing here raises on odd values: a field of
an unexpected shape is left out of the line.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Final, Literal

from tailhub.agents.events import AgentEvent, ApiMessage, Block, CodexItem, decode_raw
from tailhub.agents.text import first_line, money, raw_text, shell_command, tool_activity

__all__ = ["TOOL_MEMORY", "Described", "Describer"]

TOOL_MEMORY: Final = 1024
_SUBAGENT: Final = "↳ "
_MINUS: Final = "\N{MINUS SIGN}"
_EXIT_CODE: Final = re.compile(r"^Exit code (-?\d+)")
_DIFF_TOOLS: Final = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit"})

Level = Literal["debug", "info", "warn", "error"]
Described = tuple[str, Level]


class Describer:
    """Turns events into ``(line, level)``; keeps the tool calls seen, for their results."""

    def __init__(self) -> None:
        self._calls: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def describe(self, agent: str, event: AgentEvent) -> Described:
        """The line and level for ``event`` of stream ``agent`` (``claude`` or ``codex``)."""
        if agent == "codex":
            return _codex(event)
        line, level = self._claude(event)
        if event.parent_tool_use_id:
            line = _SUBAGENT + line
        return line, level

    # -- Claude Code --------------------------------------------------------------------

    def _claude(self, event: AgentEvent) -> Described:
        kind = event.type
        if kind == "assistant":
            return self._assistant(event.message)
        if kind == "user":
            return self._user(event)
        if kind == "result":
            return _result(event)
        if kind == "system":
            return _system(event)
        if kind == "stream_event":
            inner = decode_raw(event.event)
            what = inner.get("type") if isinstance(inner, dict) else None
            delta = inner.get("delta") if isinstance(inner, dict) else None
            if isinstance(delta, dict) and isinstance(delta.get("type"), str):
                what = delta["type"]
            return f"stream: {what if isinstance(what, str) else 'event'}", "debug"
        if kind == "rate_limit_event":
            return _rate_limit(event)
        if kind == "control_request":
            return _control_request(event)
        return _unknown(event)

    def _assistant(self, message: ApiMessage | str | None) -> Described:
        if not isinstance(message, ApiMessage) or not isinstance(message.content, list):
            return "assistant", "info"
        parts: list[str] = []
        for block in message.content:
            if block.type == "text" and block.text:
                parts.append(first_line(block.text))
            elif block.type == "thinking":
                thought = first_line(block.thinking or "", 120)
                parts.append(f"thinking: {thought}" if thought else "thinking")
            elif block.type in ("tool_use", "server_tool_use") and block.name:
                if block.id:
                    self._remember(block.id, block)
                parts.append(tool_activity(block.name, block.input))
        return (" · ".join(part for part in parts if part) or "assistant"), "info"

    def _remember(self, call_id: str, block: Block) -> None:
        assert block.name is not None
        self._calls[call_id] = (block.name, tool_activity(block.name, block.input))
        self._calls.move_to_end(call_id)
        while len(self._calls) > TOOL_MEMORY:
            self._calls.popitem(last=False)

    def _user(self, event: AgentEvent) -> Described:
        message = event.message
        if not isinstance(message, ApiMessage):
            return "user", "info"
        if isinstance(message.content, str):
            return f"user: {first_line(message.content)}", "info"
        parts: list[str] = []
        level: Level = "info"
        for block in message.content or ():
            if block.type == "tool_result":
                line, failed = self._tool_result(block, event)
                parts.append(line)
                if failed:
                    level = "error"
            elif block.type == "text" and block.text:
                parts.append(f"user: {first_line(block.text)}")
        return (" · ".join(parts) or "user"), level

    def _tool_result(self, block: Block, event: AgentEvent) -> tuple[str, bool]:
        name, activity = self._calls.get(block.tool_use_id or "", ("tool", "tool result"))
        failed = block.is_error is True
        if name == "Bash":
            text = raw_text(block.content)
            found = _EXIT_CODE.match(text)
            code = int(found.group(1)) if found else (1 if failed else 0)
            return f"{activity} → exit {code}", failed or code != 0
        if failed:
            why = first_line(raw_text(block.content), 120)
            return f"{activity} → error" + (f": {why}" if why else ""), True
        if name in _DIFF_TOOLS:
            counted = _diff_counts(decode_raw(event.tool_use_result))
            if counted is not None:
                return f"{activity} (+{counted[0]} {_MINUS}{counted[1]})", False
        return f"{activity} → ok", False


def _diff_counts(result: object) -> tuple[int, int] | None:
    """Lines added and removed by an Edit or Write, from its ``structuredPatch``."""
    if not isinstance(result, dict):
        return None
    patch = result.get("structuredPatch")
    if isinstance(patch, list) and patch:
        added = removed = 0
        for hunk in patch:
            lines = hunk.get("lines") if isinstance(hunk, dict) else None
            for line in lines if isinstance(lines, list) else ():
                if isinstance(line, str) and line.startswith("+"):
                    added += 1
                elif isinstance(line, str) and line.startswith("-"):
                    removed += 1
        return added, removed
    content = result.get("content")
    if result.get("type") == "create" and isinstance(content, str):
        return len(content.splitlines()), 0
    return None


def _result(event: AgentEvent) -> Described:
    subtype = event.subtype or "unknown"
    parts = [f"result: {subtype}"]
    if event.num_turns is not None:
        parts.append(f"{event.num_turns} turn" + ("" if event.num_turns == 1 else "s"))
    if event.total_cost_usd is not None:
        parts.append(money(event.total_cost_usd))
    if event.duration_ms is not None:
        parts.append(f"{event.duration_ms / 1000:.1f} s")
    denials = decode_raw(event.permission_denials)
    if isinstance(denials, list) and denials:
        parts.append(f"{len(denials)} permission denial" + ("" if len(denials) == 1 else "s"))
    failed = event.is_error is True or subtype != "success"
    return " · ".join(parts), "error" if failed else "info"


def _system(event: AgentEvent) -> Described:
    subtype = event.subtype or ""
    if subtype == "init":
        parts = ["init"]
        if event.model:
            parts.append(event.model)
        tools = decode_raw(event.tools)
        if isinstance(tools, list):
            parts.append(f"{len(tools)} tools")
        if event.session_id:
            parts.append(f"session {event.session_id[:8]}")
        return " · ".join(parts), "info"
    if subtype == "api_retry":
        line = "API retry"
        if event.attempt is not None:
            line += f" {event.attempt}" + (
                f"/{event.max_retries}" if event.max_retries is not None else ""
            )
        if event.retry_delay_ms is not None:
            line += f" in {event.retry_delay_ms / 1000:.1f} s"
        error = decode_raw(event.error)
        why = " ".join(
            str(part)
            for part in (event.error_status, error if isinstance(error, str) else None)
            if part is not None
        )
        return line + (f": {first_line(why, 120)}" if why else ""), "warn"
    if subtype == "compact_boundary":
        meta = event.compact_metadata
        details = []
        if meta is not None and meta.trigger:
            details.append(meta.trigger)
        if meta is not None and meta.pre_tokens is not None:
            details.append(f"{meta.pre_tokens:,} tokens before")
        return "context compacted" + (f" ({', '.join(details)})" if details else ""), "info"
    return f"system: {subtype or 'event'}", "info"


def _rate_limit(event: AgentEvent) -> Described:
    info = event.rate_limit_info
    if info is None:
        return "rate limit", "info"
    status = info.status or "unknown"
    details = [info.rateLimitType] if info.rateLimitType else []
    if info.resetsAt is not None:
        try:
            when = datetime.fromtimestamp(info.resetsAt, UTC).strftime("%Y-%m-%d %H:%M UTC")
        except (OverflowError, OSError, ValueError):
            when = str(info.resetsAt)
        details.append(f"resets {when}")
    line = f"rate limit: {status}" + (f" ({', '.join(details)})" if details else "")
    return line, "info" if status == "allowed" else "warn"


def _control_request(event: AgentEvent) -> Described:
    request = decode_raw(event.request)
    if not isinstance(request, dict):
        return "control request", "warn"
    subtype = request.get("subtype")
    tool = request.get("tool_name")
    if subtype == "can_use_tool" and isinstance(tool, str):
        args = request.get("input")
        what = tool
        if isinstance(args, dict):
            for key in ("command", "file_path", "url", "pattern"):
                if isinstance(args.get(key), str):
                    what = f"{tool}: {first_line(args[key], 120)}"
                    break
        return f"permission request: {what}", "warn"
    return f"control request: {subtype if isinstance(subtype, str) else 'unknown'}", "warn"


def _unknown(event: AgentEvent) -> Described:
    return event.type + (f": {event.subtype}" if event.subtype else ""), "info"


# -- Codex ---------------------------------------------------------------------------------


def _codex(event: AgentEvent) -> Described:
    kind = event.type
    if kind == "thread.started":
        return "thread started" + (f" {event.thread_id}" if event.thread_id else ""), "info"
    if kind == "turn.started":
        return "turn started", "info"
    if kind == "turn.completed":
        usage = event.usage
        if usage is None:
            return "turn completed", "info"
        tokens = (
            f" · {usage.input_tokens or 0:,} in"
            f" ({usage.cached_input_tokens or 0:,} cached)"
            f" · {usage.output_tokens or 0:,} out"
        )
        return "turn completed" + tokens, "info"
    if kind == "turn.failed":
        return "turn failed" + _error_words(decode_raw(event.error)), "error"
    if kind == "error":
        words = event.message if isinstance(event.message, str) else ""
        return "error" + (f": {first_line(words, 200)}" if words else ""), "error"
    if kind.startswith("item.") and event.item is not None:
        return _codex_item(kind, event.item)
    return _unknown(event)


def _error_words(error: object) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return f": {first_line(error['message'], 200)}"
    if isinstance(error, str):
        return f": {first_line(error, 200)}"
    return ""


def _codex_item(kind: str, item: CodexItem) -> Described:
    done = kind == "item.completed"
    status = item.status
    what = item.type
    if what == "agent_message":
        return first_line(item.text or "") or "agent message", "info"
    if what == "reasoning":
        thought = first_line(item.text or "", 120)
        return (f"reasoning: {thought}" if thought else "reasoning"), "info"
    if what == "command_execution":
        line = f"shell: {first_line(shell_command(item.command or ''), 120)}"
        if status == "declined":
            return f"{line} → declined", "warn"
        if item.exit_code is not None:
            failed = item.exit_code != 0 or status == "failed"
            return f"{line} → exit {item.exit_code}", "error" if failed else "info"
        if done or status == "failed":
            return f"{line} → {status or 'done'}", "error" if status == "failed" else "info"
        return line, "info"
    if what == "file_change":
        changes = ", ".join(
            f"{change.kind or 'change'} {change.path}"
            for change in item.changes or ()
            if change.path
        )
        line = "file change" + (f": {changes}" if changes else "")
        if status == "failed":
            return f"{line} → failed", "error"
        return line, "info"
    if what == "mcp_tool_call":
        line = f"mcp {item.server or '?'}.{item.tool or '?'}"
        if status == "failed":
            return line + " → failed" + _error_words(decode_raw(item.error)), "error"
        return (f"{line} → ok" if done and status == "completed" else line), "info"
    if what == "web_search":
        return "web search" + (f': "{first_line(item.query, 120)}"' if item.query else ""), "info"
    if what == "todo_list":
        todo = decode_raw(item.items)
        if isinstance(todo, list):
            finished = sum(1 for t in todo if isinstance(t, dict) and t.get("completed") is True)
            return f"todo: {finished}/{len(todo)} done", "info"
        return "todo list", "info"
    if what == "error":
        return "error" + (f": {first_line(item.message, 200)}" if item.message else ""), "warn"
    return f"{kind}: {what or 'item'}", "info"
