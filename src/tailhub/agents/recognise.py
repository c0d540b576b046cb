"""Which output lines are agent events: the recognition ``tailhub run --agent`` does.

A :class:`Recogniser` reads a process's stdout line by line. In ``auto`` mode the first line
that decodes as an event of a type only one stream has (``system``, ``assistant``, ``result``
... for Claude Code; ``thread.started``, ``item.completed`` ... for Codex) fixes the stream;
with ``claude`` or ``codex`` it is fixed from the start. From then on:

- a line of that stream's known types is an event, described in one line;
- another JSON object with a string ``type`` is an event of a type tailhub does not know:
  kept, described by its type alone;
- a known type whose fields have the wrong JSON types is kept as an event too, described by
  the line itself (shown raw);
- anything else (text, JSON without ``type``, before the stream is known) is a plain line.

The recogniser also keeps the session's :class:`~tailhub.agents.summary.AgentSummary` and
gives, with each event that changed it, its JSON form: ``tailhub run`` sends it with the
event, so that the hub keeps it instead of reading the event again.

No I/O: lines in, :class:`Recognised` values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from tailhub.agents.describe import Describer, Level
from tailhub.agents.events import CLAUDE_TYPES, CODEX_TYPES, AgentEvent, ApiMessage, decode_event
from tailhub.agents.summary import AgentSummary

__all__ = ["AGENT_MODES", "AgentMode", "Recognised", "Recogniser"]

AgentMode = Literal["auto", "claude", "codex", "none"]
AGENT_MODES: Final = ("auto", "claude", "codex", "none")
_RAW_LIMIT: Final = 300

_type_decoder: Final = msgspec.json.Decoder(dict[str, object])


@dataclass(frozen=True, slots=True)
class Recognised:
    """An event line: the stream (``claude`` or ``codex``), the line and level to show, and
    the session's summary after it (``AgentSummary.to_json``) when it changed it, else None."""

    agent: str
    summary: str
    level: Level
    tally: dict[str, Any] | None = field(default=None, compare=False)


class Recogniser:
    """Recognises the events in one process's output (see the module docstring).

    Args:
        mode: ``auto``, ``claude``, ``codex``, or ``none`` (nothing is ever recognised).

    Raises:
        ValueError: an unknown mode.
    """

    def __init__(self, mode: AgentMode = "auto") -> None:
        if mode not in AGENT_MODES:
            raise ValueError(f"agent must be one of {', '.join(AGENT_MODES)}, not {mode!r}")
        self.mode = mode
        self.agent: str | None = mode if mode in ("claude", "codex") else None
        """The stream, once known."""
        self._describer = Describer()
        self._session: AgentSummary | None = None
        """The session's summary, from the events recognised so far."""

    def recognise(self, line: str) -> Recognised | None:
        """The event ``line`` holds, or None for a plain line. Never raises."""
        if self.mode == "none" or not line.lstrip().startswith("{"):
            return None
        event = decode_event(line)
        agent = self.agent
        if event is None:
            return self._unreadable(line)
        if agent is None:
            agent = _identify(event)
            if agent is None:
                return None
            self.agent = agent
        summary, level = self._describer.describe(agent, event)
        session = self._session
        before = None  # a new summary is always given, so that the hub has one
        if session is None or session.kind != agent:
            session = self._session = AgentSummary(agent)
        else:
            before = session.to_json()
        session.update(event)
        after = session.to_json()
        return Recognised(agent, summary, level, after if after != before else None)

    def _unreadable(self, line: str) -> Recognised | None:
        """A JSON object of a known type whose fields did not decode: shown raw."""
        if self.agent is None:
            return None
        try:
            obj = _type_decoder.decode(line)
        except msgspec.DecodeError:
            return None
        if not isinstance(obj.get("type"), str):
            return None
        text = line.strip()
        if len(text) > _RAW_LIMIT:
            text = text[: _RAW_LIMIT - 1] + "…"
        return Recognised(self.agent, text, "info")


def _identify(event: AgentEvent) -> str | None:
    """The stream an event can only come from, or None when it proves nothing."""
    kind = event.type
    if kind in CLAUDE_TYPES:
        if kind in ("assistant", "user"):
            return "claude" if isinstance(event.message, ApiMessage) else None
        if kind in ("system", "result"):
            return "claude" if event.subtype else None
        return "claude"
    if kind in CODEX_TYPES and kind != "error":
        return "codex"
    return None
