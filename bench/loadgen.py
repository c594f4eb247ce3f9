"""The load client: the same code drives the bare server and pushgod.

N workers share one aiohttp.ClientSession whose connector allows N connections. Each
worker posts pre-serialized bodies back to back until the deadline. The first `warmup_s`
seconds are not measured; requests completing inside the measured window count for the
rate and the latencies. Every status other than 200, and every connection error, is
counted as an error over the whole run, warm-up included.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from harness import cpu_seconds, disk_write_bytes, system_busy_seconds

HEADERS = {"Content-Type": "application/json"}
ENVELOPE_KEYS = {"channel_id", "op_id", "message_id", "accepted"}
ERROR_BACKOFF_S = 0.05


@dataclass
class LoadResult:
    target: str
    concurrency: int
    duration_s: float
    warmup_s: float
    measured: int = 0
    rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    ok_total: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    disk_bytes: int = 0

    def note_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(text[:300])

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "measured_requests": self.measured,
            "messages_per_s": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "ok_total": self.ok_total,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "client_cpu_percent": round(100 * self.client_cpu_s / self.duration_s, 1),
            "server_cpu_percent": round(100 * self.server_cpu_s / self.duration_s, 1),
            "other_cpu_percent": round(100 * self.other_cpu_s / self.duration_s, 1),
            "server_disk_bytes": self.disk_bytes,
            "server_disk_bytes_per_message": round(self.disk_bytes / max(self.ok_total, 1)),
        }


def session(concurrency: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=30),
    )


def check_envelope(raw: bytes, channel_id: str) -> str | None:
    """None if `raw` is the send envelope for `channel_id`, else what is wrong with it."""
    try:
        reply = json.loads(raw)
        data = reply["data"]
    except (ValueError, KeyError, TypeError):
        return f"not the send envelope: {raw[:200]!r}"
    if reply.get("success") is not True or set(data) != ENVELOPE_KEYS:
        return f"unexpected envelope: {raw[:200]!r}"
    if data["channel_id"] != channel_id or len(data["op_id"]) != 32:
        return f"unexpected envelope data: {raw[:200]!r}"
    return None


async def post_once(
    client: aiohttp.ClientSession, url: str, body: bytes
) -> tuple[int, bytes, float]:
    """One request: (status, body, seconds)."""
    start = time.perf_counter()
    async with client.post(url, data=body, headers=HEADERS) as response:
        raw = await response.read()
        return response.status, raw, time.perf_counter() - start


Call = Callable[[aiohttp.ClientSession], Awaitable[str | None]]
"""One request of a worker: None when the answer is right, else what is wrong with it."""


async def drive(
    target: str,
    client: aiohttp.ClientSession,
    calls: Sequence[Call],
    *,
    duration_s: float,
    warmup_s: float,
    server_pid: int | None = None,
) -> LoadResult:
    """One worker per `Call` on `client`, back to back until the deadline (module doc).

    Requests completing in the measured window count for the rate and the latencies;
    every failure, warm-up included, is an error.
    """
    result = LoadResult(target, len(calls), duration_s, warmup_s)
    latencies: list[float] = []
    loop_start = time.perf_counter()
    window_start = loop_start + warmup_s
    window_end = window_start + duration_s
    marks: dict[str, float] = {}
    disk_before = disk_write_bytes(server_pid) if server_pid is not None else 0

    async def mark_window() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        marks["client"] = time.process_time()
        marks["system"] = system_busy_seconds()
        if server_pid is not None:
            marks["server"] = cpu_seconds(server_pid)
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        result.client_cpu_s = time.process_time() - marks["client"]
        if server_pid is not None:
            result.server_cpu_s = cpu_seconds(server_pid) - marks["server"]
        busy = system_busy_seconds() - marks["system"]
        result.other_cpu_s = max(0.0, busy - result.client_cpu_s - result.server_cpu_s)

    async def worker(call: Call) -> None:
        while True:
            start = time.perf_counter()
            if start >= window_end:
                return
            try:
                problem = await call(client)
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                result.note_error(f"{type(error).__name__}: {error}")
                await asyncio.sleep(ERROR_BACKOFF_S)
                continue
            done = time.perf_counter()
            if problem is not None:
                result.note_error(problem)
                continue
            result.ok_total += 1
            if window_start <= done <= window_end:
                latencies.append(done - start)

    marker = asyncio.create_task(mark_window())
    try:
        await asyncio.gather(*(worker(call) for call in calls))
        await marker
    finally:
        if not marker.done():
            marker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await marker
    if server_pid is not None:
        result.disk_bytes = disk_write_bytes(server_pid) - disk_before
    result.measured = len(latencies)
    result.rate = len(latencies) / duration_s
    if latencies:
        latencies.sort()
        result.p50_ms = 1000 * statistics.median(latencies)
        result.p99_ms = 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return result


async def run_load(
    target: str,
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    server_pid: int | None = None,
) -> LoadResult:
    """Drive `url` with `concurrency` workers cycling through `bodies`; see the module doc."""
    counter = itertools.count()

    async def post(client: aiohttp.ClientSession) -> str | None:
        body = bodies[next(counter) % len(bodies)]
        async with client.post(url, data=body, headers=HEADERS) as response:
            raw = await response.read()
            return None if response.status == 200 else f"HTTP {response.status}: {raw[:200]!r}"

    async with session(concurrency) as client:
        return await drive(
            target,
            client,
            [post] * concurrency,
            duration_s=duration_s,
            warmup_s=warmup_s,
            server_pid=server_pid,
        )


async def send_each(
    url: str, bodies: Sequence[bytes], channel_ids: Sequence[str], *, concurrency: int
) -> list[str]:
    """Send every body once (a few at a time), checking each envelope; returns problems."""
    problems: list[str] = []
    slots = asyncio.Semaphore(concurrency)
    async with session(concurrency) as client:

        async def one(body: bytes, channel_id: str) -> None:
            async with slots:
                status, raw, _ = await post_once(client, url, body)
            if status != 200:
                problems.append(f"HTTP {status}: {raw[:200]!r}")
            elif (problem := check_envelope(raw, channel_id)) is not None:
                problems.append(problem)

        await asyncio.gather(*(one(b, c) for b, c in zip(bodies, channel_ids, strict=True)))
    return problems
