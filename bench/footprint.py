"""Footprint: start-up time and resident memory, next to a bare aiohttp server.

    python bench/footprint.py [--starts N] [--streams N] [--smoke]

Starts Mosquitto (tests/broker.py) and, N times each, bench/bare_server.py and the pushgod
daemon with MQTT and MCP enabled: the time from exec to READY=1 and to the first 200 of
GET /healthz. The last daemon then stays up: its RSS once idle with the bridge online,
after a first MCP session (which loads the MCP SDK), and with 1,000 idle SSE streams
open. Prints a table and writes bench/results/footprint-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import script  # noqa: E402
from fanout import CONNECT_WAIT_S, Client, raise_open_files  # noqa: E402
from harness import BenchError, Server, memory_bytes, start_server  # noqa: E402
from loadgen import session  # noqa: E402
from mcp_send import open_session  # noqa: E402
from mqtt import BenchBroker, wait_online, write_config  # noqa: E402
from report import Headline, add_common_arguments, smoke_suffix  # noqa: E402
from send import cli_create_channel, daemon_environ, start_daemon, stop  # noqa: E402

READY_TARGET_S = 1.5
IDLE_RSS_TARGET_MB = 100.0


@dataclass(frozen=True)
class Plan:
    starts: int
    streams: int
    smoke: bool


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="starts of each server")
    parser.add_argument("--streams", type=int, default=1_000, help="idle SSE streams")
    add_common_arguments(parser)
    return parser


def plan_from(args: argparse.Namespace) -> Plan:
    if args.smoke:
        return Plan(1, 20, True)
    if args.starts < 1 or args.streams < 1:
        raise SystemExit("footprint: starts and streams must be positive")
    return Plan(args.starts, args.streams, False)


@dataclass
class Start:
    """One server start: seconds from exec to READY=1 and to the first 200."""

    ready_s: float
    first_200_s: float


@dataclass
class Starts:
    runs: list[Start] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(getattr(run, name) for run in self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready_s": [round(run.ready_s, 4) for run in self.runs],
            "first_200_s": [round(run.first_200_s, 4) for run in self.runs],
            "ready_median_s": round(self.median("ready_s"), 4),
            "first_200_median_s": round(self.median("first_200_s"), 4),
        }


async def first_200(server: Server, launched: float) -> float:
    async with session(1) as client, client.get(server.url + "/healthz") as reply:
        await reply.read()
        if reply.status != 200:
            raise BenchError(f"{server.name}: GET /healthz gave HTTP {reply.status}")
    return time.perf_counter() - launched


def start_bare(workdir: Path) -> tuple[Server, float]:
    launched = time.perf_counter()
    argv = [sys.executable, str(BENCH / "bare_server.py")]
    server = start_server("bare", argv, daemon_environ(workdir, 0), workdir)
    return server, launched


def start_pushgod(workdir: Path, extra: dict[str, str]) -> tuple[Server, float]:
    launched = time.perf_counter()
    return start_daemon(workdir, "pushgod-footprint", **extra), launched


async def measure(
    plan: Plan, workdir: Path, broker: BenchBroker, extra: dict[str, str], problems: list[str]
) -> dict[str, Any]:
    channel = await asyncio.to_thread(
        cli_create_channel, daemon_environ(workdir, 0, **extra), workdir, "bench footprint"
    )
    bare, pushgod = Starts(), Starts()
    bare_rss = []
    for _ in range(plan.starts):
        server, launched = start_bare(workdir)
        try:
            ready = time.perf_counter() - launched
            bare.runs.append(Start(ready, await first_200(server, launched)))
            bare_rss.append(memory_bytes(server.pid))
        finally:
            stop(server, problems)
        server, launched = start_pushgod(workdir, extra)
        try:
            ready = time.perf_counter() - launched
            pushgod.runs.append(Start(ready, await first_200(server, launched)))
        finally:
            stop(server, problems)

    server, _ = start_pushgod(workdir, extra)
    try:
        await wait_online(broker)
        async with session(1) as client, client.get(server.url + "/healthz") as reply:
            await reply.read()
        idle = memory_bytes(server.pid)
        async with session(1) as client:
            await open_session(client, server.url + "/mcp", extra["PUSHGOD_SERVER_GATEWAY_TOKEN"])
        after_mcp = memory_bytes(server.pid)
        streams = await Client.start(workdir, server.url, channel, plan.streams, "protocol")
        try:
            hello = await streams.read(CONNECT_WAIT_S)
            if "connected" not in hello:
                raise BenchError(f"{plan.streams} streams: {hello}\n{streams.log_tail()}")
            with_streams = memory_bytes(server.pid)
            streams.tell({"expect": 0, "wait_s": 0})
            await streams.read(30)
        finally:
            status = await streams.close()
            if status != 0:
                problems.append(f"the {plan.streams} subscribers exited with status {status}")
    finally:
        stop(server, problems)
    return {
        "bare": bare.as_dict(),
        "pushgod": pushgod.as_dict(),
        "bare_rss_bytes": statistics.median(bare_rss),
        "idle_rss_bytes": idle,
        "after_mcp_rss_bytes": after_mcp,
        "with_streams_rss_bytes": with_streams,
        "streams": plan.streams,
    }


def run(plan: Plan, workdir: Path, problems: list[str]) -> dict[str, Any]:
    raise_open_files(plan.streams + 256)
    extra = {
        "PUSHGOD_MCP_ENABLED": "true",
        "PUSHGOD_SERVER_GATEWAY_TOKEN": secrets.token_urlsafe(32),
    }

    async def everything() -> dict[str, Any]:
        async with BenchBroker() as broker:
            write_config(workdir, broker)
            return await measure(plan, workdir, broker, extra, problems)

    return asyncio.run(everything())


# --- report -----------------------------------------------------------------------------


def _mib(value: float) -> float:
    return value / 2**20


def headlines(plan: Plan, results: dict[str, Any]) -> list[Headline]:
    bare, pushgod = results["bare"], results["pushgod"]
    ready, bare_ready = pushgod["ready_median_s"], bare["ready_median_s"]
    first, bare_first = pushgod["first_200_median_s"], bare["first_200_median_s"]
    idle, bare_rss = _mib(results["idle_rss_bytes"]), _mib(results["bare_rss_bytes"])
    streams = results["streams"]
    per_stream_kb = (
        (results["with_streams_rss_bytes"] - results["after_mcp_rss_bytes"]) / streams / 1024
    )
    return [
        Headline(
            "7 footprint",
            "start -> READY, MQTT+MCP on",
            f"{ready:.2f} s",
            f"bare aiohttp {bare_ready:.2f} s",
            f"{ready / bare_ready:.1f}x",
            f"< {READY_TARGET_S:g} s",
            ready < READY_TARGET_S,
        ),
        Headline(
            "7 footprint",
            "start -> first 200",
            f"{first:.2f} s",
            f"bare aiohttp {bare_first:.2f} s",
            f"{first / bare_first:.1f}x",
        ),
        Headline(
            "7 footprint",
            "idle RSS, MQTT+MCP on",
            f"{idle:.1f} MiB",
            f"bare aiohttp {bare_rss:.1f} MiB",
            f"{idle / bare_rss:.1f}x",
            f"< {IDLE_RSS_TARGET_MB:g} MB",
            results["idle_rss_bytes"] < IDLE_RSS_TARGET_MB * 1e6,
        ),
        Headline(
            "7 footprint",
            "RSS after the first MCP session",
            f"{_mib(results['after_mcp_rss_bytes']):.1f} MiB",
            f"idle {idle:.1f} MiB",
            f"{results['after_mcp_rss_bytes'] / results['idle_rss_bytes']:.1f}x",
        ),
        Headline(
            "7 footprint",
            f"RSS with {streams:,} idle SSE streams",
            f"{_mib(results['with_streams_rss_bytes']):.1f} MiB",
            f"before them {_mib(results['after_mcp_rss_bytes']):.1f} MiB",
            f"{per_stream_kb:.1f} KiB/stream",
        ),
    ]


LEGEND = """
times are medians over the starts, from exec to READY=1 on NOTIFY_SOCKET and to the answer
of the first GET /healthz sent on READY; RSS is VmRSS: the bare server's after its first
200, pushgod's once the MQTT bridge is online and /healthz answered (the MCP SDK loads on
the first /mcp request), then after one MCP initialize, then with the streams open
"""


NAME = "footprint"


def title(plan: Plan) -> str:
    return (
        f"pushgod footprint benchmark: {plan.starts} starts each, {plan.streams:,} streams"
        + smoke_suffix(plan.smoke)
    )


def table(plan: Plan, results: dict[str, Any]) -> list[dict[str, str]]:
    return [h.row() for h in headlines(plan, results)]


def notes(plan: Plan, results: dict[str, Any]) -> list[str]:
    return []


def failed(results: dict[str, Any], problems: list[str]) -> bool:
    return bool(problems)


def details(plan: Plan, results: dict[str, Any]) -> dict[str, Any]:
    return {"results": results}


def main(argv: list[str] | None = None) -> int:
    return script.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
