"""Runs the scenarios: starts the servers, drives each with the load generator, keeps results.

Runs are interleaved (run 1 of every server, then run 2 of every server, ...) so that a burst
of load from something else on the machine lands on all servers alike, and the ratio of
tailhub to a peer is always taken from the same bench invocation.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.loadgen import Spec
from bench.scenarios import Scenario
from bench.servers import (
    BUN,
    GENERATOR_CORE,
    MEMORY_TWIN,
    ROOT,
    SERVERS,
    RunningServer,
    ServerError,
    ServerSpec,
    scheduling_prefix,
    set_session_priority,
)

__all__ = ["Outcome", "Settings", "machine_info", "run_scenario"]


@dataclass(frozen=True, slots=True)
class Settings:
    """How long each run lasts and how many there are."""

    runs: int
    duration: float
    warmup: float
    quick: bool
    nice: int = 0
    realtime: bool = False
    window: int | None = None

    def realtime_for(self, scenario: Scenario) -> bool:
        """SCHED_FIFO only where the load is a fixed rate (C, F): it cannot hog a core."""
        return self.realtime and scenario.kind == "open_loop"


@dataclass
class Outcome:
    """Every run of one scenario on one server, and what failed."""

    server: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def median(self, key: str) -> float | None:
        values = [run[key] for run in self.runs if isinstance(run.get(key), int | float)]
        values = [v for v in values if v == v]  # drop NaN
        return statistics.median(values) if values else None


def _drive(
    scenario: Scenario, server: RunningServer, settings: Settings, params: dict[str, Any]
) -> dict[str, Any]:
    """One run: the load generator, pinned to its core, in a process of its own."""
    spec = Spec(
        scenario=scenario.key,
        port=server.port,
        token=server.token,
        server_pid=server.pid,
        subscribe_port=server.subscribe_port,
        extra_pids=tuple(server.extra_pids),
        duration=settings.duration,
        warmup=settings.warmup,
        **(params if server.spec.payload is None else {**params, "payload": server.spec.payload}),
    )
    command = [
        *scheduling_prefix(settings.nice, settings.realtime_for(scenario)),
        "taskset",
        "-c",
        GENERATOR_CORE,
        sys.executable,
        "-m",
        "bench.loadgen",
        json.dumps({"kind": scenario.kind, "spec": asdict(spec)}),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=bool(settings.nice),
    )
    if settings.nice:
        set_session_priority(process.pid, settings.nice)
    try:
        stdout, stderr = process.communicate(timeout=settings.duration + settings.warmup + 240)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        raise RuntimeError(f"load generator failed ({done.returncode}): {tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["loadavg"] = os.getloadavg()[0]
    return result


def _servers_for(
    scenario: Scenario, chosen: list[str], catalogue: Mapping[str, ServerSpec]
) -> list[ServerSpec]:
    if scenario.servers:  # G, H: their own tailhub variants, whatever --servers says
        return [catalogue[name] for name in scenario.servers]
    if scenario.history_pair:  # every chosen tailhub, each beside its in-memory twin
        return [
            catalogue[name]
            for base in chosen
            if base + MEMORY_TWIN in catalogue
            for name in (base, base + MEMORY_TWIN)
        ]
    return [catalogue[name] for name in chosen]


def _start(spec: ServerSpec, outcome: Outcome, nice: int, realtime: bool) -> RunningServer | None:
    try:
        return RunningServer.start(spec, nice, realtime)
    except ServerError as exc:
        outcome.errors.append(f"start: {exc}")
        return None


def run_scenario(
    scenario: Scenario,
    chosen: list[str],
    settings: Settings,
    catalogue: Mapping[str, ServerSpec] = SERVERS,
    log: Any = sys.stderr,
) -> dict[str, Outcome]:
    """Run ``scenario`` ``settings.runs`` times on every chosen server, interleaved.

    ``chosen`` are names in ``catalogue`` (the built-in servers, and a baseline's).
    """
    specs = _servers_for(scenario, chosen, catalogue)
    params = {**scenario.params, **(scenario.quick if settings.quick else {})}
    if settings.window is not None and "window" in params:
        params["window"] = settings.window
    outcomes = {spec.name: Outcome(spec.name) for spec in specs}
    width = max((len(spec.name) for spec in specs), default=0)
    realtime = settings.realtime_for(scenario)
    running: dict[str, RunningServer | None] = {}
    try:
        if not scenario.fresh_server_per_run:
            for spec in specs:
                running[spec.name] = _start(spec, outcomes[spec.name], settings.nice, realtime)
        for index in range(settings.runs):
            for spec in specs:
                outcome = outcomes[spec.name]
                if scenario.fresh_server_per_run:
                    running[spec.name] = _start(spec, outcome, settings.nice, realtime)
                server = running.get(spec.name)
                if server is None:
                    continue
                started = time.perf_counter()
                try:
                    result = _drive(scenario, server, settings, params)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                    outcome.errors.append(f"run {index + 1}: {exc}")
                    print(f"  {scenario.key} {spec.name} run {index + 1}: FAILED {exc}", file=log)
                else:
                    result["round"] = index + 1
                    outcome.runs.append(result)
                    shown = ", ".join(
                        f"{m.field}={result.get(m.field, float('nan')):.4g}"
                        for m in scenario.metrics
                    )
                    usage = (
                        f"server cpu {result['server_cpu']:.0%}, "
                        f"generator cpu {result['generator_cpu']:.0%}, "
                        if "server_cpu" in result
                        else ""
                    )
                    if result.get("companion_cpu"):  # the redis-server (or 2nd hub) within it
                        usage += f"of it companions {result['companion_cpu']:.0%}"
                        if "companion_us_per_delivery" in result:  # closed-loop runs
                            usage += f" ({result['companion_us_per_delivery']:.3g} µs/delivery)"
                        usage += ", "
                    print(
                        f"  {scenario.key} {spec.name:<{width}} run {index + 1}: {shown} "
                        f"({usage}{time.perf_counter() - started:.1f} s)",
                        file=log,
                        flush=True,
                    )
                if not server.alive():
                    outcome.errors.append(f"run {index + 1}: server died: {server.tail()}")
                    server.stop()
                    running[spec.name] = (
                        None
                        if scenario.fresh_server_per_run
                        else _start(spec, outcome, settings.nice, realtime)
                    )
                elif scenario.fresh_server_per_run:
                    server.stop()
                    running[spec.name] = None
    finally:
        for server in running.values():
            if server is not None:
                server.stop()
    return outcomes


def _command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def machine_info() -> dict[str, Any]:
    """Date, machine, versions and commit: what a reader needs to compare two runs."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    node = shutil.which("node")
    ws_version = "missing"
    try:
        with open(ROOT / "bench" / "node_modules" / "ws" / "package.json") as handle:
            ws_version = json.load(handle)["version"]
    except (OSError, ValueError, KeyError):
        pass
    bun_version = _command_output([str(BUN), "--version"]) if BUN.is_file() else "missing"
    versions: dict[str, str] = {}
    for name in ("picows", "aiohttp", "uvloop", "msgspec"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = "missing"
    dirty = _command_output(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _command_output([node, "--version"]) if node else "missing",
        "ws": ws_version,
        "bun": bun_version,
        **versions,
        "commit": _command_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "src_dirty": dirty not in ("", "unknown"),
        "loadavg_at_start": os.getloadavg(),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "server_core": 0,
        "generator_core": int(GENERATOR_CORE),
    }
