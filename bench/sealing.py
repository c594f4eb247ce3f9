"""Sealing: what end-to-end encryption adds to a send, for 1 and 10 paired clients.

    python bench/sealing.py [--messages N] [--smoke]

Runs the service layer in this process on a temporary data directory (the same code the
HTTP send route calls, without HTTP) and sends N messages to each of three channels: one
without sealing, one sealing the default fields for 1 paired client and one for 10. It
prints the rate, the CPU time per message and the ratio to the unsealed channel, plus the
raw cost of `sealing.seal` alone. `synchronous=normal`, so the disk does not hide the CPU
cost. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import nacl.public  # noqa: E402

from pushgod.config import load_settings  # noqa: E402
from pushgod.model import sealing  # noqa: E402
from pushgod.model.messages import parse_message  # noqa: E402
from pushgod.service.auth import LOCAL_OPERATOR, Credentials  # noqa: E402
from pushgod.service.services import Services  # noqa: E402

CONCURRENCY = 32
BODY = {
    "title": "Backup of nas finished",
    "body": "3.2 GiB in 14 min, 0 errors",
    "url": "https://nas.local/backups/42",
    "severity": "normal",
}


async def setup(services: Services, clients: int | None) -> tuple[str, str]:
    row, password = await services.channels.create(LOCAL_OPERATOR, f"clients-{clients}")
    if clients is None:
        return row.id, password
    await services.channels.update(LOCAL_OPERATOR, row.id, e2ee=",".join(sealing.DEFAULT_POLICY))
    for _ in range(clients):
        code, _ = await services.clients.pairing_code(LOCAL_OPERATOR, row.id)
        key = nacl.public.PrivateKey.generate().public_key.encode()
        await services.clients.redeem("bench", code, sealing.b64encode(key))
    return row.id, password


async def send_all(services: Services, channel: tuple[str, str], count: int) -> float:
    """Seconds to send `count` messages with CONCURRENCY in flight; CPU is measured around."""
    credentials = Credentials(address="bench", password=channel[1])
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            body = {"channel_id": channel[0], "password": channel[1], **BODY}
            _, intent = parse_message(body, int(time.time() * 1000))
            await services.messages.send(credentials, intent)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


def raw_seal_us(recipients: int, rounds: int) -> float:
    keys = {
        f"c{i}": nacl.public.PrivateKey.generate().public_key.encode() for i in range(recipients)
    }
    values = {"title": BODY["title"], "body": BODY["body"], "url": BODY["url"]}
    started = time.perf_counter()
    for _ in range(rounds):
        sealing.seal(values, keys, "01JD0000000000000000000000", "message")
    return (time.perf_counter() - started) / rounds * 1e6


async def run(messages: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="pushgod-bench-") as data:
        settings = load_settings(
            None,
            overrides={("storage", "data_dir"): data, ("storage", "synchronous"): "normal"},
        )
        services = Services(settings)
        services.open()
        try:
            for clients in (None, 1, 10):
                channel = await setup(services, clients)
                await send_all(services, channel, min(messages, 200))  # warm the caches
                cpu = time.process_time()
                seconds = await send_all(services, channel, messages)
                cpu_us = (time.process_time() - cpu) / messages * 1e6
                rows.append(
                    {
                        "clients": clients or 0,
                        "sealed": clients is not None,
                        "messages_per_s": messages / seconds,
                        "cpu_us_per_message": cpu_us,
                        "seal_alone_us": raw_seal_us(clients, 500) if clients else 0.0,
                    }
                )
        finally:
            services.close()
    base = rows[0]["cpu_us_per_message"]
    for row in rows:
        row["cpu_ratio"] = row["cpu_us_per_message"] / base
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="per channel (5000)")
    parser.add_argument("--smoke", action="store_true", help="a few messages; no meaning")
    parser.add_argument("--results", type=Path, default=BENCH / "results", help="JSON goes here")
    args = parser.parse_args()
    rows = asyncio.run(run(50 if args.smoke else args.messages))
    print(f"{'clients':>7} {'msg/s':>8} {'cpu us/msg':>10} {'x unsealed':>10} {'seal() us':>9}")
    for row in rows:
        print(
            f"{row['clients'] if row['sealed'] else 'off':>7} {row['messages_per_s']:>8.0f} "
            f"{row['cpu_us_per_message']:>10.0f} {row['cpu_ratio']:>10.2f} "
            f"{row['seal_alone_us']:>9.0f}"
        )
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (args.results / f"sealing-{stamp}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
