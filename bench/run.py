"""Every benchmark, one table: what `make bench` runs.

    python bench/run.py [--smoke] [--only send fanout ...] [--check-targets]

Runs the eight scenarios of docs/performance.md one after the other (send, durable
writes and the password path share one script, as do the footprint's figures), each
starting what it needs (daemons on temporary data directories, Mosquitto on a free
port), then prints one table: scenario, pushgod's figure, the reference measured in the
same run, the ratio and the target. Each script's own detailed table is printed as it
finishes; everything goes to bench/results/bench-<time>.json.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import fanout  # noqa: E402
import footprint  # noqa: E402
import mcp_send  # noqa: E402
import mqtt  # noqa: E402
import scale  # noqa: E402
import send  # noqa: E402
from report import (  # noqa: E402
    Headline,
    add_common_arguments,
    exit_status,
    print_table,
    smoke_suffix,
    write_report,
)
from script import run_script  # noqa: E402

# In the order they run; scale last, as it needs the most time and disk.
SCRIPTS: dict[str, ModuleType] = {
    "send": send,
    "fanout": fanout,
    "mqtt": mqtt,
    "mcp": mcp_send,
    "footprint": footprint,
    "scale": scale,
}
LEGEND = """
reference: measured in the same run on this machine (bare aiohttp, raw SQLite, a plain
aiomqtt subscriber, HTTP /message for MCP); ratio: pushgod's rate over the reference's
(for latencies, times and sizes: how many times the reference); each script's table
above explains its rows, bench/README.md how they are measured
"""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS), help="scripts to run"
    )
    add_common_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stamp = datetime.now(UTC)
    failed: list[str] = []
    headlines: list[Headline] = []
    reports: dict[str, Any] = {}
    for name in args.only:
        print(f"\n== {name}", flush=True)
        module: Any = SCRIPTS[name]
        plan = module.plan_from(module.parser().parse_args(["--smoke"] if args.smoke else []))
        outcome = run_script(module, plan, args.keep)
        reports[name] = outcome.report
        headlines.extend(outcome.headlines)
        if outcome.failed:
            failed.append(name)
    headlines.sort(key=lambda h: int(h.scenario.split()[0]))
    rows = [h.row() for h in headlines]
    if rows:
        title = "pushgod benchmarks, every scenario" + smoke_suffix(args.smoke)
        notes = [f"{name} failed: see its notes above" for name in failed]
        print_table(title, rows, LEGEND, notes)
    body = {"headlines": rows, "scripts": reports, "failed": failed}
    write_report(args.results, "bench", stamp, args.smoke, body)
    return exit_status(bool(failed), headlines, args.check_targets)


if __name__ == "__main__":
    raise SystemExit(main())
