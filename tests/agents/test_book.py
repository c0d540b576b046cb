"""The hub's side: summaries per container from published log data, and fleet totals."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from tailhub.agents import AgentBook, Recogniser, agent_kind, fleet_totals
from tailhub.agents.book import HELD_BYTES
from tests.agents.streams import CLAUDE, CLAUDE_SUMMARY, CODEX, CODEX_SUMMARY


def _raw(value: Any) -> msgspec.Raw:
    """A value as the protocol decoder hands ``metadata``'s values on: undecoded JSON."""
    return msgspec.Raw(json.dumps(value).encode())


def _meta(agent: Any, event: Any, **more: Any) -> dict[str, msgspec.Raw]:
    return {"agent": _raw(agent), "event": _raw(event), **{k: _raw(v) for k, v in more.items()}}


def _observe(book: AgentBook, container_id: str, agent: str, event: Any) -> bool:
    return 1 == book.observe(container_id, [_meta(agent, event)])


class TestAgentBook:
    def test_streams_per_container(self) -> None:
        """Each container's events build its own summary, as the reducer would."""
        book = AgentBook()
        for event, _, _ in CLAUDE:
            assert _observe(book, "c1", "claude", event)
        assert len(CODEX) == book.observe("c2", [_meta("codex", event) for event, _, _ in CODEX])
        assert CLAUDE_SUMMARY == book.to_json("c1")
        assert CODEX_SUMMARY == book.to_json("c2")
        assert book.to_json("c3") is None

    def test_as_the_runner_lays_it_out(self) -> None:
        """Compact events as tailhub run writes them: those the summary does not read are
        passed over undecoded, and the summary is the same."""
        book = AgentBook()
        counted = []
        for event, _, _ in CLAUDE:
            line = json.dumps(event, separators=(",", ":")).encode()
            metadata = {"agent": _raw("claude"), "event": msgspec.Raw(line)}
            counted.append(book.observe("c", [metadata]) == 1)
        unread = {"user", "stream_event", "rate_limit_event", "control_request"}
        assert [event["type"] not in unread for event, _, _ in CLAUDE] == counted
        assert CLAUDE_SUMMARY == book.to_json("c")

    def test_summaries_instead_of_events(self) -> None:
        """The summaries a publisher sends (as tailhub run works them out) are kept and the
        events are not read: the summary is the one the events give, for both streams."""
        for agent, stream, expected in (
            ("claude", CLAUDE, CLAUDE_SUMMARY),
            ("codex", CODEX, CODEX_SUMMARY),
        ):
            book = AgentBook()
            recogniser = Recogniser("auto")
            sent = []
            for event, _, _ in stream:
                seen = recogniser.recognise(json.dumps(event))
                assert seen is not None
                assert agent == seen.agent
                # An event that would not decode proves the hub never read it.
                sent.append(
                    {"agent": _raw(agent), "agentSummary": _raw(seen.tally), "event": _raw(5)}
                )
            assert any(metadata["agentSummary"] == _raw(None) for metadata in sent)
            assert len(sent) == book.observe("c", sent)
            assert expected == book.to_json("c")

    def test_a_sent_summary_is_whole(self) -> None:
        """Each sent summary replaces the last; one that is not a summary leaves the last
        kept one; hostile values are cut or dropped."""
        book = AgentBook()
        first = {"kind": "claude", "turns": 2, "model": "m-1"}
        book.observe("c", [_meta("claude", 5, agentSummary=first)])
        book.observe("c", [_meta("claude", 5, agentSummary={"kind": "claude", "turns": 3})])
        shown = book.to_json("c")
        assert shown is not None
        assert (3, None) == (shown["turns"], shown["model"])
        book.observe("c", [_meta("claude", 5, agentSummary={"kind": "gemini", "turns": 9})])
        assert 3 == (book.to_json("c") or {})["turns"]
        hostile = {
            "kind": "claude",
            "turns": -4,
            "model": "x" * 10_000,
            "lastText": "\n\n" + "y" * 10_000,
            "toolCalls": {f"tool{i}": 1 for i in range(1000)} | {"Bash": -1},
            "tokens": {"input": -5, "output": 7},
            "costUsd": "lots",
        }
        book.observe("c", [_meta("claude", 5, agentSummary=hostile)])
        shown = book.to_json("c")
        assert shown is not None
        assert 0 == shown["turns"]
        assert 256 == len(shown["model"])
        assert 200 == len(shown["lastText"])
        assert 256 == len(shown["toolCalls"])
        assert "Bash" not in shown["toolCalls"]
        assert {"input": 0, "output": 7, "cacheRead": 0, "cacheWrite": 0} == shown["tokens"]
        assert shown["costUsd"] is None

    def test_a_long_summary_is_not_held(self) -> None:
        """A sent summary longer than HELD_BYTES is decoded at once, and cut: what is held for
        a container stays small."""
        book = AgentBook()
        long = {"kind": "claude", "turns": 4, "lastText": "z" * (HELD_BYTES * 2)}
        book.observe("c", [_meta("claude", 5, agentSummary=long)])
        assert not book._sent
        shown = book.to_json("c")
        assert shown is not None
        assert (4, 200) == (shown["turns"], len(shown["lastText"]))

    def test_kept_once_read(self) -> None:
        """A sent summary is handed out for keeping, decoded, with the others changed."""
        book = AgentBook()
        book.observe("c", [_meta("codex", 5, agentSummary={"kind": "codex", "turns": 1})])
        assert {"c"} == set(book.take_changed())
        assert {} == book.take_changed()

    def test_not_agent_data(self) -> None:
        """Other streams, events of the wrong shape, broken JSON, no event: nothing counted."""
        book = AgentBook()
        refused = [
            {"agent": _raw("gemini"), "event": _raw({"type": "assistant"})},
            _meta("claude", {"type": "assistant", "message": {"id": 5}}),
            _meta("claude", "not an object"),
            {"agent": _raw("claude"), "event": msgspec.Raw(b'{"type":"assistant","message"')},
            {"agent": _raw("claude")},
            {"level": _raw("info")},
        ]
        assert 0 == book.observe("c", refused)
        assert book.get("c") is None

    def test_agent_kind(self) -> None:
        """metadata.agent names a stream only as the JSON strings "claude" and "codex"."""
        assert "claude" == agent_kind(_raw("claude"))
        assert "codex" == agent_kind(msgspec.Raw(b'"codex"'))
        for other in (_raw("gemini"), _raw(["claude"]), _raw(None), msgspec.Raw(b'"cl'), None):
            assert agent_kind(other) is None

    def test_forget_and_limit(self) -> None:
        """forget() starts a container afresh; beyond the limit the stalest is dropped."""
        book = AgentBook(limit=2)
        event = CODEX[1][0]
        for name in ("a", "b", "a", "c"):
            _observe(book, name, "codex", event)
        assert book.get("b") is None
        assert book.get("a") is not None
        book.forget("a")
        assert book.get("a") is None

    def test_kind_change_starts_over(self) -> None:
        """A container that switches from one stream to the other gets a new summary."""
        book = AgentBook()
        _observe(book, "c", "codex", CODEX[1][0])
        _observe(book, "c", "claude", CLAUDE[0][0])
        summary = book.to_json("c")
        assert summary is not None
        assert ("claude", 0) == (summary["kind"], summary["turns"])

    def test_kept_and_restored(self) -> None:
        """What changed is handed out once; a restored summary counts on from its numbers."""
        book = AgentBook()
        for event, _, _ in CODEX[:12]:
            _observe(book, "c", "codex", event)
        kept = book.take_changed()
        assert ["c"] == list(kept)
        assert {} == book.take_changed()
        again = AgentBook()
        assert again.restore("c", json.loads(json.dumps(kept["c"])))
        assert kept["c"] == again.to_json("c")
        for event, _, _ in CODEX[12:]:
            _observe(again, "c", "codex", event)
        final = again.to_json("c")
        assert final is not None
        assert (CODEX_SUMMARY["turns"], CODEX_SUMMARY["tokens"], CODEX_SUMMARY["result"]) == (
            final["turns"],
            final["tokens"],
            final["result"],
        )

    def test_restore_refuses_other_values(self) -> None:
        """Values that are no summary are refused; odd numbers inside one are dropped."""
        book = AgentBook()
        assert not book.restore("c", {"kind": "gemini"})
        assert not book.restore("c", "claude")
        assert book.restore("c", {"kind": "claude", "turns": -1, "tokens": {"input": "x"}})
        restored = book.to_json("c")
        assert restored is not None
        assert (0, 0) == (restored["turns"], restored["tokens"]["input"])


class TestFleetTotals:
    def test_totals(self) -> None:
        """Sessions by status, running, failed, and cost and tokens summed over agents."""
        tokens = {"input": 1, "output": 2, "cacheRead": 3, "cacheWrite": 4}
        sessions = [
            {"status": "running", "active": True, "agent": {"costUsd": 0.5, "tokens": tokens}},
            {"status": "error", "active": False, "agent": {"costUsd": None, "tokens": tokens}},
            {"status": "completed", "active": False, "agent": None},
            {"status": "running", "active": True},
        ]
        assert {
            "sessions": 4,
            "byStatus": {"running": 2, "error": 1, "completed": 1},
            "running": 2,
            "failed": 1,
            "agents": 2,
            "costUsd": 0.5,
            "tokens": {"input": 2, "output": 4, "cacheRead": 6, "cacheWrite": 8},
        } == fleet_totals(sessions)

    def test_empty(self) -> None:
        assert 0 == fleet_totals([])["sessions"]
