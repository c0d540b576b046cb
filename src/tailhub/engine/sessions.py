"""Session lifecycle rules: one session per containerID, its status, ``MAX_SESSIONS``, listing.

No I/O and no clock of its own: callers pass ``now`` (wall time, Unix seconds), so the
lifecycle is tested as plain functions, and an engine that keeps sessions elsewhere (SQLite,
Redis) applies the same rules to what it loaded.

The rules:

- A session starts with its container's first stored message; a heartbeat starts none.
- While ``max_sessions`` are active, a message that would start one more is refused and
  nothing changes.
- Every message and heartbeat refreshes ``last_activity``. A ``status`` message sets the
  status it names; ``complete`` sets ``completed`` (exit code 0) or ``error`` and ends the
  session; an ``error`` message sets ``error``.
- An ended session stays listed (the container's last one) until ``keep_ended`` newer ones
  have ended, or its container starts a new session.
- Listing order: active sessions by start time, then ended ones, the most recently ended first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "Session",
    "SessionLimitError",
    "SessionRegistry",
    "apply_message",
    "cursor_after",
    "limit_reason",
    "listing_key",
    "parse_cursor",
    "run_messages",
    "selects",
]

_ACTIVE: Final = "active"
_ENDED: Final = "ended"


class SessionLimitError(Exception):
    """Publishing would open one more session than the registry allows."""


def limit_reason(max_sessions: int) -> str:
    """The words a refused publish carries (the ``max_sessions`` error)."""
    return f"{max_sessions} sessions are active, the most allowed (MAX_SESSIONS)"


@dataclass(slots=True)
class Session:
    """One container's session. ``status`` is the last status it reported; times are Unix.

    A session is one run of its container: ``run_seq`` is the ``seq`` of the run's first
    message (0 until the engine stores it; -1 when not known, as for a session restored after
    a restart, whose whole kept history counts); a ``starting`` status on an open session
    begins a new run.
    """

    container_id: str
    started_at: float
    last_activity: float
    status: str = "running"
    ended_at: float | None = None
    end_reason: str | None = None
    exit_code: int | None = None
    run_seq: int = 0

    @property
    def active(self) -> bool:
        return self.ended_at is None


def apply_message(
    session: Session,
    kind: str,
    status: str | None,
    exit_code: int | None,
    now: float | None = None,
) -> bool:
    """Apply what one stored message says to ``session``; True if its status changed.

    ``starting`` on a session that already has a run begins a new one at ``now`` (its
    ``run_seq`` goes back to 0 for the engine to set); a cancelled run stays ``cancelled``
    when its ``complete`` arrives.
    """
    before = session.status
    if status is not None:
        if status == "starting" and session.run_seq and now is not None:
            session.started_at = now
            session.exit_code = None
            session.run_seq = 0
        session.status = status
    elif kind == "complete":
        session.exit_code = exit_code
        if session.status != "cancelled":
            session.status = "completed" if exit_code == 0 else "error"
    elif kind == "error":
        session.status = "error"
    return session.status != before or kind == "complete"


def run_messages(session: Session, last_seq: int, kept: int) -> int:
    """The messages of the session's run (from its first message), at most the ``kept``."""
    if session.run_seq <= 0:
        return kept
    return min(kept, last_seq - session.run_seq + 1)


def listing_key(session: Session) -> tuple[int, float, str]:
    """Where ``session`` sorts in the listing (see the module doc); unique per container."""
    if session.ended_at is None:
        return (0, session.started_at, session.container_id)
    return (1, -session.ended_at, session.container_id)


def cursor_after(key: tuple[int, float, str]) -> str:
    """The cursor that continues a listing after the session with ``key``."""
    return f"{key[0]}:{key[1]!r}:{key[2]}"


def parse_cursor(cursor: str) -> tuple[int, float, str]:
    """The listing key a cursor names.

    Raises:
        ValueError: ``cursor`` was not made by :func:`cursor_after`.
    """
    parts = cursor.split(":", 2)
    try:
        if len(parts) != 3:
            raise ValueError(cursor)
        return (int(parts[0]), float(parts[1]), parts[2])
    except ValueError:
        raise ValueError(f"{cursor!r} is not a session listing cursor") from None


def selects(session: Session, status: str | None) -> bool:
    """Whether a listing filtered by ``status`` shows ``session`` (see ``Engine.sessions``)."""
    if status is None:
        return True
    if status == _ACTIVE:
        return session.ended_at is None
    if status == _ENDED:
        return session.ended_at is not None
    return session.status == status


class SessionRegistry:
    """Active sessions, plus each container's most recently ended one, for listing.

    Guarantees: at most ``max_sessions`` active at once; a refused publish changes nothing; a
    ``complete`` ends its session at once (through :meth:`end`, called by the engine); an
    ended session is listed until ``keep_ended`` newer ones have ended (None: no limit).
    """

    def __init__(self, max_sessions: int, keep_ended: int | None = 1000) -> None:
        self.max_sessions = max_sessions
        self._keep_ended = keep_ended
        self.active: dict[str, Session] = {}
        self.ended: OrderedDict[str, Session] = OrderedDict()
        self.dropped: list[str] = []
        """Containers whose ended session stopped being listed (``keep_ended``), for the
        caller to forget where it keeps them; the caller empties it."""

    def restore(self, sessions: Iterable[Session]) -> None:
        """Take back sessions kept from an earlier run (active ones count against the limit)."""
        sessions = list(sessions)
        ended = [s for s in sessions if s.ended_at is not None]
        for session in sessions:
            if session.ended_at is None:
                self.active[session.container_id] = session
        for session in sorted(ended, key=lambda s: s.ended_at or 0.0):
            self.ended[session.container_id] = session
        self._trim()

    def has_room_for(self, container_id: str) -> bool:
        """Whether a message for ``container_id`` would be let in: its session is active, or
        another may start without passing ``max_sessions``."""
        return container_id in self.active or len(self.active) < self.max_sessions

    def start(self, container_id: str, now: float) -> Session:
        """Start ``container_id``'s session (the caller checked :meth:`has_room_for`).

        Raises:
            SessionLimitError: it would start a session beyond ``max_sessions``.
        """
        if len(self.active) >= self.max_sessions:
            raise SessionLimitError(limit_reason(self.max_sessions))
        session = Session(container_id, started_at=now, last_activity=now)
        self.active[container_id] = session
        self.ended.pop(container_id, None)
        return session

    def expired(self, now: float, timeout: float) -> list[Session]:
        """Active sessions whose container has sent nothing for ``timeout`` seconds."""
        limit = now - timeout
        return [s for s in self.active.values() if s.last_activity <= limit]

    def end(self, container_id: str, reason: str, now: float) -> Session | None:
        """End an active session (``complete``, ``timeout``, ...); returns it, or None."""
        session = self.active.pop(container_id, None)
        if session is None:
            return None
        session.ended_at = now
        session.end_reason = reason
        self.ended[container_id] = session
        self._trim()
        return session

    def forget_ended_before(self, cutoff: float) -> list[str]:
        """Stop listing sessions that ended before ``cutoff``; returns their containers."""
        gone = [cid for cid, s in self.ended.items() if (s.ended_at or 0.0) < cutoff]
        for container_id in gone:
            del self.ended[container_id]
        return gone

    def _trim(self) -> None:
        if self._keep_ended is not None:
            while len(self.ended) > self._keep_ended:
                self.dropped.append(self.ended.popitem(last=False)[0])

    def get(self, container_id: str) -> Session | None:
        """The active session of ``container_id``, else its last ended one, else None."""
        return self.active.get(container_id) or self.ended.get(container_id)

    def page(
        self, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Session], str | None]:
        """One page of the listing: sessions after ``cursor``, filtered, at most ``limit``.

        Returns the page and the cursor of the next one (None: nothing follows).

        Raises:
            ValueError: ``cursor`` is not a cursor this registry gave.
        """
        chosen = [s for s in (*self.active.values(), *self.ended.values()) if selects(s, status)]
        keyed = sorted((listing_key(s), s) for s in chosen)
        if cursor is not None:
            start = parse_cursor(cursor)
            keyed = [pair for pair in keyed if pair[0] > start]
        page = keyed[: max(limit, 0)]
        more = len(keyed) > len(page) and page
        return [s for _, s in page], cursor_after(page[-1][0]) if more else None
