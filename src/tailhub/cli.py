"""The ``tailhub`` command: ``serve`` runs a hub; the other commands talk to one.

Every option of ``serve`` is also read from its environment variable (the original hub's
names: ``PORT``, ``AUTH_TOKEN``, ...); a flag wins over the variable. Failures are one line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn

import click

from tailhub import __version__
from tailhub.config import OPTIONS, ConfigError, build_settings

if TYPE_CHECKING:
    from rich.text import Text

    from tailhub.client import Message

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tailhub")
def main() -> None:
    """tailhub: watch and steer fleets of agent containers in real time."""


def _serve_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(OPTIONS):
        default = "(generated)" if option.name == "auth_token" else option.default
        func = click.option(
            option.flag,
            option.name,
            envvar=option.env,
            default=None,
            show_envvar=True,
            help=f"{option.help} [default: {default or 'none'}]",
        )(func)
    return func


@main.command()
@_serve_options
@click.pass_context
def serve(ctx: click.Context, /, **raw: str | None) -> None:
    """Run a hub: WebSocket, HTTP API, metrics and dashboard on one port."""
    values = {
        name: (value, ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE)
        for name, value in raw.items()
    }
    try:
        settings = build_settings(values)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from tailhub.server.app import run

    raise SystemExit(run(settings))


# -- commands that talk to a hub: run, logs, sessions, cancel, send ----------------------------

_LEVEL_ORDER: Final = {"debug": 0, "info": 1, "warn": 2, "error": 3}
_LEVEL_STYLES: Final = {"debug": "dim", "info": "blue", "warn": "yellow", "error": "red"}
_RUN_FAILED: Final = 125
"""``tailhub run``'s own failure (bad settings), as ``docker run`` uses it."""


def _hub_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--hub URL`` and ``--token T``, from ``TAILHUB_URL``/``WS_SERVER`` and ``TAILHUB_TOKEN``."""
    func = click.option(
        "--token",
        envvar="TAILHUB_TOKEN",
        show_envvar=True,
        help="Token [default: the token file of a hub on this machine].",
    )(func)
    return click.option(
        "--hub",
        "--url",
        "url",
        envvar=["TAILHUB_URL", "WS_SERVER"],
        show_envvar=True,
        help="Hub URL, or several processes of one hub comma-separated (tried in turn, the "
        "next when one is down) [default: ws://localhost:8080].",
    )(func)


class _CommandFailedError(Exception):
    """A failure to report as one line (raised inside the event loop, reported outside it)."""


def _fail(words: str, status: int = 1) -> NoReturn:
    click.echo(f"tailhub: {words}", err=True)
    raise SystemExit(status)


def _run_async(coro: Coroutine[Any, Any, int], *, failure_status: int = 1) -> NoReturn:
    """Run ``coro`` and exit with its status; every hub failure is one line on stderr."""
    from tailhub.client import HubError, NoContainerError

    try:
        status = asyncio.run(coro)
    except NoContainerError as exc:
        _fail(f"{exc.words or 'no such container is connected'} (no_container)", failure_status)
    except (HubError, _CommandFailedError) as exc:
        _fail(str(exc), failure_status)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    raise SystemExit(status)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@_hub_options
@click.option(
    "--container-id",
    envvar="CONTAINER_ID",
    show_envvar=True,
    help="Container ID to publish as [default: the host name].",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    envvar="TAILHUB_GRACE",
    show_envvar=True,
    help="Seconds from SIGTERM to SIGKILL after a cancel command.",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    envvar="TAILHUB_HEARTBEAT",
    show_envvar=True,
    help="Seconds between heartbeats.",
)
@click.option(
    "--ack-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    envvar="TAILHUB_ACK_TIMEOUT",
    show_envvar=True,
    help="Seconds to wait at exit for the hub to acknowledge every message.",
)
@click.option(
    "--spool",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="TAILHUB_SPOOL",
    show_envvar=True,
    help="Also keep unacknowledged messages in this file (survives a restart).",
)
@click.option(
    "--stdin",
    "stdin_mode",
    type=click.Choice(["pipe", "inherit", "null"]),
    default="pipe",
    show_default=True,
    envvar="TAILHUB_STDIN",
    show_envvar=True,
    help="CMD's stdin: fed by input commands (pipe), this process's (inherit), or none.",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar="TAILHUB_QUIET",
    show_envvar=True,
    help="Do not copy CMD's output to this process's stdout and stderr.",
)
@click.option(
    "--reconnect-max",
    type=click.FloatRange(min=0.01),
    default=10.0,
    show_default=True,
    envvar="TAILHUB_RECONNECT_MAX",
    show_envvar=True,
    help="Longest delay between reconnect attempts, in seconds.",
)
@click.argument(
    "command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD [ARGS]..."
)
def run(
    url: str | None,
    token: str | None,
    container_id: str | None,
    grace: float,
    heartbeat: float,
    ack_timeout: float,
    spool: Path | None,
    stdin_mode: Literal["pipe", "inherit", "null"],
    quiet: bool,
    reconnect_max: float,
    command: tuple[str, ...],
) -> None:
    """Run CMD and stream its output to the hub: tailhub run [OPTIONS] -- CMD [ARGS]...

    Each stdout line is a log at info, each stderr line a log at error; status, heartbeats and
    a final complete are sent too. Exits with CMD's exit code (128+N if killed by signal N).
    """
    from tailhub.runner import Runner, RunOptions

    options = RunOptions(
        url=url,
        token=token,
        container_id=container_id,
        grace=grace,
        heartbeat=heartbeat,
        ack_timeout=ack_timeout,
        spool=spool,
        echo=not quiet,
        stdin=stdin_mode,
        reconnect_max=reconnect_max,
    )

    async def go() -> int:
        return await Runner(command, options).run()

    _run_async(go(), failure_status=_RUN_FAILED)


@main.command()
@click.argument("container_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep following; exit when complete arrives.")
@click.option("--tail", type=click.IntRange(min=0), help="Start with the last N messages.")
@click.option("--since", type=click.IntRange(min=0), help="Start after sequence number SEQ.")
@click.option(
    "--level",
    type=click.Choice(list(_LEVEL_ORDER), case_sensitive=False),
    help="Show only log lines at this level or above.",
)
@click.option("-t", "--timestamps", is_flag=True, help="Show each message's time.")
@click.option("--json", "as_json", is_flag=True, help="Print each message as received (NDJSON).")
@_hub_options
def logs(
    container_id: str,
    follow: bool,
    tail: int | None,
    since: int | None,
    level: str | None,
    timestamps: bool,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Print a container's messages; with -f keep following until it completes.

    Without -f, prints the history (or --tail/--since) and exits; a container the hub has
    no messages for is an error. With -f, exits with the container's exit code when its
    complete arrives.
    """
    if tail is not None and since is not None:
        raise click.UsageError("give --tail or --since, not both")
    if "*" in container_id and not follow:
        raise click.UsageError("a pattern (with '*') needs --follow: it has no history")
    minimum = _LEVEL_ORDER[level.lower()] if level else 0
    printer = _LogPrinter(
        as_json=as_json, timestamps=timestamps, minimum=minimum, show_id="*" in container_id
    )
    _run_async(_follow_logs(container_id, follow, tail, since, printer, url, token))


async def _follow_logs(
    container_id: str,
    follow: bool,
    tail: int | None,
    since: int | None,
    printer: _LogPrinter,
    url: str | None,
    token: str | None,
) -> int:
    from tailhub.client import Subscribed, Subscriber

    def on_subscribed(info: Subscribed) -> None:
        if info.truncated:
            click.echo(
                f"tailhub: some messages are no longer kept; history starts at {info.first_seq}",
                err=True,
            )

    if tail is None and since is None and "*" not in container_id:
        since = 0  # like docker logs -f: all the history, then live
    subscriber = Subscriber(
        container_id,
        url=url,
        token=token,
        tail=tail,
        since=since,
        follow=follow,
        on_subscribed=on_subscribed,
    )
    async with subscriber:
        async for message in subscriber:
            printer.show(message)
            if not follow or message.type != "complete":
                continue
            end = subscriber.subscribed.seq if subscriber.subscribed else None
            if end is not None and message.seq is not None and message.seq < end:
                continue  # an earlier session's end, in the backlog
            code = message.data.get("exitCode")
            return code if isinstance(code, int) and 0 <= code <= 255 else 1
        info = subscriber.subscribed
    if not follow and info is not None and info.seq == 0 and "*" not in container_id:
        raise _CommandFailedError(f"the hub has no messages for container {container_id!r}")
    return 0


class _LogPrinter:
    """Prints messages as ``logs`` shows them: coloured lines, or the raw frames."""

    def __init__(self, *, as_json: bool, timestamps: bool, minimum: int, show_id: bool) -> None:
        from rich.console import Console

        self._as_json = as_json
        self._timestamps = timestamps
        self._minimum = minimum
        self._show_id = show_id
        self._console = Console(soft_wrap=True, highlight=False, markup=False, emoji=False)

    def show(self, message: Message) -> None:
        if message.type == "log":
            level = str(message.data.get("level", "info"))
            if _LEVEL_ORDER.get(level, 1) < self._minimum:
                return
        if self._as_json:
            sys.stdout.write(message.raw + "\n")
            sys.stdout.flush()
            return
        self._console.print(self._render(message))

    def _render(self, message: Message) -> Text:
        from rich.text import Text

        line = Text()
        if self._timestamps and message.timestamp:
            line.append(message.timestamp + " ", style="dim")
        if self._show_id and message.container_id:
            line.append(message.container_id + " ", style="magenta")
        data = message.data
        if message.type == "log":
            level = str(data.get("level", "info"))
            line.append(f"{level.upper():<5} ", style=_LEVEL_STYLES.get(level, ""))
            line.append_text(Text.from_ansi(str(data.get("message", ""))))
        elif message.type == "status":
            status = str(data.get("status", ""))
            words = f": {data['message']}" if data.get("message") else ""
            style = "red" if status == "error" else "cyan"
            line.append(f"── status {status}{words}", style=style)
        elif message.type == "complete":
            code = data.get("exitCode")
            duration = data.get("duration")
            took = f" after {duration / 1000:.1f} s" if isinstance(duration, int | float) else ""
            words = f": {data['message']}" if data.get("message") else ""
            style = "green" if code == 0 else "red"
            line.append(f"── complete, exit code {code}{took}{words}", style=style)
        elif message.type == "error":
            code = f" [{data['code']}]" if data.get("code") else ""
            line.append(f"ERROR {data.get('error', '')}{code}", style="bold red")
        else:
            line.append(message.raw, style="dim")
        return line


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the sessions as a JSON array.")
@_hub_options
def sessions(as_json: bool, url: str | None, token: str | None) -> None:
    """List the hub's sessions: ID, status, started, last activity, messages, viewers."""
    from tailhub.client import HubClient

    async def go() -> int:
        async with HubClient(url=url, token=token) as hub:
            found = await hub.sessions()
        if as_json:
            click.echo(json.dumps(found))
        else:
            _print_sessions(found)
        return 0

    _run_async(go())


def _print_sessions(found: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not found:
        console.print("no sessions")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("ID", "STATUS", "STARTED", "LAST ACTIVITY", "MESSAGES", "VIEWERS"):
        justify: Literal["left", "right"] = "right" if title in ("MESSAGES", "VIEWERS") else "left"
        table.add_column(title, justify=justify, overflow="fold")
    now = time.time()
    for session in found:
        status = str(session.get("status") or "")
        if session.get("active") is False and status in ("running", "starting"):
            status = f"{status} (ended)"
        style = {"error": "red", "completed": "green", "running": "cyan"}.get(status, "")
        table.add_row(
            str(session.get("containerID", "")),
            f"[{style}]{status}[/]" if style else status,
            _when(session.get("startedAt")),
            _ago(session.get("lastActivity"), now),
            str(session.get("messages", "")),
            str(session.get("subscribers", "")),
        )
    console.print(table)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _when(value: object) -> str:
    parsed = _parse_time(value)
    if parsed is None:
        return "-"
    local = parsed.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def _ago(value: object, now: float) -> str:
    parsed = _parse_time(value)
    if parsed is None:
        return "-"
    seconds = max(0, int(now - parsed.timestamp()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


@main.command()
@click.argument("container_id", metavar="ID")
@_hub_options
def cancel(container_id: str, url: str | None, token: str | None) -> None:
    """Ask a running container to stop (its runner sends SIGTERM, then SIGKILL)."""
    _send_command(container_id, "cancel", {}, url, token)


@main.command()
@click.argument("container_id", metavar="ID")
@click.argument("action")
@click.option("--text", help="Text for the action (input: written to the container's stdin).")
@click.option("--eof", is_flag=True, help="input: close the container's stdin afterwards.")
@_hub_options
def send(
    container_id: str,
    action: str,
    text: str | None,
    eof: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Send a command (cancel, input, signal, or your own ACTION) to a container."""
    if action == "input" and text is None:
        raise click.UsageError("input needs --text (use --text '' --eof to close stdin only)")
    fields: dict[str, Any] = {}
    if text is not None:
        fields["text"] = text
    if eof:
        fields["eof"] = True
    _send_command(container_id, action, fields, url, token)


def _send_command(
    container_id: str, action: str, fields: dict[str, Any], url: str | None, token: str | None
) -> NoReturn:
    from tailhub.client import HubClient

    async def go() -> int:
        async with HubClient(url=url, token=token) as hub:
            delivered = await hub.command(container_id, action, **fields)
        noun = "connection" if delivered == 1 else "connections"
        click.echo(f"{action} sent to {container_id} ({delivered} {noun})")
        return 0

    _run_async(go())
