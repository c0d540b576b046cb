"""The servers under test: how each is started, pinned, found ready and stopped.

Every server is started by the bench itself on a free loopback port, with its own temporary
directory, pinned to core 0 with ``taskset`` (the load generator gets core 1), so that each
one has exactly one core and the numbers compare like with like. The redis-server a hub on the
Redis engine needs runs beside the hub or beside the generator, as its spec says.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BENCH_DIR",
    "BUN",
    "GENERATOR_CORE",
    "MEMORY_TWIN",
    "SERVERS",
    "RunningServer",
    "ServerError",
    "ServerSpec",
    "ensure_node_deps",
    "free_port",
    "make_main_thread_realtime",
    "redis_missing",
    "scheduling_prefix",
    "set_session_priority",
    "start_redis",
    "stop_process",
    "tailhub_specs",
]

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
BUN = BENCH_DIR / "node_modules" / "@oven" / "bun-linux-x64" / "bin" / "bun"
"""Bun's binary, installed from bench/package-lock.json by :func:`ensure_node_deps`."""
SERVER_CORE = "0"
GENERATOR_CORE = "1"
"""The load generator's core (and the bench's own process, which only waits on it)."""

# tailhub runs with every feature on; only the session cap is raised so that scenario F's
# 1,000 containers are all allowed to publish.
TAILHUB_ENV = {"LOG_LEVEL": "warn", "MAX_SESSIONS": "5000"}


class ServerError(RuntimeError):
    """A server under test did not start, or died; the message carries its output."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One server under test: its name in tables and how to start it."""

    name: str
    label: str
    kind: str  # "tailhub", "node", "bun", "picows" or "aiohttp"
    extra_args: tuple[str, ...] = ()
    # Put first on the server's PYTHONPATH: a baseline's checkout, whose ``src`` then shadows
    # the working tree's editable install (see bench/baseline.py).
    python_path: Path | None = None
    # On the Redis engine: a redis-server of its own is started first, pinned to redis_core:
    # SERVER_CORE (hub and Redis share one core, and Redis's CPU is taken from the hub's) or
    # the generator's (the hub has its core alone, as with Redis on another machine).
    redis: bool = False
    redis_core: str = SERVER_CORE
    workers: int = 1  # --workers N (N processes on one port), on Redis only
    pair: bool = False  # two hub processes on the one Redis: publish to one, watch the other
    payload: str | None = None  # what its publishers send, instead of the scenario's

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with tailhub's settings and :attr:`python_path` put first on PYTHONPATH."""
        env = {**base, **TAILHUB_ENV}
        if self.python_path is not None:
            rest = base.get("PYTHONPATH")
            env["PYTHONPATH"] = os.pathsep.join([str(self.python_path), *([rest] if rest else [])])
        return env

    def argv(self, port: int, nice: int = 0, realtime: bool = False) -> list[str]:
        if self.kind == "tailhub":
            command = [sys.executable, "-m", "tailhub", "serve"]
            command += ["--port", str(port), "--host", "127.0.0.1", *self.extra_args]
            if self.workers > 1:
                command += ["--workers", str(self.workers)]
        elif self.kind == "node":
            node = shutil.which("node") or "node"
            # Under SCHED_FIFO on one core, V8's background GC threads can never run while
            # the main thread spins waiting for them: GC on the main thread avoids that.
            flags = ["--single-threaded-gc"] if realtime else []
            relay = str(BENCH_DIR / "peers" / "node_relay.js")
            command = [node, *flags, relay, "--port", str(port)]
        elif self.kind == "bun":
            # As for node: JavaScriptCore's concurrent collector threads could never run
            # beside a SCHED_FIFO main thread on the same core.
            flags = ["env", "BUN_JSC_useConcurrentGC=0"] if realtime else []
            relay = str(BENCH_DIR / "peers" / "bun_relay.js")
            command = [*flags, str(BUN), relay, "--port", str(port)]
        elif self.kind in ("picows", "aiohttp"):
            module = f"bench.peers.{self.kind}_relay"
            command = [sys.executable, "-m", module, "--port", str(port)]
        else:  # pragma: no cover - the table below is the only source of specs
            raise ValueError(self.kind)
        prefix = scheduling_prefix(nice, realtime=False)  # see RunningServer.start
        return [*prefix, "taskset", "-c", SERVER_CORE, *command]


# A tailhub server named N has a twin N + MEMORY_TWIN with in-memory history, for E only.
MEMORY_TWIN = "-memory"


def tailhub_specs(name: str, label: str, python_path: Path | None = None) -> dict[str, ServerSpec]:
    """tailhub as ``name`` (SQLite history, as deployed) and its in-memory-history twin."""
    return {
        name: ServerSpec(name, label, "tailhub", ("--history", "sqlite"), python_path),
        name + MEMORY_TWIN: ServerSpec(
            name + MEMORY_TWIN,
            f"{label} (history memory)",
            "tailhub",
            ("--history", "memory"),
            python_path,
        ),
    }


REDIS_SPECS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "tailhub-redis", "tailhub (redis)", "tailhub", redis=True, redis_core=GENERATOR_CORE
        ),
        ServerSpec("tailhub-redis-1core", "tailhub (redis, one core)", "tailhub", redis=True),
        ServerSpec(
            "tailhub-redis-w2", "tailhub (redis, 2 workers)", "tailhub", redis=True, workers=2
        ),
        ServerSpec(
            "tailhub-redis-pair", "tailhub (redis, 2 hubs)", "tailhub", redis=True, pair=True
        ),
    )
}
"""tailhub on the Redis engine, for G and H only (see bench/scenarios.py)."""

AGENT_SPECS: dict[str, ServerSpec] = {
    "tailhub-unread": ServerSpec(
        "tailhub-unread",
        "tailhub (agent events unread)",
        "tailhub",
        ("--history", "sqlite"),
        payload="agent-unread",
    )
}
"""tailhub sent agent events under a key it does not read, for I only: the hub without agents."""

SERVERS: dict[str, ServerSpec] = {
    **tailhub_specs("tailhub", "tailhub"),
    **REDIS_SPECS,
    **AGENT_SPECS,
    "node": ServerSpec("node", "node ws relay", "node"),
    "bun": ServerSpec("bun", "bun relay", "bun"),
    "picows": ServerSpec("picows", "picows relay", "picows"),
    "aiohttp": ServerSpec("aiohttp", "aiohttp relay", "aiohttp"),
}


def scheduling_prefix(nice: int, realtime: bool) -> list[str]:
    """The command prefix that runs a process at niceness ``nice`` or under SCHED_FIFO."""
    if realtime:
        return ["chrt", "-f", "10"]
    return ["nice", "-n", str(nice)] if nice else []


def make_main_thread_realtime(pid: int) -> None:
    """Put the main thread of ``pid`` (only it) under SCHED_FIFO, once it is serving.

    The event loop then gets its core the moment it has work, as on a dedicated machine,
    while the server's other threads (tailhub's SQLite writer) stay under the normal
    scheduler: were they real-time too, one of them inside a long SQLite call would hold
    the core and the loop could not preempt it. ``--reset-on-fork``: threads started later
    are normal ones.
    """
    subprocess.run(
        ["chrt", "--reset-on-fork", "-f", "-p", "10", str(pid)],
        check=True,
        timeout=30,
        stdout=subprocess.DEVNULL,
    )


def set_session_priority(pid: int, nice: int) -> None:
    """Give ``pid``'s session (its autogroup) the niceness ``nice``, where the kernel has them.

    With autogroups on (``/proc/sys/kernel/sched_autogroup_enabled``), CPU is shared fairly
    between sessions first, so a process's own niceness does not help it against other
    sessions' work: the session's does. Needs root for negative values; a no-op elsewhere.
    """
    try:
        with open(f"/proc/{pid}/autogroup", "w") as handle:
            handle.write(str(nice))
    except OSError:
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_missing() -> str | None:
    """Why the Redis scenarios cannot run here (no redis-server, or a tailhub without a Redis
    engine), or None when they can."""
    if shutil.which("redis-server") is None:
        return "redis-server not found (Debian: apt-get install redis-server)"
    done = subprocess.run(
        [sys.executable, "-m", "tailhub", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--redis" not in done.stdout:
        return "this tailhub has no Redis engine (tailhub serve --help lists no --redis)"
    return None


def _listening(port: int) -> int:
    """How many IPv4 sockets listen on ``port`` (``/proc/net/tcp``, state 0A)."""
    count = 0
    try:
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    except (OSError, StopIteration, ValueError, IndexError):
        return 0
    return count


def _ping_redis(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(
    scratch: Path, nice: int, timeout: float, core: str = SERVER_CORE
) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server on a free port, AOF on (fsync every second), pinned to ``core``."""
    port = free_port()
    directory = scratch / "redis"
    directory.mkdir()
    command = [
        *scheduling_prefix(nice, realtime=False),
        "taskset",
        "-c",
        core,
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
    ]
    with open(scratch / "redis.log", "wb") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.perf_counter() + timeout
    while not _ping_redis(port):
        if process.poll() is not None or time.perf_counter() > deadline:
            stop_process(process)
            said = (scratch / "redis.log").read_text(errors="replace").strip()[-500:]
            raise ServerError(f"redis-server did not start: {said}")
        time.sleep(0.05)
    if nice:
        set_session_priority(process.pid, nice)
    return process, port


def stop_process(process: subprocess.Popen[bytes], name: str = "") -> None:
    """SIGTERM, then SIGKILL after 5 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"bench: {name or process.args} ({process.pid}) did not die", file=sys.stderr)


def ensure_node_deps() -> None:
    """Install the node and bun peers' packages from the lock file when any is missing."""
    if (BENCH_DIR / "node_modules" / "ws").is_dir() and BUN.is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ServerError("npm not found: the node and bun peers are installed with npm")
    subprocess.run(
        [npm, "ci", "--prefix", str(BENCH_DIR), "--no-audit", "--no-fund"],
        check=True,
        timeout=300,
        stdout=subprocess.DEVNULL,
    )


@dataclass
class RunningServer:
    """A started server: its port, token, process and scratch directory."""

    spec: ServerSpec
    port: int
    token: str
    process: subprocess.Popen[bytes]
    scratch: Path
    log: Path
    started: float = field(default_factory=time.perf_counter)
    # The redis-server and the second hub of a pair: measured with the server, stopped with it.
    companions: list[subprocess.Popen[bytes]] = field(default_factory=list)
    subscribe_port: int = 0  # where subscribers connect: the pair's second hub, else port

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def extra_pids(self) -> list[int]:
        """The companions' pids, whose CPU counts as the server's."""
        return [process.pid for process in self.companions]

    @classmethod
    def start(
        cls, spec: ServerSpec, nice: int = 0, realtime: bool = False, timeout: float = 60.0
    ) -> RunningServer:
        """Start ``spec``; wait (bounded) until its port accepts connections.

        ``nice`` is given to the server's session (see :func:`set_session_priority`);
        ``realtime`` puts its main thread under SCHED_FIFO (see
        :func:`make_main_thread_realtime`).
        """
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-{spec.name}-"))
        token = secrets.token_urlsafe(16)
        companions: list[subprocess.Popen[bytes]] = []
        extra: tuple[str, ...] = ()
        if spec.redis:
            try:
                redis, redis_port = start_redis(scratch, nice, timeout, spec.redis_core)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
            companions.append(redis)
            extra = ("--redis", f"redis://127.0.0.1:{redis_port}/0")
        port = free_port()
        process = cls._spawn(spec, port, token, scratch, "data", extra, nice, realtime)
        server = cls(spec, port, token, process, scratch, scratch / "data.log")
        server.companions = companions
        server.subscribe_port = port
        deadline = time.perf_counter() + timeout
        server._wait_listening(process, port, deadline, realtime)
        if spec.pair:
            second_port = free_port()
            second = cls._spawn(spec, second_port, token, scratch, "data2", extra, nice, realtime)
            server.companions.append(second)
            server._wait_listening(second, second_port, deadline, realtime)
            server.subscribe_port = second_port
        return server

    @staticmethod
    def _spawn(
        spec: ServerSpec,
        port: int,
        token: str,
        scratch: Path,
        data: str,
        extra: tuple[str, ...],
        nice: int,
        realtime: bool,
    ) -> subprocess.Popen[bytes]:
        env = spec.environ(os.environ)
        env.update({"AUTH_TOKEN": token, "TAILHUB_DATA_DIR": str(scratch / data)})
        with open(scratch / f"{data}.log", "wb") as output:
            process = subprocess.Popen(
                [*spec.argv(port, nice, realtime), *extra],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if nice:
            set_session_priority(process.pid, nice)
        return process

    def _wait_listening(
        self, process: subprocess.Popen[bytes], port: int, deadline: float, realtime: bool
    ) -> None:
        """Wait (until ``deadline``) for ``port`` to accept connections; stop all on failure."""
        name = self.spec.name
        while True:
            if process.poll() is not None:
                said = self.tail()
                self.stop()
                raise ServerError(f"{name} exited with {process.returncode}: {said}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                # With --workers N, the kernel spreads connections over the sockets listening
                # now: wait for every worker's, or the first ones would all land on one.
                if _listening(port) < self.spec.workers:
                    raise OSError("not every worker listens yet")
            except OSError:
                if time.perf_counter() > deadline:
                    self.stop()
                    raise ServerError(f"{name} did not listen in time") from None
                time.sleep(0.05)
            else:
                if realtime:
                    make_main_thread_realtime(process.pid)
                return

    def tail(self, lines: int = 15) -> str:
        """The last lines of the server's output, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None and all(c.poll() is None for c in self.companions)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s, the hubs first, then Redis; remove the scratch
        directory."""
        stop_process(self.process, self.spec.name)
        for companion in reversed(self.companions):
            stop_process(companion)
        shutil.rmtree(self.scratch, ignore_errors=True)
