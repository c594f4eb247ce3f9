"""MQTT ingest: Thing updates through Mosquitto into pushgod, against a plain subscriber.

    python bench/mqtt.py [--updates N] [--window W] [--smoke]

Starts a real Mosquitto (tests/broker.py, dynamic security, a free port) and the pushgod
daemon as a child process with its MQTT bridge on, registers 1,000 devices, then for
each (QoS, Things) publishes N updates round-robin over the Things. pushgod's rate is N
over the time until every Thing's retained canonical state carries its final value; the
reference is the same publisher to a plain aiomqtt subscriber process through the same
broker, just before and just after. Prints one table and writes it as JSON to
bench/results/mqtt-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
# tests/broker.py is the Mosquitto the tests use; bench runs from the repo, so reuse it.
sys.path.insert(0, str(BENCH.parent / "tests"))

import aiomqtt  # noqa: E402
import script  # noqa: E402
from broker import Broker  # noqa: E402
from harness import (  # noqa: E402
    BenchError,
    Server,
    cpu_seconds,
    memory_bytes,
    system_busy_seconds,
)
from report import NOISY_OTHER_CPU, Headline, add_common_arguments, at_least, smoke_suffix  # noqa: E402
from send import cli_create_channel, daemon_environ, start_daemon, stop  # noqa: E402

TARGET = 0.60
ROOT = "pushgod"
RAW_ROOT = "pushraw"
"""The reference's topics: pushgod's device topics with another first level of the same
length, so the daemon (subscribed to pushgod/things/+/in/#) stays idle during it."""
ATTR = "counter"
VALUE_STRIDE = 10_000_000
"""Run r publishes the values r * VALUE_STRIDE + i: every run's values are new and higher."""
READY_WAIT_S = 30.0
RSS_SAMPLE_S = 0.2


def thing_name(index: int) -> str:
    return f"t{index:04d}"


def final_values(things: int, updates: int, base: int) -> dict[str, int]:
    """Each Thing's last value when update i (value base + i) goes to Thing i % things."""
    return {thing_name(i % things): base + i for i in range(max(0, updates - things), updates)}


@dataclass(frozen=True)
class Plan:
    qos: tuple[int, ...]
    things: tuple[int, ...]
    updates: int
    window: int
    idle_s: float
    max_queued: int | None
    smoke: bool

    def scenarios(self) -> list[tuple[int, int]]:
        return [(qos, things) for things in self.things for qos in self.qos]


def plan_from(args: argparse.Namespace) -> Plan:
    if args.updates < 1 or args.window < 1 or min(args.things) < 1 or max(args.things) > 9999:
        raise SystemExit("mqtt: updates, window and things must be positive (things at most 9999)")
    max_queued = None if args.max_queued < 0 else args.max_queued
    if args.smoke:
        return Plan((0, 1), (10, 100), 400, args.window, 5.0, max_queued, True)
    return Plan(
        tuple(args.qos), tuple(args.things), args.updates, args.window, 20.0, max_queued, False
    )


# --- the subscriber process ------------------------------------------------------------
#
# `python bench/mqtt.py --watch` reads one JSON line (what to watch, as whom) on stdin,
# subscribes, says {"ready": true}, and answers with its figures once it has everything
# or nothing came for `idle_s`. Times are time.monotonic(), which on Linux is one clock
# for every process (CLOCK_MONOTONIC), so the parent compares them with its own.


async def watch(spec: dict[str, Any]) -> dict[str, Any]:
    raw = spec["mode"] == "raw"
    expected: dict[str, int] = final_values(spec["things"], spec["updates"], spec["base"])
    base, updates = spec["base"], spec["updates"]
    remaining = set(expected)
    last: dict[str, int] = {}
    out: dict[str, Any] = {"received": 0, "in_run": 0, "regressions": 0}
    out |= {"first_at": None, "last_at": None, "done_at": None, "timed_out": False}
    client = aiomqtt.Client(
        spec["host"],
        spec["port"],
        username=spec["username"],
        password=spec["password"],
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"bench-watch-{secrets.token_hex(4)}",
    )

    def value_of(payload: bytes) -> int | None:
        if raw:
            return int(payload)
        if not payload:
            return None
        attrs = json.loads(payload).get("attrs", {})
        value = attrs.get(ATTR)
        return value if isinstance(value, int) else None

    async def read() -> None:
        async for message in client.messages:
            now = time.monotonic()
            out["received"] += 1
            thing = message.topic.value.split("/")[2]
            assert isinstance(message.payload, bytes)
            value = value_of(message.payload)
            if value is None or not base <= value < base + updates:
                continue  # a retained state from before this run
            if out["first_at"] is None:
                out["first_at"] = now
            out["last_at"] = now
            out["in_run"] += 1
            if value <= last.get(thing, -1):
                out["regressions"] += 1
            last[thing] = value
            if expected.get(thing) == value:
                remaining.discard(thing)
                if not remaining:
                    out["done_at"] = now
                    return

    async with client:
        await client.subscribe(spec["topic"], qos=1)
        print(json.dumps({"ready": True}), flush=True)
        cpu_at_ready = time.process_time()
        reader = asyncio.create_task(read())
        seen = -1
        while not reader.done():
            await asyncio.wait([reader], timeout=spec["idle_s"])
            if not reader.done() and out["received"] == seen:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                out["timed_out"] = True
            seen = out["received"]
        if not reader.cancelled():
            reader.result()
        # Measured here: once the answer is out the process exits, and its /proc entry with it.
        out["cpu_s"] = time.process_time() - cpu_at_ready
    out["missing"] = sorted(remaining)[:5]
    out["missing_count"] = len(remaining)
    out["wrong"] = {
        thing: last.get(thing) for thing in sorted(expected) if last.get(thing) != expected[thing]
    }
    out["wrong"] = dict(list(out["wrong"].items())[:5])
    return out


def watch_main() -> int:
    spec = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(watch(spec))), flush=True)
    return 0


class Watcher:
    """The subscriber process, seen from the parent."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @classmethod
    async def start(cls, workdir: Path, name: str, spec: dict[str, Any]) -> Watcher:
        log_path = workdir / f"watch-{name}.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(BENCH / "mqtt.py"),
                "--watch",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        watcher = cls(process, log_path)
        assert process.stdin is not None
        process.stdin.write(json.dumps(spec).encode() + b"\n")
        await process.stdin.drain()
        ready = await watcher.read(READY_WAIT_S)
        if not ready.get("ready"):
            raise BenchError(f"the {name} subscriber: {ready}")
        return watcher

    async def read(self, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                line = await self.process.stdout.readline()
        except TimeoutError:
            raise BenchError(f"a subscriber said nothing for {timeout_s:.0f} s") from None
        if not line:
            raise BenchError("a subscriber exited:\n" + self.log_tail())
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> int:
        try:
            async with asyncio.timeout(10):
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


# --- the broker, the daemon and the devices ---------------------------------------------


class BenchBroker(Broker):
    """tests/broker.py's Mosquitto, logging what a production broker logs (the tests' debug
    log writes several lines per message) and, optionally, another max_queued_messages."""

    max_queued: int | None = None

    def _write_config(self, dynsec_path: Path) -> None:
        super()._write_config(dynsec_path)
        conf = self.directory / "mosquitto.conf"
        levels = "".join(f"log_type {level}\n" for level in ("error", "warning", "notice"))
        text = conf.read_text().replace("log_type all\n", levels)
        if self.max_queued is not None:
            text += f"max_queued_messages {self.max_queued}\n"
        conf.write_text(text)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid


@dataclass
class Setup:
    broker: BenchBroker
    publisher: tuple[str, str]
    channel: tuple[str, str]
    env: dict[str, str]
    register_s: float = 0.0


def write_config(workdir: Path, broker: Broker) -> None:
    (workdir / "pushgod.toml").write_text(
        "[mqtt]\n"
        "enabled = true\n"
        f'host = "{broker.host}"\n'
        f"port = {broker.port}\n"
        f'username = "{broker.bridge_username}"\n'
        f'password = "{broker.bridge_password}"\n'
    )


def register_devices(env: dict[str, str], workdir: Path, channel_id: str, count: int) -> None:
    """The first device with `pushgod device add --create --json` (dynamic security, as an
    operator does it), the others in this process through the same service call, with
    the files backend: a dynsec account costs the broker a rewrite of its whole JSON file,
    and the publisher does not log in as the devices anyway (it uses an account of its own
    that may publish to every Thing's in/ topics)."""
    argv = ["device", "add", thing_name(0), "--channel", channel_id, "--create", "--json"]
    out = subprocess.run(
        [sys.executable, "-m", "pushgod", *argv],
        env=env,
        cwd=workdir,
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    )
    if json.loads(out.stdout)["thing_id"] != thing_name(0):
        raise BenchError(f"pushgod device add: {out.stdout}")
    if count < 2:
        return

    from pushgod.cli.admin import with_services
    from pushgod.config import load_settings
    from pushgod.mqtt.accounts import open_accounts
    from pushgod.service.services import Services

    settings = load_settings(environ=env)
    settings = replace(settings, mqtt=replace(settings.mqtt, provisioning="files"))

    async def work(services: Services) -> None:
        slots = asyncio.Semaphore(16)  # the writer commits what is queued in one go

        async def one(accounts: Any, index: int) -> None:
            async with slots:
                await services.devices.add(
                    None, accounts, thing_name(index), channel_id, create=True
                )

        async with open_accounts(settings.mqtt, workdir / "device-files") as accounts:
            await asyncio.gather(*(one(accounts, index) for index in range(1, count)))

    with_services(settings, work)


async def wait_online(broker: Broker) -> None:
    async with broker.client(broker.ha_username, broker.ha_password) as client:
        await client.subscribe(f"{ROOT}/status", qos=1)
        async with asyncio.timeout(READY_WAIT_S):
            async for message in client.messages:
                if message.payload == b"online":
                    return


# --- one run: the publisher and what the subscriber saw ---------------------------------


@dataclass
class Run:
    """One publisher pass and what the subscriber process saw."""

    kind: str  # raw | pushgod | warm-up
    qos: int
    things: int
    updates: int
    base: int
    first_publish_at: float = 0.0
    published_at: float = 0.0
    seen: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    window_s: float = 0.0

    @property
    def done_at(self) -> float | None:
        if self.kind == "raw":
            return self.seen.get("last_at") if self.complete else None
        value: float | None = self.seen.get("done_at")
        return value

    @property
    def complete(self) -> bool:
        if self.kind == "raw":
            return bool(self.seen.get("in_run") == self.updates)
        return self.seen.get("done_at") is not None

    @property
    def rate(self) -> float:
        """Updates a second from the first publish to the end (0 when incomplete)."""
        done = self.done_at
        return self.updates / (done - self.first_publish_at) if done else 0.0

    @property
    def publish_rate(self) -> float:
        elapsed = self.published_at - self.first_publish_at
        return self.updates / elapsed if elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("seen", "cpu")}
        out["rate"] = round(self.rate, 1)
        out["publish_rate"] = round(self.publish_rate, 1)
        out["complete"] = self.complete
        out["seen"] = self.seen
        out["cpu_s"] = {k: round(v, 3) for k, v in self.cpu.items()}
        return out


async def publish(setup: Setup, run: Run, window: int, root: str) -> None:
    """`run.updates` publishes round-robin over the Things, `window` of them in flight: each
    worker takes the next index and publishes it at once, so they leave in index order."""
    topics = [f"{root}/things/{thing_name(k)}/in/attr/{ATTR}" for k in range(run.things)]
    broker = setup.broker
    client = broker.client(
        *setup.publisher,
        identifier=f"bench-pub-{secrets.token_hex(4)}",
        max_inflight_messages=window,
    )
    client.pending_calls_threshold = window + 1
    async with client:
        position = 0

        async def worker() -> None:
            nonlocal position
            while position < run.updates:
                index, position = position, position + 1
                value = run.base + index
                await client.publish(topics[index % run.things], str(value).encode(), qos=run.qos)

        run.first_publish_at = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(window)))
        run.published_at = time.monotonic()


class CpuMarks:
    """CPU seconds of the processes in a run, and of everything else on the machine."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.busy = system_busy_seconds()
        self.started = time.monotonic()

    def finish(self, run: Run, subscriber_cpu_s: float) -> None:
        run.cpu = {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        run.cpu["subscriber"] = subscriber_cpu_s
        run.cpu["other"] = max(0.0, system_busy_seconds() - self.busy - sum(run.cpu.values()))
        run.window_s = time.monotonic() - self.started


async def one_run(plan: Plan, setup: Setup, workdir: Path, run: Run, pids: dict[str, int]) -> None:
    """The subscriber process for `run` (ready once subscribed), the publisher, its answer."""
    raw = run.kind == "raw"
    spec = {
        "mode": "raw" if raw else "state",
        "topic": f"{RAW_ROOT}/things/+/in/#" if raw else f"{ROOT}/things/+/state",
        "host": setup.broker.host,
        "port": setup.broker.port,
        "username": setup.broker.ha_username,
        "password": setup.broker.ha_password,
        "things": run.things,
        "updates": run.updates,
        "base": run.base,
        "idle_s": plan.idle_s,
    }
    name = f"{run.kind}-qos{run.qos}-{run.things}-{run.base // VALUE_STRIDE}"
    watcher = await Watcher.start(workdir, name, spec)
    try:
        marks = CpuMarks(pids)
        await publish(setup, run, plan.window, RAW_ROOT if raw else ROOT)
        run.seen = await watcher.read(plan.idle_s * 3 + 60)
        marks.finish(run, run.seen["cpu_s"])
    finally:
        status = await watcher.close()
    if status != 0:
        raise BenchError(f"the {name} subscriber exited with {status}:\n{watcher.log_tail()}")


# --- checking the final states -----------------------------------------------------------


async def retained_states(broker: Broker, names: set[str]) -> dict[str, int | None]:
    """The counter each Thing's retained canonical state carries, read by a new subscriber."""
    found: dict[str, int | None] = {}
    async with broker.client(broker.ha_username, broker.ha_password) as client:
        await client.subscribe(f"{ROOT}/things/+/state", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                async for message in client.messages:
                    thing = message.topic.value.split("/")[2]
                    if thing in names and message.retain:
                        assert isinstance(message.payload, bytes)
                        attrs = json.loads(message.payload or b"{}").get("attrs", {})
                        found[thing] = attrs.get(ATTR)
                        if len(found) == len(names):
                            break
    return found


def committed_states(workdir: Path, channel_id: str) -> dict[str, int | None]:
    """The counter of each Thing as committed, read from the daemon's database (read-only)."""
    path = workdir / "data" / "pushgod.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT id, data FROM things WHERE channel_id = ?", (channel_id,))
        return {thing: json.loads(data).get("attrs", {}).get(ATTR) for thing, data in rows}
    finally:
        db.close()


@dataclass
class Scenario:
    qos: int
    things: int
    raw_before: Run
    pushgod: Run
    raw_after: Run
    final_wrong_retained: dict[str, Any] = field(default_factory=dict)
    final_wrong_committed: dict[str, Any] = field(default_factory=dict)
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0

    @property
    def name(self) -> str:
        return f"qos{self.qos}-{self.things}"

    @property
    def raw_rate(self) -> float:
        return (self.raw_before.rate + self.raw_after.rate) / 2

    @property
    def ratio(self) -> float:
        return self.pushgod.rate / self.raw_rate if self.raw_rate else 0.0

    @property
    def daemon_cost(self) -> float:
        """The daemon's CPU seconds per update."""
        return self.pushgod.cpu.get("daemon", 0.0) / self.pushgod.updates

    @property
    def subscriber_cost(self) -> float:
        """The plain subscriber's CPU seconds per message, mean of both raw runs."""
        runs = (self.raw_before, self.raw_after)
        return sum(run.cpu.get("subscriber", 0.0) / run.updates for run in runs) / 2

    @property
    def final_wrong(self) -> int:
        """Things whose final state did not show, or is not right where it was read."""
        return max(
            self.pushgod.seen.get("missing_count", self.things),
            len(self.final_wrong_retained),
            len(self.final_wrong_committed),
        )

    @property
    def final_right(self) -> bool:
        return (
            self.pushgod.complete
            and not self.final_wrong_retained
            and not self.final_wrong_committed
        )

    def as_dict(self) -> dict[str, Any]:
        pushgod = self.pushgod
        states = pushgod.seen.get("in_run", 0)
        return {
            "scenario": self.name,
            "qos": self.qos,
            "things": self.things,
            "updates": pushgod.updates,
            "pushgod_rate": round(pushgod.rate, 1),
            "raw_rate": round(self.raw_rate, 1),
            "ratio": round(self.ratio, 3),
            "target": TARGET,
            "final_right": self.final_right,
            "final_wrong": self.final_wrong,
            "final_wrong_retained": self.final_wrong_retained,
            "final_wrong_committed": self.final_wrong_committed,
            "states_published": states,
            "states_per_update": round(states / pushgod.updates, 4),
            "daemon_us_per_update": round(1e6 * self.daemon_cost, 1),
            "raw_subscriber_us_per_message": round(1e6 * self.subscriber_cost, 1),
            "rss_before": self.rss_before,
            "rss_peak": self.rss_peak,
            "rss_after": self.rss_after,
            "runs": {
                "raw_before": self.raw_before.as_dict(),
                "pushgod": pushgod.as_dict(),
                "raw_after": self.raw_after.as_dict(),
            },
        }


async def sample_rss(scenario: Scenario, pid: int, stop_sampling: asyncio.Event) -> None:
    while not stop_sampling.is_set():
        scenario.rss_peak = max(scenario.rss_peak, memory_bytes(pid))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RSS_SAMPLE_S):
                await stop_sampling.wait()


def run_problems(run: Run) -> list[str]:
    seen, name = run.seen, f"{run.kind} qos{run.qos} {run.things} things"
    problems = []
    if not run.complete:
        if run.kind == "raw":
            got = f"{seen.get('in_run')} of {run.updates} updates received"
        else:
            got = f"{run.things - seen.get('missing_count', 0)} of {run.things} Things final"
        idle = " (then nothing came for the idle limit)" if seen.get("timed_out") else ""
        problems.append(f"{name}: incomplete: {got}{idle}; last values {seen.get('wrong')}")
    if seen.get("regressions"):
        problems.append(f"{name}: {seen['regressions']} values older than one already seen")
    return problems


# --- the whole benchmark ------------------------------------------------------------------


async def run_all(plan: Plan, workdir: Path, problems: list[str]) -> dict[str, Any]:
    broker = BenchBroker()
    broker.max_queued = plan.max_queued
    async with broker:
        publisher = ("bench-publisher", secrets.token_urlsafe(16))
        acls = [
            {"acltype": "publishClientSend", "topic": f"{root}/things/#", "allow": True}
            for root in (ROOT, RAW_ROOT)
        ]
        await broker.create_client(*publisher, acls)
        write_config(workdir, broker)
        env = daemon_environ(workdir, 0)
        channel = await asyncio.to_thread(cli_create_channel, env, workdir, "bench mqtt")
        setup = Setup(broker, publisher, channel, env)
        started = time.monotonic()
        await asyncio.to_thread(register_devices, env, workdir, channel[0], max(plan.things))
        setup.register_s = time.monotonic() - started

        server = start_daemon(workdir, "pushgod-mqtt")
        try:
            scenarios, warm = await with_daemon(plan, setup, workdir, server, problems)
        finally:
            stop(server, problems)
        daemon_log = server.log_path.read_text(errors="replace")
        broker_log = broker.log_path.read_text(errors="replace")
    drops = [line for line in daemon_log.splitlines() if "dropped a message" in line]
    problems.extend(f"daemon: {line}" for line in drops[:3])
    broker_drops = [line for line in broker_log.splitlines() if "being dropped" in line]
    problems.extend(f"broker: {line}" for line in broker_drops[:3])
    return {"scenarios": scenarios, "warm_up": warm, "register_s": setup.register_s}


async def with_daemon(
    plan: Plan, setup: Setup, workdir: Path, server: Server, problems: list[str]
) -> tuple[list[Scenario], Run]:
    await wait_online(setup.broker)
    pids = {"daemon": server.pid, "broker": setup.broker.pid, "publisher": os.getpid()}
    # One update to every Thing first: HA discovery then names the attribute, so no
    # scenario pays for the first discovery message of a Thing; it also waits out the
    # republication of every Thing that follows the bridge's connect.
    sequence = iter(range(1, 1000))
    warm = Run("warm-up", 1, max(plan.things), max(plan.things), next(sequence) * VALUE_STRIDE)
    await one_run(plan, setup, workdir, warm, pids)
    problems.extend(run_problems(warm))
    scenarios = []
    for qos, things in plan.scenarios():
        runs = [
            Run(kind, qos, things, plan.updates, next(sequence) * VALUE_STRIDE)
            for kind in ("raw", "pushgod", "raw")
        ]
        scenario = Scenario(qos, things, *runs)
        await one_run(plan, setup, workdir, scenario.raw_before, pids)
        scenario.rss_before = scenario.rss_peak = memory_bytes(server.pid)
        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(scenario, server.pid, stop_sampling))
        try:
            await one_run(plan, setup, workdir, scenario.pushgod, pids)
        finally:
            stop_sampling.set()
            await sampler
        scenario.rss_after = memory_bytes(server.pid)
        expected = final_values(things, plan.updates, scenario.pushgod.base)
        retained = await retained_states(setup.broker, set(expected))
        committed = committed_states(workdir, setup.channel[0])
        scenario.final_wrong_retained = {
            k: retained.get(k) for k, v in expected.items() if retained.get(k) != v
        }
        scenario.final_wrong_committed = {
            k: committed.get(k) for k, v in expected.items() if committed.get(k) != v
        }
        await one_run(plan, setup, workdir, scenario.raw_after, pids)
        for run in runs:
            problems.extend(run_problems(run))
        for what, wrong in (
            ("retained", scenario.final_wrong_retained),
            ("committed", scenario.final_wrong_committed),
        ):
            if wrong:
                sample = dict(list(wrong.items())[:3])
                problems.append(
                    f"{scenario.name}: {len(wrong)} Things' {what} state is not their final "
                    f"value, e.g. {sample}"
                )
        scenarios.append(scenario)
    return scenarios, warm


# --- report ------------------------------------------------------------------------------


def _rate(rate: float) -> str:
    return f"{rate:,.0f} upd/s" if rate else "-"


def _mb(value: int) -> str:
    return f"{value / 2**20:.1f} MiB"


def table(plan: Plan, results: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for sc in results["scenarios"]:
        run = sc.pushgod
        window = run.window_s or 1.0

        def percent(name: str, run: Run = run, window: float = window) -> str:
            return f"{100 * run.cpu.get(name, 0.0) / window:.0f}"

        states = run.seen.get("in_run", 0)
        rows.append(
            {
                "scenario": sc.name,
                "pushgod": _rate(run.rate),
                "raw": _rate(sc.raw_rate),
                "ratio": f"{sc.ratio:.2f}",
                "target": f">= {TARGET:.2f}",
                "result": "ok" if sc.ratio >= TARGET else "MISSED",
                "final state": (
                    f"{sc.things}/{sc.things} right"
                    if sc.final_right
                    else f"{sc.final_wrong}/{sc.things} WRONG"
                ),
                "states/upd": f"{states / run.updates:.2f}",
                "dmn us/upd": f"{1e6 * sc.daemon_cost:.0f}",
                "sub us/msg": f"{1e6 * sc.subscriber_cost:.0f}",
                "cost ratio": f"{sc.subscriber_cost / sc.daemon_cost:.2f}"
                if sc.daemon_cost
                else "-",
                "cpu% dmn/brk/pub/sub/oth": "/".join(
                    percent(name)
                    for name in ("daemon", "broker", "publisher", "subscriber", "other")
                ),
                "dmn RSS before/peak": f"{sc.rss_before / 2**20:.0f}/{_mb(sc.rss_peak)}",
            }
        )
    return rows


NAME = "mqtt"
LEGEND = """
pushgod: updates / (every Thing's canonical state at its final value - first
publish); raw: the same publisher to a plain aiomqtt subscriber process, updates /
(last receipt - first publish), mean of a run just before and just after; states/upd:
canonical states published per update (below 1: bursts coalesced); dmn us/upd:
daemon CPU per update; sub us/msg: the plain subscriber's CPU per message in the raw
runs; cost ratio: sub us/msg over dmn us/upd, roughly the ratio the rates would show
with a CPU each; cpu%: daemon, broker, publisher, subscriber and everything
else during the pushgod run, in percent of one CPU; RSS: the daemon's before the
run and its peak during it (sampled every 0.2 s)"""


def title(plan: Plan) -> str:
    return (
        f"pushgod MQTT ingest benchmark: {plan.updates:,} updates per scenario, "
        f"{plan.window} publishes in flight, {os.cpu_count()} CPUs" + smoke_suffix(plan.smoke)
    )


def headlines(plan: Plan, results: dict[str, Any]) -> list[Headline]:
    return [
        Headline(
            "5 MQTT",
            f"Thing updates, QoS {sc.qos}, {sc.things:,} Things",
            _rate(sc.pushgod.rate),
            f"raw aiomqtt {sc.raw_rate:,.0f} msg/s",
            *at_least(sc.ratio, TARGET),
        )
        for sc in results["scenarios"]
    ]


def notes(plan: Plan, results: dict[str, Any]) -> list[str]:
    found = []
    for sc in results["scenarios"]:
        run = sc.pushgod
        other = 100 * run.cpu.get("other", 0.0) / (run.window_s or 1.0)
        if other > NOISY_OTHER_CPU:
            found.append(f"{sc.name}: other processes used {other:.0f}% of a CPU")
        before, after = sc.raw_before.rate, sc.raw_after.rate
        if before and after and abs(before - after) / max(before, after) > 0.2:
            found.append(f"{sc.name}: the raw runs differ: {before:,.0f} and {after:,.0f} upd/s")
    return found


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10_000, help="updates per scenario")
    parser.add_argument("--qos", type=int, nargs="+", choices=(0, 1), default=[0, 1])
    parser.add_argument("--things", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--window", type=int, default=100, help="publishes in flight")
    parser.add_argument(
        "--max-queued",
        type=int,
        default=0,
        help="the broker's max_queued_messages (0, the default: no limit; -1: Mosquitto's own, "
        "1000, which drops messages for a subscriber that falls further behind)",
    )
    add_common_arguments(parser)
    return parser


def run(plan: Plan, workdir: Path, problems: list[str]) -> dict[str, Any]:
    return asyncio.run(run_all(plan, workdir, problems))


def failed(results: dict[str, Any], problems: list[str]) -> bool:
    return bool(problems) or not all(sc.final_right for sc in results["scenarios"])


def details(plan: Plan, results: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": TARGET,
        "register_s": round(results["register_s"], 2),
        "scenarios": [sc.as_dict() for sc in results["scenarios"]],
        "warm_up": results["warm_up"].as_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--watch"]:
        return watch_main()
    return script.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
