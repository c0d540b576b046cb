"""The hostile suite's table of figures, from the JSON files its tests wrote.

    python -m tests.hostile.report [DIR]     # DIR: test-output/hostile by default

Prints a Markdown table (one row per attack) and writes it, with all the figures as one JSON
document, beside the inputs: ``figures.md`` and ``figures.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.hostile.harness import OUTPUT

__all__ = ["main", "table"]

HEADER = (
    "| attack | N tried | crashes | lost | RSS before / after (peak) | tracebacks | canary leaks"
    " | control p50 / max | result |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def _mib(value: int) -> str:
    return f"{value / (1 << 20):.0f}" if value else "-"


def row(figures: dict[str, object]) -> str:
    """One attack as a table row."""
    control = figures.get("control") or {}
    assert isinstance(control, dict)
    before, after, peak = (int(figures[k]) for k in ("rss_before", "rss_after", "rss_peak"))  # type: ignore[call-overload]
    rss = f"{_mib(before)} / {_mib(after)} MiB ({_mib(peak)})" if before else "-"
    latency = (
        f"{control['latency_p50_ms']} / {control['latency_max_ms']} ms"
        if control.get("acked")
        else "-"
    )
    tried = f"{int(figures['tried']):,} {figures.get('unit') or ''}".strip()  # type: ignore[call-overload]
    result = "pass" if figures.get("passed") else "FAIL"
    return (
        f"| {figures['attack']} | {tried} | {figures['crashes']} | {figures['lost']} | {rss}"
        f" | {figures['tracebacks']} | {figures['canary_leaks']} | {latency} | {result} |"
    )


def table(directory: Path) -> tuple[str, list[dict[str, object]]]:
    """The Markdown table of every ``*.json`` in ``directory`` (but figures.json), and the
    figures it was made of."""
    rows = []
    for path in sorted(directory.glob("*.json")):
        if path.name == "figures.json":
            continue
        rows.append(json.loads(path.read_text()))
    lines = [HEADER, *(row(figures) for figures in rows)]
    notes = [
        f"- {figures['attack']}: {'; '.join(str(n) for n in figures['notes'])}"  # type: ignore[attr-defined]
        for figures in rows
        if figures.get("notes")
    ]
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    return text, rows


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else OUTPUT
    if not directory.is_dir():
        print(f"no figures in {directory}: run scripts/hostile first", file=sys.stderr)
        return 1
    text, rows = table(directory)
    (directory / "figures.md").write_text(text)
    (directory / "figures.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(text, end="")
    return 0 if all(figures.get("passed") for figures in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
