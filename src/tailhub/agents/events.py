"""The parts of Claude Code and Codex events that tailhub reads, as typed values.

Claude Code writes one JSON object a line with ``--output-format stream-json --verbose``;
``codex exec --json`` does the same with its own event types. Both are decoded into the one
:class:`AgentEvent` below: a field either stream uses is declared once, every other field is
skipped while decoding (and kept, untouched, in the bytes the event came in). Fields that can
be large and that only the one-line description needs (a tool's input and output, a stream
delta) stay :class:`msgspec.Raw`, so reading an event for the summary never builds them.

What is guaranteed: :func:`decode_event` never raises. A line that is not JSON, not an object
with a string ``type``, or that carries a declared field of the wrong JSON type gives None:
the caller then decides whether the line is still an event it can only show raw.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = [
    "CLAUDE_TYPES",
    "CODEX_TYPES",
    "NO_RAW",
    "AgentEvent",
    "ApiMessage",
    "Block",
    "Change",
    "CodexItem",
    "CompactMetadata",
    "ModelUse",
    "RateLimitInfo",
    "Usage",
    "agent_kind",
    "decode_event",
    "decode_raw",
]

CLAUDE_TYPES: Final = frozenset(
    {"system", "assistant", "user", "result", "stream_event", "rate_limit_event", "control_request"}
)
"""Top-level ``type`` values of Claude Code's stream-json output that tailhub describes."""

CODEX_TYPES: Final = frozenset(
    {
        "thread.started",
        "turn.started",
        "turn.completed",
        "turn.failed",
        "item.started",
        "item.updated",
        "item.completed",
        "error",
    }
)
"""Top-level ``type`` values of ``codex exec --json`` that tailhub describes."""

NO_RAW: Final = msgspec.Raw(b"")
"""The value of a raw field the event did not carry."""


class Usage(msgspec.Struct, gc=False):
    """Token counts: Claude's (the API's ``usage``) and Codex's (``turn.completed``)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cached_input_tokens: int | None = None


class Block(msgspec.Struct, gc=False):
    """One content block of a Claude message: text, thinking, a tool call or a tool result."""

    type: str = ""
    text: str | None = None
    thinking: str | None = None
    id: str | None = None
    name: str | None = None
    input: msgspec.Raw = NO_RAW
    tool_use_id: str | None = None
    is_error: bool | None = None
    content: msgspec.Raw = NO_RAW


class ApiMessage(msgspec.Struct, gc=False):
    """The API message inside a Claude ``assistant`` or ``user`` event."""

    id: str | None = None
    model: str | None = None
    role: str | None = None
    content: list[Block] | str | None = None
    usage: Usage | None = None


class ModelUse(msgspec.Struct, gc=False):
    """One model's entry in a Claude ``result``'s ``modelUsage``."""

    contextWindow: int | None = None
    costUSD: float | None = None


class CompactMetadata(msgspec.Struct, gc=False):
    trigger: str | None = None
    pre_tokens: int | None = None


class RateLimitInfo(msgspec.Struct, gc=False):
    status: str | None = None
    rateLimitType: str | None = None
    resetsAt: float | None = None


class Change(msgspec.Struct, gc=False):
    """One file of a Codex ``file_change`` item."""

    path: str | None = None
    kind: str | None = None


class CodexItem(msgspec.Struct, gc=False):
    """The ``item`` of a Codex ``item.*`` event (only the fields tailhub reads)."""

    type: str = ""
    id: str | None = None
    text: str | None = None
    command: str | None = None
    exit_code: int | None = None
    status: str | None = None
    changes: list[Change] | None = None
    server: str | None = None
    tool: str | None = None
    query: str | None = None
    message: str | None = None
    error: msgspec.Raw = NO_RAW
    items: msgspec.Raw = NO_RAW


class AgentEvent(msgspec.Struct, gc=False):
    """One event of either stream; see the module docstring for what is kept."""

    type: str
    # Claude Code
    subtype: str | None = None
    session_id: str | None = None
    model: str | None = None
    tools: msgspec.Raw = NO_RAW
    message: ApiMessage | str | None = None
    parent_tool_use_id: str | None = None
    tool_use_result: msgspec.Raw = NO_RAW
    is_error: bool | None = None
    duration_ms: float | None = None
    num_turns: int | None = None
    total_cost_usd: float | None = None
    usage: Usage | None = None
    modelUsage: dict[str, ModelUse] | None = None
    permission_denials: msgspec.Raw = NO_RAW
    attempt: int | None = None
    max_retries: int | None = None
    retry_delay_ms: float | None = None
    error_status: int | None = None
    error: msgspec.Raw = NO_RAW
    compact_metadata: CompactMetadata | None = None
    rate_limit_info: RateLimitInfo | None = None
    request: msgspec.Raw = NO_RAW
    event: msgspec.Raw = NO_RAW
    # Codex
    thread_id: str | None = None
    item: CodexItem | None = None


_event_decoder: Final = msgspec.json.Decoder(AgentEvent)
_any_decoder: Final = msgspec.json.Decoder()


def decode_event(line: bytes | str) -> AgentEvent | None:
    """The event in one line, or None when it is not JSON of the expected shape."""
    try:
        return _event_decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_raw(raw: msgspec.Raw) -> object:
    """A raw field as plain Python values; None when empty or not JSON. Never raises."""
    if not raw:
        return None
    try:
        return _any_decoder.decode(raw)
    except msgspec.DecodeError:
        return None


_KIND_VALUES: Final = (
    (msgspec.Raw(b'"claude"'), "claude"),
    (msgspec.Raw(b'"codex"'), "codex"),
)


def agent_kind(value: msgspec.Raw | None) -> str | None:
    """The stream a log's ``metadata.agent`` names, given undecoded: ``claude`` or ``codex``
    for those JSON strings, None for any other value (or none)."""
    if value is not None:
        for raw, kind in _KIND_VALUES:
            if value == raw:
                return kind
    return None
