"""The fan-out benchmark still runs: a few SSE subscribers for a moment, no timing asserted.

`python bench/fanout.py --smoke` starts the daemon and the subscriber process itself, so
this notices the benchmark rotting when the daemon, the CLI or the stream API change.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["2 subs", "5 subs"]
COLUMNS = ["scenario", "figure", "measured", "reference/target", "result"]
FIGURES = [
    "send rate",
    "latency p50",
    "latency p99",
    "latency max",
    "receipts missing",
    "RSS before subs",
    "RSS subs idle",
    "RSS under load",
    "RSS per idle sub",
    "cpu% dmn/cli/oth",
    "dmn us/delivery",
]


def test_fanout_benchmark_smoke(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fanout.py"), "--smoke", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("scenario "))
    assert re.split(r"\s{2,}", lines[header].strip()) == COLUMNS
    cells = []
    for line in lines[header + 2 :]:
        if line.startswith("  "):
            break  # the legend under the table
        if line.strip():
            cells.append(re.split(r"\s{2,}", line.strip()))
    rows = [(row[0], row[1]) for row in cells]
    assert rows == [(name, figure) for name in SCENARIOS for figure in FIGURES]
    assert all(len(row) == len(COLUMNS) for row in cells), cells
    for row in cells:
        if row[1] == "receipts missing":
            assert row[4] == "ok", row
        if row[1] in ("latency p99", "RSS per idle sub"):
            assert row[4] in ("ok", "MISSED"), row

    (report,) = tmp_path.glob("fanout-*-smoke.json")
    data = json.loads(report.read_text())
    assert [(row["scenario"], row["figure"]) for row in data["table"]] == rows
    assert data["problems"] == []
    for scenario in data["scenarios"]:
        assert scenario["receipts"]["missing"] == 0
        assert scenario["receipts"]["duplicated"] == 0
        assert (
            scenario["receipts"]["receipts"] == scenario["subscribers"] * data["plan"]["messages"]
        )
