"""The send benchmark still runs: every scenario for a moment, no timing asserted.

`python bench/send.py --smoke` starts the bare server and the daemon itself, so this is
the cheapest way to notice the benchmark rotting when the daemon, the CLI or the send
API change under it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["bare", "hot", "rotate", "cold-verify", "hot-normal", "group-commit", "bare-end"]
COLUMNS = ["scenario", "pushgod", "reference", "ratio", "target"]


def test_send_benchmark_smoke(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "send.py"), "--smoke", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("scenario "))
    assert lines[header].split()[: len(COLUMNS)] == COLUMNS
    rows = {}
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        rows[line.split()[0]] = line
    assert sorted(rows) == sorted(SCENARIOS)
    assert all("MISSED" in rows[name] or " ok " in rows[name] for name in ("hot", "rotate"))

    (report,) = tmp_path.glob("*-smoke.json")
    data = json.loads(report.read_text())
    assert [row["scenario"] for row in data["table"]] == [
        line.split()[0] for line in lines[header + 2 : header + 2 + len(rows)]
    ]
    assert data["problems"] == []
