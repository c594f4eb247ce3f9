"""Send throughput: pushgod against bare aiohttp and raw SQLite, measured in the same run.

    python bench/send.py [--duration S] [--concurrency N] [--smoke]

Starts a bare aiohttp server and the pushgod daemon as child processes on 127.0.0.1, runs
the scenarios below with the same load client, prints one table and writes it as JSON to
bench/results/<timestamp>.json. See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import script  # noqa: E402
from harness import Server, clean_environ, free_port, start_server  # noqa: E402
from loadgen import LoadResult, check_envelope, post_once, run_load, send_each, session  # noqa: E402
from report import NOISY_OTHER_CPU, Headline, add_common_arguments, at_least, smoke_suffix  # noqa: E402

SCENARIOS = ("bare", "hot", "rotate", "cold-verify", "hot-normal", "group-commit", "bare-end")
LOADS = ("bare", "hot", "rotate", "hot-normal", "bare-end")
TARGETS = {"hot": 0.40, "rotate": 0.30}
SCENARIO_LEGEND = {
    "bare": "bare aiohttp handler returning the same envelope (the reference rate)",
    "hot": "pushgod, one channel, synchronous=full (durable commits), msg/s vs bare",
    "rotate": "pushgod, sends rotate over N channels with different passwords, cache warm",
    "cold-verify": "first send on a never-verified channel (argon2id) vs the next send, median",
    "hot-normal": "pushgod, one channel, PUSHGOD_STORAGE_SYNCHRONOUS=normal, msg/s vs bare",
    "group-commit": "pushgod committed msg/s (rows in the db) vs raw SQLite group commits",
    "bare-end": "bare aiohttp again after pushgod; the reference is the mean of both",
}
MESSAGE_BODY = "The nightly backup finished in 42 s; 1.2 GiB written."


@dataclass(frozen=True)
class Plan:
    duration_s: float
    warmup_s: float
    concurrency: int
    channels: int
    cold: int
    raw_s: float
    smoke: bool


def plan_from(args: argparse.Namespace) -> Plan:
    if args.duration <= 0 or args.warmup < 0 or args.concurrency < 1 or args.channels < 1:
        raise SystemExit("send: duration, concurrency and channels must be positive")
    if args.cold < 1:
        raise SystemExit("send: --cold must be at least 1")
    if args.smoke:
        return Plan(0.5, 0.2, min(args.concurrency, 4), 4, 2, 0.3, True)
    return Plan(
        args.duration,
        args.warmup,
        args.concurrency,
        args.channels,
        args.cold,
        min(args.duration, 5.0),
        False,
    )


def body_for(channel_id: str, password: str) -> bytes:
    return json.dumps(
        {
            "channel_id": channel_id,
            "password": password,
            "title": "bench",
            "body": MESSAGE_BODY,
            "severity": "normal",
            "tags": ["bench"],
        },
        separators=(",", ":"),
    ).encode()


# --- setup -----------------------------------------------------------------------------


def daemon_environ(workdir: Path, port: int, **extra: str) -> dict[str, str]:
    """A clean environment: no outside PUSHGOD_*/PUSHGO_*, an empty config file, our dirs."""
    config = workdir / "pushgod.toml"
    config.touch()
    return clean_environ(
        PUSHGOD_CONFIG=str(config),
        PUSHGOD_STORAGE_DATA_DIR=str(workdir / "data"),
        PUSHGOD_SERVER_HOST="127.0.0.1",
        PUSHGOD_SERVER_PORT=str(port),
        **extra,
    )


def cli_create_channel(env: dict[str, str], workdir: Path, name: str) -> tuple[str, str]:
    """`python -m pushgod channel create NAME --json`, the way an operator does it."""
    out = subprocess.run(
        [sys.executable, "-m", "pushgod", "channel", "create", name, "--json"],
        env=env,
        cwd=workdir,
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    )
    created = json.loads(out.stdout)
    return created["channel_id"], created["password"]


def create_channels(env: dict[str, str], names: Sequence[str]) -> list[tuple[str, str]]:
    """Create many channels as `pushgod channel create` does, but in this process.

    The CLI's own helper opens the data directory directly; each channel gets its own
    generated password (argon2id-hashed, a few at a time instead of one process each).
    """
    from pushgod.cli.admin import with_services
    from pushgod.config import load_settings
    from pushgod.service.auth import LOCAL_OPERATOR
    from pushgod.service.services import Services

    settings = load_settings(environ=env)

    async def work(services: Services) -> list[tuple[str, str]]:
        slots = asyncio.Semaphore(4)  # below the password pool's queue, so never server_busy

        async def one(name: str) -> tuple[str, str]:
            async with slots:
                row, password = await services.channels.create(LOCAL_OPERATOR, name)
            return row.id, password

        return list(await asyncio.gather(*(one(name) for name in names)))

    return with_services(settings, work)


def count_messages(workdir: Path) -> int:
    """Messages committed so far, read from the daemon's database (read-only, WAL reader)."""
    path = workdir / "data" / "pushgod.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        (count,) = db.execute("SELECT count(*) FROM messages").fetchone()
        return int(count)
    finally:
        db.close()


def raw_sqlite(workdir: Path, seconds: float, synchronous: str, rows: int) -> dict[str, Any]:
    """The raw commit reference, in a process of its own, `rows` rows per commit."""
    path = workdir / f"raw-{synchronous}-{rows}.db"
    argv = [sys.executable, str(BENCH / "raw_sqlite.py"), str(path)]
    out = subprocess.run(
        [*argv, "--seconds", str(seconds), "--synchronous", synchronous, "--rows", str(rows)],
        capture_output=True,
        check=True,
        text=True,
        timeout=seconds + 60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    result["commits_per_s"] = result["commits"] / result["elapsed_s"]
    result["rows_per_s"] = result["rows"] / result["elapsed_s"]
    return result


def start_daemon(workdir: Path, name: str, **extra: str) -> Server:
    env = daemon_environ(workdir, free_port(), **extra)
    return start_server(name, [sys.executable, "-m", "pushgod", "serve"], env, workdir)


def stop(server: Server, problems: list[str]) -> None:
    status = server.stop()
    if status != 0:
        problems.append(f"{server.name} exited with status {status}:\n{server.log_tail()}")


# --- scenarios -------------------------------------------------------------------------


async def load(
    plan: Plan, target: str, server: Server, bodies: Sequence[bytes], first_channel: str
) -> LoadResult:
    """Check one envelope, then the timed run."""
    async with session(1) as client:
        status, raw, _ = await post_once(client, server.url + "/message", bodies[0])
    problem = f"HTTP {status}: {raw[:200]!r}" if status != 200 else None
    problem = problem or check_envelope(raw, first_channel)
    result = await run_load(
        target,
        server.url + "/message",
        bodies,
        concurrency=plan.concurrency,
        duration_s=plan.duration_s,
        warmup_s=plan.warmup_s,
        server_pid=server.pid,
    )
    if status == 200:
        result.ok_total += 1
    if problem:
        result.note_error(problem)
    return result


async def cold_verification(
    server: Server, warm_body: bytes, cold: Sequence[bytes]
) -> dict[str, Any]:
    """One keep-alive connection; each cold channel's first send, then its second."""
    url = server.url + "/message"
    firsts: list[float] = []
    seconds: list[float] = []
    errors: list[str] = []
    async with session(1) as client:
        await post_once(client, url, warm_body)  # open the connection outside the timing
        for body in cold:
            for times in (firsts, seconds):
                status, raw, took = await post_once(client, url, body)
                if status != 200:
                    errors.append(f"HTTP {status}: {raw[:200]!r}")
                times.append(took)
    return {
        "channels": len(cold),
        "first_send_ms": [round(1000 * t, 3) for t in firsts],
        "second_send_ms": [round(1000 * t, 3) for t in seconds],
        "median_first_ms": 1000 * statistics.median(firsts),
        "median_second_ms": 1000 * statistics.median(seconds),
        "errors": errors,
    }


async def pushgod_full(
    plan: Plan,
    workdir: Path,
    hot: tuple[str, str],
    rotating: list[tuple[str, str]],
    cold: list[tuple[str, str]],
    problems: list[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    server = start_daemon(workdir, "pushgod-full")
    try:
        hot_bodies = [body_for(*hot)]
        before, started = count_messages(workdir), time.perf_counter()
        out["hot"] = await load(plan, "pushgod hot full", server, hot_bodies, hot[0])
        elapsed = time.perf_counter() - started
        committed = count_messages(workdir) - before
        acked = out["hot"].ok_total  # every 200, the envelope check and warm-up included
        out["group"] = {
            "committed": committed,
            "acked": acked,
            "elapsed_s": elapsed,
            "committed_per_s": committed / elapsed,
        }
        if committed < acked or (committed > acked and not out["hot"].errors):
            problems.append(f"hot: {acked} sends acknowledged but {committed} messages committed")

        rotate_bodies = [body_for(*channel) for channel in rotating]
        rotate_ids = [channel_id for channel_id, _ in rotating]
        warm = await send_each(server.url + "/message", rotate_bodies, rotate_ids, concurrency=4)
        problems.extend(f"rotate warm-up pass: {p}" for p in warm)
        out["rotate"] = await load(plan, "pushgod rotate", server, rotate_bodies, rotate_ids[0])

        out["cold"] = await cold_verification(
            server, hot_bodies[0], [body_for(*channel) for channel in cold]
        )
        problems.extend(f"cold-verify: {p}" for p in out["cold"]["errors"])
    finally:
        stop(server, problems)
    return out


async def pushgod_normal(
    plan: Plan, workdir: Path, hot: tuple[str, str], problems: list[str]
) -> LoadResult:
    server = start_daemon(workdir, "pushgod-normal", PUSHGOD_STORAGE_SYNCHRONOUS="normal")
    try:
        return await load(plan, "pushgod hot normal", server, [body_for(*hot)], hot[0])
    finally:
        stop(server, problems)


async def bare(plan: Plan, workdir: Path, hot: tuple[str, str], problems: list[str]) -> LoadResult:
    server = start_server(
        "bare", [sys.executable, str(BENCH / "bare_server.py")], clean_environ(), workdir
    )
    try:
        return await load(plan, "bare aiohttp", server, [body_for(*hot)], hot[0])
    finally:
        stop(server, problems)


# --- report ----------------------------------------------------------------------------


def _rate(rate: float) -> str:
    return f"{rate:,.0f} msg/s"


def _cpu(result: LoadResult) -> str:
    def percent(seconds: float) -> str:
        return f"{100 * seconds / result.duration_s:.0f}"

    return "/".join(
        percent(s) for s in (result.server_cpu_s, result.client_cpu_s, result.other_cpu_s)
    )


def _cost(result: LoadResult) -> str:
    return f"{1e6 * cost(result):.0f}" if result.measured else "-"


def cost(result: LoadResult) -> float:
    """Server CPU seconds per measured message."""
    return result.server_cpu_s / result.measured if result.measured else 0.0


def reference_rate(results: dict[str, Any]) -> float:
    """The bare rate: the mean of the runs before and after pushgod's."""
    before: LoadResult = results["bare"]
    after: LoadResult = results["bare-end"]
    return (before.rate + after.rate) / 2


def table(plan: Plan, results: dict[str, Any]) -> list[dict[str, str]]:
    reference = reference_rate(results)
    bare_cost = (cost(results["bare"]) + cost(results["bare-end"])) / 2
    rows: list[dict[str, str]] = []

    def row(name: str, mine: str, theirs: str, ratio: str, **rest: str) -> None:
        cells = {"scenario": name, "pushgod": mine, "reference": theirs, "ratio": ratio}
        cells.update({"target": "-", "result": "-", "p50/p99 ms": "-", "non-200": "-"})
        cells.update({"srv us/msg": "-", "cost ratio": "-", "cpu% srv/cli/oth": "-"})
        cells.update({key.replace("_", " "): value for key, value in rest.items()})
        rows.append(cells)

    def load_row(name: str, result: LoadResult, mine: str, theirs: str, ratio: float) -> None:
        target = TARGETS.get(name)
        row(
            name,
            mine,
            theirs,
            f"{ratio:.2f}",
            target=f">= {target:.2f}" if target is not None else "-",
            result=("ok" if ratio >= target else "MISSED") if target is not None else "-",
            **{
                "p50/p99 ms": f"{result.p50_ms:.1f}/{result.p99_ms:.1f}",
                "non-200": str(result.errors),
                "srv us/msg": _cost(result),
                "cost ratio": f"{bare_cost / cost(result):.2f}" if cost(result) else "-",
                "cpu% srv/cli/oth": _cpu(result),
            },
        )

    for name in ("bare", "bare-end"):
        result = results[name]
        load_row(name, result, "-", _rate(result.rate), result.rate / reference)
    for name in ("hot", "rotate", "hot-normal"):
        result = results[name]
        load_row(name, result, _rate(result.rate), _rate(reference), result.rate / reference)
    cold = results["cold"]
    first, second = cold["median_first_ms"], cold["median_second_ms"]
    row(
        "cold-verify",
        f"{first:.1f} ms",
        f"{second:.1f} ms",
        f"{first / second:.1f}x" if second else "-",
        **{"non-200": str(len(cold["errors"]))},
    )
    group, raw, raw_group = results["group"], results["raw"], results["raw-group"]
    row(
        "group-commit",
        _rate(group["committed_per_s"]),
        f"{raw_group['rows_per_s']:,.0f} rows/s in commits of {raw_group['rows_per_commit']}; "
        f"{raw['commits_per_s']:,.0f} commit/s of 1",
        f"{group['committed_per_s'] / raw_group['rows_per_s']:.2f}",
    )
    return rows


def headlines(plan: Plan, results: dict[str, Any]) -> list[Headline]:
    reference = reference_rate(results)
    hot, rotate = results["hot"], results["rotate"]
    group, raw_group = results["group"], results["raw-group"]
    cold = results["cold"]
    first, second = cold["median_first_ms"], cold["median_second_ms"]
    bare = f"bare aiohttp {_rate(reference)}"
    return [
        Headline(
            "1 send",
            f"POST /message, concurrency {plan.concurrency}",
            _rate(hot.rate),
            bare,
            *at_least(hot.rate / reference, TARGETS["hot"]),
        ),
        Headline(
            "2 durable",
            "committed msg/s (synchronous=full)",
            _rate(group["committed_per_s"]),
            f"raw SQLite {raw_group['rows_per_s']:,.0f} rows/s "
            f"(commits of {raw_group['rows_per_commit']})",
            f"{group['committed_per_s'] / raw_group['rows_per_s']:.2f}",
        ),
        Headline(
            "3 password",
            f"sends over {plan.channels} channels, cache warm",
            _rate(rotate.rate),
            bare,
            *at_least(rotate.rate / reference, TARGETS["rotate"]),
        ),
        Headline(
            "3 password",
            "first send on a channel (argon2id)",
            f"{first:.1f} ms",
            f"its second send {second:.1f} ms",
            f"{first / second:.1f}x" if second else "-",
        ),
    ]


def notes(plan: Plan, results: dict[str, Any]) -> list[str]:
    found = []
    noisy = {}
    for name in LOADS:
        result: LoadResult = results[name]
        noisy[name] = 100 * result.other_cpu_s / result.duration_s
        if result.errors:
            found.append(f"{name}: {result.errors} failed requests, e.g. {result.error_samples[0]}")
    written = [
        f"{name} {results[name].disk_bytes / max(results[name].ok_total, 1) / 1024:.1f} KiB"
        for name in ("hot", "rotate", "hot-normal")
    ]
    found.append("the daemon wrote to disk per message: " + ", ".join(written))
    if max(noisy.values()) > NOISY_OTHER_CPU:
        found.append(
            "other processes used up to "
            f"{max(noisy.values()):.0f}% of a CPU during the measured windows: the rates "
            "and ratios are disturbed; the cost ratio is the steadier figure"
        )
    return found


NAME = "send"
LEGEND = (
    "\n".join(f"{name:<13} {text}" for name, text in SCENARIO_LEGEND.items())
    + """
srv us/msg: server process CPU per measured message; cost ratio: bare's us/msg
over this one's; cpu%: server, client and other processes during the measured
window, in percent of one CPU"""
)


def title(plan: Plan) -> str:
    return (
        f"pushgod send benchmark: concurrency {plan.concurrency}, {plan.duration_s:g} s "
        f"per scenario after {plan.warmup_s:g} s warm-up, {os.cpu_count()} CPUs"
        + smoke_suffix(plan.smoke)
    )


def run(plan: Plan, workdir: Path, problems: list[str]) -> dict[str, Any]:
    setup_env = daemon_environ(workdir, free_port())
    started = time.perf_counter()
    hot = cli_create_channel(setup_env, workdir, "bench hot")
    channels = create_channels(
        setup_env,
        [f"bench rotate {i}" for i in range(plan.channels)]
        + [f"bench cold {i}" for i in range(plan.cold)],
    )
    rotating, cold = channels[: plan.channels], channels[plan.channels :]
    setup_s = time.perf_counter() - started

    async def scenarios() -> dict[str, Any]:
        results: dict[str, Any] = {"bare": await bare(plan, workdir, hot, problems)}
        results["raw"] = raw_sqlite(workdir, plan.raw_s, "full", 1)
        results["raw-group"] = raw_sqlite(workdir, plan.raw_s, "full", plan.concurrency)
        full = await pushgod_full(plan, workdir, hot, rotating, cold, problems)
        results.update(full)
        results["hot-normal"] = await pushgod_normal(plan, workdir, hot, problems)
        results["bare-end"] = await bare(plan, workdir, hot, problems)
        return results

    results = asyncio.run(scenarios())
    results["setup_s"] = setup_s
    return results


def details(plan: Plan, results: dict[str, Any]) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, LoadResult):
            return value.as_dict()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return {"targets": TARGETS, "scenarios": {k: convert(v) for k, v in results.items()}}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per load")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--channels", type=int, default=100, help="channels in 'rotate'")
    parser.add_argument("--cold", type=int, default=10, help="channels in 'cold-verify'")
    add_common_arguments(parser)
    return parser


def failed(results: dict[str, Any], problems: list[str]) -> bool:
    return bool(problems) or any(results[name].errors for name in LOADS)


def main(argv: list[str] | None = None) -> int:
    return script.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
