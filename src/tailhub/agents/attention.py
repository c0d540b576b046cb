"""Which sessions need a person: the attention state the hub derives per session.

No I/O: the node hands in what a session published (agent events, status changes, its end,
that it produced output at all) with the wall time, and asks which sessions changed.

The state of a session, first that applies:

- ``waiting``: the agent asked something that is not answered yet. ``reason`` is
  ``permission`` (Claude Code's ``control_request`` of subtype ``can_use_tool``),
  ``question`` (an ``AskUserQuestion`` tool call with no ``tool_result`` yet, or a
  ``can_use_tool`` request for that tool) or ``approval`` (a Codex approval request:
  ``exec_approval_request`` / ``apply_patch_approval_request`` events, or the app server's
  ``…requestApproval`` requests). The oldest request still open is the one shown. A request
  ends with its ``control_response`` (``tailhub run`` publishes the one it wrote to the
  agent), a ``control_cancel_request``, the tool call's ``tool_result``, the item or call it
  was about going on, or the turn's ``result``.
- ``failed``: status ``error`` (``status error``), a ``complete`` with a non-zero exit code
  (``exit code N``), or a ``result`` with ``is_error`` / a Codex ``turn.failed`` (``result
  error``).
- ``done``: status ``completed``, a ``complete`` with exit code 0, or a successful
  ``result`` / ``turn.completed`` (``completed``). A result's ``done`` or ``failed`` ends
  when the agent goes on (any later agent event), as it does when it reads more input.
- ``stalled``: the session's status is ``running`` (or it sent none) and it published
  nothing for the stall time (``no output for N s``); any message ends it.
- otherwise null.

A status of ``starting`` or ``running`` ends ``done`` and ``failed``; ``cancelled`` means a
person stopped it on purpose, so it leaves no state (nor does the ``complete`` after it).

Cost on the publish path: :meth:`AttentionBook.output` is one dict write per stored run;
:meth:`AttentionBook.observe_agent` decodes an event only when it can change the state (as
its publisher says in ``metadata.attend``, or else as :func:`may_change` finds in its bytes)
or when the session has something open that any event may end.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from tailhub.agents.events import agent_kind, decode_raw
from tailhub.protocol import ProtocolError, format_time, parse_time

__all__ = ["STATES", "Attention", "AttentionBook", "Request", "may_change"]

STATES: Final = ("waiting", "stalled", "failed", "done")
_MAX_PENDING: Final = 64
"""Most open requests kept per session (the oldest is dropped first)."""
_TEXT: Final = 2000
"""Longest question or option text kept."""
_QUESTION_TOOL: Final = "AskUserQuestion"

_MATTERS: Final = re.compile(
    rb'"type"\s*:\s*"(?:control_request|control_cancel_request|control_response|result'
    rb"|turn\.completed|turn\.failed|exec_approval_request|apply_patch_approval_request"
    rb'|exec_command_begin|patch_apply_begin)"'
    rb'|AskUserQuestion|requestApproval"|Approval"'
)
"""Bytes without any of these cannot open or close a request or end a turn."""

_LAID_OUT: Final = re.compile(rb'\{"type":"([^"]*)"')
"""The event's type where ``tailhub run`` lays it out: its first field."""
_ASKS: Final = re.compile(rb"AskUserQuestion").search
"""Whether an assistant event may call the question tool (a literal search; takes any buffer,
as the node's raw data is)."""
_OPENING: Final = frozenset(
    {
        b"control_request",
        b"result",
        b"turn.completed",
        b"turn.failed",
        b"exec_approval_request",
        b"apply_patch_approval_request",
    }
)
"""Event types that can change the state of a session with nothing open."""
_INERT: Final = frozenset(
    {b"system", b"user", b"stream_event", b"rate_limit_event", b"thread.started", b"turn.started"}
)
"""Event types that cannot change the state of a session with nothing open (any other type
not in ``_OPENING`` is searched for the bytes that could)."""
_TRUE: Final = msgspec.Raw(b"true")


def may_change(event: Any) -> bool:
    """Whether an agent event (its JSON bytes, or any buffer of them) may change the state of
    a session that has nothing open: a request, a result or a turn's end.

    An event whose bytes start as ``tailhub run`` writes them (``{"type":"…"``) is judged by
    its type (an assistant message by one literal search for the question tool); any other
    is searched for the bytes that could matter. False only when the event cannot matter.
    """
    laid = _LAID_OUT.match(event)
    kind = laid.group(1) if laid is not None else None
    if kind == b"assistant":
        return _ASKS(event) is not None
    if kind in _INERT:
        return False
    return kind in _OPENING or _MATTERS.search(event) is not None


class Request(msgspec.Struct, frozen=True):
    """An open request of an agent: what ``approve``, ``deny`` or ``reply`` answer."""

    id: str
    kind: str
    tool: str | None = None
    input: Any = None
    question: str | None = None
    options: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "tool": self.tool,
            "input": self.input,
            "question": self.question,
            "options": self.options,
        }


class Attention(msgspec.Struct, frozen=True):
    """A session's attention state (see the module docstring); ``since`` in Unix seconds."""

    state: str
    reason: str
    since: float
    request: Request | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form: ``since`` as RFC 3339, ``request`` an object or null."""
        return {
            "state": self.state,
            "reason": self.reason,
            "since": format_time(self.since),
            "request": self.request.to_json() if self.request is not None else None,
        }

    def same(self, other: Attention | None) -> bool:
        """Whether ``other`` shows the same state for the same reason and request."""
        return (
            other is not None
            and other.state == self.state
            and other.reason == self.reason
            and (other.request.id if other.request else None)
            == (self.request.id if self.request else None)
        )

    @classmethod
    def from_json(cls, obj: Any) -> Attention | None:
        """The attention in a :meth:`to_json` object; None when it is not one."""
        if not isinstance(obj, dict) or obj.get("state") not in STATES:
            return None
        try:
            since = parse_time(str(obj.get("since")))
        except ProtocolError:
            return None
        request = None
        raw = obj.get("request")
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            options = raw.get("options")
            request = Request(
                id=raw["id"],
                kind=str(raw.get("kind") or obj.get("reason")),
                tool=raw["tool"] if isinstance(raw.get("tool"), str) else None,
                input=raw.get("input"),
                question=raw["question"] if isinstance(raw.get("question"), str) else None,
                options=[str(o) for o in options] if isinstance(options, list) else None,
            )
        return cls(str(obj["state"]), str(obj.get("reason") or ""), since, request)


class _Block(msgspec.Struct, gc=False):
    type: str = ""
    id: str | None = None
    name: str | None = None
    input: msgspec.Raw = msgspec.Raw(b"")
    tool_use_id: str | None = None


class _Message(msgspec.Struct, gc=False):
    content: list[_Block] | str | None = None


class _Inner(msgspec.Struct, gc=False):
    type: str | None = None
    call_id: str | None = None
    command: Any = None
    cwd: str | None = None
    reason: str | None = None
    changes: Any = None


class _Event(msgspec.Struct, gc=False):
    type: str | None = None
    subtype: str | None = None
    is_error: bool | None = None
    request_id: str | None = None
    request: msgspec.Raw = msgspec.Raw(b"")
    response: msgspec.Raw = msgspec.Raw(b"")
    message: _Message | str | None = None
    # Codex: protocol events, wrapped (``msg``) or not, and app-server requests.
    call_id: str | None = None
    command: Any = None
    cwd: str | None = None
    reason: str | None = None
    changes: Any = None
    msg: _Inner | None = None
    method: str | None = None
    id: str | int | None = None
    params: msgspec.Raw = msgspec.Raw(b"")
    item: Any = None


_decoder: Final = msgspec.json.Decoder(_Event)


def _text(value: Any) -> str | None:
    return value[:_TEXT] if isinstance(value, str) else None


def _question(tool_input: Any) -> tuple[str | None, list[str] | None]:
    """The first question of an ``AskUserQuestion`` input, and its options' labels."""
    if not isinstance(tool_input, dict):
        return None, None
    questions = tool_input.get("questions")
    first = questions[0] if isinstance(questions, list) and questions else tool_input
    if not isinstance(first, dict):
        return None, None
    options: list[str] | None = None
    given = first.get("options")
    if isinstance(given, list):
        options = []
        for option in given[:32]:
            label = option.get("label") if isinstance(option, dict) else option
            if isinstance(label, str):
                options.append(label[:_TEXT])
    return _text(first.get("question")), options


class _Session:
    __slots__ = ("ended", "pending", "shown", "stalled", "status", "terminal")

    def __init__(self) -> None:
        self.pending: OrderedDict[str, tuple[Request, float]] = OrderedDict()
        self.terminal: tuple[str, str, float, bool] | None = None
        """(state, reason, since, whether a later agent event ends it)"""
        self.stalled: tuple[str, float] | None = None
        self.status: str | None = None
        self.ended = False
        self.shown: Attention | None = None

    def current(self) -> Attention | None:
        if self.pending:
            request, since = next(iter(self.pending.values()))
            return Attention("waiting", request.kind, since, request)
        if self.terminal is not None:
            state, reason, since, _ = self.terminal
            return Attention(state, reason, since)
        if self.stalled is not None:
            return Attention("stalled", *self.stalled)
        return None


class AttentionBook:
    """The attention state of the most recent ``limit`` sessions.

    Every method that takes a message returns whether the session's state changed (what
    :meth:`get` returns is then different from before); the caller pushes and keeps it.

    Args:
        limit: most sessions tracked; the one inserted first is dropped beyond it.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = max(1, limit)
        self._sessions: dict[str, _Session] = {}
        self._output: dict[str, float] = {}
        """Per container, the wall time it last published something (for stalls)."""
        self._changed: set[str] = set()

    # -- reading -----------------------------------------------------------------------

    def get(self, container_id: str) -> Attention | None:
        session = self._sessions.get(container_id)
        return session.shown if session is not None else None

    def to_json(self, container_id: str) -> dict[str, Any] | None:
        shown = self.get(container_id)
        return shown.to_json() if shown is not None else None

    def knows(self, container_id: str) -> bool:
        """Whether this book has seen the container (else what is kept elsewhere counts)."""
        return container_id in self._sessions

    def pending(self, container_id: str, request_id: str | None = None) -> Request | None:
        """The open request ``request_id`` (None: the one shown), or None if not open."""
        session = self._sessions.get(container_id)
        if session is None or not session.pending:
            return None
        if request_id is None:
            return next(iter(session.pending.values()))[0]
        found = session.pending.get(request_id)
        return found[0] if found is not None else None

    def take_changed(self) -> dict[str, dict[str, Any] | None]:
        """The states changed since the last call, by container, for keeping elsewhere."""
        changed = {cid: self.to_json(cid) for cid in self._changed}
        self._changed.clear()
        return changed

    # -- what a session publishes --------------------------------------------------------

    def output(self, container_id: str, now: float) -> bool:
        """The container stored messages at ``now``: a stall ends. One dict write when it
        was not stalled."""
        output = self._output
        output[container_id] = now
        if len(output) > self._limit:
            del output[next(iter(output))]
        session = self._sessions.get(container_id)
        if session is None or session.stalled is None:
            return False
        session.stalled = None
        return self._settle(container_id, session)

    def observe_agent(
        self, container_id: str, metadatas: Iterable[Mapping[str, msgspec.Raw]], now: float
    ) -> bool:
        """A container's ``log`` messages, in the order published: their ``data.metadata``,
        values undecoded. Returns whether the state changed. Never raises.

        Logs whose ``metadata.agent`` names no stream are passed over. When the session has
        nothing open, an event is read only if it may change the state: as its publisher
        says in ``attend`` (``tailhub run`` does, with :func:`may_change`), or else as
        :func:`may_change` finds. While something is open, every event is read.
        """
        changed = False
        session = self._sessions.get(container_id)
        for metadata in metadatas:
            event = metadata.get("event")
            if event is None or agent_kind(metadata.get("agent")) is None:
                continue
            if session is None or not (
                session.pending or (session.terminal is not None and session.terminal[3])
            ):
                attend = metadata.get("attend")
                if attend is None:
                    if not may_change(event):
                        continue
                elif attend != _TRUE:
                    continue
            try:
                decoded = _decoder.decode(event)
            except msgspec.DecodeError:
                continue
            if session is None:
                session = self._session(container_id)
            if session.terminal is not None and session.terminal[3]:
                session.terminal = None  # the agent went on after its result
            self._event(session, decoded, now)
            changed = self._settle(container_id, session) or changed
        return changed

    def observe_status(self, container_id: str, status: str, now: float) -> bool:
        """A ``status`` message (normalised: ``error`` for ``failed``)."""
        session = self._session(container_id)
        session.status = status
        session.ended = False
        if status == "error":
            session.terminal = ("failed", "status error", now, False)
        elif status == "completed":
            session.terminal = ("done", "completed", now, False)
        elif status == "cancelled":
            session.terminal = None
            session.pending.clear()
        elif status in ("starting", "running"):
            session.terminal = None
        return self._settle(container_id, session)

    def observe_complete(self, container_id: str, exit_code: int | None, now: float) -> bool:
        """A ``complete``: the session ended with ``exit_code``. Nothing is open any more."""
        session = self._session(container_id)
        session.pending.clear()
        session.stalled = None
        session.ended = True
        self._output.pop(container_id, None)
        if session.status == "cancelled":
            session.terminal = None
        elif exit_code:
            session.terminal = ("failed", f"exit code {exit_code}", now, False)
        else:
            session.terminal = ("done", "completed", now, False)
        return self._settle(container_id, session)

    def ended(self, container_id: str) -> None:
        """The session ended (after its ``complete``): it no longer stalls."""
        session = self._sessions.get(container_id)
        self._output.pop(container_id, None)
        if session is not None:
            session.ended = True
            session.stalled = None

    def timed_out(self, container_id: str, now: float) -> bool:
        """The hub ended the session for silence (its status is now ``error``): ``failed``,
        and nothing is waited for any more."""
        session = self._session(container_id)
        self._output.pop(container_id, None)
        session.ended = True
        session.stalled = None
        session.pending.clear()
        session.status = "error"
        session.terminal = ("failed", "status error", now, False)
        return self._settle(container_id, session)

    def answered(self, container_id: str, request_id: str) -> bool:
        """The request was answered (its answer was seen on the way to the agent)."""
        session = self._sessions.get(container_id)
        if session is None or session.pending.pop(request_id, None) is None:
            return False
        return self._settle(container_id, session)

    def forget(self, container_id: str) -> bool:
        """A new session starts from nothing; whether a state was shown before."""
        self._output.pop(container_id, None)
        session = self._sessions.pop(container_id, None)
        if session is None or session.shown is None:
            return False
        self._changed.add(container_id)
        return True

    def restore(self, container_id: str, obj: Any, status: str | None, active: bool) -> bool:
        """Put back a state kept elsewhere (its :meth:`Attention.to_json`); whether it was one.

        A restored stall is not kept (the stall round decides it again); the session counts
        as having published at the restored ``since`` at the latest.
        """
        attention = Attention.from_json(obj)
        if attention is None:
            return False
        session = self._session(container_id)
        session.status = status
        session.ended = not active
        if attention.state == "waiting" and attention.request is not None:
            session.pending[attention.request.id] = (attention.request, attention.since)
        elif attention.state in ("failed", "done"):
            session.terminal = (attention.state, attention.reason, attention.since, False)
        elif attention.state == "stalled" and active:
            session.stalled = (attention.reason, attention.since)
        session.shown = session.current()
        return True

    def track(self, container_id: str, status: str, last_output: float) -> None:
        """Watch an active session known from elsewhere (after a restart) for stalls."""
        session = self._session(container_id)
        if session.status is None:
            session.status = status
        self._output.setdefault(container_id, last_output)

    def stalls(self, now: float, after: float) -> list[str]:
        """Mark the sessions that published nothing for ``after`` seconds as of ``now``;
        returns those whose state changed."""
        changed: list[str] = []
        limit = now - after
        for container_id, last in list(self._output.items()):
            if last > limit:
                continue
            session = self._sessions.get(container_id)
            if session is None:
                session = self._session(container_id)
            if session.ended or session.stalled is not None:
                continue
            if session.status not in (None, "running"):
                continue
            # Since the moment it became silent for ``after``: the same in every process.
            session.stalled = (f"no output for {round(after):d} s", last + after)
            if self._settle(container_id, session):
                changed.append(container_id)
        return changed

    # -- inside --------------------------------------------------------------------------

    def _session(self, container_id: str) -> _Session:
        sessions = self._sessions
        session = sessions.get(container_id)
        if session is None:
            session = sessions[container_id] = _Session()
            if len(sessions) > self._limit:
                del sessions[next(iter(sessions))]
        return session

    def _settle(self, container_id: str, session: _Session) -> bool:
        current = session.current()
        shown = session.shown
        if current is None and shown is None:
            return False
        if current is not None and current.same(shown):
            return False
        session.shown = current
        self._changed.add(container_id)
        return True

    def _event(self, session: _Session, event: _Event, now: float) -> None:
        kind = event.type
        pending = session.pending
        if kind == "control_request":
            request = decode_raw(event.request)
            if (
                event.request_id
                and isinstance(request, dict)
                and request.get("subtype") == "can_use_tool"
            ):
                self._open(session, _permission(event.request_id, request), now)
        elif kind == "control_cancel_request" or kind == "control_response":
            request_id = event.request_id
            if request_id is None:
                response = decode_raw(event.response)
                if isinstance(response, dict):
                    request_id = _text(response.get("request_id"))
            if request_id is not None:
                pending.pop(request_id, None)
        elif kind == "assistant" and isinstance(event.message, _Message):
            content = event.message.content
            for block in content if isinstance(content, list) else ():
                if block.type == "tool_use" and block.name == _QUESTION_TOOL and block.id:
                    question, options = _question(decode_raw(block.input))
                    request = Request(block.id, "question", _QUESTION_TOOL, decode_raw(block.input))
                    request = msgspec.structs.replace(request, question=question, options=options)
                    self._open(session, request, now)
        elif kind == "user" and isinstance(event.message, _Message) and pending:
            content = event.message.content
            for block in content if isinstance(content, list) else ():
                if block.type == "tool_result" and block.tool_use_id:
                    pending.pop(block.tool_use_id, None)
        elif kind == "result":
            pending.clear()
            if event.is_error:
                session.terminal = ("failed", "result error", now, True)
            else:
                session.terminal = ("done", "completed", now, True)
        elif kind in ("turn.completed", "turn.failed"):
            pending.clear()
            failed = kind == "turn.failed"
            session.terminal = (
                "failed" if failed else "done",
                "result error" if failed else "completed",
                now,
                True,
            )
        else:
            self._codex(session, event, now)

    def _codex(self, session: _Session, event: _Event, now: float) -> None:
        inner: _Event | _Inner = event
        kind = event.type
        if event.msg is not None and event.msg.type:
            inner, kind = event.msg, event.msg.type
        if kind in ("exec_approval_request", "apply_patch_approval_request") and inner.call_id:
            tool = "shell" if kind == "exec_approval_request" else "apply_patch"
            details = {"command": inner.command, "cwd": inner.cwd, "changes": inner.changes}
            request = Request(
                inner.call_id,
                "approval",
                tool,
                {k: v for k, v in details.items() if v is not None},
                _text(inner.reason),
            )
            self._open(session, request, now)
        elif kind in ("exec_command_begin", "patch_apply_begin") and inner.call_id:
            session.pending.pop(inner.call_id, None)
        elif event.method is not None and event.id is not None:
            method = event.method
            if method.endswith("requestApproval") or method in (
                "execCommandApproval",
                "applyPatchApproval",
            ):
                params = decode_raw(event.params)
                params = params if isinstance(params, dict) else {}
                tool = "apply_patch" if "ileChange" in method or "Patch" in method else "shell"
                request = Request(
                    str(event.id), "approval", tool, params, _text(params.get("reason"))
                )
                self._open(session, request, now)
        elif kind == "item.completed" and isinstance(event.item, dict):
            item_id = event.item.get("id")
            if isinstance(item_id, str):
                for request_id, (request, _) in list(session.pending.items()):
                    if isinstance(request.input, dict) and request.input.get("itemId") == item_id:
                        session.pending.pop(request_id, None)

    def _open(self, session: _Session, request: Request, now: float) -> None:
        pending = session.pending
        if request.tool == _QUESTION_TOOL and request.id not in pending:
            # A permission request for a question replaces the question's tool call.
            for other_id, (other, _) in list(pending.items()):
                if other.tool == _QUESTION_TOOL and other.input == request.input:
                    del pending[other_id]
        if request.id not in pending:
            pending[request.id] = (request, now)
            while len(pending) > _MAX_PENDING:
                pending.popitem(last=False)
        session.stalled = None


def _permission(request_id: str, request: dict[str, Any]) -> Request:
    """The request a ``can_use_tool`` control request opens."""
    tool = _text(request.get("tool_name"))
    tool_input = request.get("input")
    if tool == _QUESTION_TOOL:
        question, options = _question(tool_input)
        return Request(request_id, "question", tool, tool_input, question, options)
    return Request(request_id, "permission", tool, tool_input)
