"""``tailhub run -- CMD``: run a process and stream its output to a hub as a container.

Each line CMD writes to stdout becomes a ``log`` at ``info``; each line on stderr a ``log``
with ``"stream": "stderr"`` at ``warn`` (stderr carries diagnostics, not only errors). The
session gets ``status`` starting, running, then completed, error or cancelled, heartbeats
while it runs, and a final ``complete`` with ``exitCode`` and ``duration`` (ms), and
``"cancelled": true`` after a ``cancel`` command. The runner exits with CMD's exit code
(128 + N when CMD was killed by signal N).

What is guaranteed:

- Lines are sent as they are: ANSI escape codes untouched, bytes that are not UTF-8 replaced
  by U+FFFD, a final line without a newline kept. A line is one message up to the hub's frame
  limit (1 MiB); a longer one is cut into several messages that each fit.
- CMD never waits for the hub: when the hub is unreachable, output is kept in the publisher's
  spool (memory, or the file given with ``--spool``) and delivered when it comes back. The
  runner says so on stderr as soon as the first connection attempt fails. At exit it waits at
  most ``--ack-timeout`` for the hub to acknowledge everything while connected; when not
  connected, it gives the hub one short chance (at most ``EXIT_RECONNECT`` seconds) and then
  writes one line saying how CMD ended and what was not delivered.
- With ``--agent`` (default ``auto``), a stdout line that is a Claude Code stream-json or
  Codex ``exec --json`` event becomes a ``log`` whose ``message`` is a one-line summary, whose
  level says how it went, and whose ``metadata`` is ``{"agent": "claude"|"codex",
  "agentSummary": <the session's summary after the event, or null when it did not change
  it>, "attend": <whether it may change the session's attention state>, "event": <the line's
  JSON object, byte for byte>}`` (see :mod:`tailhub.agents`). An event too large for one
  message is sent as plain lines instead.
- SIGTERM, SIGINT, SIGHUP and SIGQUIT sent to the runner are passed on to CMD's process group.
- A ``cancel`` command sends SIGTERM to CMD's process group, then SIGKILL after ``--grace``
  seconds; ``input`` writes ``text`` to CMD's stdin when it was started with ``--stdin hub``
  (``"eof": true`` then closes it); ``signal`` sends the signal named in ``signal``.
- CMD's stdin is empty (/dev/null) unless asked otherwise, so a program that reads its stdin
  to the end before it starts (``claude -p``, ``cat``) is never left waiting.
- With ``--stdin hub``, the commands that answer a waiting Claude Code (started with
  ``--input-format stream-json --permission-prompt-tool stdio``) are written to its stdin as
  one JSON object a line: ``approve`` and ``deny`` as the ``control_response`` to a
  ``can_use_tool`` request it printed and that is still open (else nothing is written, and a
  warning is published), ``reply`` as a user message. What was written is also published as
  an agent event, so that the hub sees the request answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Literal, TextIO

import msgspec

from tailhub.agents import AgentMode, Recogniser, may_change
from tailhub.client import (
    AuthenticationError,
    Backoff,
    HubError,
    HubUnreachableError,
    Message,
    Publisher,
    PublisherClosedError,
    RequestError,
    display_url,
)

__all__ = [
    "EXIT_RECONNECT",
    "FORWARDED_SIGNALS",
    "LineSplitter",
    "RunOptions",
    "Runner",
    "exit_status",
    "run_command",
    "split_text",
]

FORWARDED_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_READ_SIZE: Final = 64 << 10
_FRAME_SLACK: Final = 64
_EVENT_SLACK: Final = 64
"""Bytes an agent event's ``metadata`` wrapper adds to a log message, with room to spare."""
_encoder: Final = msgspec.json.Encoder()
EXIT_RECONNECT: Final = 1.0
"""Seconds CMD's end waits for a hub that is not connected before giving up on it."""
_OPEN_REQUESTS: Final = 256
"""Most open ``can_use_tool`` requests remembered (the oldest is dropped beyond it)."""
_DENIED: Final = "Denied by the user from tailhub."
_FIRST_ATTEMPT: Final = 3.0
"""Seconds after which a first connection attempt that has not answered is reported."""

StdinMode = Literal["hub", "inherit", "null"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How ``tailhub run`` runs CMD and talks to the hub.

    Attributes:
        url: the hub, or several of its processes comma-separated (default from the
            environment, see :func:`tailhub.client.resolve_urls`).
        token: the token (default from the environment or the hub's token file).
        token_file: a file holding the token, read again while CMD runs: a renewed token
            there is sent to the hub (see :class:`tailhub.client.Publisher`). Not with
            ``token``.
        token_check: seconds between two reads of ``token_file``.
        container_id: the container ID (default ``$CONTAINER_ID``, else the host name).
        grace: seconds between SIGTERM and SIGKILL after a ``cancel`` command.
        heartbeat: seconds between heartbeats.
        ack_timeout: seconds to wait at exit for the hub to acknowledge everything.
        drain_timeout: seconds to keep reading CMD's output after it exited (its children
            may still hold the pipes open).
        spool: journal unacknowledged messages to this file as well as memory.
        max_pending: most unacknowledged messages kept; beyond it new lines are dropped from
            the stream (never from CMD's own output, which is still echoed).
        echo: also copy CMD's stdout and stderr to the runner's own (``docker logs`` works).
        stdin: ``null``: /dev/null, so CMD sees the end of its input at once; ``hub``: a pipe
            fed by ``input`` commands, open until an ``eof``; ``inherit``: the runner's own.
        reconnect_max: largest delay between reconnect attempts, in seconds.
        max_message_size: the hub's largest frame, in bytes.
        agent: which agent event stream CMD's stdout carries: ``auto`` (recognise either),
            ``claude``, ``codex``, or ``none`` (every line is plain text).
        token_source: where the token came from, in words (``--token``, ``TAILHUB_TOKEN``,
            ``--token-file``, the token file's path), said when the hub refuses it.
    """

    url: str | None = None
    token: str | None = None
    token_file: Path | None = None
    token_check: float = 5.0
    container_id: str | None = None
    grace: float = 10.0
    heartbeat: float = 30.0
    ack_timeout: float = 10.0
    drain_timeout: float = 5.0
    spool: Path | None = None
    max_pending: int = 100_000
    echo: bool = True
    stdin: StdinMode = "null"
    reconnect_max: float = 10.0
    max_message_size: int = 1 << 20
    agent: AgentMode = "auto"
    token_source: str | None = None


def exit_status(returncode: int) -> int:
    """The shell's view of a process's end: its exit code, or 128 + N for signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"


class LineSplitter:
    """Cut a byte stream into lines of text.

    A line ends at ``\\n`` (a ``\\r`` before it is dropped too); the text is decoded as UTF-8
    with undecodable bytes replaced. A line longer than ``max_bytes`` is cut at ``max_bytes``
    (on a character boundary), so memory stays bounded whatever the stream holds.

    Args:
        max_bytes: the longest piece kept whole.
    """

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        if max_bytes < 4:
            raise ValueError("max_bytes must be at least 4")
        self._max = max_bytes
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        """Add bytes; returns the lines (and over-long pieces) now complete."""
        self._buffer += chunk
        out: list[str] = []
        start = 0
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line_end = end - 1 if end > start and buffer[end - 1] == 0x0D else end
            out.extend(self._pieces(bytes(buffer[start:line_end])))
            start = end + 1
        del buffer[:start]
        while len(buffer) > self._max:
            cut = self._cut_point(buffer)
            out.append(bytes(buffer[:cut]).decode("utf-8", "replace"))
            del buffer[:cut]
        return out

    def finish(self) -> list[str]:
        """The final line without a newline, if any (the stream ended)."""
        if not self._buffer:
            return []
        rest = bytes(self._buffer)
        self._buffer.clear()
        return self._pieces(rest)

    def _pieces(self, line: bytes) -> list[str]:
        pieces: list[str] = []
        while len(line) > self._max:
            cut = self._cut_point(line)
            pieces.append(line[:cut].decode("utf-8", "replace"))
            line = line[cut:]
        pieces.append(line.decode("utf-8", "replace"))
        return pieces

    def _cut_point(self, data: bytes | bytearray) -> int:
        cut = self._max
        # Step back over UTF-8 continuation bytes so a character is never split.
        for back in range(4):
            if cut - back > 0 and (data[cut - back] & 0xC0) != 0x80:
                return cut - back
        return cut


def _json_size(text: str) -> int:
    return len(_encoder.encode(text)) - 2


def split_text(text: str, budget: int) -> list[str]:
    """Cut ``text`` into pieces whose JSON string encoding fits in ``budget`` bytes.

    JSON escaping can make text grow up to six times (control characters), so the budget is
    checked on the encoded form. Text that fits is returned whole.
    """
    if budget < 6:
        raise ValueError("budget must be at least 6 bytes")
    pieces: list[str] = []
    while _json_size(text) > budget:
        count = min(len(text), budget)
        size = _json_size(text[:count])
        while size > budget:
            count = min(count - 1, count * budget // size)
            size = _json_size(text[:count])
        pieces.append(text[:count])
        text = text[count:]
    pieces.append(text)
    return pieces


class Runner:
    """Runs one command as a container: spawns it, streams it, obeys commands.

    Args:
        argv: the command and its arguments.
        options: see :class:`RunOptions`.
        stdout: where CMD's stdout is echoed (default the runner's stdout; None with
            ``echo=False``).
        stderr: where CMD's stderr is echoed, and the runner's own one-line notes go.
    """

    def __init__(
        self,
        argv: Sequence[str],
        options: RunOptions | None = None,
        *,
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
        notes: TextIO | None = None,
    ) -> None:
        if not argv:
            raise ValueError("no command to run")
        self.argv = list(argv)
        self.options = options or RunOptions()
        self._stdout = stdout or sys.stdout.buffer
        self._stderr = stderr or sys.stderr.buffer
        self._notes = notes or sys.stderr
        self._proc: asyncio.subprocess.Process | None = None
        self._cancelled = False
        self._kill_timer: asyncio.TimerHandle | None = None
        self._noted: set[str] = set()
        self._publisher: Publisher | None = None
        self._budget = 0
        self._agent = Recogniser(self.options.agent)
        self._unsent: dict[str, object] | None = None
        """The session's summary after an event too large to send as one: sent with the
        next event that does not carry a newer one."""
        self._requests: OrderedDict[str, object] = OrderedDict()
        """Open ``can_use_tool`` requests CMD printed: request id -> the tool's input."""
        self._outcome = f"{Path(self.argv[0]).name} did not start"

    def note(self, words: str, *, key: str | None = None) -> None:
        """Write one line ``tailhub run: <words>`` to stderr (once per ``key``, if given)."""
        if key is not None:
            if key in self._noted:
                return
            self._noted.add(key)
        self._notes.write(f"tailhub run: {words}\n")
        self._notes.flush()

    async def run(self) -> int:
        """Run CMD to its end; returns the exit status to exit with.

        Raises:
            ConfigurationError: a bad hub URL or spool file (before CMD is started).
        """
        options = self.options
        loop = asyncio.get_running_loop()
        publisher = Publisher(
            options.container_id,
            url=options.url,
            token=options.token,
            token_file=options.token_file,
            token_check=options.token_check,
            spool_path=options.spool,
            max_pending=options.max_pending,
            max_pending_bytes=max(64 << 20, 4 * options.max_message_size),
            overflow="drop",
            on_command=self._on_command,
            on_error=self._on_error,
            heartbeat_interval=options.heartbeat,
            backoff=Backoff(initial=min(0.2, options.reconnect_max), maximum=options.reconnect_max),
            max_message_size=options.max_message_size,
        )
        self._publisher = publisher
        self._budget = options.max_message_size - self._frame_overhead(publisher)
        started = time.monotonic()
        await publisher.start()
        watch = asyncio.create_task(self._watch_connection(publisher))
        try:
            await self._send(publisher.status("starting", f"starting {Path(self.argv[0]).name}"))
            try:
                proc = await self._spawn()
            except OSError as exc:
                code = 127 if isinstance(exc, FileNotFoundError) else 126
                words = f"cannot run {self.argv[0]}: {exc.strerror or exc}"
                self.note(words)
                self._outcome = f"{Path(self.argv[0]).name} could not be started"
                await self._send(publisher.status("error", words))
                await self._send(publisher.complete(code, message=words, duration=0))
                return code
            self._proc = proc
            await self._send(publisher.status("running"))
            for sig in FORWARDED_SIGNALS:
                loop.add_signal_handler(sig, self._forward, sig)
            try:
                returncode = await self._supervise(proc)
            finally:
                for sig in FORWARDED_SIGNALS:
                    loop.remove_signal_handler(sig)
                if self._kill_timer is not None:
                    self._kill_timer.cancel()
            code = exit_status(returncode)
            duration = round((time.monotonic() - started) * 1000)
            words = _describe(returncode)
            self._outcome = f"{Path(self.argv[0]).name} {words}"
            if self._cancelled:
                await self._send(publisher.status("cancelled", f"cancelled: {self._outcome}"))
                self._outcome += " after a cancel command"
                await self._send(
                    publisher.publish(
                        "complete",
                        {
                            "exitCode": code,
                            "message": "cancelled",
                            "duration": duration,
                            "cancelled": True,
                        },
                    )
                )
            elif code == 0:
                await self._send(publisher.status("completed"))
                await self._send(publisher.complete(0, duration=duration))
            else:
                await self._send(publisher.status("error", words))
                await self._send(publisher.complete(code, message=words, duration=duration))
            return code
        finally:
            watch.cancel()
            await self._deliver_rest(publisher)

    async def _deliver_rest(self, publisher: Publisher) -> None:
        """Wait for the last acks while the hub can send them, then close; say what was lost.

        Connected: up to ``ack_timeout``. Not connected: one short wait (``EXIT_RECONNECT``)
        for the hub to come back, then no more; a hub that is down sends no acks.
        """
        options = self.options
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.ack_timeout
        if not publisher.connected and publisher.failure is None and publisher.pending:
            with contextlib.suppress(HubError):
                await publisher.wait_connected(min(options.ack_timeout, EXIT_RECONNECT))
        wait = max(0.0, deadline - loop.time()) if publisher.connected else 0.0
        delivered = await publisher.close(wait)
        if not delivered and publisher.failure is None:
            reason = publisher.last_error or (
                f"no acknowledgement from the hub at {display_url(publisher.url)} in time"
            )
            self.note(
                f"{self._outcome}; {publisher.pending} messages were not delivered ({reason})"
                + (f"; they stay in {options.spool}" if options.spool else "")
            )

    # -- the process ---------------------------------------------------------------------

    async def _spawn(self) -> asyncio.subprocess.Process:
        stdin: int | None = {
            "hub": asyncio.subprocess.PIPE,
            "inherit": None,
            "null": asyncio.subprocess.DEVNULL,
        }[self.options.stdin]
        return await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )

    async def _supervise(self, proc: asyncio.subprocess.Process) -> int:
        assert proc.stdout is not None
        assert proc.stderr is not None
        echo = self.options.echo
        # Cut raw lines at what fits one frame, so a long line makes as few messages as it can.
        splitters = (LineSplitter(self._budget), LineSplitter(self._budget))
        pumps = [
            asyncio.create_task(
                self._pump(proc.stdout, splitters[0], "stdout", self._stdout if echo else None)
            ),
            asyncio.create_task(
                self._pump(proc.stderr, splitters[1], "stderr", self._stderr if echo else None)
            ),
        ]
        try:
            returncode = await proc.wait()
            _, pending = await asyncio.wait(pumps, timeout=self.options.drain_timeout)
            if pending:
                self.note("CMD exited but something still holds its output open; stopped reading")
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            if proc.stdin is not None:
                proc.stdin.close()
        for splitter, stream in zip(splitters, ("stdout", "stderr"), strict=True):
            for line in splitter.finish():
                await self._publish_line(line, stream)
        return returncode

    async def _pump(
        self,
        source: asyncio.StreamReader,
        splitter: LineSplitter,
        stream: Literal["stdout", "stderr"],
        echo: BinaryIO | None,
    ) -> None:
        while chunk := await source.read(_READ_SIZE):
            if echo is not None:
                with contextlib.suppress(OSError, ValueError):
                    echo.write(chunk)
                    echo.flush()
            for line in splitter.feed(chunk):
                await self._publish_line(line, stream)
        for line in splitter.finish():
            await self._publish_line(line, stream)

    async def _publish_line(self, line: str, stream: str) -> None:
        """One line of CMD's: stdout at ``info``; stderr at ``warn``, marked as its stream."""
        publisher = self._publisher
        assert publisher is not None
        if stream == "stdout" and await self._publish_event(line):
            return
        for piece in split_text(line, self._budget):
            if stream == "stderr":
                data = {"level": "warn", "message": piece, "stream": "stderr"}
                await self._send(publisher.publish("log", data))
            else:
                await self._send(publisher.log(piece, "info"))

    async def _publish_event(self, line: str) -> bool:
        """Publish ``line`` as an agent event if it is one that fits a message."""
        event = self._agent.recognise(line)
        if event is None:
            return False
        raw = line.strip().encode()
        tally = _encoder.encode(event.tally or self._unsent)
        if len(raw) + len(tally) + _json_size(event.summary) + _EVENT_SLACK > self._budget:
            self._unsent = event.tally or self._unsent
            return False
        self._unsent = None
        assert self._publisher is not None
        if event.agent == "claude" and b'"control_' in raw:
            self._remember(raw)
        metadata = {
            "agent": event.agent,
            "agentSummary": msgspec.Raw(tally),
            "attend": may_change(raw),
            "event": msgspec.Raw(raw),
        }
        await self._send(self._publisher.log(event.summary, event.level, metadata=metadata))
        return True

    def _remember(self, raw: bytes) -> None:
        """Keep the open permission requests of a Claude Code event, to answer them."""
        try:
            event = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return
        if not isinstance(event, dict) or not isinstance(event.get("request_id"), str):
            return
        request_id = event["request_id"]
        request = event.get("request")
        if event.get("type") == "control_request" and isinstance(request, dict):
            if request.get("subtype") == "can_use_tool":
                self._requests[request_id] = request.get("input")
                while len(self._requests) > _OPEN_REQUESTS:
                    self._requests.popitem(last=False)
        elif event.get("type") == "control_cancel_request":
            self._requests.pop(request_id, None)

    def _signal(self, sig: int) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def _forward(self, sig: int) -> None:
        self._signal(sig)

    def _kill(self) -> None:
        self._kill_timer = None
        if self._proc is not None and self._proc.returncode is None:
            self.note(f"CMD did not stop {self.options.grace:g} s after SIGTERM; sending SIGKILL")
            self._signal(signal.SIGKILL)

    # -- the hub -------------------------------------------------------------------------

    async def _send(self, publishing: Awaitable[object]) -> None:
        """Await a publisher call; a publisher that stopped for good was noted, not fatal."""
        with contextlib.suppress(PublisherClosedError):
            await publishing

    def _frame_overhead(self, publisher: Publisher) -> int:
        sample = {
            "type": "log",
            "containerID": publisher.container_id,
            "timestamp": "2000-01-01T00:00:00.000Z",
            "id": 10**19,
            "producer": publisher.producer,
            "data": {"level": "error", "message": ""},
        }
        return len(_encoder.encode(sample)) + _FRAME_SLACK

    async def _watch_connection(self, publisher: Publisher) -> None:
        """Say at once when the hub cannot be reached (CMD runs on), and when it is back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _FIRST_ATTEMPT
        while True:
            try:
                await publisher.wait_connected(timeout=0.05)
                break
            except HubUnreachableError:
                error = publisher.last_error
                # With several hub URLs, one down is no news while the next may answer.
                if not publisher.unreachable and loop.time() < deadline:
                    continue
                words = str(error) if error else "no answer from the hub yet"
                self.note(
                    f"{words}; {Path(self.argv[0]).name} runs on, its output is kept and sent "
                    "when the hub is back",
                    key="unreachable",
                )
                break
            except HubError:
                return
        if "unreachable" in self._noted:
            with contextlib.suppress(HubError):
                await publisher.wait_connected()
                self.note(f"connected to the hub at {display_url(publisher.url)}")

    def _on_error(self, error: HubError) -> None:
        publisher = self._publisher
        if publisher is not None and publisher.failure is error:
            source = self.options.token_source
            came = (
                f" (the token came from {source})"
                if source and isinstance(error, AuthenticationError) and "refused" in str(error)
                else ""
            )
            name = Path(self.argv[0]).name
            self.note(f"{error}{came}; {name} keeps running but its output is not streamed")
        elif isinstance(error, AuthenticationError) and self.options.token_file is not None:
            # Not a failure: the publisher waits for a new token in the file.
            source = self.options.token_source or "the token file"
            if publisher is not None and publisher.connected:
                then = "the connection keeps the token it has until then"
            else:
                then = f"{Path(self.argv[0]).name} runs on, its output is kept and sent then"
            self.note(
                f"{error} (the token came from {source}); waiting for a new token in "
                f"{self.options.token_file}; {then}"
            )
        elif isinstance(error, RequestError):
            self.note(f"the hub refused a message: {error}", key=error.code)
        else:
            self.note(str(error), key=type(error).__name__)

    async def _on_command(self, command: Message) -> None:
        publisher = self._publisher
        assert publisher is not None
        action = str(command.data.get("action", ""))
        if action == "cancel":
            await self._cancel(publisher)
        elif action == "input":
            await self._input(publisher, command)
        elif action in ("approve", "deny", "reply"):
            await self._answer(publisher, action, command)
        elif action == "signal":
            name = str(command.data.get("signal", "")).upper()
            name = name if name.startswith("SIG") else "SIG" + name
            sig = getattr(signal.Signals, name, None)
            if sig is None:
                await self._send(publisher.log(f"tailhub: unknown signal {name!r}", "warn"))
                return
            await self._send(publisher.log(f"tailhub: sending {name} on request", "warn"))
            self._signal(sig)
        else:
            await self._send(
                publisher.log(f"tailhub: ignored the unknown command {action[:64]!r}", "warn")
            )

    async def _cancel(self, publisher: Publisher) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None or self._cancelled:
            return
        self._cancelled = True
        grace = self.options.grace
        await self._send(
            publisher.log(f"tailhub: cancel requested: SIGTERM, SIGKILL after {grace:g} s", "warn")
        )
        self._signal(signal.SIGTERM)
        self._kill_timer = asyncio.get_running_loop().call_later(grace, self._kill)

    async def _input(self, publisher: Publisher, command: Message) -> None:
        proc = self._proc
        stdin = proc.stdin if proc is not None else None
        if stdin is None or stdin.is_closing():
            await self._send(
                publisher.log(
                    "tailhub: input ignored: the command's stdin is not open to the hub "
                    "(start tailhub run with --stdin hub)",
                    "warn",
                )
            )
            return
        text = command.data.get("text")
        try:
            if isinstance(text, str) and text:
                stdin.write(text.encode())
                await stdin.drain()
            if command.data.get("eof") is True:
                stdin.close()
        except (ConnectionError, BrokenPipeError):
            await self._send(publisher.log("tailhub: input ignored: CMD closed its stdin", "warn"))

    async def _answer(self, publisher: Publisher, action: str, command: Message) -> None:
        """Write an answer for Claude Code to CMD's stdin (see the module docstring)."""
        proc = self._proc
        stdin = proc.stdin if proc is not None else None
        if stdin is None or stdin.is_closing():
            await self._send(
                publisher.log(
                    f"tailhub: {action} ignored: the command's stdin is not open to the hub "
                    "(start tailhub run with --stdin hub)",
                    "warn",
                )
            )
            return
        if self._agent.agent == "codex":
            await self._send(
                publisher.log(f"tailhub: {action} ignored: Codex is not answered on stdin", "warn")
            )
            return
        data = command.data
        answer: dict[str, object]
        if action == "reply":
            text = data.get("text")
            if not isinstance(text, str) or not text:
                await self._send(publisher.log("tailhub: reply ignored: no text", "warn"))
                return
            answer = {"type": "user", "message": {"role": "user", "content": text}}
            words = f"reply: {text[:120]}"
        else:
            request_id = data.get("requestId")
            if not isinstance(request_id, str) or request_id not in self._requests:
                shown = str(request_id)[:64]
                await self._send(
                    publisher.log(
                        f"tailhub: {action} ignored: {shown!r} is not an open permission request "
                        "of this agent; nothing was written",
                        "warn",
                    )
                )
                return
            tool_input = self._requests.pop(request_id)
            if action == "approve":
                decision: dict[str, object] = {"behavior": "allow", "updatedInput": tool_input}
            else:
                message = data.get("message")
                decision = {
                    "behavior": "deny",
                    "message": message if isinstance(message, str) and message else _DENIED,
                }
            answer = {
                "type": "control_response",
                "response": {"subtype": "success", "request_id": request_id, "response": decision},
            }
            words = f"{'approved' if action == 'approve' else 'denied'} request {request_id}"
        line = _encoder.encode(answer)
        try:
            stdin.write(line + b"\n")
            await stdin.drain()
        except (ConnectionError, BrokenPipeError):
            await self._send(publisher.log(f"tailhub: {action} lost: CMD closed its stdin", "warn"))
            return
        metadata = {
            "agent": "claude",
            "agentSummary": None,
            "attend": may_change(line),
            "event": msgspec.Raw(line),
        }
        await self._send(publisher.log(words, "info", metadata=metadata))


async def run_command(argv: Sequence[str], options: RunOptions | None = None) -> int:
    """Run ``argv`` as a container (see :class:`Runner`); returns the exit status."""
    return await Runner(argv, options).run()
