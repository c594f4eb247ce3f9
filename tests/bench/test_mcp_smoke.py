"""The MCP send benchmark still runs: every run for a moment, no timing asserted.

`python bench/mcp_send.py --smoke` starts the daemon with MCP on, gets an OAuth token through
the consent pages and drives /mcp with raw JSON-RPC, so this notices the benchmark rotting
when the tools, the transport, the OAuth pages or the send API change under it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["http-1", "mcp-oauth", "http-2", "mcp-legacy", "http-3"]
COLUMNS = ["scenario", "calls/s", "http ref", "ratio", "target", "result", "p50/p99 ms", "failed"]


def test_mcp_benchmark_smoke(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "mcp_send.py"),
            "--smoke",
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    (report,) = tmp_path.glob("mcp-*-smoke.json")
    data = json.loads(report.read_text())
    assert data["problems"] == []
    assert [row["scenario"] for row in data["table"]] == ORDER
    assert set(data["ratios"]) == {"mcp-oauth", "mcp-legacy"}
    assert all(ratio > 0 for ratio in data["ratios"].values())
    for name in ORDER:
        figures = data["runs"][name]
        assert figures["errors"] == 0, (name, figures["error_samples"])
        assert figures["measured_requests"] > 0 and figures["calls_per_s"] > 0, name
        assert figures["p50_ms"] > 0 and figures["p99_ms"] >= figures["p50_ms"], name
        assert figures["server_us_per_call"] > 0, name

    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("scenario "))
    assert re.split(r"\s{2,}", lines[header].strip())[: len(COLUMNS)] == COLUMNS
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[header + 2 : header + 7]]
    assert [row[0] for row in rows] == ORDER
    for row in rows:
        assert row[5] in ("ok", "MISSED", "-"), row
        assert row[7] == "0", row
