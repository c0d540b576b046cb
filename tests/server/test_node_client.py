"""A client in another language works from the README: Node's built-in WebSocket."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.helpers import UNIT, HubProcess

SNIPPET = """
const ws = new WebSocket(process.argv[1]);
ws.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  console.log(JSON.stringify(msg));
  if (msg.type === 'log') { ws.close(); }
};
ws.onclose = () => process.exit(0);
ws.onerror = (err) => { console.error(String(err.message || err)); process.exit(2); };
"""


class TestNodeClient:
    async def test_readme_snippet_receives_a_log(self, hub: HubProcess) -> None:
        """new WebSocket('ws://HOST:PORT?token=...&containerID=X') subscribes and gets a log."""
        url = f"ws://127.0.0.1:{hub.port}?token={hub.token}&containerID=node-c"
        node = await asyncio.create_subprocess_exec(
            "node",
            "--experimental-websocket",
            "-e",
            SNIPPET,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert node.stdout is not None
        first = json.loads(await asyncio.wait_for(node.stdout.readline(), 20 * UNIT))
        assert {"type": "subscribed", "containerID": "node-c"} == {
            k: first[k] for k in ("type", "containerID")
        }
        async with aiohttp.ClientSession() as session:
            pub = await session.ws_connect(hub.ws_url())
            await pub.send_str(
                json.dumps(
                    {
                        "type": "LOG",
                        "containerID": "node-c",
                        "data": {"level": "info", "message": "Repository cloned successfully"},
                    }
                )
            )
            line = await asyncio.wait_for(node.stdout.readline(), 20 * UNIT)
        got = json.loads(line)
        assert ("log", "node-c", "Repository cloned successfully", 1) == (
            got["type"],
            got["containerID"],
            got["data"]["message"],
            got["seq"],
        )
        assert 0 == await asyncio.wait_for(node.wait(), 20 * UNIT)
