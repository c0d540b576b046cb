"""Small text helpers shared by the descriptions and the summary: one line, cut short."""

from __future__ import annotations

import shlex
from typing import Final

import msgspec

from tailhub.agents.events import decode_raw

__all__ = ["ToolInput", "first_line", "money", "shell_command", "tool_activity", "tool_input"]

_ELLIPSIS: Final = "…"
_SHELL_WRAPPERS: Final = (("bash", "-lc"), ("/bin/bash", "-lc"), ("bash", "-c"), ("sh", "-c"))
_WRAPPER_STARTS: Final = tuple(" ".join(wrapper) + " " for wrapper in _SHELL_WRAPPERS)


def first_line(text: str, limit: int = 160) -> str:
    """The first non-blank line of ``text``, stripped, cut at ``limit`` characters with …."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        line = text[start:end].strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + _ELLIPSIS
        start = end + 1
    return ""


def money(usd: float) -> str:
    """A cost as ``$0.042`` (three decimals under a dollar, two above)."""
    return f"${usd:.3f}" if usd < 1 else f"${usd:.2f}"


def shell_command(command: str) -> str:
    """A shell command as a person reads it: ``bash -lc 'pytest -q'`` becomes ``pytest -q``."""
    if not command.startswith(_WRAPPER_STARTS):
        return command
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if len(words) == 3 and (words[0], words[1]) in _SHELL_WRAPPERS:
        return words[2]
    return command


class ToolInput(msgspec.Struct):
    """The arguments of a tool call that name what it works on."""

    command: str | None = None
    file_path: str | None = None
    notebook_path: str | None = None
    path: str | None = None
    pattern: str | None = None
    url: str | None = None
    query: str | None = None
    description: str | None = None
    subagent_type: str | None = None
    prompt: str | None = None


_input_decoder: Final = msgspec.json.Decoder(ToolInput)


def tool_input(raw: msgspec.Raw) -> ToolInput:
    """Decode a tool call's ``input``; an input of another shape reads as empty."""
    if raw:
        try:
            return _input_decoder.decode(raw)
        except msgspec.DecodeError:
            pass
    return ToolInput()


def tool_activity(name: str, raw: msgspec.Raw) -> str:
    """A tool call in a few words: ``Bash: pytest -q``, ``Edit src/app.py``, ``Grep "TODO"``."""
    args = tool_input(raw)
    if args.command is not None:
        return f"{name}: {first_line(shell_command(args.command), 120)}"
    target = args.file_path or args.notebook_path
    if target:
        return f"{name} {target}"
    if args.pattern:
        where = f" in {args.path}" if args.path else ""
        return f'{name} "{first_line(args.pattern, 80)}"{where}'
    if args.url:
        return f"{name} {args.url}"
    if args.query:
        return f'{name} "{first_line(args.query, 80)}"'
    if args.description:
        kind = f" ({args.subagent_type})" if args.subagent_type else ""
        return f"{name}: {first_line(args.description, 100)}{kind}"
    if args.path:
        return f"{name} {args.path}"
    if args.prompt:
        return f"{name}: {first_line(args.prompt, 100)}"
    return name


def raw_text(raw: msgspec.Raw) -> str:
    """A tool result's ``content`` as text: a string, or the text blocks of a list."""
    value = decode_raw(raw)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [
            block["text"]
            for block in value
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        ]
        return "\n".join(parts)
    return ""
