"""Session lifecycle as plain functions of time: no event loop, no I/O."""

from __future__ import annotations

import pytest

from tailhub.core.sessions import SessionLimitError, SessionRegistry


class TestSessionRegistry:
    def test_first_message_starts_a_session(self) -> None:
        """The first published message opens the session."""
        reg = SessionRegistry(max_sessions=2, timeout=10)
        session, started = reg.on_publish("a", "log", now=100.0, mono=1.0)
        assert started
        assert session is not None
        assert ("a", 100.0, "running") == (session.container_id, session.started_at, session.status)

    def test_heartbeat_opens_nothing(self) -> None:
        """A heartbeat only refreshes an active session."""
        reg = SessionRegistry(max_sessions=2, timeout=10)
        assert (None, False) == reg.on_publish("a", "heartbeat", now=1.0, mono=1.0)
        assert {} == reg.active

    def test_limit_refuses_and_changes_nothing(self) -> None:
        """One session beyond max_sessions is refused; existing ones go on."""
        reg = SessionRegistry(max_sessions=1, timeout=10)
        reg.on_publish("a", "log", now=1.0, mono=1.0)
        with pytest.raises(SessionLimitError):
            reg.on_publish("b", "log", now=2.0, mono=2.0)
        assert ["a"] == list(reg.active)
        _, started = reg.on_publish("a", "log", now=3.0, mono=3.0)
        assert not started

    def test_cancelled_stays_cancelled_at_complete(self) -> None:
        """A cancelled run's complete (a non-zero exit code) keeps the status cancelled."""
        reg = SessionRegistry(max_sessions=2, timeout=10)
        reg.on_publish("a", "status", now=1.0, mono=1.0, status="running")
        reg.on_publish("a", "status", now=2.0, mono=2.0, status="cancelled")
        session, _ = reg.on_publish("a", "complete", now=3.0, mono=3.0, exit_code=143)
        assert session is not None
        assert ("cancelled", 143) == (session.status, session.exit_code)

    def test_starting_begins_a_new_run(self) -> None:
        """A starting status on an open session starts its run again, from now."""
        reg = SessionRegistry(max_sessions=2, timeout=10)
        first, _ = reg.on_publish("a", "log", now=1.0, mono=1.0)
        assert first is not None
        first.run_seq = 1
        session, started = reg.on_publish("a", "status", now=5.0, mono=5.0, status="starting")
        assert session is first
        assert not started
        assert (5.0, 0, "starting") == (session.started_at, session.run_seq, session.status)

    def test_room(self) -> None:
        """An active container always has room; a new one only below the limit."""
        reg = SessionRegistry(max_sessions=1, timeout=10)
        assert reg.has_room_for("a")
        reg.on_publish("a", "log", now=1.0, mono=1.0)
        assert (True, False) == (reg.has_room_for("a"), reg.has_room_for("b"))

    def test_complete_ends_and_frees_a_slot(self) -> None:
        """Ending a session frees its slot and lists it as ended."""
        reg = SessionRegistry(max_sessions=1, timeout=10)
        reg.on_publish("a", "complete", now=1.0, mono=1.0, exit_code=0)
        ended = reg.end("a", "complete", now=2.0)
        assert ended is not None
        assert ("completed", 0, "complete") == (ended.status, ended.exit_code, ended.end_reason)
        reg.on_publish("b", "log", now=3.0, mono=3.0)
        assert ["b", "a"] == [s.container_id for s in reg.all()]

    def test_nonzero_exit_is_an_error(self) -> None:
        """complete with a non-zero exit code leaves the status 'error'."""
        reg = SessionRegistry(max_sessions=1, timeout=10)
        session, _ = reg.on_publish("a", "complete", now=1.0, mono=1.0, exit_code=2)
        assert session is not None
        assert "error" == session.status

    def test_timeout(self) -> None:
        """A session silent for the timeout is reported expired; traffic postpones it."""
        reg = SessionRegistry(max_sessions=5, timeout=10)
        reg.on_publish("a", "log", now=0.0, mono=0.0)
        reg.on_publish("b", "log", now=0.0, mono=0.0)
        reg.on_publish("b", "heartbeat", now=5.0, mono=5.0)
        assert ["a"] == [s.container_id for s in reg.expired(10.0)]
        assert ["a", "b"] == [s.container_id for s in reg.expired(15.0)]

    def test_restart_after_end(self) -> None:
        """A message after the end starts a new session for the same ID."""
        reg = SessionRegistry(max_sessions=1, timeout=10)
        reg.on_publish("a", "log", now=1.0, mono=1.0)
        reg.end("a", "timeout", now=2.0)
        session, started = reg.on_publish("a", "status", now=3.0, mono=3.0, status="starting")
        assert started
        assert session is not None
        assert (3.0, None, "starting") == (session.started_at, session.ended_at, session.status)
        assert [] == list(reg.ended)

    def test_ended_list_is_bounded(self) -> None:
        """Only the newest keep_ended ended sessions stay listed."""
        reg = SessionRegistry(max_sessions=10, timeout=10, keep_ended=2)
        for name in "abc":
            reg.on_publish(name, "log", now=1.0, mono=1.0)
            reg.end(name, "complete", now=2.0)
        assert ["c", "b"] == [s.container_id for s in reg.all()]
