"""Fan-out: one channel, N SSE subscribers, messages at a fixed rate; latency and memory.

    python bench/fanout.py [--subscribers N ...] [--rate R] [--duration S] [--smoke]

For each N (100 and 1,000 by default) it starts the pushgod daemon as a child process on
127.0.0.1 exactly as bench/send.py does, opens N SSE streams on one channel from a
separate client process (bench/subscribers.py), waits until every stream is open, then
sends R messages a second for S seconds, each title carrying its send time. Prints one
table and writes it as JSON to bench/results/fanout-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import aiohttp  # noqa: E402
import script  # noqa: E402
from harness import (  # noqa: E402
    BenchError,
    Server,
    cpu_seconds,
    free_port,
    memory_bytes,
    system_busy_seconds,
)
from loadgen import check_envelope, post_once, session  # noqa: E402
from report import NOISY_OTHER_CPU, Headline, add_common_arguments, smoke_suffix  # noqa: E402
from send import MESSAGE_BODY, cli_create_channel, daemon_environ, start_daemon, stop  # noqa: E402

P99_TARGET_MS = 100.0
RSS_PER_SUBSCRIBER_TARGET_KB = 50.0
CONNECT_WAIT_S = 120.0  # the client gives up after 60 s; this is the parent's bound
DRAIN_WAIT_S = 15.0  # how long after the last acknowledged send receipts may still arrive
RSS_SAMPLE_S = 0.2
SEND_CONNECTIONS = 8


@dataclass(frozen=True)
class Plan:
    subscribers: tuple[int, ...]
    rate: float
    duration_s: float
    reader: str
    smoke: bool

    @property
    def messages(self) -> int:
        return max(1, round(self.rate * self.duration_s))


def plan_from(args: argparse.Namespace) -> Plan:
    if args.rate <= 0 or args.duration <= 0 or min(args.subscribers) < 1:
        raise SystemExit("fanout: rate, duration and subscribers must be positive")
    if args.smoke:
        return Plan((2, 5), 20.0, 1.0, args.reader, True)
    return Plan(tuple(args.subscribers), args.rate, args.duration, args.reader, False)


@dataclass
class Scenario:
    """Everything measured with N subscribers."""

    subscribers: int
    rss_before: int = 0
    rss_idle: int = 0
    rss_load_peak: int = 0
    rss_after: int = 0
    hwm_end: int = 0
    connect_s: float = 0.0
    sent: int = 0
    send_errors: int = 0
    send_error_samples: list[str] = field(default_factory=list)
    send_elapsed_s: float = 0.0
    send_rate: float = 0.0
    send_p99_ms: float = 0.0
    window_s: float = 0.0
    daemon_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    receipts: dict[str, Any] = field(default_factory=dict)

    def note_send_error(self, text: str) -> None:
        self.send_errors += 1
        if len(self.send_error_samples) < 3:
            self.send_error_samples.append(text[:300])

    def percent(self, seconds: float) -> float:
        return 100 * seconds / self.window_s if self.window_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["daemon_cpu_percent"] = round(self.percent(self.daemon_cpu_s), 1)
        out["client_cpu_percent"] = round(self.percent(self.client_cpu_s), 1)
        out["other_cpu_percent"] = round(self.percent(self.other_cpu_s), 1)
        out["rss_per_idle_subscriber_bytes"] = round(self.per_subscriber())
        receipts = self.receipts.get("receipts", 0)
        if receipts:
            out["daemon_us_per_delivery"] = round(1e6 * self.daemon_cpu_s / receipts, 2)
            out["client_us_per_receipt"] = round(1e6 * self.client_cpu_s / receipts, 2)
        return out

    def per_subscriber(self) -> float:
        return (self.rss_idle - self.rss_before) / self.subscribers


# --- setup -----------------------------------------------------------------------------


def raise_open_files(wanted: int) -> None:
    """Raise our soft RLIMIT_NOFILE; the daemon and the client inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        raise BenchError(f"the open-file limit is {hard}; {wanted} are needed (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def message_body(channel_id: str, password: str, index: int) -> bytes:
    """The title is what each subscriber reads: the index and the send time in ns."""
    return json.dumps(
        {
            "channel_id": channel_id,
            "password": password,
            "title": f"{index} {time.time_ns()}",
            "body": MESSAGE_BODY,
            "severity": "normal",
            "tags": ["bench"],
        },
        separators=(",", ":"),
    ).encode()


class Client:
    """bench/subscribers.py as a child process, spoken to in JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @classmethod
    async def start(
        cls, workdir: Path, url: str, channel: tuple[str, str], count: int, reader: str
    ) -> Client:
        log_path = workdir / f"subscribers-{count}.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(BENCH / "subscribers.py"),
                url,
                *channel,
                str(count),
                f"--reader={reader}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        return cls(process, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def read(self, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                line = await self.process.stdout.readline()
        except TimeoutError:
            raise BenchError(f"the subscribers said nothing for {timeout_s:.0f} s") from None
        if not line:
            raise BenchError("the subscribers exited:\n" + self.log_tail())
        answer: dict[str, Any] = json.loads(line)
        return answer

    def tell(self, value: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(value).encode() + b"\n")

    async def close(self) -> int:
        """Close its stdin (it ends when it has answered) and wait; kill after a while."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            async with asyncio.timeout(30):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            return -9

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --- one scenario ----------------------------------------------------------------------


async def send_at_rate(scenario: Scenario, url: str, channel: tuple[str, str], plan: Plan) -> None:
    """plan.messages sends at fixed times (start + i/rate), each its own request, so a slow
    reply never delays the next send; the title's time is the scheduled moment's."""
    times: list[float] = []
    starts: list[float] = []
    async with session(SEND_CONNECTIONS) as client:

        async def one(index: int) -> None:
            starts.append(time.perf_counter())
            body = message_body(*channel, index)
            try:
                status, raw, took = await post_once(client, url, body)
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                scenario.note_send_error(f"{type(error).__name__}: {error}")
                return
            if status != 200:
                scenario.note_send_error(f"HTTP {status}: {raw[:200]!r}")
            elif (problem := check_envelope(raw, channel[0])) is not None:
                scenario.note_send_error(problem)
            else:
                scenario.sent += 1
                times.append(took)

        start = time.perf_counter()
        tasks = []
        for index in range(plan.messages):
            await asyncio.sleep(max(0.0, start + index / plan.rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
        scenario.send_elapsed_s = time.perf_counter() - start
    if len(starts) > 1:
        scenario.send_rate = (len(starts) - 1) / (starts[-1] - starts[0])
    if times:
        times.sort()
        scenario.send_p99_ms = 1000 * times[min(len(times) - 1, int(0.99 * len(times)))]


async def sample_rss(scenario: Scenario, pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        scenario.rss_load_peak = max(scenario.rss_load_peak, memory_bytes(pid))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RSS_SAMPLE_S):
                await stop.wait()


async def fan_out(
    plan: Plan, workdir: Path, channel: tuple[str, str], count: int, problems: list[str]
) -> Scenario:
    scenario = Scenario(count)
    server = start_daemon(workdir, f"pushgod-{count}")
    client: Client | None = None
    try:
        await warm_up(server, channel, problems)
        scenario.rss_before = memory_bytes(server.pid)

        client = await Client.start(workdir, server.url, channel, count, plan.reader)
        hello = await client.read(CONNECT_WAIT_S)
        if "connected" not in hello:
            raise BenchError(f"{count} subscribers: {hello}\n{client.log_tail()}")
        scenario.connect_s = hello["seconds"]
        scenario.rss_idle = memory_bytes(server.pid)

        marks = (server.cpu(), cpu_seconds(client.pid), system_busy_seconds())
        started = time.perf_counter()
        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(scenario, server.pid, stop_sampling))
        try:
            await send_at_rate(scenario, server.url + "/message", channel, plan)
            client.tell({"expect": plan.messages, "wait_s": DRAIN_WAIT_S})
            scenario.receipts = await client.read(DRAIN_WAIT_S + 30)
        finally:
            stop_sampling.set()
            await sampler
        scenario.window_s = time.perf_counter() - started
        scenario.daemon_cpu_s = server.cpu() - marks[0]
        scenario.client_cpu_s = cpu_seconds(client.pid) - marks[1]
        busy = system_busy_seconds() - marks[2]
        scenario.other_cpu_s = max(0.0, busy - scenario.daemon_cpu_s - scenario.client_cpu_s)
        scenario.rss_after = memory_bytes(server.pid)
        scenario.hwm_end = memory_bytes(server.pid, "VmHWM")
    finally:
        if client is not None:
            status = await client.close()
            if status != 0:
                problems.append(f"the {count} subscribers exited with status {status}")
        stop(server, problems)
    problems.extend(receipt_problems(scenario, plan))
    return scenario


async def warm_up(server: Server, channel: tuple[str, str], problems: list[str]) -> None:
    """One send before anything is measured: it verifies the password (argon2id, whose
    memory then counts in every RSS figure alike) and loads the send path."""
    async with session(1) as client:
        body = message_body(*channel, -1)
        status, raw, _ = await post_once(client, server.url + "/message", body)
    if status != 200:
        problems.append(f"warm-up send: HTTP {status}: {raw[:200]!r}")
    elif (problem := check_envelope(raw, channel[0])) is not None:
        problems.append(f"warm-up send: {problem}")


def receipt_problems(scenario: Scenario, plan: Plan) -> list[str]:
    name, got = f"{scenario.subscribers} subs", scenario.receipts
    problems = [
        f"{name}: {scenario.send_errors} sends failed, e.g. {s}"
        for s in scenario.send_error_samples[:1]
    ]
    checks = {
        "receipts missing": got.get("missing", -1),
        "receipts duplicated": got.get("duplicated", -1),
        "receipts out of order": got.get("out_of_order", -1),
        "titles with an unknown index": got.get("unexpected_index", -1),
        "stream errors": got.get("errors", -1),
    }
    problems += [f"{name}: {what}: {n}" for what, n in checks.items() if n != 0]
    problems += [f"{name}: stream error: {text}" for text in got.get("error_samples", [])]
    if got.get("distinct_seqs") != plan.messages:
        problems.append(
            f"{name}: {got.get('distinct_seqs')} distinct seqs received for "
            f"{plan.messages} messages sent"
        )
    return problems


# --- report ----------------------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / 2**20:.1f} MiB"


def table(plan: Plan, results: dict[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for sc in results["scenarios"]:
        name = f"{sc.subscribers} subs"
        latency = sc.receipts.get("latency_ms", {})
        expected = sc.subscribers * plan.messages
        missing = sc.receipts.get("missing", expected)
        p99 = latency.get("p99", 0.0)
        per_sub_kb = sc.per_subscriber() / 1024

        def row(figure: str, measured: str, target: str = "-", result: str = "-") -> None:
            rows.append(
                {
                    "scenario": name,  # noqa: B023 - used at once, inside the loop
                    "figure": figure,
                    "measured": measured,
                    "reference/target": target,
                    "result": result,
                }
            )

        def verdict(ok: bool) -> str:
            return "ok" if ok else "MISSED"

        row(
            "send rate",
            f"{sc.send_rate:.1f} msg/s, {sc.sent} ok",
            f"{plan.rate:g} msg/s, {plan.messages} msgs",
        )
        row("latency p50", f"{latency.get('p50', 0.0):.1f} ms")
        row("latency p99", f"{p99:.1f} ms", f"< {P99_TARGET_MS:g} ms", verdict(p99 < P99_TARGET_MS))
        row("latency max", f"{latency.get('max', 0.0):.1f} ms")
        row(
            "receipts missing",
            f"{missing:,} of {expected:,}",
            "0",
            "ok" if missing == 0 else "FAILED",
        )
        row("RSS before subs", _mb(sc.rss_before))
        row("RSS subs idle", _mb(sc.rss_idle), f"+{_mb(sc.rss_idle - sc.rss_before)}")
        row("RSS under load", _mb(sc.rss_load_peak), "peak while sending")
        row(
            "RSS per idle sub",
            f"{per_sub_kb:.1f} KB",
            f"< {RSS_PER_SUBSCRIBER_TARGET_KB:g} KB",
            verdict(per_sub_kb < RSS_PER_SUBSCRIBER_TARGET_KB),
        )
        row(
            "cpu% dmn/cli/oth",
            "/".join(
                f"{sc.percent(s):.0f}" for s in (sc.daemon_cpu_s, sc.client_cpu_s, sc.other_cpu_s)
            ),
            f"over {sc.window_s:.1f} s",
        )
        receipts = sc.receipts.get("receipts", 0)
        row(
            "dmn us/delivery",
            f"{1e6 * sc.daemon_cpu_s / receipts:.1f} us" if receipts else "-",
            f"one CPU's budget {1e6 / (sc.subscribers * plan.rate):.0f} us",
        )
    return rows


NAME = "fanout"
LEGEND = """
latency: time.time_ns() at the scheduled send (in the title) to the read that
brought the event, over every (subscriber, message) receipt; RSS per idle sub:
(RSS with every stream open and idle - RSS before) / subscribers; cpu%: daemon,
subscriber process and everything else from the first send to the last receipt,
in percent of one CPU; dmn us/delivery: daemon CPU per (subscriber, message)
receipt, against what one CPU allows at this rate and subscriber count"""


def title(plan: Plan) -> str:
    return (
        f"pushgod fan-out benchmark: {plan.rate:g} msg/s for {plan.duration_s:g} s to one "
        f"channel, SSE subscribers, {os.cpu_count()} CPUs" + smoke_suffix(plan.smoke)
    )


def headlines(plan: Plan, results: dict[str, Any]) -> list[Headline]:
    """The largest scenario's latency and memory."""
    sc: Scenario = max(results["scenarios"], key=lambda sc: sc.subscribers)
    latency = sc.receipts.get("latency_ms", {})
    p50, p99 = latency.get("p50", 0.0), latency.get("p99", 0.0)
    where = f"{sc.subscribers:,} SSE subs, {plan.rate:g} msg/s"
    per_sub_kb = sc.per_subscriber() / 1024
    return [
        Headline(
            "4 fan-out",
            f"{where}: send->receipt p50 (p99)",
            f"{p50:.1f} ({p99:.1f}) ms",
            f"send acknowledged p99 {sc.send_p99_ms:.1f} ms",
            f"{p99 / sc.send_p99_ms:.1f}x" if sc.send_p99_ms else "-",
            f"p99 < {P99_TARGET_MS:g} ms",
            p99 < P99_TARGET_MS,
        ),
        Headline(
            "4 fan-out",
            f"{where}: RSS peak, per idle sub",
            f"{_mb(sc.rss_load_peak)}, {per_sub_kb:.1f} KiB",
            f"before the subs {_mb(sc.rss_before)}",
            f"{sc.rss_load_peak / sc.rss_before:.1f}x" if sc.rss_before else "-",
            f"< {RSS_PER_SUBSCRIBER_TARGET_KB:g} KiB/sub",
            per_sub_kb < RSS_PER_SUBSCRIBER_TARGET_KB,
        ),
    ]


def notes(plan: Plan, results: dict[str, Any]) -> list[str]:
    found = []
    for sc in results["scenarios"]:
        other = sc.percent(sc.other_cpu_s)
        if other > NOISY_OTHER_CPU:
            found.append(f"{sc.subscribers} subs: other processes used {other:.0f}% of a CPU")
        if sc.percent(sc.client_cpu_s) > 80:
            found.append(
                f"{sc.subscribers} subs: the subscriber process used "
                f"{sc.percent(sc.client_cpu_s):.0f}% of a CPU; its own queueing is in the "
                "latencies"
            )
    return found


def run(plan: Plan, workdir: Path, problems: list[str]) -> dict[str, Any]:
    raise_open_files(max(plan.subscribers) + 256)
    setup_env = daemon_environ(workdir, free_port())
    channel = cli_create_channel(setup_env, workdir, "bench fanout")

    async def scenarios() -> list[Scenario]:
        return [await fan_out(plan, workdir, channel, n, problems) for n in plan.subscribers]

    return {"scenarios": asyncio.run(scenarios())}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscribers", type=int, nargs="+", default=[100, 1000], help="one scenario each"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="messages a second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    parser.add_argument(
        "--reader",
        choices=("protocol", "aiohttp"),
        default="protocol",
        help="how the subscriber process reads (see bench/subscribers.py)",
    )
    add_common_arguments(parser)
    return parser


def failed(results: dict[str, Any], problems: list[str]) -> bool:
    return bool(problems)


def details(plan: Plan, results: dict[str, Any]) -> dict[str, Any]:
    return {
        "messages": plan.messages,
        "targets": {
            "p99_ms": P99_TARGET_MS,
            "rss_per_idle_subscriber_kb": RSS_PER_SUBSCRIBER_TARGET_KB,
        },
        "scenarios": [sc.as_dict() for sc in results["scenarios"]],
    }


def main(argv: list[str] | None = None) -> int:
    return script.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
