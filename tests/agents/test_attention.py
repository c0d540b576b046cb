"""The attention state: which sessions need a person, from what they publish."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from tailhub.agents import Attention, AttentionBook, may_change

PERMISSION = {
    "type": "control_request",
    "request_id": "req_1",
    "request": {"subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "ls"}},
}
QUESTION_INPUT = {
    "questions": [
        {
            "question": "Which framework?",
            "options": [{"label": "pytest", "description": "x"}, {"label": "unittest"}],
        }
    ]
}


def _data(event: Any, compact: bool = True, **more: Any) -> list[dict[str, msgspec.Raw]]:
    """A log's ``metadata`` as the node hands it over, values undecoded, for ``event``."""
    separators = (",", ":") if compact else None
    metadata = {
        "agent": msgspec.Raw(b'"claude"'),
        "event": msgspec.Raw(json.dumps(event, separators=separators).encode()),
    }
    metadata |= {key: msgspec.Raw(json.dumps(value).encode()) for key, value in more.items()}
    return [metadata]


def _state(book: AttentionBook, cid: str = "c") -> tuple[str, str] | None:
    shown = book.get(cid)
    return (shown.state, shown.reason) if shown is not None else None


class TestWaiting:
    def test_permission_request(self) -> None:
        """A can_use_tool control request makes the session wait with the request shown."""
        book = AttentionBook()
        assert book.observe_agent("c", _data(PERMISSION), 100.0)
        shown = book.to_json("c")
        assert shown is not None
        assert "waiting" == shown["state"]
        assert "permission" == shown["reason"]
        assert {
            "id": "req_1",
            "kind": "permission",
            "tool": "Bash",
            "input": {"command": "ls"},
            "question": None,
            "options": None,
        } == shown["request"]
        assert shown["since"].startswith("1970-01-01T00:01:40")

    def test_answer_clears(self) -> None:
        """The control_response the runner publishes ends the request; state null again."""
        book = AttentionBook()
        book.observe_agent("c", _data(PERMISSION), 1.0)
        response = {
            "type": "control_response",
            "response": {"subtype": "success", "request_id": "req_1", "response": {}},
        }
        assert book.observe_agent("c", _data(response), 2.0)
        assert book.get("c") is None
        assert book.pending("c") is None

    def test_cancel_and_spaced_json(self) -> None:
        """A control_cancel_request ends it too; JSON laid out with spaces is read the same."""
        book = AttentionBook()
        book.observe_agent("c", _data(PERMISSION, compact=False), 1.0)
        assert ("waiting", "permission") == _state(book)
        cancel = {"type": "control_cancel_request", "request_id": "req_1"}
        assert book.observe_agent("c", _data(cancel, compact=False), 2.0)
        assert _state(book) is None

    def test_question_tool_call(self) -> None:
        """An AskUserQuestion tool_use waits until its tool_result, with question and options."""
        book = AttentionBook()
        assistant = {
            "type": "assistant",
            "message": {
                "content": [
                    {
                        "type": "tool_use",
                        "id": "tu_9",
                        "name": "AskUserQuestion",
                        "input": QUESTION_INPUT,
                    }
                ]
            },
        }
        assert book.observe_agent("c", _data(assistant), 1.0)
        request = book.pending("c")
        assert request is not None
        assert ("tu_9", "question", "Which framework?", ["pytest", "unittest"]) == (
            request.id,
            request.kind,
            request.question,
            request.options,
        )
        other = {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "tool_use_id": "x"}]},
        }
        assert not book.observe_agent("c", _data(other), 2.0)
        result = {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "tool_use_id": "tu_9"}]},
        }
        assert book.observe_agent("c", _data(result), 3.0)
        assert book.get("c") is None

    def test_codex_approval(self) -> None:
        """A Codex exec approval request waits; the command starting ends it."""
        book = AttentionBook()
        event = {
            "id": "1",
            "msg": {"type": "exec_approval_request", "call_id": "call_7", "command": ["rm", "x"]},
        }
        # Codex events without a top-level type still carry one inside ``msg``.
        assert book.observe_agent("c", _data({"type": "event", **event}), 1.0)
        assert ("waiting", "approval") == _state(book)
        assert "call_7" == book.pending("c").id  # type: ignore[union-attr]
        begin = {"type": "event", "msg": {"type": "exec_command_begin", "call_id": "call_7"}}
        assert book.observe_agent("c", _data(begin), 2.0)
        assert _state(book) is None

    def test_as_the_runner_lays_it_out(self) -> None:
        """Compact events, as tailhub run writes them: the type alone passes an event over,
        and the events that open a request are still read."""
        book = AttentionBook()

        def observe(event: Any) -> bool:
            return book.observe_agent("c", _data(event), 1.0)

        text = {"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}}
        assert not observe(text)
        assert not book.knows("c")
        ask = {
            "type": "assistant",
            "message": {
                "content": [
                    {"type": "tool_use", "id": "tu_1", "name": "AskUserQuestion", "input": {}}
                ]
            },
        }
        assert observe(ask)
        assert ("waiting", "question") == _state(book)
        assert observe({"type": "result", "subtype": "success"})
        assert observe(PERMISSION)
        assert "req_1" == book.pending("c").id  # type: ignore[union-attr]

    def test_plain_events_cost_nothing(self) -> None:
        """Agent events that cannot change the state change nothing."""
        book = AttentionBook()
        text = {"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}}
        assert not book.observe_agent("c", _data(text), 1.0)
        assert not book.knows("c")

    def test_the_publishers_word(self) -> None:
        """With ``attend`` the publisher says whether an event may matter: false is passed
        over while nothing is open, true is read; while a request is open, every event is
        read whatever it says."""
        book = AttentionBook()
        assert not book.observe_agent("c", _data(PERMISSION, attend=False), 1.0)
        assert not book.knows("c")
        assert book.observe_agent("c", _data(PERMISSION, attend=True), 2.0)
        cancel = {"type": "control_cancel_request", "request_id": "req_1"}
        assert book.observe_agent("c", _data(cancel, attend=False), 3.0)
        assert _state(book) is None

    def test_may_change(self) -> None:
        """What tailhub run sends as ``attend``: requests, results and turn ends, the
        question tool, and unknown types holding such bytes; not plain events."""
        matters = [
            PERMISSION,
            {"type": "result", "subtype": "success"},
            {"type": "turn.failed"},
            {"type": "assistant", "message": {"content": [{"name": "AskUserQuestion"}]}},
            {"type": "event", "msg": {"type": "exec_approval_request"}},
            {"id": "1", "msg": {"type": "apply_patch_approval_request"}},
        ]
        inert = [
            {"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}},
            {"type": "user", "message": {"content": "result: success"}},
            {"type": "system", "subtype": "init"},
            {"type": "item.completed", "item": {"type": "agent_message", "text": "done"}},
        ]
        for event in matters:
            assert may_change(json.dumps(event, separators=(",", ":")).encode()), event
        for event in inert:
            assert not may_change(json.dumps(event, separators=(",", ":")).encode()), event


class TestEnds:
    def test_result(self) -> None:
        """A result is done, or failed with is_error; the agent going on clears it."""
        book = AttentionBook()
        book.observe_agent("c", _data(PERMISSION), 1.0)
        assert book.observe_agent("c", _data({"type": "result", "subtype": "success"}), 2.0)
        assert ("done", "completed") == _state(book)
        failed = {"type": "result", "subtype": "error_during_execution", "is_error": True}
        assert book.observe_agent("c", _data(failed), 3.0)
        assert ("failed", "result error") == _state(book)
        text = {"type": "assistant", "message": {"content": [{"type": "text", "text": "again"}]}}
        assert book.observe_agent("c", _data(text), 4.0)
        assert _state(book) is None

    def test_status_and_complete(self) -> None:
        """status error fails, running clears it, a non-zero exit fails, cancelled does not."""
        book = AttentionBook()
        assert book.observe_status("c", "error", 1.0)
        assert ("failed", "status error") == _state(book)
        assert book.observe_status("c", "running", 2.0)
        assert _state(book) is None
        assert book.observe_complete("c", 3, 3.0)
        assert ("failed", "exit code 3") == _state(book)
        assert book.observe_complete("d", 0, 3.0)
        assert ("done", "completed") == _state(book, "d")
        book.observe_status("e", "cancelled", 1.0)
        assert not book.observe_complete("e", 143, 2.0)
        assert _state(book, "e") is None

    def test_timed_out(self) -> None:
        """A session the hub ends for silence fails, and its open request is dropped."""
        book = AttentionBook()
        book.observe_agent("c", _data(PERMISSION), 1.0)
        assert book.timed_out("c", 2.0)
        assert ("failed", "status error") == _state(book)
        assert book.pending("c") is None


class TestStalls:
    def test_stall_and_output(self) -> None:
        """No output for the stall time while running: stalled; any output ends it."""
        book = AttentionBook()
        book.observe_status("c", "running", 0.0)
        book.output("c", 10.0)
        assert [] == book.stalls(12.0, 5.0)
        assert ["c"] == book.stalls(15.0, 5.0)
        assert ("stalled", "no output for 5 s") == _state(book)
        assert [] == book.stalls(30.0, 5.0)
        assert book.output("c", 31.0)
        assert _state(book) is None

    def test_not_when_ended_or_waiting_longer(self) -> None:
        """An ended session never stalls; a waiting one stays waiting."""
        book = AttentionBook()
        book.output("c", 0.0)
        book.observe_complete("c", 0, 1.0)
        book.output("w", 0.0)
        book.observe_agent("w", _data(PERMISSION), 0.0)
        book.stalls(100.0, 5.0)
        assert ("done", "completed") == _state(book)
        assert ("waiting", "permission") == _state(book, "w")


class TestKeeping:
    def test_round_trip(self) -> None:
        """A kept state restores the same request, so that approve finds it after a restart."""
        book = AttentionBook()
        book.observe_agent("c", _data(PERMISSION), 5.0)
        kept = book.take_changed()
        assert ["c"] == list(kept)
        again = AttentionBook()
        assert again.restore("c", kept["c"], "running", True)
        assert book.get("c") == again.get("c")
        assert "req_1" == again.pending("c", "req_1").id  # type: ignore[union-attr]
        assert again.pending("c", "other") is None
        assert Attention.from_json({"state": "bogus"}) is None

    def test_bounded(self) -> None:
        """At most ``limit`` sessions are tracked."""
        book = AttentionBook(limit=10)
        for number in range(100):
            book.observe_agent(f"c{number}", _data(PERMISSION), 1.0)
            book.output(f"c{number}", 1.0)
        assert not book.knows("c0")
        assert book.knows("c99")
