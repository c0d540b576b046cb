"""``GET /metrics`` of a real hub process: names, values after real traffic, label safety."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import TOKEN, UNIT, HubProcess, receive_json, receive_type, wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape_text(http: aiohttp.ClientSession, hub: HubProcess) -> str:
    async with http.get(f"{hub.http}/metrics", headers=AUTH) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        return await resp.text()


async def scrape(http: aiohttp.ClientSession, hub: HubProcess) -> Samples:
    """Every sample, keyed by name and sorted labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(await scrape_text(http, hub)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def log(container: str, message: str, **extra: Any) -> str:
    return json.dumps(
        {
            "type": "log",
            "containerID": container,
            "data": {"level": "info", "message": message},
            **extra,
        }
    )


class TestMetrics:
    async def test_needs_the_token(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """/metrics is refused without the token and served with it (header or query)."""
        async with http.get(f"{shared_hub.http}/metrics") as resp:
            assert resp.status == 401
        async with http.get(f"{shared_hub.http}/metrics", params={"token": TOKEN}) as resp:
            assert resp.status == 200

    async def test_names_are_prefixed(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """Every family is named tailhub_*, and the documented ones are all there."""
        names = {
            f.name for f in text_string_to_metric_families(await scrape_text(http, shared_hub))
        }
        assert all(name.startswith("tailhub_") for name in names), names
        expected = {
            "tailhub_connections",
            "tailhub_subscriptions",
            "tailhub_sessions",
            "tailhub_messages_in",
            "tailhub_messages_out",
            "tailhub_bytes_in",
            "tailhub_bytes_out",
            "tailhub_queue_drops",
            "tailhub_slow_closes",
            "tailhub_duplicates",
            "tailhub_errors",
            "tailhub_deliver_latency_seconds",
            "tailhub_store_write_seconds",
            "tailhub_store_batch_messages",
            "tailhub_store_pending_messages",
            "tailhub_store_pending_bytes",
            "tailhub_sessions_started",
            "tailhub_sessions_ended",
        }
        assert expected <= names, expected - names

    async def test_values_follow_traffic(
        self, hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """Counters and gauges move with real WebSocket traffic, and store batches are seen."""
        before = await scrape(http, hub)
        assert value(before, "tailhub_connections") == 0
        assert value(before, "tailhub_messages_in_total", type="log") == 0
        viewer = await http.ws_connect(hub.ws_url(containerID="m-1"))
        await receive_type(viewer, "subscribed")
        container = await http.ws_connect(hub.ws_url())
        for number in range(3):
            await container.send_str(log("m-1", f"line {number}", id=number + 1))
        await container.send_str(log("m-1", "again", id=3))
        await container.send_str(
            json.dumps({"type": "status", "containerID": "m-1", "data": {"status": "running"}})
        )
        await container.send_str("not json")
        assert (await receive_type(container, "error"))["data"]["code"] == "invalid_json"
        got = [await receive_json(viewer) for _ in range(4)]
        assert [m["seq"] for m in got] == [1, 2, 3, 4]

        async def stored() -> bool:
            now = await scrape(http, hub)
            return (
                value(now, "tailhub_store_batch_messages_sum") == 4
                and value(now, "tailhub_store_pending_messages") == 0
            )

        await wait_for(stored)
        after = await scrape(http, hub)
        assert value(after, "tailhub_connections") == 2
        assert value(after, "tailhub_connections_opened_total") == 2
        assert value(after, "tailhub_subscriptions") == 1
        assert value(after, "tailhub_sessions", state="active", status="running") == 1
        assert value(after, "tailhub_messages_in_total", type="log") == 3
        assert value(after, "tailhub_messages_in_total", type="status") == 1
        assert value(after, "tailhub_messages_out_total", type="log") == 3
        assert value(after, "tailhub_messages_out_total", type="status") == 1
        assert value(after, "tailhub_duplicates_total") == 1
        assert value(after, "tailhub_sessions_started_total") == 1
        assert value(after, "tailhub_errors_total", code="invalid_json") == 1
        assert value(after, "tailhub_bytes_in_total") > 0
        assert value(after, "tailhub_bytes_out_total") > value(before, "tailhub_bytes_out_total")
        assert value(after, "tailhub_deliver_latency_seconds_count") == 4
        assert value(after, "tailhub_deliver_latency_seconds_bucket", le="+Inf") == 4
        assert value(after, "tailhub_store_write_seconds_count") >= 1

        await viewer.close()
        await container.close()

        async def closed() -> bool:
            return value(await scrape(http, hub), "tailhub_connections") == 0

        await wait_for(closed)

    async def test_api_refusals_are_counted(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """A message the HTTP API refuses counts under the same code as over WebSocket."""
        before = await scrape(http, shared_hub)
        async with http.post(
            f"{shared_hub.http}/api/sessions/m-2/messages", data=b'{"type":"log"}', headers=AUTH
        ) as resp:
            assert resp.status == 400
        after = await scrape(http, shared_hub)
        counted = [
            value(samples, "tailhub_errors_total", code="invalid_message")
            for samples in (before, after)
        ]
        assert counted[1] == counted[0] + 1

    async def test_no_container_id_or_token_in_labels(
        self, shared_hub: HubProcess, http: aiohttp.ClientSession
    ) -> None:
        """Nothing a container chose, and no token, appears in the exposition."""
        container = await http.ws_connect(shared_hub.ws_url())
        await container.send_str(log("label-probe-7f3a", "hello"))
        await container.send_str(
            json.dumps(
                {
                    "type": "status",
                    "containerID": "label-probe-7f3a",
                    "data": {"status": "running", "extra": "status-probe-91c2"},
                }
            )
        )
        await container.send_str(json.dumps({"type": "shout-probe-5d1e"}))
        await receive_type(container, "error")
        text = await scrape_text(http, shared_hub)
        for secret in ("label-probe-7f3a", "status-probe-91c2", "shout-probe-5d1e", TOKEN):
            assert secret not in text

    async def test_slow_follower_is_closed_and_counted(
        self, tmp_path: Path, http: aiohttp.ClientSession
    ) -> None:
        """An HTTP follower that stops reading is closed like a slow WebSocket reader."""
        hub = HubProcess(tmp_path / "hub", args=["--max-queue", "64KiB"]).start()
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10 * UNIT)
            sock.connect(("127.0.0.1", hub.port))
            sock.sendall(
                f"GET /api/sessions/slow-1/logs?follow=1&token={TOKEN} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\n\r\n".encode()
            )

            async def following() -> bool:
                return value(await scrape(http, hub), "tailhub_subscriptions") == 1

            await wait_for(following)
            line = json.dumps({"type": "log", "data": {"level": "info", "message": "x" * 1000}})
            body = (line + "\n").encode() * 1000
            for _ in range(40):
                async with http.post(
                    f"{hub.http}/api/sessions/slow-1/messages",
                    data=io.BytesIO(body),
                    headers=AUTH,
                ) as resp:
                    assert resp.status == 200
                if value(await scrape(http, hub), "tailhub_slow_closes_total") == 1:
                    break
            after = await scrape(http, hub)
            assert value(after, "tailhub_slow_closes_total") == 1
            assert value(after, "tailhub_connections") == 0
        finally:
            sock.close()
            hub.stop()


@pytest.mark.parametrize("accept", ["application/openmetrics-text; version=1.0.0"])
async def test_openmetrics_on_request(
    shared_hub: HubProcess, http: aiohttp.ClientSession, accept: str
) -> None:
    """A scraper that asks for OpenMetrics gets it."""
    async with http.get(f"{shared_hub.http}/metrics", headers={**AUTH, "Accept": accept}) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/openmetrics-text"
        assert (await resp.text()).endswith("# EOF\n")
