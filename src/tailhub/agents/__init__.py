"""Claude Code and Codex event streams: recognised, described in one line, summarised.

No I/O: lines and bytes in, descriptions and summaries out.

- :class:`Recogniser`: which output lines are agent events, and the line a person reads for
  each (what ``tailhub run --agent`` publishes).
- :class:`AgentSummary`: a session's model, turns, tool calls, tokens, cost, activity and
  result, built event by event.
- :class:`AttentionBook`: which sessions need a person (waiting, stalled, failed, done).
- :class:`AgentBook`: the hub's summaries per container, fed by published ``log`` data, and
  :func:`fleet_totals` over a session list.
"""

from tailhub.agents.attention import STATES, Attention, AttentionBook, Request, may_change
from tailhub.agents.book import AGENT_KINDS, AgentBook, fleet_totals
from tailhub.agents.describe import Describer
from tailhub.agents.events import AgentEvent, agent_kind, decode_event
from tailhub.agents.kinds import EVENT_KINDS, EventKind, event_kind
from tailhub.agents.recognise import AGENT_MODES, AgentMode, Recognised, Recogniser
from tailhub.agents.summary import AgentSummary

__all__ = [
    "AGENT_KINDS",
    "AGENT_MODES",
    "EVENT_KINDS",
    "STATES",
    "AgentBook",
    "AgentEvent",
    "AgentMode",
    "AgentSummary",
    "Attention",
    "AttentionBook",
    "Describer",
    "EventKind",
    "Recognised",
    "Recogniser",
    "Request",
    "agent_kind",
    "decode_event",
    "event_kind",
    "fleet_totals",
    "may_change",
]
