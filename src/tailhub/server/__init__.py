"""The aiohttp application: WebSocket endpoint, HTTP API, metrics and dashboard on one port."""
