"""Which format a --notify URL gets, and what each format sends. No I/O."""

from __future__ import annotations

import json

import pytest

from tailhub.notify import Notice, destination, render

NOTICE = Notice(
    id="n1",
    containerID="task-42",
    state="waiting",
    reason="permission",
    since="2026-12-05T08:40:00.000Z",
    link="https://hub.example/#view=task-42",
    request={"id": "req_1", "kind": "permission", "tool": "Bash", "input": {"command": "ls"}},
    summary={"activity": "Bash: ls", "lastText": "checking"},
)


class TestDestination:
    @pytest.mark.parametrize(
        ("url", "kind"),
        [
            ("https://hooks.slack.com/services/T0/B0/xyz", "slack"),
            ("https://discord.com/api/webhooks/1/abc", "discord"),
            ("https://ptb.discordapp.com/api/webhooks/1/abc", "discord"),
            ("https://discord.com/not-a-hook", "json"),
            ("https://ntfy.sh/my-topic", "ntfy"),
            ("http://127.0.0.1:9/hook", "json"),
            ("http://127.0.0.1:9/hook?format=slack", "slack"),
            ("https://ntfy.example.org/topic?format=ntfy&x=1", "ntfy"),
        ],
    )
    def test_format_from_host_or_query(self, url: str, kind: str) -> None:
        """The host chooses the format unless format= names one; format= is not sent on."""
        chosen = destination(0, url)
        assert kind == chosen.format
        assert "format=" not in chosen.url

    def test_query_kept_and_url_hidden(self) -> None:
        """Other query parameters go on; the repr never shows the URL."""
        chosen = destination(3, "https://ntfy.example.org/topic?format=ntfy&x=1")
        assert "https://ntfy.example.org/topic?x=1" == chosen.url
        assert "ntfy.example" not in repr(chosen)

    def test_unknown_format(self) -> None:
        """A format= no one knows is refused, without repeating the URL."""
        with pytest.raises(ValueError, match="format must be one of") as caught:
            destination(0, "https://secret.example/abc?format=xml")
        assert "secret" not in str(caught.value)


class TestRender:
    def test_json(self) -> None:
        """The generic webhook gets the notice itself."""
        body, headers = render(destination(0, "http://h/x"), NOTICE)
        assert "application/json" == headers["Content-Type"]
        sent = json.loads(body)
        assert "task-42" == sent["containerID"]
        assert ("waiting", "permission") == (sent["state"], sent["reason"])
        assert NOTICE.link == sent["link"]
        assert {"activity": "Bash: ls", "lastText": "checking"} == sent["summary"]

    def test_chat_formats(self) -> None:
        """Slack gets text, Discord content, ntfy a plain body with title and click link."""
        slack, _ = render(destination(0, "https://hooks.slack.com/services/x"), NOTICE)
        words = json.loads(slack)["text"]
        assert words.startswith("task-42 is waiting: permission")
        assert 'Bash: {"command":"ls"}' in words
        assert NOTICE.link in words
        discord, _ = render(destination(0, "https://discord.com/api/webhooks/1/a"), NOTICE)
        assert words == json.loads(discord)["content"]
        body, headers = render(destination(0, "https://ntfy.sh/t"), NOTICE)
        assert words == body.decode()
        assert "tailhub: task-42 waiting" == headers["Title"]
        assert NOTICE.link == headers["Click"]
        assert "high" == headers["Priority"]
