"""`pushgod serve --demo`: the quick start's printed curl lines work as printed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from .harness import Daemon, DaemonFactory

CURL_TIMEOUT_S = 30


def _field(stdout: str, name: str) -> str:
    found = re.search(rf"^\s*{name}:\s+(\S+)\s*$", stdout, re.MULTILINE)
    assert found, f"no {name} line in:\n{stdout}"
    return found.group(1)


def _curl_line(stdout: str, marker: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip().startswith("curl ")]
    matching = [line for line in lines if marker in line]
    assert len(matching) == 1, f"expected one curl line with {marker!r} in:\n{stdout}"
    return matching[0]


def _bash(command: str, daemon: Daemon) -> dict[str, Any]:
    """Run a printed command line as a user would paste it; its stdout must be one JSON reply."""
    done = subprocess.run(
        ["bash", "-c", command],
        env=daemon.environ(),
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{command}\nexit {done.returncode}: {done.stderr}"
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply


def test_demo_prints_a_curl_line_that_sends_and_one_that_reads(
    daemon_factory: DaemonFactory,
) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed; `make test` installs it (apt-get install curl)")
    daemon = daemon_factory()
    stdout = daemon.start("--demo")
    channel_id = _field(stdout, "channel_id")
    password = _field(stdout, "password")

    sent = _bash(_curl_line(stdout, "/message "), daemon)
    assert sent["success"] is True, sent
    assert sent["data"]["channel_id"] == channel_id

    read_line = _curl_line(stdout, "/api/v1/channels/")
    assert password in read_line
    listing = _bash(read_line, daemon)
    assert listing["success"] is True, listing
    messages = listing["data"]["messages"]
    assert [m["message_id"] for m in messages] == [sent["data"]["message_id"]]
    assert messages[0]["title"] == "Hello from pushgod"


def test_second_demo_start_creates_nothing_and_prints_no_password(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory()
    first = daemon.start("--demo")
    channel_id = _field(first, "channel_id")
    password = _field(first, "password")
    assert daemon.stop() == 0

    second = daemon.start("--demo")
    assert password not in second
    assert "password" not in second.lower()
    channels = daemon.cli_json("channel", "list")["channels"]
    assert [(c["channel_id"], c["name"]) for c in channels] == [(channel_id, "demo")]
