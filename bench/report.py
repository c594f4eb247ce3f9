"""What every benchmark prints and writes: the table, the JSON report, the exit status.

Each benchmark script (send, fanout, mqtt, mcp_send, footprint, scale) keeps its own
detailed table; its `headlines()` give the rows of the one summary table that
`bench/run.py` (`make bench`) prints: scenario, pushgod's figure, the reference measured
in the same run, the ratio and the target.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
NOISY_OTHER_CPU = 25.0
"""Percent of one CPU used by other processes above which a run's rates are disturbed."""


@dataclass(frozen=True)
class Headline:
    """One row of the summary table. `met` is None when the row has no target."""

    scenario: str
    measure: str
    pushgod: str
    reference: str
    ratio: str
    target: str = "-"
    met: bool | None = None

    @property
    def result(self) -> str:
        return {None: "-", True: "ok", False: "MISSED"}[self.met]

    def row(self) -> dict[str, str]:
        return {
            "scenario": self.scenario,
            "measure": self.measure,
            "pushgod": self.pushgod,
            "reference": self.reference,
            "ratio": self.ratio,
            "target": self.target,
            "result": self.result,
        }


def at_least(ratio: float, target: float) -> tuple[str, str, bool]:
    """The ratio, target and verdict columns of a rate held against a share of a reference.

    The ratio is shown rounded down, so that a 0.398 reads 0.39 next to its MISSED."""
    return f"{math.floor(ratio * 100) / 100:.2f}", f">= {target:.2f}", ratio >= target


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "node": platform.node(),
    }


def print_table(title: str, rows: list[dict[str, str]], legend: str, notes: list[str]) -> None:
    """`rows` share their keys. When a scenario has several rows, a blank line goes between
    scenarios."""
    columns = list(rows[0])
    widths = [max(len(c), *(len(row[c]) for row in rows)) for c in columns]
    print()
    print(title)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    grouped = any(a["scenario"] == b["scenario"] for a, b in itertools.pairwise(rows))
    previous = rows[0]["scenario"]
    for row in rows:
        if grouped and row["scenario"] != previous:
            print()
        previous = row["scenario"]
        print("  ".join(row[c].ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    print()
    for line in legend.strip("\n").splitlines():
        print(f"  {line}")
    for note in notes:
        print(f"  note: {note}")


def smoke_suffix(smoke: bool) -> str:
    return " (smoke: tiny numbers, no meaning)" if smoke else ""


def write_report(
    directory: Path, prefix: str, stamp: datetime, smoke: bool, body: dict[str, Any]
) -> Path:
    """bench/results/<prefix>-<UTC time>[-smoke].json with the machine and argv added."""
    report = {
        "started_at": stamp.isoformat(),
        "argv": sys.argv[1:],
        "machine": machine(),
        **body,
    }
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}-{stamp.strftime('%Y%m%dT%H%M%SZ')}{'-smoke' if smoke else ''}.json"
    path = directory / name
    path.write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    print(f"\nwritten to {path}")
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="every scenario for a moment")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--check-targets", action="store_true", help="exit 3 when a target is missed"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")


@contextlib.contextmanager
def scratch(prefix: str, keep: bool) -> Iterator[Path]:
    """A temporary working directory, removed afterwards unless `keep`."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            print(f"bench: data kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def exit_status(failed: bool, headlines: list[Headline], check_targets: bool) -> int:
    """1 when the run failed, 3 when asked to check targets and one was missed, else 0."""
    if failed:
        return 1
    if check_targets and any(h.met is False for h in headlines):
        return 3
    return 0
