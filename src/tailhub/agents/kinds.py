"""What kind of step an event is, for showing it: text, thinking, a tool call, its result...

Works on the event as plain JSON values (what a subscriber decoded), never raises, and names
anything it does not know ``other``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

__all__ = ["EVENT_KINDS", "EventKind", "event_kind"]

EventKind = Literal["text", "thinking", "tool", "tool_result", "result", "system", "other"]
EVENT_KINDS: Final = ("text", "thinking", "tool", "tool_result", "result", "system", "other")
_CODEX_TOOLS: Final = frozenset({"command_execution", "file_change", "mcp_tool_call", "web_search"})


def event_kind(agent: str, event: Any) -> EventKind:
    """The kind of step ``event`` (of stream ``agent``) is; ``other`` when unsure."""
    if not isinstance(event, Mapping):
        return "other"
    kind = event.get("type")
    if agent == "codex":
        return _codex(kind, event.get("item"))
    if kind == "assistant":
        message = event.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        types = {b.get("type") for b in content if isinstance(b, Mapping)} if content else set()
        if types & {"tool_use", "server_tool_use"}:
            return "tool"
        if "text" in types:
            return "text"
        return "thinking" if "thinking" in types else "other"
    if kind == "user":
        return "tool_result"
    if kind == "result":
        return "result"
    if kind in ("system", "rate_limit_event", "control_request", "stream_event"):
        return "system"
    return "other"


def _codex(kind: Any, item: Any) -> EventKind:
    if kind in ("turn.completed", "turn.failed"):
        return "result"
    if kind in ("thread.started", "turn.started", "error"):
        return "system"
    if not isinstance(item, Mapping):
        return "other"
    what = item.get("type")
    if what == "agent_message":
        return "text"
    if what == "reasoning":
        return "thinking"
    if what in _CODEX_TOOLS:
        return "tool_result" if kind == "item.completed" else "tool"
    return "other"
