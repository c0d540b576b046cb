"""Command line of the benchmark suite (``python -m bench --help``)."""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import NoReturn

from bench.baseline import BaselineError, Revision, checked_out, resolve
from bench.report import (
    build_rows,
    paired_ratios,
    render_paired,
    render_table,
    write_chart,
    write_json,
)
from bench.runner import Outcome, Settings, machine_info, run_scenario
from bench.scenarios import SCENARIOS
from bench.servers import (
    GENERATOR_CORE,
    SERVERS,
    ServerError,
    ServerSpec,
    ensure_node_deps,
    redis_missing,
)

__all__ = ["main"]

KNOWN_SERVERS = ("tailhub", "node", "bun", "picows", "aiohttp")
DEFAULT_SERVERS = "tailhub,node,bun,picows"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark tailhub against relays on Node's ws, Bun and picows.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke test: short runs, about a minute"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {','.join(SCENARIOS)} (G and H need redis-server and a "
        "tailhub with the Redis engine; they are skipped, saying why, without them)",
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per server (default 3)")
    parser.add_argument(
        "--servers",
        default=DEFAULT_SERVERS,
        help=f"comma-separated, from {','.join(KNOWN_SERVERS)} (default {DEFAULT_SERVERS}; "
        "aiohttp is a bare aiohttp relay, to see what tailhub's transport costs)",
    )
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per run")
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        help="messages in flight per container in the throughput scenarios (default 16)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run servers and generator at this niceness (e.g. -10, needs root) so that "
        "other work on a shared machine does not starve them; default 0",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="in the latency scenarios (C, F), run each server's main thread and the "
        "generator under SCHED_FIFO (needs root), so that percentiles measure the servers, "
        "not the machine's scheduler; their load is a fixed rate, so this cannot hog a core",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default=None,
        help="also run tailhub as it was at git revision REF (a commit, tag, branch, HEAD~3), "
        "as server tailhub@<short sha> beside the working tree's tailhub in the same "
        "interleaved rounds, with the ratio tailhub / tailhub@<sha> in the table; REF is "
        "checked out into a temporary git worktree, removed at exit, and runs with this "
        "venv's dependencies (a REF that needs others is out of scope); in E both versions "
        "run with both histories; needs tailhub among --servers",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every run here as JSON")
    parser.add_argument("--chart", type=Path, default=None, help="write the PNG chart here")
    return parser


def _split(
    parser: argparse.ArgumentParser, value: str, allowed: tuple[str, ...] | list[str], what: str
) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        parser.error(f"unknown {what}: {', '.join(unknown) or '(none)'}; use {','.join(allowed)}")
    return [v for v in allowed if v in items]


def _terminate(signum: int, _frame: FrameType | None) -> NoReturn:
    """SIGTERM unwinds like Ctrl-C: servers are stopped, a baseline worktree is removed."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run what the flags ask for.

    Exit status 2 on a bad argument (an unknown scenario or server, a ``--baseline`` REF
    that names no commit), before anything starts; 1 when any run or server start failed.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    scenarios = _split(parser, args.scenarios.upper(), list(SCENARIOS), "scenario")
    servers = _split(parser, args.servers.lower(), KNOWN_SERVERS, "server")
    settings = Settings(
        runs=args.runs or 3,
        duration=args.duration or (0.5 if args.quick else 5.0),
        warmup=0.2 if args.quick else 1.0,
        quick=args.quick,
        nice=args.nice,
        realtime=args.realtime,
        window=args.window,
    )
    if settings.runs < 1 or settings.duration <= 0 or (args.window is not None and args.window < 2):
        parser.error("--runs and --duration must be positive, --window 2 or more")
    baseline: Revision | None = None
    if args.baseline is not None:
        if "tailhub" not in servers:
            parser.error("--baseline compares with the working tree's tailhub: add it to --servers")
        try:
            baseline = resolve(args.baseline)
        except BaselineError as exc:
            parser.error(str(exc))

    signal.signal(signal.SIGTERM, _terminate)
    with ExitStack() as stack:
        catalogue = dict(SERVERS)
        if baseline is not None:
            try:
                catalogue.update(stack.enter_context(checked_out(baseline)))
            except BaselineError as exc:
                print(f"bench: baseline: {exc}", file=sys.stderr)
                return 1
            servers.insert(servers.index("tailhub") + 1, baseline.name)
        return _run(args, argv, scenarios, servers, settings, catalogue, baseline)


def _run(
    args: argparse.Namespace,
    argv: list[str] | None,
    scenarios: list[str],
    servers: list[str],
    settings: Settings,
    catalogue: dict[str, ServerSpec],
    baseline: Revision | None,
) -> int:
    """Every scenario on every server, then the table, the JSON and the chart."""
    # Idle connections (D) need one descriptor each, on both sides; children inherit this.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # This process only waits on its children: keep it off the server's core.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(GENERATOR_CORE)})
    if "node" in servers or "bun" in servers:
        try:
            ensure_node_deps()
        except (ServerError, OSError, subprocess.SubprocessError) as exc:
            print(f"bench: cannot install the node and bun peers: {exc}", file=sys.stderr)
            return 1

    meta = machine_info()
    meta["settings"] = {
        "runs": settings.runs,
        "duration_s": settings.duration,
        "warmup_s": settings.warmup,
        "quick": settings.quick,
        "nice": settings.nice,
        "realtime_latency": settings.realtime,
        "window": settings.window,
        "scenarios": scenarios,
        "servers": servers,
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
    }
    against = ""
    if baseline is not None:
        meta["baseline"] = {"ref": baseline.ref, "commit": baseline.sha, "server": baseline.name}
        against = f" vs {baseline.name} ({baseline.ref})"
    print(
        f"bench: {meta['date']}, {meta['nproc']} x {meta['cpu_model']}, commit {meta['commit']}"
        f"{against}; {settings.runs} runs x {settings.duration:g} s; servers on core 0, "
        f"generator on core {GENERATOR_CORE}",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    results: dict[str, dict[str, Outcome]] = {}
    no_redis = redis_missing() if any(SCENARIOS[k].needs_redis for k in scenarios) else None
    for key in scenarios:
        scenario = SCENARIOS[key]
        print(f"{key}: {scenario.title} — {scenario.why}", file=sys.stderr, flush=True)
        if scenario.needs_redis and no_redis is not None:
            print(f"  {key}: skipped ({no_redis})", file=sys.stderr)
            continue
        outcomes = run_scenario(scenario, servers, settings, catalogue)
        if outcomes:
            results[key] = outcomes
        else:
            print(f"  {key}: skipped (needs tailhub)", file=sys.stderr)
    meta["elapsed_s"] = round(time.perf_counter() - started, 1)
    meta["loadavg_at_end"] = os.getloadavg()

    rows = build_rows(results, servers)
    paired = paired_ratios(results, baseline.name if baseline is not None else None)
    # One table for the scenarios run on --servers, one for each that has its own servers.
    tables = [(servers, [row for row in rows if not SCENARIOS[row.scenario].servers])]
    tables += [
        (list(SCENARIOS[key].servers), [row for row in rows if row.scenario == key])
        for key in results
        if SCENARIOS[key].servers
    ]
    for names, part in tables:
        if part:
            print()
            print(render_table(part, names))
    if paired:
        print()
        print(render_paired(paired))
    failures = [
        f"{key} {name}: {error}"
        for key, outcomes in results.items()
        for name, outcome in outcomes.items()
        for error in outcome.errors
    ]
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(
        f"\n{meta['date']} · {meta['nproc']} x {meta['cpu_model']} · commit {meta['commit']}"
        f"{against} · {settings.runs} runs x {settings.duration:g} s · {meta['elapsed_s']} s in all"
        f" · load average {meta['loadavg_at_start'][0]:.2f} -> {meta['loadavg_at_end'][0]:.2f}"
    )
    if args.json is not None:
        write_json(args.json, meta, results, rows, paired)
        print(f"results: {args.json}")
    if args.chart is not None:
        title = f"tailhub bench · {meta['date']} · {meta['cpu_model']} · {meta['commit']}"
        if baseline is not None:
            title += f" vs {baseline.short}"
        charted = [*servers]
        charted += [n for key in results for n in SCENARIOS[key].servers if n not in charted]
        if write_chart(args.chart, rows, charted, title):
            print(f"chart: {args.chart}")
        else:
            print("chart: skipped (pip install matplotlib)", file=sys.stderr)
    return 1 if failures else 0
