"""The ``tailhub`` command: ``serve`` runs a hub; the other commands talk to one.

Every option of ``serve`` is also read from its environment variable (the original hub's
names: ``PORT``, ``AUTH_TOKEN``, ...); a flag wins over the variable. Every failure, a usage
error included, is one line on stderr in one shape, ``tailhub: <what went wrong>``, and a
non-zero exit status (2 for a usage error), never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
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


class _Group(click.Group):
    """The command group: reports every click failure as one ``tailhub: ...`` line."""

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:
        kwargs["standalone_mode"] = False
        try:
            status = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            raise SystemExit(0) from None
        except click.ClickException as exc:
            words = " ".join(exc.format_message().split())
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                words += f" (see '{exc.ctx.command_path} --help')"
            _fail(words, exc.exit_code)
        except click.exceptions.Abort:
            raise SystemExit(130) from None
        raise SystemExit(status if isinstance(status, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tailhub")
def main() -> None:
    """tailhub: watch and steer fleets of agent containers in real time."""


_DURATION: Final = re.compile(r"(?P<number>[+-]?\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number of seconds, or one with a unit (``500ms``, ``10m``, ``2h``).

    Raises:
        ValueError: not a duration, or a negative one (the message says it must be positive).
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (seconds, or a number with ms, s, m, h, d)")
    seconds = float(match["number"]) * _UNIT_SECONDS[match["unit"] or "s"]
    if seconds < 0:
        raise ValueError(f"{text!r} is negative: a duration must be positive")
    return seconds


class _Seconds(click.ParamType[float]):
    """A duration option: seconds, or a number with a unit; never negative."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float):
            value = str(value)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds < self.minimum:
            self.fail(f"{value!r} is too short: it must be at least {self.minimum:g} s", param, ctx)
        return seconds


def _serve_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(OPTIONS):
        default = "(generated)" if option.name in ("auth_token", "token_secret") else option.default
        func = click.option(
            option.flag,
            option.name,
            envvar=option.env,
            default=None,
            show_envvar=True,
            multiple=option.multiple,
            help=f"{option.help} [default: {default or 'none'}]",
        )(func)
    return func


@main.command()
@_serve_options
@click.pass_context
def serve(ctx: click.Context, /, **raw: Any) -> None:
    """Run a hub: WebSocket, HTTP API, metrics and dashboard on one port."""
    for name, value in raw.items():
        if isinstance(value, tuple):  # a repeatable flag: its values, comma-separated
            raw[name] = ",".join(value) if value else None
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
    """``--hub URL``, ``--token T`` and ``--token-file PATH``, from ``TAILHUB_URL``/``WS_SERVER``,
    ``TAILHUB_TOKEN`` and ``TAILHUB_TOKEN_FILE``.

    A command that takes a ``token_file`` parameter gets the path (``run`` and ``logs``
    renew from it) and ``--token-check S`` (``TAILHUB_TOKEN_CHECK``); the others get the
    file's token as ``token``. A token and a token file together are a usage error.
    """
    takes_file = "token_file" in inspect.signature(func).parameters

    @functools.wraps(func)
    def command(*args: Any, token_file: Path | None = None, **kwargs: Any) -> Any:
        if token_file is not None:
            if kwargs.get("token"):
                raise click.UsageError(
                    "give a token (--token, TAILHUB_TOKEN) or a token file (--token-file, "
                    "TAILHUB_TOKEN_FILE), not both"
                )
            if takes_file:
                kwargs["token_file"] = token_file
            else:
                kwargs["token"] = _read_token_file(token_file)
        elif takes_file:
            kwargs["token_file"] = None
        return func(*args, **kwargs)

    wrapped: Callable[..., Any] = command
    if takes_file:
        wrapped = click.option(
            "--token-check",
            type=_Seconds(minimum=0.01),
            default=5.0,
            show_default=True,
            envvar="TAILHUB_TOKEN_CHECK",
            show_envvar=True,
            help="Seconds between two reads of --token-file.",
        )(wrapped)
    wrapped = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="TAILHUB_TOKEN_FILE",
        show_envvar=True,
        help="Read the token from this file (run and logs -f read it again and renew their "
        "connection's token).",
    )(wrapped)
    wrapped = click.option(
        "--token",
        envvar="TAILHUB_TOKEN",
        show_envvar=True,
        help="Token [default: the token file of a hub on this machine].",
    )(wrapped)
    return click.option(
        "--hub",
        "--url",
        "url",
        envvar=["TAILHUB_URL", "WS_SERVER"],
        show_envvar=True,
        help="Hub URL, or several processes of one hub comma-separated (tried in turn, the "
        "next when one is down) [default: ws://localhost:8080].",
    )(wrapped)


def _read_token_file(path: Path) -> str:
    """The token in ``path``; one that cannot be read is a usage error (exit 2)."""
    from tailhub.client import ConfigurationError, read_token_file

    try:
        return read_token_file(path)
    except ConfigurationError as exc:
        _fail(str(exc), 2)


@dataclass(frozen=True, slots=True)
class _Hub:
    """Where a follower connects, and with what token (or token file to renew from)."""

    url: str | None
    token: str | None
    token_file: Path | None
    token_check: float


class _CommandFailedError(Exception):
    """A failure to report as one line (raised inside the event loop, reported outside it)."""


def _fail(words: str, status: int = 1) -> NoReturn:
    """Report a failure the one way every command does: ``tailhub: <words>`` on stderr."""
    click.echo(f"tailhub: {words}", err=True)
    raise SystemExit(status)


def _token_source() -> str:
    """Where the running command's token came from, in words (never the token itself)."""
    from tailhub.paths import token_path

    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.params.get("token_file"):
        path = ctx.params["token_file"]
        source = ctx.get_parameter_source("token_file")
        if source == click.core.ParameterSource.COMMANDLINE:
            return f"--token-file {path}"
        return f"TAILHUB_TOKEN_FILE ({path})"
    if ctx is not None and ctx.params.get("token"):
        source = ctx.get_parameter_source("token")
        return "--token" if source == click.core.ParameterSource.COMMANDLINE else "TAILHUB_TOKEN"
    return f"the token file {token_path()}"


def _run_async(coro: Coroutine[Any, Any, int], *, failure_status: int = 1) -> NoReturn:
    """Run ``coro`` and exit with its status; every hub failure is one line on stderr.

    A refused token also says where the token came from (``--token``, ``TAILHUB_TOKEN`` or
    the token file), since a stale variable is the usual cause.
    """
    from tailhub.client import AuthenticationError, HubError, NoContainerError

    source = _token_source()
    try:
        status = asyncio.run(coro)
    except NoContainerError as exc:
        _fail(f"{exc.words or 'no such container is connected'} (no_container)", failure_status)
    except AuthenticationError as exc:
        words = str(exc)
        if "refused the token" in words:
            words += f"; the token came from {source}"
        _fail(words, failure_status)
    except (HubError, _CommandFailedError) as exc:
        _fail(str(exc), failure_status)
    except ValueError as exc:  # the SDK's check of an argument (a container ID, a time)
        _fail(str(exc), 2 if failure_status == 1 else failure_status)
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
    type=_Seconds(),
    default=10.0,
    show_default=True,
    envvar="TAILHUB_GRACE",
    show_envvar=True,
    help="Seconds from SIGTERM to SIGKILL after a cancel command.",
)
@click.option(
    "--heartbeat",
    type=_Seconds(minimum=0.1),
    default=30.0,
    show_default=True,
    envvar="TAILHUB_HEARTBEAT",
    show_envvar=True,
    help="Seconds between heartbeats.",
)
@click.option(
    "--ack-timeout",
    type=_Seconds(),
    default=10.0,
    show_default=True,
    envvar="TAILHUB_ACK_TIMEOUT",
    show_envvar=True,
    help="Seconds to wait at exit for the hub's last acknowledgements (while it is connected).",
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
    type=click.Choice(["null", "hub", "inherit", "pipe"]),
    default="null",
    show_default=True,
    envvar="TAILHUB_STDIN",
    show_envvar=True,
    help="CMD's stdin: empty (null), fed by input commands until EOF and by approve, deny and "
    "reply for Claude Code (hub; pipe is its old name), or this process's (inherit).",
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
    type=_Seconds(minimum=0.01),
    default=10.0,
    show_default=True,
    envvar="TAILHUB_RECONNECT_MAX",
    show_envvar=True,
    help="Longest delay between reconnect attempts, in seconds.",
)
@click.option(
    "--agent",
    type=click.Choice(["auto", "claude", "codex", "none"]),
    default="auto",
    show_default=True,
    envvar="TAILHUB_AGENT",
    show_envvar=True,
    help="Read stdout as Claude Code stream-json or Codex exec --json events (auto: either).",
)
@click.argument(
    "command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD [ARGS]..."
)
def run(
    url: str | None,
    token: str | None,
    token_file: Path | None,
    token_check: float,
    container_id: str | None,
    grace: float,
    heartbeat: float,
    ack_timeout: float,
    spool: Path | None,
    stdin_mode: Literal["null", "hub", "inherit", "pipe"],
    quiet: bool,
    reconnect_max: float,
    agent: Literal["auto", "claude", "codex", "none"],
    command: tuple[str, ...],
) -> None:
    """Run CMD and stream its output to the hub: tailhub run [OPTIONS] -- CMD [ARGS]...

    Each stdout line is a log at info, each stderr line a log marked as stderr (at warn);
    status, heartbeats and a final complete are sent too. CMD's stdin is empty unless --stdin
    says otherwise. Exits with CMD's exit code (128+N if killed by signal N).
    A stdout line that is a Claude Code or Codex JSON event is sent as a one-line summary with
    the event attached (see --agent).
    """
    from tailhub.runner import Runner, RunOptions

    options = RunOptions(
        url=url,
        token=token,
        token_file=token_file,
        token_check=token_check,
        container_id=container_id,
        grace=grace,
        heartbeat=heartbeat,
        ack_timeout=ack_timeout,
        spool=spool,
        echo=not quiet,
        stdin="hub" if stdin_mode == "pipe" else stdin_mode,
        token_source=_token_source(),
        reconnect_max=reconnect_max,
        agent=agent,
    )

    async def go() -> int:
        return await Runner(command, options).run()

    _run_async(go(), failure_status=_RUN_FAILED)


class _Since(click.ParamType[int | float]):
    """``--since``: a ``seq`` (digits), a duration back from now (``10m``), or an RFC 3339 time.

    Converts to an ``int`` (a seq) or a ``float`` (a Unix time).
    """

    name = "seq|duration|time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        if _DURATION.fullmatch(text) and not text.lstrip("+-").replace(".", "").isdigit():
            try:
                return time.time() - parse_duration(text)
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if text.startswith("-"):
            self.fail(f"{text!r} is negative: it must be positive", param, ctx)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"{text!r} is not a seq, a duration (10m, 2h) or an RFC 3339 time "
                "(2026-01-31T09:00:00Z)",
                param,
                ctx,
            )
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()  # a time without a zone is local time
        return parsed.timestamp()


@main.command()
@click.argument("container_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep following; exit when complete arrives.")
@click.option("--tail", type=click.IntRange(min=0), help="Start with the last N messages.")
@click.option(
    "--since",
    type=_Since(),
    help="Start after sequence number SEQ, or at a time: 10m, 2h (ago) or an RFC 3339 time.",
)
@click.option(
    "--level",
    type=click.Choice(list(_LEVEL_ORDER), case_sensitive=False),
    help="Show only log lines at this level or above (stderr lines are at warn).",
)
@click.option("-t", "--timestamps", is_flag=True, help="Show each message's time.")
@click.option("--seq", "show_seq", is_flag=True, help="Show each message's seq.")
@click.option("--json", "as_json", is_flag=True, help="Print each message as received (NDJSON).")
@click.option(
    "--raw",
    is_flag=True,
    help="Print only log lines, an agent's events as the JSON lines it wrote.",
)
@_hub_options
def logs(
    container_id: str,
    follow: bool,
    tail: int | None,
    since: int | float | None,
    level: str | None,
    timestamps: bool,
    show_seq: bool,
    as_json: bool,
    raw: bool,
    url: str | None,
    token: str | None,
    token_file: Path | None,
    token_check: float,
) -> None:
    """Print a container's messages; with -f keep following until it completes.

    Without -f, prints the history (or --tail/--since) and exits; a container the hub has
    no messages for is an error. With -f, exits with the container's exit code when its
    complete arrives. --since with a time keeps the messages stamped at or after it. A line
    marks where a new run of the same container ID begins.
    An agent's events (see tailhub run --agent) show as their one-line summaries, coloured
    by kind: text, thinking, tool call, tool result, result.
    """
    if tail is not None and since is not None:
        raise click.UsageError("give --tail or --since, not both")
    if as_json and raw:
        raise click.UsageError("give --json or --raw, not both")
    if "*" in container_id and not follow:
        raise click.UsageError("a pattern (with '*') needs --follow: it has no history")
    if token_file is not None:
        _read_token_file(token_file)  # read again by the follower, which renews from it
    minimum = _LEVEL_ORDER[level.lower()] if level else 0
    after = since if isinstance(since, float) else None
    printer = _LogPrinter(
        as_json=as_json,
        timestamps=timestamps,
        show_seq=show_seq,
        minimum=minimum,
        show_id="*" in container_id,
        after=after,
        raw=raw,
    )
    # A time reads the history from the start and keeps what is stamped at or after it; a
    # pattern has no history (live messages only), so the time only filters those.
    from_start = after is not None and "*" not in container_id
    seq = since if isinstance(since, int) else (0 if from_start else None)
    hub = _Hub(url, token, token_file, token_check)
    _run_async(_follow_logs(container_id, follow, tail, seq, printer, hub))


async def _follow_logs(
    container_id: str,
    follow: bool,
    tail: int | None,
    since: int | None,
    printer: _LogPrinter,
    hub: _Hub,
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
        url=hub.url,
        token=hub.token,
        token_file=hub.token_file,
        token_check=hub.token_check,
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


def _message_time(message: Message) -> float | None:
    parsed = _parse_time(message.timestamp)
    return parsed.timestamp() if parsed is not None else None


class _LogPrinter:
    """Prints messages as ``logs`` shows them: coloured lines, or the raw frames.

    A run of a container ends with its ``complete``; a message after one, or a ``starting``
    status after other messages, begins a new run, and a marker line is printed before it.
    """

    def __init__(
        self,
        *,
        as_json: bool,
        timestamps: bool,
        minimum: int,
        show_id: bool,
        show_seq: bool = False,
        after: float | None = None,
        raw: bool = False,
    ) -> None:
        from rich.console import Console

        self._as_json = as_json
        self._raw = raw
        self._timestamps = timestamps
        self._show_seq = show_seq
        self._minimum = minimum
        self._show_id = show_id
        self._after = after
        self._state: dict[str | None, str] = {}
        """Per container: "" before any message, "run" inside a run, "ended" after complete."""
        self._console = Console(soft_wrap=True, highlight=False, markup=False, emoji=False)

    def show(self, message: Message) -> None:
        if self._after is not None:
            stamped = _message_time(message)
            if stamped is not None and stamped < self._after:
                return
        new_run = self._track_run(message)
        if message.type == "log":
            level = str(message.data.get("level", "info"))
            if _LEVEL_ORDER.get(level, 1) < self._minimum:
                return
        if self._as_json:
            sys.stdout.write(message.raw + "\n")
            sys.stdout.flush()
            return
        if self._raw:
            if message.type == "log":
                sys.stdout.write(_raw_line(message.data) + "\n")
                sys.stdout.flush()
            return
        if new_run:
            self._console.print(self._run_marker(message))
        self._console.print(self._render(message))

    def _track_run(self, message: Message) -> bool:
        """Whether ``message`` begins a new run after an earlier one was shown."""
        if message.type not in ("log", "status", "complete", "error"):
            return False
        key = message.container_id
        before = self._state.get(key, "")
        starting = message.type == "status" and message.data.get("status") == "starting"
        self._state[key] = "ended" if message.type == "complete" else "run"
        return before == "ended" or (before == "run" and starting)

    def _run_marker(self, message: Message) -> Text:
        from rich.text import Text

        who = f" of {message.container_id}" if self._show_id and message.container_id else ""
        return Text(f"════ new run{who} · {_when(message.timestamp)} ════", style="bold")

    def _render(self, message: Message) -> Text:
        from rich.text import Text

        line = Text()
        if self._show_seq and message.seq is not None:
            line.append(f"#{message.seq} ", style="dim")
        if self._timestamps and message.timestamp:
            line.append(message.timestamp + " ", style="dim")
        if self._show_id and message.container_id:
            line.append(message.container_id + " ", style="magenta")
        data = message.data
        if message.type == "log":
            level = str(data.get("level", "info"))
            if data.get("stream") == "stderr":
                line.append("STDERR ", style="magenta")
            else:
                line.append(f"{level.upper():<5} ", style=_LEVEL_STYLES.get(level, ""))
            agent = _agent_event(data)
            if agent is not None:
                from tailhub.agents import event_kind

                kind_style = _KIND_STYLES[event_kind(agent[0], agent[1])]
                line.append(f"{agent[0]:<6} ", style=_AGENT_STYLES.get(agent[0], ""))
                words = str(data.get("message", ""))
                line.append_text(
                    Text.from_ansi(words, style="red" if level == "error" else kind_style)
                )
            else:
                line.append_text(Text.from_ansi(str(data.get("message", ""))))
        elif message.type == "status":
            status = str(data.get("status", ""))
            words = f": {data['message']}" if data.get("message") else ""
            style = {"error": "red", "cancelled": "yellow"}.get(status, "cyan")
            line.append(f"── status {status}{words}", style=style)
        elif message.type == "complete":
            code = data.get("exitCode")
            duration = data.get("duration")
            took = f" after {duration / 1000:.1f} s" if isinstance(duration, int | float) else ""
            if data.get("cancelled") is True:
                line.append(f"── cancelled, exit code {code}{took}", style="yellow")
                return line
            words = f": {data['message']}" if data.get("message") else ""
            style = "green" if code == 0 else "red"
            line.append(f"── complete, exit code {code}{took}{words}", style=style)
        elif message.type == "error":
            code = f" [{data['code']}]" if data.get("code") else ""
            line.append(f"ERROR {data.get('error', '')}{code}", style="bold red")
        else:
            line.append(message.raw, style="dim")
        return line


_AGENT_STYLES: Final = {"claude": "magenta", "codex": "green"}
_KIND_STYLES: Final = {
    "text": "bold",
    "thinking": "dim italic",
    "tool": "cyan",
    "tool_result": "green",
    "result": "bold magenta",
    "system": "dim",
    "other": "",
}


def _agent_event(data: dict[str, Any]) -> tuple[str, Any] | None:
    """The stream and event of a log that carries an agent event, else None."""
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("agent"), str):
        return None
    if "event" not in metadata:
        return None
    return metadata["agent"], metadata["event"]


def _raw_line(data: dict[str, Any]) -> str:
    """A log as its process wrote it: an agent's event as one JSON line, else the text."""
    agent = _agent_event(data)
    if agent is not None:
        return json.dumps(agent[1], ensure_ascii=False, separators=(",", ":"))
    return str(data.get("message", ""))


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
    agents = any(isinstance(session.get("agent"), dict) for session in found)
    titles = ["ID", "STATUS", "STARTED", "LAST ACTIVITY", "MESSAGES", "VIEWERS"]
    if agents:
        titles += ["MODEL", "COST", "TURNS", "DOING"]
    for title in titles:
        justify: Literal["left", "right"] = (
            "right" if title in ("MESSAGES", "VIEWERS", "COST", "TURNS") else "left"
        )
        table.add_column(title, justify=justify, overflow="fold")
    now = time.time()
    for session in found:
        status = str(session.get("status") or "")
        if session.get("active") is False and status in ("running", "starting"):
            status = f"{status} (ended)"
        style = {
            "error": "red",
            "completed": "green",
            "running": "cyan",
            "cancelled": "yellow",
        }.get(status, "")
        cells = [
            str(session.get("containerID", "")),
            f"[{style}]{status}[/]" if style else status,
            _when(session.get("startedAt")),
            _ago(session.get("lastActivity"), now),
            str(session.get("messages", "")),
            str(session.get("subscribers", "")),
        ]
        if agents:
            cells += _agent_cells(session.get("agent"))
        table.add_row(*cells)
    console.print(table)


def _agent_cells(agent: object) -> list[str]:
    """MODEL, COST, TURNS and DOING of a session's agent summary ("-" without one)."""
    from rich.markup import escape

    if not isinstance(agent, dict):
        return ["-", "-", "-", "-"]
    cost = agent.get("costUsd")
    doing = agent.get("activity") or (f"done: {agent['result']}" if agent.get("result") else None)
    return [
        escape(str(agent.get("model") or agent.get("kind") or "-")),
        f"${cost:.3f}" if isinstance(cost, int | float) else "-",
        str(agent.get("turns", "-")),
        escape(str(doing or "-")),
    ]


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the totals as a JSON object.")
@_hub_options
def fleet(as_json: bool, url: str | None, token: str | None) -> None:
    """Totals over the hub's sessions: cost, tokens, sessions by status."""
    from tailhub.agents import fleet_totals
    from tailhub.client import HubClient

    async def go() -> int:
        async with HubClient(url=url, token=token) as hub:
            totals = fleet_totals(await hub.sessions())
        if as_json:
            click.echo(json.dumps(totals))
        else:
            _print_fleet(totals)
        return 0

    _run_async(go())


def _print_fleet(totals: dict[str, Any]) -> None:
    by_status = ", ".join(f"{count} {status}" for status, count in totals["byStatus"].items())
    tokens = totals["tokens"]
    rows = [
        ("sessions", f"{totals['sessions']}" + (f" ({by_status})" if by_status else "")),
        ("running", str(totals["running"])),
        ("failed", str(totals["failed"])),
        ("agents", str(totals["agents"])),
        ("cost", f"${totals['costUsd']:.3f}"),
        (
            "tokens",
            f"{tokens['input']:,} in · {tokens['output']:,} out · "
            f"{tokens['cacheRead']:,} cache read · {tokens['cacheWrite']:,} cache write",
        ),
    ]
    for name, value in rows:
        click.echo(f"{name:<9}{value}")


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
@click.option("--request", "request_id", help="The request answered [default: the pending one].")
@_hub_options
def approve(container_id: str, request_id: str | None, url: str | None, token: str | None) -> None:
    """Allow what a waiting agent asks (its pending permission request)."""
    fields = {"requestId": request_id} if request_id else {}
    _send_command(container_id, "approve", fields, url, token)


@main.command()
@click.argument("container_id", metavar="ID")
@click.option("--message", "-m", help="Why, for the agent.")
@click.option("--request", "request_id", help="The request answered [default: the pending one].")
@_hub_options
def deny(
    container_id: str,
    message: str | None,
    request_id: str | None,
    url: str | None,
    token: str | None,
) -> None:
    """Refuse what a waiting agent asks (its pending permission request)."""
    fields: dict[str, Any] = {"requestId": request_id} if request_id else {}
    if message:
        fields["message"] = message
    _send_command(container_id, "deny", fields, url, token)


@main.command()
@click.argument("container_id", metavar="ID")
@click.argument("text")
@_hub_options
def reply(container_id: str, text: str, url: str | None, token: str | None) -> None:
    """Send TEXT to an agent as the user's next message."""
    if not text:
        raise click.UsageError("TEXT must not be empty")
    _send_command(container_id, "reply", {"text": text}, url, token)


@main.command()
@click.argument("container_id", metavar="ID")
@click.argument("action")
@click.option(
    "--text",
    help="Text for the action (input: a line written to the container's stdin; a newline is "
    "added, as the dashboard does).",
)
@click.option("--raw", is_flag=True, help="input: send --text exactly, without the newline.")
@click.option("--eof", is_flag=True, help="input: close the container's stdin (after --text).")
@_hub_options
def send(
    container_id: str,
    action: str,
    text: str | None,
    raw: bool,
    eof: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Send a command (cancel, input, signal, or your own ACTION) to a container.

    tailhub send ID input --text yes writes the line "yes\\n"; --raw writes the text as
    given; --eof alone closes the container's stdin.
    """
    if action == "input" and text is None and not eof:
        raise click.UsageError("input needs --text, --eof or both")
    if raw and text is None:
        raise click.UsageError("--raw needs --text")
    fields: dict[str, Any] = {}
    if text is not None:
        fields["text"] = text if raw or action != "input" else text + "\n"
    elif action == "input":
        fields["text"] = ""
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


# -- the machine the hub runs on: open, token show, backup ------------------------------------


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _data_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--data-dir DIR``, from ``TAILHUB_DATA_DIR``: where a hub on this machine keeps files."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="TAILHUB_DATA_DIR",
        show_envvar=True,
        help="The hub's data directory [default: ~/.local/share/tailhub].",
    )(func)


def _dashboard_url(url: str | None) -> str:
    """The dashboard's address for the hub at ``url`` (ws becomes http, wss https)."""
    import yarl

    from tailhub.client import ConfigurationError, resolve_url

    try:
        hub = yarl.URL(resolve_url(url))
    except ConfigurationError as exc:
        _fail(str(exc))
    scheme = "https" if hub.scheme == "wss" else "http"
    host = "localhost" if hub.host in ("0.0.0.0", "::") else hub.host
    base = hub.with_scheme(scheme).with_host(host or "localhost").with_query(None)
    return str(base.with_path(hub.path if hub.path.endswith("/") else hub.path + "/"))


def _local_token(token: str | None, data_dir: Path | None) -> str | None:
    """The token the commands use, or the hub's token file under ``data_dir``; a token file
    named by ``TAILHUB_TOKEN_FILE`` that cannot be used is a usage error."""
    from tailhub.client import ConfigurationError, resolve_token
    from tailhub.paths import token_path

    try:
        return resolve_token(token, token_file=token_path(data_dir))
    except ConfigurationError as exc:
        _fail(str(exc), 2)


@main.command("open")
@click.option("--browser", is_flag=True, help="Open the link in a web browser too.")
@_data_dir_option
@_hub_options
def open_dashboard(
    browser: bool, data_dir: Path | None, url: str | None, token: str | None
) -> None:
    """Print the dashboard's address with a login link (the page drops the token at once).

    The token is the one the other commands use: --token, TAILHUB_TOKEN, or the token file
    of a hub on this machine. Without one, the plain address is printed and the page asks.
    """
    from urllib.parse import quote

    address = _dashboard_url(url)
    secret = _local_token(token, data_dir)
    link = f"{address}?token={quote(secret, safe='')}" if secret else address
    click.echo(link)
    if not secret:
        click.echo("tailhub: no token found; the page will ask for it", err=True)
    if browser:
        import webbrowser

        if not webbrowser.open(link):
            _fail("no web browser found here; open the address above")


@main.group()
def token() -> None:
    """Tokens: the shared one the CLI uses, and scoped ones (create, inspect, revoke)."""


@token.command("show")
@_data_dir_option
@click.option("--token", envvar="TAILHUB_TOKEN", hidden=True)
def token_show(data_dir: Path | None, token: str | None) -> None:
    """Print the token: TAILHUB_TOKEN, else the file TAILHUB_TOKEN_FILE names, else the
    token file of a hub on this machine.

    The token alone goes to stdout (for $(tailhub token show)); nothing else is printed.
    """
    from tailhub.paths import token_path

    secret = _local_token(token, data_dir)
    if not secret:
        _fail(
            f"no token: TAILHUB_TOKEN is not set and there is no token file at "
            f"{token_path(data_dir)} (a hub started there without AUTH_TOKEN writes one)"
        )
    click.echo(secret)


def _secret_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--token-secret",
        "secret",
        envvar="TAILHUB_TOKEN_SECRET",
        show_envvar=True,
        help="The hub's token secret [default: the one a hub on this machine generated].",
    )(func)


def _local_secret(secret: str | None, data_dir: Path | None) -> str | None:
    from tailhub.auth import read_secret
    from tailhub.paths import default_data_dir

    if secret:
        return secret
    try:
        return read_secret(data_dir or default_data_dir())
    except OSError as exc:
        _fail(f"cannot read the token secret: {exc}")


@token.command("create")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["publisher", "viewer", "operator", "admin"]),
    help="What the token may do.",
)
@click.option(
    "--container",
    "containers",
    multiple=True,
    metavar="ID_OR_PATTERN",
    help="A container ID or glob pattern (task-*) it may do it to; repeat for more.",
)
@click.option(
    "--ttl",
    type=_Seconds(minimum=1.0),
    default="24h",
    show_default=True,
    help="How long it is valid (30m, 24h, 7d).",
)
@click.option("--sub", help="Who it is for (shown in the hub's log).")
@_secret_option
@_data_dir_option
def token_create(
    role: str,
    containers: tuple[str, ...],
    ttl: float,
    sub: str | None,
    secret: str | None,
    data_dir: Path | None,
) -> None:
    """Print a new scoped token (a JWT), signed with the hub's secret.

    The secret is TAILHUB_TOKEN_SECRET (or --token-secret), else the one a hub on this
    machine generated beside its token file. The token alone goes to stdout.
    """
    from tailhub.auth import mint
    from tailhub.paths import secret_path
    from tailhub.protocol import ProtocolError, validate_container_id

    signing = _local_secret(secret, data_dir)
    if not signing:
        _fail(
            "no token secret: TAILHUB_TOKEN_SECRET is not set and there is no secret file at "
            f"{secret_path(data_dir)} (a hub started there writes one); or ask a hub with "
            "POST /api/tokens"
        )
    for pattern in containers:
        try:
            validate_container_id(pattern, pattern=True)
        except ProtocolError as exc:
            _fail(f"--container {pattern[:64]!r}: {exc.words}", 2)
    try:
        made, _claims = mint(signing, role, containers, ttl, sub=sub)
    except ValueError as exc:
        _fail(f"{exc} (see 'tailhub token create --help')", 2)
    click.echo(made)


def _http_base(url: str | None) -> str:
    return _dashboard_url(url)


@token.command("inspect")
@click.argument("presented", metavar="TOKEN")
@_secret_option
@_data_dir_option
@click.option(
    "--hub",
    "--url",
    "url",
    envvar=["TAILHUB_URL", "WS_SERVER"],
    show_envvar=True,
    help="Hub URL to ask [default: ws://localhost:8080].",
)
def token_inspect(
    presented: str, secret: str | None, data_dir: Path | None, url: str | None
) -> None:
    """Show a token's claims, and whether the hub accepts it.

    The signature is checked with the local secret (TAILHUB_TOKEN_SECRET, or the hub's on
    this machine) where there is one; the hub, if it answers, is asked with the token itself
    (GET /api/whoami), which also tells a revoked token. Exits 1 when the token is refused.
    """
    from tailhub.auth import Authenticator, TokenError, claims_of

    try:
        claims = claims_of(presented)
    except TokenError as exc:
        _fail(f"{exc}; the shared token has no claims (it is admin)")
    for name in ("role", "containers", "sub", "iat", "exp", "jti"):
        if name in claims:
            value = claims[name]
            shown = ", ".join(value) if isinstance(value, list) else value
            if name in ("iat", "exp") and isinstance(value, int | float):
                shown = f"{value} ({_when_unix(value)})"
            click.echo(f"{name + ':':12}{shown}")
    refused = False
    exp = claims.get("exp")
    if isinstance(exp, int | float) and exp <= time.time():
        click.echo(f"{'expired:':12}yes, {_ago_unix(exp)}")
        refused = True
    signing = _local_secret(secret, data_dir)
    if signing:
        try:
            Authenticator("-", secret=signing).grant(presented)
            verdict = "valid (signed with the local secret)"
        except TokenError as exc:
            verdict = f"refused: {exc}"
            refused = refused or "expired" not in str(exc)
        except ValueError as exc:
            verdict = f"not checked: {exc}"
        click.echo(f"{'signature:':12}{verdict}")
    else:
        click.echo(f"{'signature:':12}not checked (no local secret)")
    answer = asyncio.run(_ask_hub(_http_base(url), presented))
    click.echo(f"{'hub:':12}{answer[1]}")
    if answer[0] is False or (answer[0] is None and refused):
        raise SystemExit(1)


def _when_unix(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _ago_unix(seconds: float) -> str:
    return f"at {_when_unix(seconds)}"


async def _ask_hub(base: str, presented: str) -> tuple[bool | None, str]:
    """Whether the hub at ``base`` accepts ``presented`` (None: it could not be asked)."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(base + "api/whoami", headers={"Authorization": f"Bearer {presented}"}) as resp,
        ):
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return None, f"not asked: {base} did not answer ({type(exc).__name__})"
    if resp.status == 200 and isinstance(body, dict):
        scope = ", ".join(body.get("containers") or [])
        return True, f"accepts it: {body.get('role')} over {scope}"
    words = body.get("data", {}).get("error") if isinstance(body, dict) else None
    return False, f"refuses it: {words or f'HTTP {resp.status}'}"


@token.command("revoke")
@click.argument("target", metavar="JTI_OR_TOKEN")
@_hub_options
def token_revoke(target: str, url: str | None, token: str | None) -> None:
    """Revoke a scoped token, by its jti or whole: every hub process refuses it from now on.

    Needs an admin token (--token, TAILHUB_TOKEN, or the token file of a hub on this
    machine). Its open connections are closed with 4401. Given the whole token, the
    revocation is kept until the token's exp; given its jti, until the exp of a connection
    that holds it, else for good.
    """
    from tailhub.auth import TokenError, claims_of, looks_like_jwt

    jti: str = target
    exp: object = None
    if looks_like_jwt(target):
        try:
            claims = claims_of(target)
        except TokenError as exc:
            _fail(str(exc), 2)
        found, exp = claims.get("jti"), claims.get("exp")
        if not isinstance(found, str) or not found:
            _fail("the token has no jti claim: it cannot be revoked (rotate the secret)", 2)
        jti = found
    admin = _local_token(token, None)
    if not admin:
        _fail("no admin token: pass --token, set TAILHUB_TOKEN, or run on the hub's machine")
    body: dict[str, Any] = {"jti": jti}
    if isinstance(exp, int | float):
        body["exp"] = exp
    status, reply = asyncio.run(_post(_http_base(url) + "api/tokens/revoked", admin, body))
    if status != 200:
        _fail(f"the hub did not revoke it: {reply} (HTTP {status})")
    until = reply.get("until")
    kept = f"refused until {_when_unix(until)}" if until else "refused for good"
    click.echo(f"revoked {jti} ({kept})")


async def _post(url: str, bearer: str, body: dict[str, Any]) -> tuple[int, Any]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, json=body, headers={"Authorization": f"Bearer {bearer}"}) as resp,
        ):
            reply = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        _fail(f"cannot reach the hub at {url}: {type(exc).__name__} {exc}".strip())
    if resp.status != 200 and isinstance(reply, dict):
        return resp.status, reply.get("data", {}).get("error", reply)
    return resp.status, reply


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@_data_dir_option
def backup(path: Path, data_dir: Path | None) -> None:
    """Copy the hub's history (history.db and its WAL) to PATH, safely while the hub runs.

    Uses SQLite's online backup API from a read-only connection: the copy is one consistent
    file with everything committed when it began; the hub is not paused. PATH must not exist.
    """
    from tailhub.backup import HISTORY_FILE, BackupError, backup_history
    from tailhub.paths import default_data_dir

    source = (data_dir or default_data_dir()) / HISTORY_FILE
    try:
        result = backup_history(source, path)
    except BackupError as exc:
        _fail(str(exc))
    click.echo(
        f"backed up {source} to {result.path}: schema {result.schema}, "
        f"{_count(result.containers, 'container')}, {_count(result.messages, 'message')}, "
        f"{_count(result.size, 'byte')}"
    )


@main.command()
@click.option(
    "--redis",
    "redis_url",
    required=True,
    envvar="TAILHUB_REDIS_URL",
    show_envvar=True,
    help="The Redis to copy into (redis://host:port/db, rediss://, unix:///path?db=N,"
    " redis+cluster://).",
)
@_data_dir_option
def migrate(redis_url: str, data_dir: Path | None) -> None:
    """Copy a stopped hub's SQLite history, sessions and records into an empty Redis.

    Every container keeps its messages, seqs and epoch (viewers resume where they were), its
    producers' last ids, its session and the session's metadata; revoked tokens and pending
    notifications come along. Refused, with nothing written, when Redis already holds one of
    the containers. Stop the hub first: its history is opened as the hub opens it.
    """
    from tailhub.engine.migrate import MigrateError
    from tailhub.engine.migrate import migrate as copy_history
    from tailhub.engine.redis import redact
    from tailhub.log import configure_logging
    from tailhub.paths import default_data_dir

    configure_logging("warn")  # the store's and engine's info lines are not this command's
    source = data_dir or default_data_dir()
    try:
        done = asyncio.run(copy_history(source, redis_url))
    except MigrateError as exc:
        _fail(str(exc))
    click.echo(
        f"migrated {source} to {redact(redis_url)}: {_count(done.containers, 'container')}, "
        f"{_count(done.messages, 'message')}, {_count(done.sessions, 'session')}, "
        f"{_count(done.meta, 'metadata value')}, {_count(done.records, 'record')}"
    )
