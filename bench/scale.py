"""Scale: reads on a store holding 1,000,000 messages over 100 channels and 10,000 Things.

    python bench/scale.py [--messages N] [--channels N] [--things N] [--smoke]

Creates the channels (argon2id-hashed passwords, in this process), starts the daemon,
creates the Things and one message per channel over HTTP (the real rows), stops it, then
fills each channel up to its share of the messages by cloning its real message row with
new ids, titles and times, interleaved over the channels as live traffic would be. The
daemon starts again on the full store; the newest 50 messages of a random channel and a
random Thing are read over HTTP, one request at a time, against the same queries run on
raw SQLite on the same file. Prints a table and writes bench/results/scale-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import aiohttp  # noqa: E402
import script  # noqa: E402
from harness import BenchError, Server  # noqa: E402
from loadgen import HEADERS, check_envelope, post_once, session  # noqa: E402
from report import Headline, add_common_arguments, smoke_suffix  # noqa: E402
from send import body_for, create_channels, daemon_environ, start_daemon, stop  # noqa: E402

NEWEST_TARGET_MS = 5.0
PAGE = 50
FILL_ROUNDS = 200
"""Rounds over every channel per transaction of the fill."""
THING_CONCURRENCY = 16


@dataclass(frozen=True)
class Plan:
    messages: int
    channels: int
    things: int
    reads: int
    smoke: bool

    @property
    def per_channel(self) -> int:
        return self.messages // self.channels


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages in the store")
    parser.add_argument("--channels", type=int, default=100, help="channels they spread over")
    parser.add_argument("--things", type=int, default=10_000, help="Things over the channels")
    parser.add_argument("--reads", type=int, default=1_000, help="timed reads of each kind")
    add_common_arguments(parser)
    return parser


def plan_from(args: argparse.Namespace) -> Plan:
    if args.smoke:
        return Plan(2_000, 4, 40, 20, True)
    if min(args.messages, args.channels, args.things, args.reads) < 1:
        raise SystemExit("scale: messages, channels, things and reads must be positive")
    return Plan(args.messages, args.channels, args.things, args.reads, False)


@dataclass
class Latencies:
    """Seconds per request, one request at a time."""

    samples: list[float] = field(default_factory=list)

    def ms(self, fraction: float) -> float:
        ordered = sorted(self.samples)
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def as_dict(self) -> dict[str, float]:
        return {
            "count": len(self.samples),
            "p50_ms": round(self.ms(0.50), 3),
            "p99_ms": round(self.ms(0.99), 3),
            "mean_ms": round(1000 * statistics.mean(self.samples), 3),
        }


# --- building the store -----------------------------------------------------------------


async def create_things_and_templates(
    server: Server, channels: list[tuple[str, str]], things: int
) -> dict[str, list[str]]:
    """Things spread evenly over the channels, and one real message per channel."""
    owned: dict[str, list[str]] = {channel_id: [] for channel_id, _ in channels}
    async with session(THING_CONCURRENCY) as client:
        for channel_id, password in channels:
            status, raw, _ = await post_once(
                client, server.url + "/message", body_for(channel_id, password)
            )
            if status != 200 or check_envelope(raw, channel_id) is not None:
                raise BenchError(f"template message: HTTP {status}: {raw[:200]!r}")

        slots = asyncio.Semaphore(THING_CONCURRENCY)

        async def one(index: int) -> None:
            channel_id, password = channels[index % len(channels)]
            body = {
                "channel_id": channel_id,
                "password": password,
                "title": f"sensor {index}",
                "observed_at": int(time.time()),
                "attrs": {"temperature": 20 + index % 10, "battery": 90},
            }
            async with (
                slots,
                client.post(
                    server.url + "/thing/create", data=json.dumps(body), headers=HEADERS
                ) as response,
            ):
                reply = await response.read()
            if response.status != 200:
                raise BenchError(f"/thing/create: HTTP {response.status}: {reply[:200]!r}")
            owned[channel_id].append(json.loads(reply)["data"]["thing_id"])

        await asyncio.gather(*(one(index) for index in range(things)))
    return owned


def database(workdir: Path) -> Path:
    return workdir / "data" / "pushgod.db"


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def fill_messages(path: Path, plan: Plan) -> int:
    """Clone each channel's one real message up to its share; returns the rows added.

    The clones go through pushgod's own row writer (`store.messages.insert`, its change row
    included), in large transactions on a connection of our own: the rows are the ones a
    send writes, only the service layer's per-request work is skipped.
    """
    from peewee import SqliteDatabase

    from pushgod.store import messages as message_rows
    from pushgod.store.tables import Tables
    from pushgod.store.writer import WriteTx

    db = SqliteDatabase(str(path), pragmas={"synchronous": "off"})  # set-up, not measured
    tables = Tables(db)
    try:
        cursor = db.connection().execute("SELECT * FROM messages")
        columns = [column[0] for column in cursor.description]
        templates = [
            {
                k: v
                for k, v in message_rows.decode(dict(zip(columns, row, strict=True))).items()
                if k != "seq"
            }
            for row in cursor.fetchall()
        ]
        if len(templates) != plan.channels:
            raise BenchError(f"expected {plan.channels} template messages, found {len(templates)}")
        clones = plan.per_channel - 1
        # The oldest clone is an hour old: inside any retention age, spread like traffic.
        first_ms = int(time.time() * 1000) - 3_600_000
        step_ms = 3_600_000 / max(1, clones * plan.channels)
        added = 0
        for start in range(0, clones, FILL_ROUNDS):
            with db.atomic():
                for round_ in range(start, min(clones, start + FILL_ROUNDS)):
                    for template in templates:
                        at = int(first_ms + added * step_ms)
                        message = template | {
                            "message_id": random.randbytes(16).hex(),
                            "op_id": random.randbytes(16).hex(),
                            "title": f"bench {round_}",
                            "occurred_at": at,
                            "created_at": at,
                        }
                        message_rows.insert(WriteTx(tables), message)
                        added += 1
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return added
    finally:
        db.close()


def count_rows(path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("messages", "things", "changes", "channels")
        }
    finally:
        db.close()


# --- measuring --------------------------------------------------------------------------


async def timed_reads(
    url: str,
    channels: list[tuple[str, str]],
    owned: dict[str, list[str]],
    reads: int,
    problems: list[str],
) -> dict[str, Latencies]:
    """Newest-50 pages and Thing reads, alternating, one request at a time."""
    results = {"newest": Latencies(), "thing": Latencies()}
    chooser = random.Random(7)
    async with session(1) as client:

        async def get(kind: str | None, path: str, password: str, channel_id: str) -> bytes:
            headers = {"Authorization": aiohttp.encode_basic_auth(channel_id, password)}
            started = time.perf_counter()
            async with client.get(url + path, headers=headers) as response:
                raw = await response.read()
            if kind is not None:
                results[kind].samples.append(time.perf_counter() - started)
            if response.status != 200:
                problems.append(f"GET {path}: HTTP {response.status}: {raw[:200]!r}")
            return raw

        # Unmeasured: each channel's first read verifies its password (argon2id).
        for channel_id, password in channels:
            await get(None, f"/api/v1/channels/{channel_id}", password, channel_id)
        for _ in range(reads):
            channel_id, password = chooser.choice(channels)
            base = f"/api/v1/channels/{channel_id}"
            raw = await get("newest", f"{base}/messages?limit={PAGE}", password, channel_id)
            page = json.loads(raw).get("data", {})
            items = page.get("messages", [])
            if len(items) != PAGE:
                problems.append(f"newest page of {channel_id}: {len(items)} items, not {PAGE}")
                break
            thing_id = chooser.choice(owned[channel_id])
            await get("thing", f"{base}/things/{thing_id}", password, channel_id)
    return results


def raw_reads(
    path: Path, channels: list[tuple[str, str]], owned: dict[str, list[str]], reads: int
) -> dict[str, Latencies]:
    """The same two reads as plain SQLite queries on the same file (rows fetched, JSON
    decoded), the floor under any server answering them."""
    results = {"newest": Latencies(), "thing": Latencies()}
    chooser = random.Random(7)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for _ in range(reads):
            channel_id, _password = chooser.choice(channels)
            now_ms = int(time.time() * 1000)
            started = time.perf_counter()
            rows = db.execute(
                "SELECT seq, id, created_at, expires_at, data FROM messages"
                " WHERE channel_id = ? AND (expires_at IS NULL OR expires_at > ?)"
                " ORDER BY seq DESC LIMIT ?",
                (channel_id, now_ms, PAGE),
            ).fetchall()
            decoded = [json.loads(row[4]) for row in rows]
            results["newest"].samples.append(time.perf_counter() - started)
            if len(decoded) != PAGE:
                raise BenchError(f"raw newest page of {channel_id}: {len(decoded)} rows")
            thing_id = chooser.choice(owned[channel_id])
            started = time.perf_counter()
            row = db.execute(
                "SELECT data FROM things WHERE channel_id = ? AND id = ?", (channel_id, thing_id)
            ).fetchone()
            json.loads(row[0])
            results["thing"].samples.append(time.perf_counter() - started)
    finally:
        db.close()
    return results


def run(plan: Plan, workdir: Path, problems: list[str]) -> dict[str, Any]:
    env = daemon_environ(workdir, 0)
    started = time.perf_counter()
    channels = create_channels(env, [f"bench scale {i}" for i in range(plan.channels)])
    server = start_daemon(workdir, "pushgod-scale-fill")
    try:
        owned = asyncio.run(create_things_and_templates(server, channels, plan.things))
    finally:
        stop(server, problems)
    path = database(workdir)
    bytes_before = disk_bytes(path)
    fill_started = time.perf_counter()
    added = fill_messages(path, plan)
    fill_s = time.perf_counter() - fill_started
    bytes_after = disk_bytes(path)
    rows = count_rows(path)

    launched = time.perf_counter()
    server = start_daemon(workdir, "pushgod-scale")
    ready_s = time.perf_counter() - launched
    try:
        served = asyncio.run(timed_reads(server.url, channels, owned, plan.reads, problems))
    finally:
        stop(server, problems)
    raw = raw_reads(path, channels, owned, plan.reads)
    return {
        "setup_s": fill_started - started,
        "fill_s": fill_s,
        "rows": rows,
        "added_messages": added,
        "bytes_before_fill": bytes_before,
        "bytes_after_fill": bytes_after,
        "bytes_per_message": (bytes_after - bytes_before) / added if added else 0.0,
        "message_json_bytes": _mean_message_bytes(path),
        "ready_s": ready_s,
        "served": {kind: value.as_dict() for kind, value in served.items()},
        "raw": {kind: value.as_dict() for kind, value in raw.items()},
    }


def _mean_message_bytes(path: Path) -> float:
    """What a message is worth: its JSON as the read API gives it, over a sample."""
    from pushgod.model.fields import compact_json
    from pushgod.store import messages as message_rows

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM messages LIMIT 1000").fetchall()
        sizes = [len(compact_json(message_rows.decode(dict(row))).encode()) for row in rows]
        return statistics.mean(sizes) if sizes else 0.0
    finally:
        db.close()


# --- report -----------------------------------------------------------------------------


def headlines(plan: Plan, results: dict[str, Any]) -> list[Headline]:
    served, raw = results["served"], results["raw"]
    newest, thing = served["newest"], served["thing"]
    count = f"{results['rows']['messages']:,}"
    return [
        Headline(
            "8 scale",
            f"newest {PAGE} of {count} msgs, p50 (p99)",
            f"{newest['p50_ms']:.2f} ({newest['p99_ms']:.2f}) ms",
            f"raw SQLite {raw['newest']['p50_ms']:.2f} ms",
            f"{newest['p50_ms'] / raw['newest']['p50_ms']:.1f}x",
            f"< {NEWEST_TARGET_MS:g} ms",
            newest["p50_ms"] < NEWEST_TARGET_MS,
        ),
        Headline(
            "8 scale",
            f"read a Thing of {results['rows']['things']:,}, p50 (p99)",
            f"{thing['p50_ms']:.2f} ({thing['p99_ms']:.2f}) ms",
            f"raw SQLite {raw['thing']['p50_ms']:.3f} ms",
            f"{thing['p50_ms'] / raw['thing']['p50_ms']:.0f}x",
        ),
        Headline(
            "8 scale",
            "bytes on disk per message",
            f"{results['bytes_per_message']:,.0f} B",
            f"its JSON {results['message_json_bytes']:,.0f} B",
            f"{results['bytes_per_message'] / results['message_json_bytes']:.1f}x",
        ),
    ]


def table(plan: Plan, results: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for kind, label in (("newest", f"newest {PAGE} messages"), ("thing", "one Thing")):
        served, raw = results["served"][kind], results["raw"][kind]
        rows.append(
            {
                "scenario": kind,
                "read": label,
                "http p50/p99 ms": f"{served['p50_ms']:.2f}/{served['p99_ms']:.2f}",
                "raw p50/p99 ms": f"{raw['p50_ms']:.3f}/{raw['p99_ms']:.3f}",
                "reads": str(served["count"]),
            }
        )
    return rows


LEGEND = """
http: GET over the daemon's HTTP API with Basic auth (verification cache warm), one
request at a time, from this process; raw: the same rows fetched and their JSON decoded
with the sqlite3 module on the same file (no server); a random channel and Thing each time
"""


NAME = "scale"


def title(plan: Plan) -> str:
    return (
        f"pushgod scale benchmark: {plan.messages:,} messages over {plan.channels} channels, "
        f"{plan.things:,} Things" + smoke_suffix(plan.smoke)
    )


def notes(plan: Plan, results: dict[str, Any]) -> list[str]:
    return [
        f"the store was filled in {results['fill_s']:.0f} s after {results['setup_s']:.0f} s of "
        f"set-up; the daemon said READY in {results['ready_s']:.2f} s on it"
    ]


def failed(results: dict[str, Any], problems: list[str]) -> bool:
    return bool(problems)


def details(plan: Plan, results: dict[str, Any]) -> dict[str, Any]:
    return {"results": results}


def main(argv: list[str] | None = None) -> int:
    return script.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
