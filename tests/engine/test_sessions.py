"""Session lifecycle rules as plain functions of time: no event loop, no I/O."""

from __future__ import annotations

import pytest

from tailhub.engine.sessions import (
    Session,
    SessionLimitError,
    SessionRegistry,
    apply_message,
    cursor_after,
    listing_key,
    parse_cursor,
    run_messages,
)


class TestSessionRegistry:
    def test_start_within_the_limit_only(self) -> None:
        """A session starts while fewer than max_sessions are active; then none more."""
        reg = SessionRegistry(max_sessions=1)
        reg.start("a", 1.0)
        with pytest.raises(SessionLimitError, match="MAX_SESSIONS"):
            reg.start("b", 2.0)
        assert (["a"], True, False) == (
            list(reg.active),
            reg.has_room_for("a"),
            reg.has_room_for("b"),
        )

    def test_end_frees_a_slot_and_lists_it_ended(self) -> None:
        """An ended session frees its slot and stays listed; a new start replaces it."""
        reg = SessionRegistry(max_sessions=1)
        reg.start("a", 1.0)
        ended = reg.end("a", "complete", 2.0)
        assert ended is not None
        assert (2.0, "complete", None) == (ended.ended_at, ended.end_reason, reg.end("a", "x", 3.0))
        reg.start("a", 4.0)
        assert ({"a"}, {}) == (set(reg.active), dict(reg.ended))

    def test_keep_ended_drops_the_oldest_and_says_so(self) -> None:
        """Past keep_ended the oldest ended session goes, and is named in dropped."""
        reg = SessionRegistry(max_sessions=5, keep_ended=1)
        for name, at in (("a", 1.0), ("b", 2.0)):
            reg.start(name, at)
            reg.end(name, "timeout", at)
        assert (["b"], ["a"]) == (list(reg.ended), reg.dropped)

    def test_expired_by_last_activity(self) -> None:
        """Sessions idle for timeout are expired; a refreshed one is not."""
        reg = SessionRegistry(max_sessions=5)
        reg.start("idle", 1.0)
        reg.start("busy", 1.0).last_activity = 9.0
        assert ["idle"] == [s.container_id for s in reg.expired(11.0, 10.0)]

    def test_forget_ended_before(self) -> None:
        """Ended sessions older than the cutoff are forgotten; newer ones stay."""
        reg = SessionRegistry(max_sessions=5)
        for name, at in (("old", 1.0), ("new", 5.0)):
            reg.start(name, at)
            reg.end(name, "complete", at)
        assert (["old"], ["new"]) == (reg.forget_ended_before(3.0), list(reg.ended))

    def test_restore_counts_active_sessions(self) -> None:
        """Restored active sessions take their slots; ended ones are listed by end time."""
        reg = SessionRegistry(max_sessions=1)
        reg.restore(
            [
                Session("e2", 1.0, 2.0, "error", 8.0),
                Session("a", 1.0, 2.0),
                Session("e1", 1.0, 2.0, ended_at=5.0),
            ]
        )
        assert (False, ["e1", "e2"]) == (reg.has_room_for("b"), list(reg.ended))

    def test_pages_follow_the_cursor(self) -> None:
        """Pages cover the filtered listing once, in order; the last has no cursor."""
        reg = SessionRegistry(max_sessions=5)
        for i, name in enumerate("abc"):
            reg.start(name, float(i))
        reg.end("b", "complete", 9.0)
        first, cursor = reg.page(None, 2, None)
        rest, end = reg.page(None, 2, cursor)
        assert (["a", "c"], ["b"], None) == (
            [s.container_id for s in first],
            [s.container_id for s in rest],
            end,
        )
        assert (["b"], None) == (
            [s.container_id for s in reg.page("ended", 5, None)[0]],
            reg.page("ended", 5, None)[1],
        )
        with pytest.raises(ValueError, match="not a session listing cursor"):
            reg.page(None, 2, "garbage")


class TestRules:
    def test_messages_set_the_status(self) -> None:
        """status sets its status; complete sets completed or error with the exit code."""
        session = Session("a", 1.0, 1.0)
        changed = apply_message(session, "status", "thinking", None)
        same = apply_message(session, "log", None, None)
        apply_message(session, "complete", None, 0)
        done = session.status
        apply_message(session, "complete", None, 2)
        assert (True, False, "completed", "error", 2) == (
            changed,
            same,
            done,
            session.status,
            session.exit_code,
        )

    def test_cancelled_stays_cancelled_at_complete(self) -> None:
        """A cancelled run's complete (a non-zero exit code) keeps the status cancelled."""
        session = Session("a", 1.0, 1.0)
        apply_message(session, "status", "cancelled", None, 2.0)
        apply_message(session, "complete", None, 143, 3.0)
        assert ("cancelled", 143) == (session.status, session.exit_code)

    def test_starting_begins_a_new_run(self) -> None:
        """A starting status on a session with a run starts its run again, from now."""
        session = Session("a", 1.0, 1.0, run_seq=1, exit_code=3)
        apply_message(session, "status", "starting", None, 5.0)
        assert (5.0, 0, None, "starting") == (
            session.started_at,
            session.run_seq,
            session.exit_code,
            session.status,
        )

    def test_a_run_counts_its_own_messages(self) -> None:
        """A run's messages are those from its first seq, at most those kept; a run whose
        start is not known counts everything kept."""
        assert (6, 10, 10) == (
            run_messages(Session("a", 1.0, 1.0, run_seq=15), 20, 10),
            run_messages(Session("a", 1.0, 1.0, run_seq=5), 20, 10),
            run_messages(Session("a", 1.0, 1.0, run_seq=-1), 20, 10),
        )

    def test_cursor_round_trips(self) -> None:
        """A cursor names exactly the listing key it was made from."""
        session = Session("a:b", 1.5, 2.0, ended_at=3.25)
        key = listing_key(session)
        assert key == parse_cursor(cursor_after(key))
