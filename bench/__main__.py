"""``python -m bench``: run the benchmark suite and print one table.

Starts every server under test itself (tailhub, the Node ``ws`` relay, the picows relay) on a
free loopback port, pinned to core 0, and with ``--baseline REF`` also tailhub as it was at git
revision REF (see :mod:`bench.baseline`); drives each scenario with the load generator pinned
to core 1; prints a Markdown table of medians and of tailhub's ratio to each other server;
writes the runs as JSON and the medians as a PNG chart. ``--quick`` is the CI smoke test
(about a minute): it checks that everything runs, not that targets are met.
"""

from __future__ import annotations

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
