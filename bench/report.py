"""The report: one table of medians and ratios, the JSON results, and the chart.

The table is Markdown, so that the same text reads in a terminal and pastes into
``docs/performance.md``. Each cell is the median over the runs; throughput cells carry the
server's median CPU use during the measurement window (``@99%``). A ratio column is tailhub's
median over another server's: a peer's, or that of tailhub at a ``--baseline`` revision
(``tailhub@<sha>``; in E, one column per tailhub version, one row per history).

Two columns prove the load generator was not the bottleneck of a throughput row: "server
busy (min)" is the lowest, over the row's runs, of the server's CPU time plus the time it sat
runnable waiting for a CPU (``schedstat``), as a share of the window: near 100 % means the
server always had work queued, so it never waited for the generator. "generator CPU (max)"
is the generator's highest CPU use: under 100 % means it always had time to spare.
"""

from __future__ import annotations

import json
import math
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.baseline import BASELINE_PREFIX
from bench.runner import Outcome
from bench.scenarios import SCENARIOS, Metric, Scenario, Target
from bench.servers import MEMORY_TWIN

__all__ = [
    "Paired",
    "Row",
    "build_rows",
    "paired_ratios",
    "render_paired",
    "render_table",
    "write_chart",
    "write_json",
]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    scenario: str
    label: str
    metric: str
    unit: str
    values: dict[str, float | None]
    cpu: dict[str, float | None]
    ratios: dict[str, float | None]
    target: str
    verdict: str
    generator_cpu: float | None
    server_busy: float | None = None


def _format(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "/s":
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    if unit == "%":
        return f"{value:.0%}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if unit == "us":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _verdict(target: Target | None, value: float | None) -> str:
    if target is None:
        return ""
    if value is None:
        return "n/a"
    return "PASS" if target.check(value) else "MISS"


def _generator_cpu(outcomes: Sequence[Outcome]) -> float | None:
    values = [r["generator_cpu"] for o in outcomes for r in o.runs if "generator_cpu" in r]
    return max(values) if values else None


def _server_busy(outcomes: Sequence[Outcome]) -> float | None:
    values = [r["server_busy"] for o in outcomes for r in o.runs if "server_busy" in r]
    return min(values) if values else None


def _ratios(values: dict[str, float | None]) -> dict[str, float | None]:
    """tailhub's value over every other server's: the table's ratio columns."""
    mine = values.get("tailhub")
    return {name: _ratio(mine, value) for name, value in values.items() if name != "tailhub"}


def build_rows(results: dict[str, dict[str, Outcome]], servers: Sequence[str]) -> list[Row]:
    """Medians per server, ratios of tailhub to each other server, and the targets, row by row."""
    rows: list[Row] = []
    for key, outcomes in results.items():
        scenario = SCENARIOS[key]
        if scenario.history_pair:
            rows += _history_rows(scenario, outcomes, servers)
            continue
        gen = _generator_cpu(list(outcomes.values()))
        names = scenario.servers or servers
        for metric in scenario.metrics:
            rows.append(_metric_row(key, scenario.title, metric, outcomes, names, gen))
    return rows


def _history_rows(
    scenario: Scenario, outcomes: dict[str, Outcome], servers: Sequence[str]
) -> list[Row]:
    """E: one row per history, one column per tailhub version (the working tree's, the
    baseline's), then each version's sqlite / memory ratio, held to the target."""
    key = scenario.key
    field = scenario.metrics[0].field
    versions = [name for name in servers if name in outcomes and name + MEMORY_TWIN in outcomes]
    rows: list[Row] = []
    for label, suffix in (("history sqlite", ""), ("history memory", MEMORY_TWIN)):
        runs = {name: outcomes[name + suffix] for name in versions}
        values = {name: outcome.median(field) for name, outcome in runs.items()}
        rows.append(
            Row(
                key,
                f"{key} {label}",
                "deliveries/s",
                "/s",
                values,
                {name: outcome.median("server_cpu") for name, outcome in runs.items()},
                _ratios(values),
                "",
                "",
                _generator_cpu(list(runs.values())),
                _server_busy(list(runs.values())),
            )
        )
    sqlite, memory = rows[0].values, rows[1].values
    ratios = {name: _ratio(sqlite[name], memory[name]) for name in versions}
    target: Target = scenario.extra["target"]
    rows.append(
        Row(
            key,
            f"{key} sqlite / memory",
            "ratio",
            "x",
            ratios,
            {},
            _ratios(ratios),
            target.text,
            _verdict(target, ratios.get("tailhub")),
            None,
        )
    )
    return rows


def _metric_row(
    key: str,
    title: str,
    metric: Metric,
    outcomes: dict[str, Outcome],
    servers: Sequence[str],
    gen: float | None,
) -> Row:
    values = {name: outcomes[name].median(metric.field) for name in servers if name in outcomes}
    cpu = {}
    busy = None
    if metric.unit == "/s":
        cpu = {name: outcomes[name].median("server_cpu") for name in values}
        if SCENARIOS[key].kind == "closed_loop":
            busy = _server_busy(list(outcomes.values()))
    ratios = _ratios(values)
    target = metric.target
    if target is None:
        verdict = ""
    elif target.against is not None:
        ratio = _ratio(values.get(target.subject), values.get(target.against))
        verdict = _verdict(target, ratio)
        if target.subject != "tailhub" and ratio is not None:
            verdict += f" ({ratio:.2f}x)"  # not among the ratio columns, which are tailhub's
    else:
        verdict = _verdict(target, values.get(target.subject))
    return Row(
        key,
        f"{key} {title}",
        metric.label,
        metric.unit,
        values,
        cpu,
        ratios,
        target.text if target else "",
        verdict,
        gen,
        busy,
    )


def render_table(rows: Sequence[Row], servers: Sequence[str]) -> str:
    """The Markdown table: one row per scenario metric."""
    peers = [name for name in servers if name != "tailhub"] if "tailhub" in servers else []
    header = ["scenario", "metric", *servers, *(f"tailhub/{p}" for p in peers)]
    header += ["target", "result", "server busy (min)", "generator CPU (max)"]
    lines = [header]
    for row in rows:
        cells = [row.label, row.metric]
        for name in servers:
            text = _format(row.values.get(name), row.unit)
            cpu = row.cpu.get(name)
            if cpu is not None and text != "—":
                text += f" @{cpu:.0%}"
            cells.append(text if name in row.values else "")
        for peer in peers:
            ratio = row.ratios.get(peer)
            cells.append(f"{ratio:.2f}x" if ratio is not None else "")
        cells += [row.target, row.verdict]
        cells.append(f"{row.server_busy:.0%}" if row.server_busy is not None else "")
        cells.append(f"{row.generator_cpu:.0%}" if row.generator_cpu is not None else "")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [render(lines[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [render(line) for line in lines[1:]]
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class Paired:
    """A ratio taken round by round: each tailhub run over the other's run of that round."""

    label: str
    ratios: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)


def _pairs(scenario: Scenario, baseline: str | None) -> list[tuple[str, str, str, str]]:
    """(server, other server, field, label) of every ratio ``scenario`` pairs by round."""
    key = scenario.key
    if scenario.history_pair:
        field = scenario.metrics[0].field
        pairs = [("tailhub", "tailhub" + MEMORY_TWIN, field, f"{key} sqlite/memory")]
        if baseline is not None:
            pairs += [
                (baseline, baseline + MEMORY_TWIN, field, f"{key} sqlite/memory of {baseline}"),
                ("tailhub", baseline, field, f"{key} sqlite vs {baseline}"),
                (
                    "tailhub" + MEMORY_TWIN,
                    baseline + MEMORY_TWIN,
                    field,
                    f"{key} memory vs {baseline}",
                ),
            ]
        return pairs
    pairs = [
        (
            m.target.subject,
            m.target.against,
            m.field,
            f"{key} {'' if m.target.subject == 'tailhub' else m.target.subject + ' '}"
            f"vs {m.target.against}",
        )
        for m in scenario.metrics
        if m.target is not None and m.target.against is not None
    ]
    if baseline is not None:
        named = len(scenario.metrics) > 1
        pairs += [
            ("tailhub", baseline, m.field, f"{key} {m.label + ' ' if named else ''}vs {baseline}")
            for m in scenario.metrics
        ]
    return pairs


def paired_ratios(
    results: dict[str, dict[str, Outcome]], baseline: str | None = None
) -> list[Paired]:
    """Round-by-round ratios for every row with a target against another server, for E's
    sqlite / memory, and, given the ``baseline`` server's name, for every metric against it.

    Runs are interleaved, so a run and the other server's run of the same round saw nearly the
    same machine; the median of their ratios resists a machine that slows down and speeds up
    across a scenario better than the ratio of medians the table shows.
    """
    paired: list[Paired] = []
    for key, outcomes in results.items():
        for mine, other, field, label in _pairs(SCENARIOS[key], baseline):
            if mine not in outcomes or other not in outcomes:
                continue
            theirs = {run.get("round"): run.get(field) for run in outcomes[other].runs}
            ratios = [
                run[field] / theirs[run.get("round")]
                for run in outcomes[mine].runs
                if isinstance(run.get(field), int | float) and theirs.get(run.get("round"))
            ]
            if ratios:
                paired.append(Paired(label, ratios))
    return paired


def render_paired(paired: Sequence[Paired]) -> str:
    """One line per paired ratio: its median, then every round's."""
    lines = ["paired by round (each run over the other server's run of the same round):"]
    for p in paired:
        each = ", ".join(f"{r:.2f}" for r in p.ratios)
        lines.append(f"  {p.label}: median {p.median:.2f}x  [{each}]")
    return "\n".join(lines)


def write_json(
    path: Path,
    meta: dict[str, Any],
    results: dict[str, dict[str, Outcome]],
    rows: Sequence[Row],
    paired: Sequence[Paired] = (),
) -> None:
    """Everything: machine and settings, every run of every server, and the table's rows."""
    document = {
        "meta": meta,
        "scenarios": {
            key: {
                "title": SCENARIOS[key].title,
                "why": SCENARIOS[key].why,
                "servers": {
                    name: {"runs": o.runs, "errors": o.errors} for name, o in outcomes.items()
                },
            }
            for key, outcomes in results.items()
        },
        "table": [
            {
                "scenario": r.scenario,
                "label": r.label,
                "metric": r.metric,
                "values": r.values,
                "server_cpu": r.cpu,
                "ratios": r.ratios,
                "target": r.target,
                "result": r.verdict,
                "generator_cpu_max": r.generator_cpu,
                "server_busy_min": r.server_busy,
            }
            for r in rows
        ],
        "paired": [{"label": p.label, "median": p.median, "ratios": p.ratios} for p in paired],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


_COLOURS = {
    "tailhub": "#2b7bba",
    "node": "#6aa84f",
    "bun": "#c27ba0",
    "picows": "#e69138",
    "aiohttp": "#999999",
    "tailhub-redis": "#cc0000",
    "tailhub-redis-1core": "#b45f06",
    "tailhub-redis-w2": "#e06666",
    "tailhub-redis-pair": "#990000",
}
_BASELINE_COLOUR = "#9cc3e6"  # a lighter tailhub blue, for tailhub@<sha>


def _colour(server: str) -> str | None:
    return _BASELINE_COLOUR if server.startswith(BASELINE_PREFIX) else _COLOURS.get(server)


def _charted(row: Row) -> bool:
    if not row.values or row.unit not in ("/s", "ms", "us", "KiB", "%"):
        return False
    # An open-loop scenario's delivered rate only repeats its offered rate.
    return not (row.unit == "/s" and SCENARIOS[row.scenario].kind == "open_loop")


def _draw(axis: Any, group: list[Row], servers: Sequence[str]) -> None:
    """One panel: the group's rows side by side, one bar per server."""
    unit = group[0].unit
    scenario = SCENARIOS[group[0].scenario]
    shown = [name for name in servers if any(r.values.get(name) for r in group)]
    width = 0.8 / max(1, len(shown))
    for offset, server in enumerate(shown):
        heights = [r.values.get(server) or 0.0 for r in group]
        positions = [i + (offset - (len(shown) - 1) / 2) * width for i in range(len(group))]
        label = server
        if scenario.history_pair:  # E: rows sqlite and memory, one series per tailhub version
            ratio = _ratio(group[0].values.get(server), group[-1].values.get(server))
            label += f" (sqlite/memory {_format(ratio, 'x')})"
        bars = axis.bar(positions, heights, width, label=label, color=_colour(server))
        axis.bar_label(bars, labels=[_format(h, unit) for h in heights], fontsize=7)
    if scenario.history_pair:
        ticks = [r.label.split(" ", 1)[1] for r in group]
    else:
        ticks = [r.metric for r in group] if len(group) > 1 else [""]
    axis.set_xticks(range(len(group)), ticks)
    if unit == "ms":
        from matplotlib import ticker

        axis.set_yscale("log")
        axis.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(lambda value, _: f"{value:g}")
        axis.yaxis.set_minor_formatter(ticker.NullFormatter())
        what = "latency, log scale"
    else:
        what = group[0].metric
    axis.set_title(f"{scenario.key} {scenario.title}: {what}", fontsize=9)
    ylabel = {"/s": "per second", "ms": "ms", "us": "µs of server CPU", "KiB": "KiB"}
    axis.set_ylabel(ylabel.get(unit, "share of one core"))
    if unit == "/s":
        axis.yaxis.set_major_formatter(lambda value, _: f"{value / 1000:.0f}k")
    elif unit == "%":
        axis.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    axis.margins(y=0.1 + 0.1 * len(shown))  # room for the legend above the tallest bars
    axis.legend(fontsize=7)


def write_chart(path: Path, rows: Sequence[Row], servers: Sequence[str], title: str) -> bool:
    """A PNG with one panel per scenario and unit; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups: dict[str, list[Row]] = {}
    for row in rows:
        if _charted(row):
            groups.setdefault(f"{row.scenario} {row.unit}", []).append(row)
    count = len(groups)
    if count == 0:
        return False
    columns = min(count, 4 if count > 6 else 3)
    lines = math.ceil(count / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 3.6 * lines), squeeze=False)
    for axis, group in zip(axes.flat, groups.values(), strict=False):
        _draw(axis, group, servers)
    for axis in list(axes.flat)[count:]:
        axis.set_visible(False)
    # A narrow figure (one or two panels) would cut a long title off.
    figure.suptitle(textwrap.fill(title, 55 * columns), fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
