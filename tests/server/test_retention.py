"""Retention in a real hub: a producer's dedupe state goes with its container's last message."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from tests.helpers import TOKEN, UNIT, HubProcess, receive_type, wait_for


async def test_a_producer_id_is_forgotten_once_its_messages_expired(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """After retention removed every message of a container, the same id is stored anew,
    with the next seq (seq never goes back)."""
    hub = HubProcess(tmp_path / "hub", args=["--retention-age", "1s"]).start()
    try:
        message = {
            "type": "log",
            "containerID": "expiring",
            "id": 1,
            "producer": "p",
            "data": {"level": "info", "message": "once"},
        }
        async with http.ws_connect(hub.ws_url()) as ws:
            await ws.send_str(json.dumps(message))
            assert 1 == (await receive_type(ws, "ack"))["seq"]

            async def emptied() -> bool:
                async with http.get(
                    f"{hub.http}/api/sessions/expiring",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as response:
                    return bool((await response.json())["messages"] == 0)

            await wait_for(emptied, timeout=10 * UNIT)
            await ws.send_str(json.dumps(message))
            assert 2 == (await receive_type(ws, "ack"))["seq"]
    finally:
        hub.stop()
