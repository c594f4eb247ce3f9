"""A stream resumed after a daemon restart misses nothing and repeats nothing."""

from __future__ import annotations

import json
import signal
from typing import Any

import aiohttp

from .harness import Daemon, basic_auth


async def post(session: aiohttp.ClientSession, daemon: Daemon, body: dict[str, Any]) -> str:
    async with session.post(f"{daemon.url}/message", json=body) as reply:
        assert reply.status == 200, await reply.text()
        return str((await reply.json())["data"]["message_id"])


async def lines(reply: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    """Every line until the stream ends."""
    result = []
    while line := await reply.content.readline():
        result.append(json.loads(line))
    return result


async def test_resume_across_a_restart(daemon: Daemon) -> None:
    channel_id, password = daemon.create_channel("resume")
    auth = basic_auth(channel_id, password)
    message = {"channel_id": channel_id, "password": password}
    async with aiohttp.ClientSession() as session:
        before = [await post(session, daemon, message | {"title": f"before {n}"}) for n in range(3)]
        stream_url = f"{daemon.url}/api/v1/channels/{channel_id}/json?since=all"
        async with session.get(stream_url, headers=auth) as reply:
            first = [json.loads(await reply.content.readline()) for _ in before]
            daemon.stop(signal.SIGTERM)  # the stream says where to resume, then ends
            rest = await lines(reply)
        assert [item["message"]["message_id"] for item in first] == before
        assert rest == [{"type": "closed", "reason": "shutdown", "resume_after": first[-1]["seq"]}]

        daemon.start()
        missed = [await post(session, daemon, message | {"title": f"missed {n}"}) for n in range(3)]
        resume = rest[0]["resume_after"]
        resumed_url = f"{daemon.url}/api/v1/channels/{channel_id}/sse"
        async with session.get(resumed_url, headers=auth | {"Last-Event-ID": str(resume)}) as r:
            after = await post(session, daemon, message | {"title": "after"})
            ids: list[str] = []
            while len(ids) < 4:
                line = (await r.content.readline()).decode()
                assert line, "the resumed stream ended early"
                if line.startswith("data: "):
                    ids.append(json.loads(line[6:])["message"]["message_id"])
        assert ids == [*missed, after]
