"""The fan-out client: N SSE subscribers to one channel, all in this one asyncio process.

    python bench/subscribers.py URL CHANNEL_ID PASSWORD N [--reader protocol|aiohttp]

Run by bench/fanout.py as a child process, so that the daemon's CPU and memory are
measured apart from the clients'. It talks to its parent in JSON lines:

1. it opens N `GET /api/v1/channels/{id}/sse` streams (HTTP Basic, a few connections
   opening at a time) and prints `{"connected": N, ...}` once every
   stream has received the `retry:` line the daemon sends first; or `{"error": ...}`;
2. it then reads `{"expect": M, "wait_s": W}` on stdin (sent once the parent's M sends
   were acknowledged), waits until every stream has received M messages, at most W
   seconds, and prints the summary: latencies, missing, duplicated and out-of-order
   receipts, and what ended early.

Reading is kept cheap, since 1,000 streams at 50 msg/s are 50,000 events a second on one
CPU. The default reader (`--reader protocol`) is a plain asyncio.Protocol per stream: the
request written by hand, the status line checked, the chunked encoding undone, no task
per stream. `--reader aiohttp` is one aiohttp session with a task per stream reading
`readany()`. Either way the bytes are split into events at the blank line and only the
`id:` line and the title are looked at; the parent set the title to
`"<index> <time.time_ns() at the send>"`. The receipt time is taken once per read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

OPENING_AT_ONCE = 32  # below the daemon's listen backlog (128)
CONNECT_TIMEOUT_S = 60.0
TITLE = b'"title":"'


class Subscriber:
    """One stream: the sequence numbers it received, in order, and its latencies."""

    __slots__ = (
        "closed",
        "connected",
        "ended",
        "index_seen",
        "last_seq",
        "pending",
        "seqs",
        "shared",
        "transport",
    )

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.connected = False
        self.closed = False  # the daemon sent `event: closed`
        self.ended = False  # the stream ended (EOF or an error)
        self.seqs: list[int] = []
        self.index_seen: set[int] = set()
        self.last_seq = 0
        self.pending = b""
        self.transport: asyncio.Transport | None = None

    def feed(self, data: bytes, now: int) -> None:
        """Stream bytes as they arrived (after any HTTP framing); whole events are handled."""
        buffer = self.pending + data if self.pending else data
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            self.event(buffer, start, end, now)
            start = end + 2
        self.pending = buffer[start:]

    async def run_aiohttp(
        self, client: aiohttp.ClientSession, url: str, headers: dict[str, str]
    ) -> None:
        """The aiohttp reader: one task per stream, `readany` in a loop."""
        shared = self.shared
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with shared.opening:  # only while the request is on its way
                    response = await stack.enter_async_context(client.get(url, headers=headers))
                if response.status != 200:
                    body = await response.read()
                    shared.fail(f"HTTP {response.status}: {body[:200]!r}")
                    return
                content = response.content
                while chunk := await content.readany():
                    self.feed(chunk, time.time_ns())
                shared.fail("a stream ended before the benchmark did")
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            shared.fail(f"{type(error).__name__}: {error}")
        finally:
            self.ended = True
            shared.changed()

    async def run_protocol(self, host: str, port: int, request: bytes) -> None:
        """The protocol reader: a plain asyncio.Protocol, no task once connected."""
        shared = self.shared
        loop = asyncio.get_running_loop()
        try:
            async with shared.opening:  # only while connecting
                await loop.create_connection(lambda: SseProtocol(self, request), host, port)
        except OSError as error:
            self.ended = True
            shared.fail(f"{type(error).__name__}: {error}")

    def event(self, buffer: bytes, start: int, end: int, now: int) -> None:
        shared = self.shared
        if buffer.startswith(b"id: ", start):
            seq = int(buffer[start + 4 : buffer.index(b"\n", start)])
            if seq <= self.last_seq:
                shared.out_of_order += 1
            self.last_seq = seq
            self.seqs.append(seq)
            at = buffer.find(TITLE, start, end) + len(TITLE)
            if at < len(TITLE):
                shared.fail(f"an event without a title: {buffer[start:end][:200]!r}")
                return
            index, sent_ns = buffer[at : buffer.index(b'"', at)].split(b" ")
            shared.latencies_ns.append(now - int(sent_ns))
            self.index_seen.add(int(index))
            shared.receipts += 1
            if shared.receipts >= shared.wanted:
                shared.changed()
        elif buffer.startswith(b"retry:", start):
            if not self.connected:
                self.connected = True
                shared.connected += 1
                if shared.connected == shared.count:
                    shared.changed()
        elif buffer.startswith(b"event: closed", start):
            self.closed = True
            shared.fail(f"the daemon closed a stream: {buffer[start:end][:200]!r}")
        # ": keepalive" comments are ignored


READ_BUFFER = memoryview(bytearray(64 * 1024))
"""One buffer every stream reads into (see SseProtocol)."""


class SseProtocol(asyncio.BufferedProtocol):
    """HTTP/1.1 by hand: send the request, check the status line, undo the chunking.

    A BufferedProtocol reading into one shared buffer: a plain Protocol gets a new bytes
    object per read, which asyncio allocates at 256 KiB and shrinks, and glibc serves that
    with mmap, mremap and munmap: measured, that was about 40% of this process's CPU with
    1,000 streams, and the receipt latencies included it. The loop calls get_buffer,
    recv_into and buffer_updated in one go, so one buffer serves every stream.
    """

    def __init__(self, subscriber: Subscriber, request: bytes) -> None:
        self.subscriber = subscriber
        self.request = request
        self.raw = b""
        self.in_head = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.subscriber.transport = transport
        transport.write(self.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(READ_BUFFER[:nbytes]))

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        raw = self.raw + data if self.raw else data
        if self.in_head:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                self.raw = raw
                return
            head = raw[:end].lower()
            if not head.startswith(b"http/1.1 200 ") or b"transfer-encoding: chunked" not in head:
                self.stop(f"unexpected response: {raw[:300]!r}")
                return
            self.in_head = False
            raw = raw[end + 4 :]
        pos, parts = 0, []
        while (line_end := raw.find(b"\r\n", pos)) >= 0:
            size = int(raw[pos:line_end], 16)
            if size == 0:
                self.stop("a stream ended before the benchmark did")
                return
            stop = line_end + 2 + size
            if len(raw) < stop + 2:
                break
            parts.append(raw[line_end + 2 : stop])
            pos = stop + 2
        self.raw = raw[pos:]
        if parts:
            self.subscriber.feed(parts[0] if len(parts) == 1 else b"".join(parts), now)

    def stop(self, problem: str) -> None:
        self.subscriber.shared.fail(problem)
        if self.subscriber.transport is not None:
            self.subscriber.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        subscriber = self.subscriber
        subscriber.ended = True
        if not subscriber.shared.finishing:
            subscriber.shared.fail(f"connection lost: {exc}")


class Shared:
    """What all streams add to, and the one event the main task waits on."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.connected = 0
        self.receipts = 0
        self.wanted = count  # replaced by N*M once the parent says M; never 0 before
        self.out_of_order = 0
        self.latencies_ns: list[int] = []
        self.errors: list[str] = []
        self.error_count = 0
        self.finishing = False  # set before we close the connections ourselves
        self.opening = asyncio.Semaphore(OPENING_AT_ONCE)
        self.wake = asyncio.Event()

    def fail(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 3:
            self.errors.append(text[:300])
        self.changed()

    def changed(self) -> None:
        self.wake.set()


def raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        raise SystemExit(f"subscribers: the open-file limit is {hard}, {wanted} are needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def say(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def wait_until(shared: Shared, done: Any, deadline: float) -> bool:
    """Wait on `shared.wake` until `done()` (True) or something failed or the deadline."""
    while not done():
        if shared.error_count:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        shared.wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await shared.wake.wait()
    return True


def percentile(ordered: list[int], fraction: float) -> int:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0


def summary(subscribers: list[Subscriber], shared: Shared, expect: int) -> dict[str, Any]:
    missing = duplicated = 0
    every_seq: set[int] = set()
    wrong_index = 0
    for sub in subscribers:
        distinct = set(sub.seqs)
        duplicated += len(sub.seqs) - len(distinct)
        missing += max(0, expect - len(distinct))
        every_seq |= distinct
        wrong_index += len(sub.index_seen - set(range(expect)))
    ordered = sorted(shared.latencies_ns)
    ms = 1e-6
    return {
        "subscribers": len(subscribers),
        "expected_per_subscriber": expect,
        "receipts": len(ordered),
        "missing": missing,
        "duplicated": duplicated,
        "out_of_order": shared.out_of_order,
        "distinct_seqs": len(every_seq),
        "unexpected_index": wrong_index,
        "ended_early": sum(sub.ended for sub in subscribers),
        "closed_by_daemon": sum(sub.closed for sub in subscribers),
        "errors": shared.error_count,
        "error_samples": shared.errors,
        "latency_ms": {
            "p50": percentile(ordered, 0.50) * ms,
            "p90": percentile(ordered, 0.90) * ms,
            "p99": percentile(ordered, 0.99) * ms,
            "p999": percentile(ordered, 0.999) * ms,
            "max": (ordered[-1] if ordered else 0) * ms,
            "min": (ordered[0] if ordered else 0) * ms,
        },
    }


async def main(args: argparse.Namespace) -> int:
    path = f"/api/v1/channels/{args.channel_id}/sse"
    authorization = aiohttp.encode_basic_auth(args.channel_id, args.password)
    shared = Shared(args.count)
    subscribers = [Subscriber(shared) for _ in range(args.count)]
    stdin = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        started = time.perf_counter()
        if args.reader == "aiohttp":
            headers = {"Authorization": authorization}
            runs = [sub.run_aiohttp(client, args.url + path, headers) for sub in subscribers]
        else:
            where = urlsplit(args.url)
            host, port = where.hostname or "127.0.0.1", where.port or 80
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {where.netloc}\r\n"
                f"Authorization: {authorization}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
            runs = [sub.run_protocol(host, port, request) for sub in subscribers]
        tasks = [asyncio.create_task(run) for run in runs]
        try:
            connected = await wait_until(
                shared,
                lambda: shared.connected == shared.count,
                time.monotonic() + CONNECT_TIMEOUT_S,
            )
            if not connected:
                problem = f"{shared.connected} of {args.count} connected"
                say({"error": problem, **summary(subscribers, shared, 0)})
                return 1
            say({"connected": shared.connected, "seconds": time.perf_counter() - started})

            line = await stdin.readline()
            if not line:
                return 1  # the parent went away
            order = json.loads(line)
            expect = int(order["expect"])
            shared.wanted = expect * args.count
            await wait_until(
                shared,
                lambda: shared.receipts >= shared.wanted,
                time.monotonic() + float(order["wait_s"]),
            )
            say(summary(subscribers, shared, expect))
            return 0
        finally:
            shared.finishing = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sub in subscribers:
                if sub.transport is not None:
                    sub.transport.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("channel_id")
    parser.add_argument("password")
    parser.add_argument("count", type=int)
    parser.add_argument(
        "--reader",
        choices=("protocol", "aiohttp"),
        default="protocol",
        help="protocol: an asyncio.Protocol per stream (cheapest); aiohttp: a task each",
    )
    arguments = parser.parse_args()
    raise_open_files(arguments.count + 64)
    raise SystemExit(asyncio.run(main(arguments)))
