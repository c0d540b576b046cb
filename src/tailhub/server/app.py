"""Build the hub application from settings, and run it until SIGTERM or SIGINT.

``create_app(settings, token)`` builds everything (engine, node, routes) from the
settings passed in; nothing is read from module globals. The application's start-up and
shutdown own every background task.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from tailhub import __version__
from tailhub.auth import (
    Authenticator,
    TokenError,
    load_or_create_secret,
    load_or_create_token,
    load_public_key,
)
from tailhub.config import Settings, redact_url, url_passwords
from tailhub.core.node import Node
from tailhub.engine import EngineError
from tailhub.log import LEVEL_NUMBERS, configure_logging
from tailhub.notify import Notifier, destination
from tailhub.paths import token_path
from tailhub.server import api, metrics
from tailhub.server.access import read_revoked, watch_revocations
from tailhub.server.engines import make_engine, reach_redis
from tailhub.server.http import http_factory
from tailhub.server.limits import Addresses
from tailhub.server.listener import Listener
from tailhub.server.state import STATE, ServerState
from tailhub.server.wire import text_frame
from tailhub.server.workers import supervise
from tailhub.server.ws import request_token
from tailhub.server.ws_aiohttp import handle_websocket
from tailhub.store.base import StoreError

__all__ = ["create_app", "run", "serve_worker", "start_line"]

_log = structlog.get_logger("tailhub")
_MISSING_DASHBOARD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tailhub: dashboard missing</title></head>
<body><h1>The dashboard is not installed</h1>
<p>tailhub {version} is running, but the dashboard's files are missing from this installation
(looked in <code>{path}</code>). The WebSocket, the HTTP API and the metrics work.</p>
<p>Reinstall tailhub from its checkout (<code>pip install --force-reinstall .</code>) and
restart the hub.</p></body></html>
"""
_SHUTDOWN_TIMEOUT = 5.0
_LINGERING_MAX = 10.0
_HIDDEN_PROBLEM = "not ready (send the token to see why)"
_GC_YOUNG_THRESHOLD = 20_000


def _tune_gc() -> None:
    """Keep the cyclic garbage collector from pausing the hub.

    A hub holds many long-lived objects (every imported module, every connection) and makes
    many short-lived ones (a few per message) that reference counting frees at once. With
    CPython's defaults, collections of the young generation are so frequent that they promote
    objects that were about to die, and the resulting full collections walk the whole heap:
    pauses of 35-120 ms were measured with 1,000 connections. Freezing what exists after
    start-up takes it out of every collection, and a larger young generation lets short-lived
    objects die before a collection sees them.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, middle, old)


def _static_dir() -> Path:
    return Path(str(resources.files("tailhub.server") / "static"))


def create_app(
    settings: Settings, token: str, secret: str | None = None, public_key: str | None = None
) -> web.Application:
    """The complete hub as an aiohttp application.

    Args:
        settings: validated settings.
        token: the shared token (admin).
        secret: the secret scoped tokens are signed with (HS256); None accepts none.
        public_key: a PEM public key that verifies RS256/ES256 scoped tokens, or None.
    """
    store_metrics = metrics.StoreMetrics()
    node = Node(settings, make_engine(settings, store_metrics.on_batch), text_frame)
    state = ServerState(
        settings=settings,
        node=node,
        auth=Authenticator(token, secret=secret, public_key=public_key),
        addresses=Addresses(settings.max_connections_per_ip),
    )
    node.on_drained = state.trim.soon
    if settings.notify:
        notifier = Notifier(settings, node.engine, node.agents.to_json)
        state.notifier = notifier
        node.watchers.append(notifier.on_attention)
        if settings.notify_match:
            node.log_watchers.append(notifier.on_log)
    app = web.Application(client_max_size=max(settings.max_message_size, 1 << 20) * 4)
    app[STATE] = state
    static = _static_dir()
    page = static / "index.html"

    async def index(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").strip().lower() == "websocket":
            return await handle_websocket(request)
        if not page.is_file():
            return web.Response(
                status=500,
                text=_MISSING_DASHBOARD.format(version=__version__, path=static),
                content_type="text/html",
            )
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def readyz(request: web.Request) -> web.Response:
        problems = {}
        try:
            await node.engine.check()
        except Exception as exc:
            problems["engine"] = str(exc)
        if problems:
            if not _is_admin(state, request_token(request)):
                # The words name files and errors: for the token's holders only.
                problems = dict.fromkeys(problems, _HIDDEN_PROBLEM)
            return web.json_response({"status": "unavailable", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    app.router.add_get("/", index)
    app.router.add_get("/ws", handle_websocket)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if static.is_dir():
        app.router.add_static("/static/", static, append_version=False)
    api.setup(app)
    metrics.setup(app, store_metrics)

    background: list[asyncio.Task[None]] = []

    async def start(_app: web.Application) -> None:
        if not page.is_file():
            _log.error(
                "dashboard_missing",
                static_dir=str(static),
                hint="the dashboard's files are not installed; / answers with an error page. "
                "The WebSocket, HTTP API and metrics work. Reinstall tailhub from its checkout.",
            )
        await node.start()
        await read_revoked(state)
        background.append(asyncio.create_task(watch_revocations(state)))
        if state.notifier is not None:
            await state.notifier.start()

    async def close_connections(_app: web.Application) -> None:
        # Both transports call ws.forget() for each connection that ends, the last one sets
        # ``drained``: a connection ends once its peer answers the close frame, or is cut off.
        node.close_connections()
        state.drained = asyncio.Event()
        if node.hub.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.drained.wait(), _SHUTDOWN_TIMEOUT)

    async def stop(_app: web.Application) -> None:
        if state.notifier is not None:
            await state.notifier.stop()
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await node.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(close_connections)
    app.on_cleanup.append(stop)
    return app


def _is_admin(state: ServerState, token: str | None) -> bool:
    try:
        return state.auth.grant(token).is_admin
    except TokenError:
        return False


async def _serve(
    settings: Settings,
    token: str,
    secret: str,
    public_key: str | None,
    *,
    reuse_port: bool = False,
) -> int:
    app = create_app(settings, token, secret, public_key)
    handler_args: dict[str, Any] = {
        "access_log": None,
        "keepalive_timeout": settings.keepalive_timeout,
        # After an answer given before the body was read (401, 408, 413), aiohttp reads and
        # drops the rest of it for at most this long, so that the answer is not lost.
        "lingering_time": min(settings.body_timeout, _LINGERING_MAX),
    }
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT, **handler_args
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    assert runner.server is not None
    state = app[STATE]
    listener = Listener(
        state, http_factory(runner.server, state.addresses, state.trim, **handler_args)
    )
    try:
        server = await loop.create_server(
            listener,
            settings.host,
            settings.port,
            backlog=4096,
            reuse_address=True,
            reuse_port=reuse_port or None,
        )
    except BaseException:
        await runner.cleanup()
        raise
    _tune_gc()
    _log.info(
        "hub_started",
        version=__version__,
        url=f"ws://{settings.host}:{settings.port}/",
        history="redis" if settings.redis_url else settings.history,
        redis=redact_url(settings.redis_url) if settings.redis_url else None,
        data_dir=str(settings.data_dir),
    )
    if sys.stdout.isatty() and LEVEL_NUMBERS[settings.log_level] <= LEVEL_NUMBERS["info"]:
        print(start_line(settings), flush=True)
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    _log.info("hub_stopping")
    server.close()
    await runner.cleanup()
    _log.info("hub_stopped")
    return 0


def start_line(settings: Settings) -> str:
    """The one plain line ``tailhub serve`` prints on a terminal: where to go, where the token is.

    A hub listening on every address (``0.0.0.0``, ``::``) is shown as ``localhost``.
    """
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    where = (
        "token from AUTH_TOKEN"
        if settings.auth_token is not None
        else f"token in {token_path(settings.data_dir)}"
    )
    return f"dashboard http://{host}:{settings.port}/ · {where}"


def _secret_parts(index: int, url: str) -> list[str]:
    """A webhook URL, the URL requests go to, and the path that holds its secret."""
    sent = destination(index, url).url
    path = sent.split("://", 1)[-1].partition("/")[2]
    return [url, sent] + (["/" + path] if len(path) >= 8 else [])


def _fail(words: str) -> int:
    print(f"tailhub: {words}", file=sys.stderr)
    return 1


def run(settings: Settings) -> int:
    """Run a hub in this process until SIGTERM/SIGINT; returns the exit status."""
    token = settings.auth_token
    generated = None
    if token is None:
        try:
            token, path, created = load_or_create_token(settings.data_dir)
        except OSError as exc:
            return _fail(f"cannot keep the generated token in {settings.data_dir}: {exc}")
        generated = (path, created)
    try:
        secret, public_key = _keys(settings)
    except ValueError as exc:
        return _fail(str(exc))
    # The token and the secret are known before the first line is written: no line may
    # contain them.
    configure_logging(settings.log_level, secrets=_secrets(settings, token, secret))
    if generated is not None:
        path, created = generated
        _log.info(
            "token_generated" if created else "token_loaded",
            token_file=str(path),
            hint=(
                "AUTH_TOKEN is not set, so the hub uses the token in this file (readable by "
                "its owner only). The tailhub CLI on this machine reads it from there; other "
                "clients pass the file's contents as their token (query parameter or bearer "
                "header)."
            ),
        )
    if settings.redis_url:
        try:
            asyncio.run(reach_redis(settings))
        except EngineError as exc:
            return _fail(str(exc))
    if settings.workers > 1:
        return supervise(settings, token, serve_worker)
    return _run_loop(settings, token, secret, public_key, reuse_port=False)


def serve_worker(settings: Settings, token: str) -> int:
    """One of ``--workers`` processes: a whole hub on the shared port (SO_REUSEPORT)."""
    try:
        secret, public_key = _keys(settings)  # the parent made the secret file, if any
    except ValueError as exc:
        return _fail(str(exc))
    configure_logging(settings.log_level, secrets=_secrets(settings, token, secret))
    return _run_loop(settings, token, secret, public_key, reuse_port=True)


def _keys(settings: Settings) -> tuple[str, str | None]:
    """The secret scoped tokens are signed with (made on first use), and the public key.

    Raises:
        ValueError: the secret cannot be kept, or the public key read; in words.
    """
    secret = settings.token_secret
    if secret is None:
        try:
            secret = load_or_create_secret(settings.data_dir)
        except OSError as exc:
            raise ValueError(
                f"cannot keep the token secret in {settings.data_dir}: {exc}"
            ) from None
    public_key = None
    if settings.jwt_public_key is not None:
        public_key = load_public_key(settings.jwt_public_key)
    return secret, public_key


def _secrets(settings: Settings, token: str, secret: str) -> tuple[str, ...]:
    """What no log line may contain: the token, the token secret, the Redis password if the
    URL has one, and the webhook URLs (as given and as requests are sent to them)."""
    found = [token, secret]
    for index, url in enumerate(settings.notify):
        found += _secret_parts(index, url)
    if settings.redis_url:
        found += url_passwords(settings.redis_url)
    return tuple(found)


def _run_loop(
    settings: Settings, token: str, secret: str, public_key: str | None, *, reuse_port: bool
) -> int:
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(_serve(settings, token, secret, public_key, reuse_port=reuse_port))
    except (StoreError, EngineError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
