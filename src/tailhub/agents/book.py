"""The hub's side: one :class:`AgentSummary` per container, fed by published ``log`` data.

``tailhub run`` publishes an agent event as a ``log`` whose ``data.metadata`` is
``{"agent": "claude"|"codex", "agentSummary": {...}|null, "attend": bool, "event": {...}}``:
``agentSummary`` is the session's whole summary after the event (its ``to_json`` form) when
the event changed it, else null (see :mod:`tailhub.agents.summary`). The hub's publish path
hands :meth:`AgentBook.observe` the logs' ``metadata`` with their values undecoded (the
protocol decoder already split them): a sent summary is kept as bytes, the last one per
container, and only decoded when the summary is read or kept (or at once when it is longer
than ``HELD_BYTES``). A log without ``agentSummary`` (any other publisher) has its event
read: the fields the summary reads and nothing else. Events the summary does not read (Claude
Code's tool results, token deltas, rate-limit notices and control requests) are then passed
over without decoding when their bytes start as ``tailhub run`` writes them
(``{"type":"user"...``); laid out otherwise, they are decoded and change nothing. Fleet
totals (:func:`fleet_totals`) are computed from the session list when asked, never on the
publish path.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from tailhub.agents.events import AgentEvent, agent_kind
from tailhub.agents.summary import TOKEN_KEYS, AgentSummary
from tailhub.protocol import STATUSES

__all__ = ["AGENT_KINDS", "AgentBook", "fleet_totals"]

AGENT_KINDS: Final = frozenset({"claude", "codex"})
_NULL: Final = msgspec.Raw(b"null")


_UNREAD: Final = re.compile(rb'\{"type":"(?:user|stream_event|rate_limit_event|control_request)"')
"""Claude events the summary does not read, as ``tailhub run`` lays them out."""

_event_decoder: Final = msgspec.json.Decoder(AgentEvent)
_any_decoder: Final = msgspec.json.Decoder()

HELD_BYTES: Final = 16 << 10
"""A sent summary longer than this is decoded (and so cut to the summary's bounds) at once
instead of being held as bytes: what a container's summary holds in memory stays small. A
real one is well under it."""


class AgentBook:
    """The agent summaries of the most recent ``limit`` containers that published events.

    Args:
        limit: most containers kept; the one updated longest ago is dropped first.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = max(1, limit)
        self._summaries: OrderedDict[str, AgentSummary] = OrderedDict()
        self._changed: set[str] = set()
        self._sent: dict[str, bytes] = {}
        """Per container: the last summary its publisher sent, not decoded yet."""

    def observe(self, container_id: str, metadatas: Iterable[Mapping[str, msgspec.Raw]]) -> int:
        """Take a container's ``log`` messages into account, in the order published.

        ``metadatas`` are the logs' ``data.metadata`` with their values undecoded. A log
        with ``agentSummary`` sets the summary to it (null: the event changed nothing), and
        its event is not read; one without it whose ``agent`` names a stream has its event
        read. Returns how many were taken: others (neither, an event of the wrong types, one
        the summary does not read) change nothing. A sent summary that is not one is dropped
        when it is decoded, leaving the summary as it was. Never raises.
        """
        taken = 0
        sent = self._sent
        for metadata in metadatas:
            given = metadata.get("agentSummary")
            if given is not None:
                if given != _NULL:
                    sent[container_id] = bytes(given)  # a copy: not the whole frame's buffer
                    if len(given) > HELD_BYTES:
                        self._take_sent(container_id)
                taken += 1
            elif (kind := agent_kind(metadata.get("agent"))) is not None and self._read(
                container_id, kind, metadata.get("event")
            ):
                taken += 1
        return taken

    def _read(self, container_id: str, kind: str, event: msgspec.Raw | None) -> bool:
        """Read an event itself (its publisher sent no summary); whether it was taken."""
        if event is None or _UNREAD.match(event):
            return False
        try:
            decoded = _event_decoder.decode(event)
        except msgspec.DecodeError:
            return False
        if container_id in self._sent:
            self._take_sent(container_id)
        summaries = self._summaries
        summary = summaries.get(container_id)
        if summary is None or summary.kind != kind:
            summary = AgentSummary(kind)
        self._put(container_id, summary)
        summary.update(decoded)
        return True

    def _take_sent(self, container_id: str) -> None:
        """Decode the last summary a container's publisher sent and make it the summary."""
        raw = self._sent.pop(container_id)
        try:
            summary = AgentSummary.from_json(_any_decoder.decode(raw))
        except msgspec.DecodeError:
            summary = None
        if summary is not None:
            self._put(container_id, summary)

    def _put(self, container_id: str, summary: AgentSummary) -> None:
        """Make ``summary`` the container's, the most recent, and changed."""
        summaries = self._summaries
        summaries[container_id] = summary
        summaries.move_to_end(container_id)
        if len(summaries) > self._limit:
            summaries.popitem(last=False)
        self._changed.add(container_id)

    def forget(self, container_id: str) -> None:
        """Drop a container's summary (its new session starts from nothing)."""
        self._summaries.pop(container_id, None)
        self._sent.pop(container_id, None)
        self._changed.discard(container_id)

    def restore(self, container_id: str, obj: Any) -> bool:
        """Put back a summary kept elsewhere (its :meth:`to_json`); whether it was one."""
        summary = AgentSummary.from_json(obj)
        if summary is None:
            return False
        self._sent.pop(container_id, None)
        self._put(container_id, summary)
        self._changed.discard(container_id)
        return True

    def take_changed(self) -> dict[str, dict[str, Any]]:
        """The summaries changed since the last call, by container, for keeping elsewhere."""
        for container_id in list(self._sent):
            self._take_sent(container_id)
        changed = {
            container_id: summary.to_json()
            for container_id in self._changed
            if (summary := self._summaries.get(container_id)) is not None
        }
        self._changed.clear()
        return changed

    def get(self, container_id: str) -> AgentSummary | None:
        if container_id in self._sent:
            self._take_sent(container_id)
        return self._summaries.get(container_id)

    def to_json(self, container_id: str) -> dict[str, Any] | None:
        """The ``agent`` object of a container, or None when it published no agent event."""
        summary = self.get(container_id)
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
    tokens = dict.fromkeys(TOKEN_KEYS, 0)
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
