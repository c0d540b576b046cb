"""The hub's side: one :class:`AgentSummary` per container, fed by published ``log`` data.

``tailhub run`` publishes an agent event as a ``log`` whose ``data.metadata`` is
``{"agent": "claude"|"codex", "event": {...}}``. The hub's publish path calls
:func:`looks_like_agent` on the raw ``data`` (a byte search, no decoding) and only for the
few that match :meth:`AgentBook.observe`, which decodes the fields the summary reads and
nothing else. Events the summary does not read (Claude Code's tool results, token deltas,
rate-limit notices and control requests) are passed over without decoding when their bytes
are laid out as ``tailhub run`` sends them (``"agent":"claude","event":{"type":"user"...``
where ``"agent"`` first appears); laid out otherwise, they are decoded and change nothing.
Fleet totals (:func:`fleet_totals`) are computed from the session list when
asked, never on the publish path.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import msgspec

from tailhub.agents.events import AgentEvent
from tailhub.agents.summary import AgentSummary
from tailhub.protocol import STATUSES

__all__ = ["AGENT_KINDS", "AgentBook", "fleet_totals", "looks_like_agent"]

AGENT_KINDS: Final = frozenset({"claude", "codex"})

looks_like_agent: Final[Callable[[Any], re.Match[bytes] | None]] = re.compile(rb'"agent"').search
"""Whether raw ``log`` data may carry an agent event: a byte search for ``"agent"``.

False positives (the word in a message) only cost a decode that finds no event."""


_UNREAD: Final = re.compile(
    rb'"agent":"claude","event":\{"type":"(?:user|stream_event|rate_limit_event|control_request)"'
)
"""Claude events the summary does not read, as ``tailhub run`` lays them out."""


class _Metadata(msgspec.Struct, gc=False):
    agent: str | None = None
    event: AgentEvent | None = None


class _LogData(msgspec.Struct, gc=False):
    metadata: _Metadata | None = None


_log_decoder: Final = msgspec.json.Decoder(_LogData)


class AgentBook:
    """The agent summaries of the most recent ``limit`` containers that published events.

    Args:
        limit: most containers kept; the one updated longest ago is dropped first.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = max(1, limit)
        self._summaries: OrderedDict[str, AgentSummary] = OrderedDict()
        self._changed: set[str] = set()

    def observe(self, container_id: str, data: Any, at: int | None = None) -> bool:
        """Read one ``log``'s raw ``data``; returns whether it was an agent event it counted.

        ``at``: where ``"agent"`` first appears in ``data``, when the caller has already
        searched for it (:func:`looks_like_agent`); None to search here. Data that is not an
        agent event, or whose event has fields of the wrong types, changes nothing; an event
        the summary does not read is passed over. Never raises.
        """
        if at is None:
            found = looks_like_agent(data)
            at = -1 if found is None else found.start()
        if at >= 0 and _UNREAD.match(data, at):
            return False
        try:
            log = _log_decoder.decode(data)
        except msgspec.DecodeError:
            return False
        meta = log.metadata
        if meta is None or meta.event is None or meta.agent not in AGENT_KINDS:
            return False
        summaries = self._summaries
        summary = summaries.get(container_id)
        if summary is None or summary.kind != meta.agent:
            summary = summaries[container_id] = AgentSummary(meta.agent)
            if len(summaries) > self._limit:
                summaries.popitem(last=False)
        else:
            summaries.move_to_end(container_id)
        summary.update(meta.event)
        self._changed.add(container_id)
        return True

    def forget(self, container_id: str) -> None:
        """Drop a container's summary (its new session starts from nothing)."""
        self._summaries.pop(container_id, None)
        self._changed.discard(container_id)

    def restore(self, container_id: str, obj: Any) -> bool:
        """Put back a summary kept elsewhere (its :meth:`to_json`); whether it was one."""
        summary = AgentSummary.from_json(obj)
        if summary is None:
            return False
        self._summaries[container_id] = summary
        self._summaries.move_to_end(container_id)
        if len(self._summaries) > self._limit:
            self._summaries.popitem(last=False)
        return True

    def take_changed(self) -> dict[str, dict[str, Any]]:
        """The summaries changed since the last call, by container, for keeping elsewhere."""
        changed = {
            container_id: summary.to_json()
            for container_id in self._changed
            if (summary := self._summaries.get(container_id)) is not None
        }
        self._changed.clear()
        return changed

    def get(self, container_id: str) -> AgentSummary | None:
        return self._summaries.get(container_id)

    def to_json(self, container_id: str) -> dict[str, Any] | None:
        """The ``agent`` object of a container, or None when it published no agent event."""
        summary = self._summaries.get(container_id)
        return summary.to_json() if summary is not None else None


def fleet_totals(sessions: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over sessions as the API lists them (``status``, ``active``, ``agent``).

    Returns the ``GET /api/fleet`` object: ``sessions`` (how many are listed), ``byStatus``
    (in the order starting, running, completed, error),
    ``running`` (active sessions), ``failed`` (sessions whose status is ``error``),
    ``agents`` (sessions with an agent summary), ``costUsd`` and ``tokens`` (their sums).
    """
    by_status: dict[str, int] = {}
    total = running = agents = 0
    cost = 0.0
    tokens = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}
    for session in sessions:
        total += 1
        status = str(session.get("status"))
        by_status[status] = by_status.get(status, 0) + 1
        if session.get("active"):
            running += 1
        agent = session.get("agent")
        if not isinstance(agent, Mapping):
            continue
        agents += 1
        if isinstance(agent.get("costUsd"), int | float):
            cost += agent["costUsd"]
        counted = agent.get("tokens")
        if isinstance(counted, Mapping):
            for key in tokens:
                value = counted.get(key)
                if isinstance(value, int):
                    tokens[key] += value
    order = {status: rank for rank, status in enumerate(STATUSES)}
    by_status = dict(sorted(by_status.items(), key=lambda item: order.get(item[0], len(order))))
    return {
        "sessions": total,
        "byStatus": by_status,
        "running": running,
        "failed": by_status.get("error", 0),
        "agents": agents,
        "costUsd": round(cost, 6),
        "tokens": tokens,
    }
