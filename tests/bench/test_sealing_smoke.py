"""The sealing benchmark still runs and measures what it says; no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sealing_benchmark_smoke(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sealing.py"), "--smoke", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    (result,) = tmp_path.glob("sealing-*.json")
    rows = json.loads(result.read_text())
    assert [(row["clients"], row["sealed"]) for row in rows] == [(0, False), (1, True), (10, True)]
    assert all(row["messages_per_s"] > 0 and row["cpu_us_per_message"] > 0 for row in rows)
    assert rows[0]["cpu_ratio"] == 1.0
    assert [line.split()[0] for line in run.stdout.splitlines()[1:]] == ["off", "1", "10"]
