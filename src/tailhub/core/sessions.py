"""Session registry: one session per containerID, its lifecycle and the ``MAX_SESSIONS`` limit.

No I/O and no clock of its own: callers pass ``now`` (wall time, Unix seconds) and ``mono``
(a monotonic clock, for timeouts), so the lifecycle is tested as plain functions.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Session", "SessionLimitError", "SessionRegistry"]


class SessionLimitError(Exception):
    """Publishing would open one more session than the registry allows."""


@dataclass(slots=True)
class Session:
    """One container's session. ``status`` is the last status it reported.

    A session is one run of its container: ``run_seq`` is the ``seq`` of the run's first
    message, set by the node; a ``starting`` status on an open session begins a new run.
    """

    container_id: str
    started_at: float
    last_activity: float
    last_seen: float
    status: str = "running"
    ended_at: float | None = None
    end_reason: str | None = None
    exit_code: int | None = None
    run_seq: int = 0

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def touch(self, now: float, mono: float) -> None:
        """The container was heard from: wall time ``now``, monotonic ``mono``."""
        self.last_activity = now
        self.last_seen = mono


class SessionRegistry:
    """Active sessions, plus the most recently ended ones for listing.

    Guarantees: at most ``max_sessions`` active at once; a refused publish changes nothing; a
    ``complete`` ends its session at once; an ended session is listed until ``keep_ended``
    newer ones have ended.
    """

    def __init__(self, max_sessions: int, timeout: float, keep_ended: int = 1000) -> None:
        self.max_sessions = max_sessions
        self.timeout = timeout
        self._keep_ended = keep_ended
        self.active: dict[str, Session] = {}
        self.ended: OrderedDict[str, Session] = OrderedDict()

    def on_publish(
        self,
        container_id: str,
        kind: str,
        now: float,
        mono: float,
        *,
        status: str | None = None,
        exit_code: int | None = None,
    ) -> tuple[Session | None, bool]:
        """Record a message published for ``container_id``.

        Returns:
            The session (None for a heartbeat with no active session, which opens none) and
            whether this message started it.

        Raises:
            SessionLimitError: it would start a session beyond ``max_sessions``.
        """
        session = self.active.get(container_id)
        started = False
        if session is None:
            if kind == "heartbeat":
                return None, False
            if not self.has_room_for(container_id):
                raise SessionLimitError(
                    f"{self.max_sessions} sessions are active, the most allowed (MAX_SESSIONS)"
                )
            session = Session(container_id, started_at=now, last_activity=now, last_seen=mono)
            self.active[container_id] = session
            self.ended.pop(container_id, None)
            started = True
        session.touch(now, mono)
        if status == "starting" and not started:
            session.started_at = now  # a new run on the open session: it starts now
            session.exit_code = None
            session.run_seq = 0
        if status is not None:
            session.status = status
        elif kind == "complete":
            session.exit_code = exit_code
            if session.status != "cancelled":  # a cancelled run stays cancelled at its end
                session.status = "completed" if exit_code == 0 else "error"
        elif kind == "error":
            session.status = "error"
        return session, started

    def has_room_for(self, container_id: str) -> bool:
        """Whether a message for ``container_id`` would be let in: its session is active, or
        another may start without passing ``max_sessions``."""
        return container_id in self.active or len(self.active) < self.max_sessions

    def expired(self, mono: float) -> list[Session]:
        """Active sessions whose container has sent nothing for ``timeout`` seconds."""
        limit = mono - self.timeout
        return [s for s in self.active.values() if s.last_seen <= limit]

    def end(self, container_id: str, reason: str, now: float) -> Session | None:
        """End an active session (``complete`` or ``timeout``); returns it, or None."""
        session = self.active.pop(container_id, None)
        if session is None:
            return None
        session.ended_at = now
        session.end_reason = reason
        self.ended[container_id] = session
        while len(self.ended) > self._keep_ended:
            self.ended.popitem(last=False)
        return session

    def get(self, container_id: str) -> Session | None:
        """The active session of ``container_id``, else its last ended one, else None."""
        return self.active.get(container_id) or self.ended.get(container_id)

    def all(self) -> list[Session]:
        """Active sessions first, then ended ones, newest first."""
        return [*self.active.values(), *reversed(self.ended.values())]
