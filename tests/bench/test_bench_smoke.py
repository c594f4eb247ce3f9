"""`make bench` still runs: every scenario for a moment, no timing asserted.

`python bench/run.py --smoke` starts everything it needs itself (the daemons, the bare
server, Mosquitto, the subscriber processes), so one run notices any benchmark rotting
when the daemon, the CLI, the APIs or the topics change under it. What is checked is
that each scenario measured what it claims to (every send committed, every receipt
received, every Thing's final state right), never how fast.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["scenario", "measure", "pushgod", "reference", "ratio", "target", "result"]
SCENARIOS = [
    "1 send",
    "2 durable",
    "3 password",
    "4 fan-out",
    "5 MQTT",
    "6 MCP",
    "7 footprint",
    "8 scale",
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    results = tmp_path_factory.mktemp("bench-results")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    (report,) = results.glob("bench-*-smoke.json")
    return run.stdout, json.loads(report.read_text())


def summary_rows(stdout: str) -> list[list[str]]:
    """The last table printed: the summary, its scenarios apart by blank lines, then the
    indented legend."""
    lines = stdout.splitlines()
    header = max(i for i, line in enumerate(lines) if line.startswith("scenario     measure"))
    assert re.split(r"\s{2,}", lines[header].strip()) == COLUMNS
    rows = []
    for line in lines[header + 2 :]:
        if line.startswith("  "):
            break
        if line.strip():
            rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_one_table_covers_every_scenario(smoke: tuple[str, dict[str, Any]]) -> None:
    stdout, report = smoke
    rows = summary_rows(stdout)
    assert sorted({row[0] for row in rows}) == SCENARIOS
    assert all(len(row) == len(COLUMNS) for row in rows), rows
    assert all(row[6] in ("ok", "MISSED", "-") for row in rows), rows
    targets = {row[0] for row in rows if row[5] != "-"}
    assert {"1 send", "4 fan-out", "5 MQTT", "6 MCP", "7 footprint", "8 scale"} <= targets
    assert [list(row.values()) for row in report["headlines"]] == rows
    assert report["failed"] == []
    assert all(script["problems"] == [] for script in report["scripts"].values())


def test_send_commits_what_it_acknowledges(smoke: tuple[str, dict[str, Any]]) -> None:
    send = smoke[1]["scripts"]["send"]
    scenarios = send["scenarios"]
    for name in ("bare", "hot", "rotate", "hot-normal", "bare-end"):
        assert scenarios[name]["errors"] == 0, (name, scenarios[name]["error_samples"])
        assert scenarios[name]["measured_requests"] > 0, name
    group = scenarios["group"]
    assert group["committed"] == group["acked"] > 0
    assert scenarios["raw-group"]["rows_per_commit"] == send["plan"]["concurrency"]
    assert scenarios["cold"]["errors"] == []


def test_fanout_delivers_everything(smoke: tuple[str, dict[str, Any]]) -> None:
    fanout = smoke[1]["scripts"]["fanout"]
    for scenario in fanout["scenarios"]:
        receipts = scenario["receipts"]
        assert receipts["missing"] == 0 and receipts["duplicated"] == 0, receipts
        assert receipts["receipts"] == scenario["subscribers"] * fanout["messages"]


def test_mqtt_final_states_are_right(smoke: tuple[str, dict[str, Any]]) -> None:
    mqtt = smoke[1]["scripts"]["mqtt"]
    assert len(mqtt["scenarios"]) == 4  # QoS 0 and 1, few and many Things
    for scenario in mqtt["scenarios"]:
        assert scenario["final_right"], scenario
        for run_name in ("raw_before", "pushgod", "raw_after"):
            assert scenario["runs"][run_name]["complete"], (scenario["scenario"], run_name)
        assert 0 < scenario["states_published"] <= scenario["updates"]


def test_mcp_calls_all_succeed(smoke: tuple[str, dict[str, Any]]) -> None:
    mcp = smoke[1]["scripts"]["mcp"]
    assert set(mcp["ratios"]) == {"mcp-oauth", "mcp-legacy"}
    for name, figures in mcp["runs"].items():
        assert figures["errors"] == 0, (name, figures["error_samples"])
        assert figures["measured_requests"] > 0 and figures["server_us_per_call"] > 0, name


def test_footprint_measures_a_running_daemon(smoke: tuple[str, dict[str, Any]]) -> None:
    footprint = smoke[1]["scripts"]["footprint"]
    results = footprint["results"]
    for server in ("bare", "pushgod"):
        starts = results[server]
        assert len(starts["ready_s"]) == footprint["plan"]["starts"]
        assert all(
            0 < ready <= first
            for ready, first in zip(starts["ready_s"], starts["first_200_s"], strict=True)
        )
    assert results["streams"] == footprint["plan"]["streams"]
    assert results["idle_rss_bytes"] > 0 and results["with_streams_rss_bytes"] > 0


def test_scale_store_holds_what_was_asked(smoke: tuple[str, dict[str, Any]]) -> None:
    scale = smoke[1]["scripts"]["scale"]
    plan, results = scale["plan"], scale["results"]
    assert results["rows"]["messages"] == plan["messages"]
    assert results["rows"]["things"] == plan["things"]
    assert results["rows"]["channels"] == plan["channels"]
    for kind in ("newest", "thing"):
        assert results["served"][kind]["count"] == plan["reads"]
        assert results["raw"][kind]["count"] == plan["reads"]
    assert results["bytes_per_message"] > 0


def test_a_script_runs_alone(tmp_path: Path) -> None:
    """Each script keeps its own entry point; scale's smoke is the quickest."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--smoke", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (report,) = tmp_path.glob("scale-*-smoke.json")
    data = json.loads(report.read_text())
    assert data["problems"] == []
    assert [row["scenario"] for row in data["headlines"]] == ["8 scale"] * 3
