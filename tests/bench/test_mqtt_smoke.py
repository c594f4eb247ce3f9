"""The MQTT ingest benchmark still runs: every scenario for a moment, no timing asserted.

`python bench/mqtt.py --smoke` starts Mosquitto (tests/broker.py), the daemon and the
subscriber processes itself, so this notices the benchmark rotting when the bridge, the
device commands or the topics change under it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["scenario", "pushgod", "raw", "ratio", "target", "result", "final state"]


def test_mqtt_benchmark_smoke(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mqtt.py"), "--smoke", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    (report,) = tmp_path.glob("mqtt-*-smoke.json")
    data = json.loads(report.read_text())
    assert data["problems"] == []
    plan = data["plan"]
    names = [f"qos{qos}-{things}" for things in plan["things"] for qos in plan["qos"]]
    assert len(names) == 4  # QoS 0 and 1, few and many Things
    assert [row["scenario"] for row in data["table"]] == names
    for scenario in data["scenarios"]:
        assert scenario["final_right"], scenario
        assert scenario["final_wrong_retained"] == {} and scenario["final_wrong_committed"] == {}
        for run_name in ("raw_before", "pushgod", "raw_after"):
            assert scenario["runs"][run_name]["complete"], (scenario["scenario"], run_name)
        assert 0 < scenario["states_published"] <= scenario["updates"]

    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("scenario "))
    assert re.split(r"\s{2,}", lines[header].strip())[: len(COLUMNS)] == COLUMNS
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[header + 2 : header + 6]]
    assert [row[0] for row in rows] == names
    for row in rows:
        assert row[5] in ("ok", "MISSED"), row
        assert row[6].endswith(" right"), row
