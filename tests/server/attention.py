"""The dashboard's attention store, driven from a test: a hub `attention` message handed to
the page as its route would, and a contract-shaped waiting request."""

from __future__ import annotations

from typing import Any

WAITING = {
    "state": "waiting",
    "reason": "permission",
    "since": "2026-12-05T08:40:00.000Z",
    "request": {
        "id": "req_1",
        "kind": "permission",
        "tool": "Bash",
        "input": {"command": "rm -rf build <b>now</b>"},
        "question": None,
        "options": None,
    },
}
QUESTION = {
    "state": "waiting",
    "reason": "question",
    "since": "2026-12-05T08:41:00.000Z",
    "request": {
        "id": "toolu_q1",
        "kind": "question",
        "tool": "AskUserQuestion",
        "input": {"questions": [{"question": "Which test runner?"}]},
        "question": "Which test runner?",
        "options": ["pytest", "unittest"],
    },
}


async def inject(page: Any, container: str, data: dict[str, Any] | None) -> None:
    """Hands the page's attention store a hub `attention` message, as the route would."""
    message = {"type": "attention", "containerID": container, "data": data}
    taken = await page.evaluate(
        """async (msg) => {
            const { attention } = await import("/static/js/attention.js");
            return attention.receive(msg);
        }""",
        message,
    )
    assert taken is True
