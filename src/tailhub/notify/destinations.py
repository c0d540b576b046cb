"""Where notifications go, and the request each format makes of one notice. No I/O.

A destination is one ``--notify`` URL. Its format is, first that applies:

- the URL's ``format=`` query parameter (``json``, ``slack``, ``discord``, ``ntfy``), which is
  taken out of the URL the request goes to;
- ``slack`` for a host ``hooks.slack.com``;
- ``discord`` for ``discord.com`` / ``discordapp.com`` (and their subdomains) with a path
  under ``/api/webhooks/``;
- ``ntfy`` for ``ntfy.sh`` (and its subdomains);
- else ``json``: the notice itself as a JSON object.

Each format's request, for one notice (see :class:`Notice`):

- ``json``: ``POST`` the notice as JSON (``Content-Type: application/json``).
- ``slack``: ``POST {"text": <text>}``, Slack's incoming-webhook message.
- ``discord``: ``POST {"content": <text>}`` (cut at Discord's 2000 characters).
- ``ntfy``: ``POST`` the text as the body, with the headers ``Title``, ``Tags`` (the state),
  ``Priority`` (high for waiting and failed) and ``Click`` (the dashboard link).

A destination's URL is a secret (it grants posting to a channel): it is never a log field or
a metric label; destinations are named by their index (0, 1, ...) and format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

__all__ = ["FORMATS", "Destination", "Notice", "destination", "render"]

FORMATS: Final = ("json", "slack", "discord", "ntfy")
_DISCORD_TEXT: Final = 2000
_INPUT_SHOWN: Final = 300
_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Destination:
    """One ``--notify`` URL: where requests go (``format=`` taken out), and its format."""

    index: int
    url: str
    format: str

    def __repr__(self) -> str:  # the URL is a secret
        return f"Destination(index={self.index}, format={self.format!r})"


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def destination(index: int, raw: str) -> Destination:
    """The destination of a ``--notify`` URL (already checked by the settings).

    Raises:
        ValueError: a ``format=`` that names no format (the words do not repeat the URL).
    """
    parts = urlsplit(raw)
    query = parse_qsl(parts.query, keep_blank_values=True)
    chosen = [value for key, value in query if key == "format"]
    if chosen and chosen[-1] not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    kept = [(key, value) for key, value in query if key != "format"]
    url = urlunsplit(parts._replace(query=urlencode(kept)))
    host = (parts.hostname or "").lower()
    if chosen:
        kind = chosen[-1]
    elif host == "hooks.slack.com":
        kind = "slack"
    elif (_under(host, "discord.com") or _under(host, "discordapp.com")) and parts.path.startswith(
        "/api/webhooks/"
    ):
        kind = "discord"
    elif _under(host, "ntfy.sh"):
        kind = "ntfy"
    else:
        kind = "json"
    return Destination(index, url, kind)


class Notice(msgspec.Struct, frozen=True):
    """What one notification says; the ``json`` format's body is exactly this object.

    ``state`` is an attention state (``waiting``, ``failed``, ``done``, ``stalled``) or
    ``match`` for a log line that matched ``--notify-match``; ``since`` is RFC 3339;
    ``request`` the waiting request (see the ``attention`` message), ``summary`` the
    session's agent summary, ``line`` the matching log line; ``link`` the session in the
    dashboard (null without ``--public-url``).
    """

    id: str
    containerID: str
    state: str
    reason: str
    since: str
    link: str | None = None
    request: Any = None
    summary: Any = None
    line: str | None = None


def text(notice: Notice) -> str:
    """The notice in words, for chat formats."""
    lines = [f"{notice.containerID} is {notice.state}: {notice.reason}"]
    request = notice.request
    if isinstance(request, dict):
        if request.get("question"):
            lines.append(f"question: {request['question']}")
            if request.get("options"):
                lines.append("options: " + ", ".join(str(o) for o in request["options"]))
        elif request.get("tool"):
            shown = _encoder.encode(request.get("input")).decode()
            if len(shown) > _INPUT_SHOWN:
                shown = shown[: _INPUT_SHOWN - 1] + "…"
            lines.append(f"{request['tool']}: {shown}")
    if notice.line:
        lines.append(notice.line)
    summary = notice.summary
    if isinstance(summary, dict):
        if summary.get("activity"):
            lines.append(f"activity: {summary['activity']}")
        if summary.get("lastText"):
            lines.append(f"last said: {summary['lastText']}")
    if notice.link:
        lines.append(notice.link)
    return "\n".join(lines)


def render(destination: Destination, notice: Notice) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the request that tells ``destination`` of ``notice``."""
    kind = destination.format
    if kind == "json":
        return _encoder.encode(notice), {"Content-Type": "application/json"}
    words = text(notice)
    if kind == "slack":
        return _encoder.encode({"text": words}), {"Content-Type": "application/json"}
    if kind == "discord":
        content = words if len(words) <= _DISCORD_TEXT else words[: _DISCORD_TEXT - 1] + "…"
        return _encoder.encode({"content": content}), {"Content-Type": "application/json"}
    headers = {
        "Content-Type": "text/plain; charset=utf-8",
        # Header values must be Latin-1: anything else in a container ID becomes "?".
        "Title": f"tailhub: {notice.containerID} {notice.state}".encode("latin-1", "replace")
        .decode("latin-1")
        .replace("\r", " ")
        .replace("\n", " "),
        "Tags": notice.state,
        "Priority": "high" if notice.state in ("waiting", "failed") else "default",
    }
    if notice.link:
        headers["Click"] = notice.link
    return words.encode(), headers
