"""What an agent session amounts to, built event by event: :class:`AgentSummary`.

The hub keeps one per session so that a late joiner, the CLI and the session list read a
handful of numbers instead of the whole log. Its JSON form (:meth:`AgentSummary.to_json`) is
the ``agent`` object of the HTTP API and of the ``sessions`` reply::

    {"kind": "claude", "model": "claude-sonnet-4-5", "sessionId": "…", "turns": 3,
     "toolCalls": {"Edit": 3, "Bash": 5},
     "tokens": {"input": 1200, "output": 800, "cacheRead": 40000, "cacheWrite": 3000},
     "costUsd": 0.042, "contextPct": 21.5, "activity": "Bash: pytest -q",
     "lastText": "I'll fix the failing test first", "result": "success"}

How each number is counted:

- ``turns``: Claude: API messages of the main thread (one per distinct ``message.id``),
  replaced by the run's own ``num_turns`` when its ``result`` comes. Codex: ``turn.started``.
- ``toolCalls``: tool calls by name, each call counted once (by its id), subagents' included.
  Codex items are named ``shell`` (``command_execution``), ``file_change``, ``web_search`` and
  ``mcp__<server>__<tool>``, after Claude Code's own names for MCP tools.
- ``tokens``: Claude: the ``usage`` of every API message (subagents' included), counted once
  per ``message.id`` however many lines carry it (a repeat adds only what grew). Codex: the
  sum of ``turn.completed`` usage, with ``input`` the uncached part, so that in both
  ``input + cacheRead`` is what the model read.
- ``costUsd``: Claude's ``total_cost_usd`` from the latest ``result``; null for Codex, whose
  stream does not say.
- ``contextPct``: the last main-thread message's input (fresh, cached and cache-written) over
  the model's ``contextWindow``, once a ``result``'s ``modelUsage`` has told the window.
- ``result``: the latest ``result``'s ``subtype`` (Claude); ``completed`` or ``failed`` for
  the latest Codex turn; null while a turn runs.

An event whose fields have the wrong types never reaches :meth:`AgentSummary.update` (it does
not decode, see :mod:`tailhub.agents.events`); odd values inside an event that did decode
(negative counts, a result before any turn) are taken as they are or skipped, never raised.

**Summarised by the publisher.** A publisher that reads its agent's events itself (``tailhub
run`` does, to describe each one) keeps the session's summary and sends its JSON form with
each event that changed it. The hub then keeps the last one it was sent instead of reading
the event (:meth:`AgentSummary.from_json` builds it when it is read): the same numbers, for a
dictionary write per event on the one process every container shares. Being whole, each one
replaces the last, so a repeated or lost message cannot skew a count.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

import msgspec

from tailhub.agents.events import AgentEvent, ApiMessage, CodexItem, Usage
from tailhub.agents.text import first_line, shell_command, tool_activity

__all__ = ["TOKEN_KEYS", "AgentSummary"]

_MEMORY: Final = 512
_LAST_TEXT: Final = 200
_ACTIVITY: Final = 160
_NAME: Final = 256
"""Longest model name, session id, result or tool name kept."""
_TOOLS: Final = 256
"""Most distinct tool names counted per session (calls of further names are not counted)."""
TOKEN_KEYS: Final = ("input", "output", "cacheRead", "cacheWrite")
"""The keys of the ``tokens`` object, in the order of :attr:`AgentSummary.tokens`."""
_CODEX_TOOLS: Final = {
    "command_execution": "shell",
    "file_change": "file_change",
    "web_search": "web_search",
}
_Tokens = tuple[int, int, int, int]


def _count(value: int | None) -> int:
    return value if value is not None and value > 0 else 0


def _tokens(usage: Usage) -> _Tokens:
    i, o, r, w = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    )
    return (
        i if i is not None and i > 0 else 0,
        o if o is not None and o > 0 else 0,
        r if r is not None and r > 0 else 0,
        w if w is not None and w > 0 else 0,
    )


class AgentSummary:
    """The summary of one agent session (see the module docstring for each field).

    Args:
        kind: the stream, ``claude`` or ``codex``.
    """

    __slots__ = (
        "_activity",
        "_calls",
        "_context",
        "_last_text",
        "_messages",
        "_tool",
        "_window",
        "cost_usd",
        "kind",
        "model",
        "result",
        "session_id",
        "tokens",
        "tool_calls",
        "turns",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.model: str | None = None
        self.session_id: str | None = None
        self.turns = 0
        self.tool_calls: dict[str, int] = {}
        self.tokens = [0, 0, 0, 0]
        """input, output, cacheRead, cacheWrite"""
        self.cost_usd: float | None = None
        self._activity: str | None = None
        self._tool: tuple[str, msgspec.Raw] | None = None
        """The last tool call, made into the activity's words only when read."""
        self._last_text: str | None = None
        self.result: str | None = None
        self._messages: OrderedDict[str, tuple[Usage | None, _Tokens]] = OrderedDict()
        """Per API message id: the usage last seen, and the tokens counted for it."""
        self._calls: OrderedDict[str, None] = OrderedDict()
        self._context = 0
        self._window: int | None = None

    # -- reading events ------------------------------------------------------------------

    def update(self, event: AgentEvent) -> None:
        """Take one event of this summary's stream into account. Never raises."""
        if self.kind == "codex":
            self._codex(event)
            return
        if event.session_id:
            self.session_id = event.session_id
        kind = event.type
        if kind == "assistant":
            if isinstance(event.message, ApiMessage):
                self._assistant(event.message, not event.parent_tool_use_id)
        else:
            self._claude(event, kind)

    def _claude(self, event: AgentEvent, kind: str) -> None:
        if kind == "result":
            self.result = event.subtype or "unknown"
            self.activity = None
            if event.total_cost_usd is not None:
                self.cost_usd = event.total_cost_usd
            if event.num_turns is not None and event.num_turns >= 0:
                self.turns = event.num_turns
            for name, use in (event.modelUsage or {}).items():
                if self.model is None:
                    self.model = name
                if use.contextWindow and (name == self.model or self._window is None):
                    self._window = use.contextWindow
        elif kind == "system":
            if event.subtype == "init":
                if event.model:
                    self.model = event.model
                self.activity = "starting"
            elif event.subtype == "api_retry":
                self.activity = "waiting to retry the API"
            elif event.subtype == "compact_boundary":
                self.activity = "compacting context"

    def _assistant(self, message: ApiMessage, main: bool) -> None:
        message_id = message.id
        if main and message.model and message.model != "<synthetic>":
            self.model = message.model
        if message_id:
            messages = self._messages
            usage = message.usage
            seen = messages.get(message_id)
            if seen is None:
                if main:
                    self.turns += 1
                self._count_usage(message_id, usage, (0, 0, 0, 0), main)
            elif usage is not None and seen[0] != usage:
                self._count_usage(message_id, usage, seen[1], main)
        content = message.content
        if isinstance(content, list):
            for block in content:
                kind = block.type
                if kind == "text":
                    text = block.text
                    if main and text and not text.isspace():
                        self._last_text = text
                elif (kind == "tool_use" or kind == "server_tool_use") and block.name:
                    name = block.name
                    call_id = block.id
                    calls = self._calls
                    if not call_id or call_id not in calls:
                        if call_id:
                            calls[call_id] = None
                            if len(calls) > _MEMORY:
                                calls.popitem(last=False)
                        self._called(name)
                    self._tool = (name, block.input.copy())

    def _count_usage(
        self, message_id: str, usage: Usage | None, before: _Tokens, main: bool
    ) -> None:
        """Add what a message's usage grew by since it was last counted."""
        counted = before
        if usage is not None:
            now = _tokens(usage)
            counted = (
                max(now[0], before[0]),
                max(now[1], before[1]),
                max(now[2], before[2]),
                max(now[3], before[3]),
            )
            tokens = self.tokens
            for i in range(4):
                tokens[i] += counted[i] - before[i]
            if main:
                self._context = counted[0] + counted[2] + counted[3]
        messages = self._messages
        messages[message_id] = (usage, counted)
        if len(messages) > _MEMORY:
            messages.popitem(last=False)

    def _called(self, name: str, count: int | None = None) -> None:
        """Count one more call of ``name`` (or set its count), for at most ``_TOOLS`` names."""
        calls = self.tool_calls
        name = name[:_NAME]
        if name not in calls and len(calls) >= _TOOLS:
            return
        calls[name] = calls.get(name, 0) + 1 if count is None else count

    def _new_call(self, call_id: str | None) -> bool:
        """Whether a tool call (or Codex item) is seen for the first time."""
        if not call_id:
            return True
        if call_id in self._calls:
            return False
        self._calls[call_id] = None
        while len(self._calls) > _MEMORY:
            self._calls.popitem(last=False)
        return True

    def _codex(self, event: AgentEvent) -> None:
        kind = event.type
        if kind == "thread.started":
            if event.thread_id:
                self.session_id = event.thread_id
        elif kind == "turn.started":
            self.turns += 1
            self.result = None
            self.activity = "thinking"
        elif kind == "turn.completed":
            self.result = "completed"
            self.activity = None
            if event.usage is not None:
                usage = event.usage
                fresh = _count(usage.input_tokens)
                cached = min(_count(usage.cached_input_tokens), fresh)
                self.tokens[0] += fresh - cached
                self.tokens[1] += _count(usage.output_tokens)
                self.tokens[2] += cached
        elif kind == "turn.failed":
            self.result = "failed"
            self.activity = None
        elif kind.startswith("item.") and event.item is not None:
            self._codex_item(event.item)

    def _codex_item(self, item: CodexItem) -> None:
        what = item.type
        if what == "agent_message":
            if item.text and not item.text.isspace():
                self._last_text = item.text
            return
        if what == "reasoning":
            self.activity = "thinking"
            return
        if what == "mcp_tool_call":
            name = f"mcp__{item.server or 'unknown'}__{item.tool or 'unknown'}"
            activity = f"mcp {item.server or '?'}.{item.tool or '?'}"
        elif what in _CODEX_TOOLS:
            name = _CODEX_TOOLS[what]
            if what == "command_execution":
                activity = f"shell: {shell_command(item.command or '')}"
            elif what == "file_change":
                paths = [c.path for c in item.changes or () if c.path]
                activity = "edit " + ", ".join(paths) if paths else "file change"
            else:
                activity = f"web search: {item.query or ''}"
        else:
            return
        if self._new_call(item.id):
            self._called(name)
        self.activity = first_line(activity, _ACTIVITY)

    # -- the JSON form -------------------------------------------------------------------

    @property
    def activity(self) -> str | None:
        """What the agent is doing now, in a few words (None: nothing known, or finished)."""
        if self._tool is not None:
            self._activity = first_line(tool_activity(*self._tool), _ACTIVITY)
            self._tool = None
        return self._activity

    @activity.setter
    def activity(self, words: str | None) -> None:
        self._tool = None
        self._activity = words

    @property
    def last_text(self) -> str | None:
        """The first line of the agent's last text, cut short."""
        text = self._last_text
        return first_line(text, _LAST_TEXT) if text is not None else None

    @last_text.setter
    def last_text(self, text: str | None) -> None:
        self._last_text = text

    @classmethod
    def from_json(cls, obj: Any) -> AgentSummary | None:
        """A summary from what :meth:`to_json` gave (kept across a restart, or sent by the
        publisher).

        Counting goes on from the numbers; which message and call ids were already counted
        is not kept. None when ``obj`` is not such an object. Values of the wrong types are
        dropped, texts are cut as the summary's own are, and at most ``_TOOLS`` tool names
        are kept: the object may come from a container.
        """
        if not isinstance(obj, dict) or obj.get("kind") not in ("claude", "codex"):
            return None
        summary = cls(obj["kind"])

        def text(name: str, limit: int = _NAME) -> str | None:
            value = obj.get(name)
            return first_line(value, limit) if isinstance(value, str) else None

        summary.model = text("model")
        summary.session_id = text("sessionId")
        summary.activity = text("activity", _ACTIVITY)
        summary.last_text = text("lastText", _LAST_TEXT)
        summary.result = text("result")
        turns = obj.get("turns")
        summary.turns = turns if isinstance(turns, int) and turns >= 0 else 0
        calls = obj.get("toolCalls")
        if isinstance(calls, dict):
            for name, count in calls.items():
                if isinstance(count, int) and count >= 0:
                    summary._called(name, count)
        tokens = obj.get("tokens")
        if isinstance(tokens, dict):
            for i, key in enumerate(TOKEN_KEYS):
                value = tokens.get(key)
                summary.tokens[i] = value if isinstance(value, int) and value >= 0 else 0
        cost = obj.get("costUsd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            summary.cost_usd = float(cost)
        window = obj.get("contextWindow")
        pct = obj.get("contextPct")
        if isinstance(window, int) and window > 0 and isinstance(pct, int | float):
            summary._window = window
            summary._context = round(pct * window / 100)
        return summary

    @property
    def context_pct(self) -> float | None:
        """How full the context window is, in percent; None while the window is unknown."""
        if not self._window or self._window <= 0:
            return None
        return round(100 * self._context / self._window, 1)

    def to_json(self) -> dict[str, Any]:
        """The ``agent`` object the API shows (a new dict each call)."""
        return {
            "kind": self.kind,
            "model": self.model,
            "sessionId": self.session_id,
            "turns": self.turns,
            "toolCalls": dict(self.tool_calls),
            "tokens": dict(zip(TOKEN_KEYS, self.tokens, strict=True)),
            "costUsd": self.cost_usd,
            "contextPct": self.context_pct,
            "contextWindow": self._window or None,
            "activity": self.activity,
            "lastText": self.last_text,
            "result": self.result,
        }
