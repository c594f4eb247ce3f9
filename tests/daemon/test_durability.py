"""Acknowledged means durable: every send answered 200 survives a SIGKILL of the daemon."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from typing import Any

import aiohttp

from .harness import Daemon, read_messages

SENDS = 400
CONNECTIONS = 32
KILL_AFTER = 200


async def test_every_acknowledged_send_survives_sigkill(daemon: Daemon) -> None:
    """Kill -9 the moment the 200th acknowledgement arrives, with up to 31 sends in flight.

    A 200 may only leave after the write's transaction committed (DESIGN.md, "The one
    rule of data flow"); a daemon that answered from a queue or before COMMIT would lose
    the acknowledged writes still waiting when the process died.
    """
    channel_id, password = daemon.create_channel("durability")
    url = daemon.url
    acknowledged: dict[str, str] = {}  # message_id -> title
    outcomes: Counter[str] = Counter()
    slots = asyncio.Semaphore(CONNECTIONS)
    in_flight = 0
    in_flight_at_kill: int | None = None

    async def send(session: aiohttp.ClientSession, number: int) -> None:
        nonlocal in_flight, in_flight_at_kill
        title = f"durable {number}"
        body: dict[str, Any] = {"channel_id": channel_id, "password": password, "title": title}
        async with slots:
            in_flight += 1
            try:
                async with session.post(f"{url}/message", json=body) as reply:
                    envelope = await reply.json()
            except aiohttp.ClientError:
                outcomes["connection lost or refused"] += 1
                return
            finally:
                in_flight -= 1
        outcomes[f"HTTP {reply.status}"] += 1
        if reply.status != 200:
            return
        acknowledged[envelope["data"]["message_id"]] = title
        if len(acknowledged) == KILL_AFTER:
            daemon.send_signal(signal.SIGKILL)
            in_flight_at_kill = in_flight

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(send(session, number) for number in range(SENDS)))

    assert daemon.wait_exit() == -signal.SIGKILL
    assert set(outcomes) <= {"HTTP 200", "connection lost or refused"}, outcomes
    assert len(acknowledged) >= KILL_AFTER, outcomes
    assert in_flight_at_kill, "no send was in flight when the daemon was killed"

    daemon.start()
    async with aiohttp.ClientSession(timeout=timeout) as session:
        stored = await read_messages(session, daemon.url, channel_id, password)
    titles = {message["message_id"]: message["title"] for message in stored}
    lost = {mid: title for mid, title in acknowledged.items() if titles.get(mid) != title}
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged sends were lost"
    assert len(titles) == len(stored), "a message_id was stored twice"
