"""Running one benchmark script: the same steps whether alone or under bench/run.py.

A script (send, fanout, mqtt, mcp_send, footprint, scale) is a module with the members of
`Script`; `main()` runs it from the command line, `run_script()` from bench/run.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import aiomqtt
from harness import BenchError
from report import Headline, exit_status, print_table, scratch, write_report

FAILURES = (BenchError, subprocess.SubprocessError, OSError, aiomqtt.MqttError, aiohttp.ClientError)
"""What ends a run early: a server that did not start or answer, a broker gone, a disk full."""


class Script(Protocol):
    NAME: str
    """The prefix of its JSON report in bench/results/."""
    LEGEND: str
    """How to read its table."""

    def parser(self) -> argparse.ArgumentParser: ...
    def plan_from(self, args: argparse.Namespace) -> Any: ...
    def run(self, plan: Any, workdir: Path, problems: list[str]) -> dict[str, Any]: ...
    def failed(self, results: dict[str, Any], problems: list[str]) -> bool: ...
    def title(self, plan: Any) -> str: ...
    def table(self, plan: Any, results: dict[str, Any]) -> list[dict[str, str]]: ...
    def notes(self, plan: Any, results: dict[str, Any]) -> list[str]: ...
    def headlines(self, plan: Any, results: dict[str, Any]) -> list[Headline]: ...
    def details(self, plan: Any, results: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class Outcome:
    """One script's run: its summary rows, its JSON report body, and whether it failed."""

    headlines: list[Headline] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    failed: bool = False


def run_script(script: Script, plan: Any, keep: bool) -> Outcome:
    """Run, print the script's own table, and gather what its report holds."""
    problems: list[str] = []
    # The previous script's writes, still in the page cache, would otherwise reach the
    # disk while this one measures.
    os.sync()
    started = time.perf_counter()
    with scratch(f"pushgod-bench-{script.NAME}-", keep) as workdir:
        try:
            results = script.run(plan, workdir, problems)
        except FAILURES as error:
            print(f"bench {script.NAME}: {error}", file=sys.stderr)
            return Outcome(report={"plan": plan.__dict__, "error": str(error)}, failed=True)
    rows = script.table(plan, results)
    headlines = script.headlines(plan, results)
    print_table(script.title(plan), rows, script.LEGEND, script.notes(plan, results) + problems)
    report = {
        "plan": plan.__dict__,
        "seconds": round(time.perf_counter() - started, 1),
        "table": rows,
        "headlines": [h.row() for h in headlines],
        **script.details(plan, results),
        "problems": problems,
    }
    return Outcome(headlines, report, script.failed(results, problems))


def main(script: Script, argv: list[str] | None = None) -> int:
    args = script.parser().parse_args(argv)
    plan = script.plan_from(args)
    stamp = datetime.now(UTC)
    outcome = run_script(script, plan, args.keep)
    write_report(args.results, script.NAME, stamp, plan.smoke, outcome.report)
    return exit_status(outcome.failed, outcome.headlines, args.check_targets)
