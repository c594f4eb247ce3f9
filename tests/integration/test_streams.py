"""Streams: replay from the change feed, then live from the hub, without gaps or repeats."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, WSMsgType

from pushgod.config import Settings
from pushgod.model.since import LIVE_ONLY, STREAM_KINDS
from pushgod.model.tokens import Scope
from pushgod.service.auth import LOCAL_OPERATOR, Credentials
from pushgod.service.services import Services
from pushgod.service.streams import Closing, Item

from .support import Client, admin_token, basic, bearer, channel_token, fail, ok, settings_with

Channel = tuple[str, str]


async def send(client: Client, channel: Channel, title: str, **fields: Any) -> str:
    body = {"channel_id": channel[0], "password": channel[1], "title": title} | fields
    return str((await ok(client, "POST", "/message", json=body))["message_id"])


async def make_event(client: Client, channel: Channel) -> str:
    body = {
        "channel_id": channel[0],
        "password": channel[1],
        "title": "backup",
        "status": "running",
        "message": "started",
        "severity": "normal",
        "event_time": int(time.time()),
    }
    return str((await ok(client, "POST", "/event/create", json=body))["event_id"])


def path(channel: Channel, kind: str, query: str = "") -> str:
    return f"/api/v1/channels/{channel[0]}/{kind}" + (f"?{query}" if query else "")


async def ndjson_lines(reply: ClientResponse, count: int) -> list[dict[str, Any]]:
    lines = []
    while len(lines) < count:
        line = await reply.content.readline()
        assert line, f"the stream ended after {len(lines)} of {count} lines"
        lines.append(json.loads(line))
    return lines


async def sse_events(reply: ClientResponse, count: int) -> list[dict[str, str]]:
    """The next `count` events (comments and the retry field are skipped)."""
    events: list[dict[str, str]] = []
    event: dict[str, str] = {}
    while len(events) < count:
        line = (await reply.content.readline()).decode()
        assert line, f"the stream ended after {len(events)} of {count} events"
        line = line.rstrip("\n")
        if not line:
            if "data" in event:
                events.append(event)
            event = {}
        elif not line.startswith((":", "retry:")):
            name, _, value = line.partition(": ")
            event[name] = value
    return events


async def test_poll_replays_everything_in_order_then_closes(
    client: Client, channel: Channel
) -> None:
    first = await send(client, channel, "one")
    event_id = await make_event(client, channel)
    second = await send(client, channel, "two")
    async with client.get(path(channel, "json", "since=all&poll=1"), headers=basic(*channel)) as r:
        assert r.status == 200 and r.content_type == "application/x-ndjson"
        items = [json.loads(line) for line in (await r.text()).splitlines()]
    assert [i["type"] for i in items] == ["message", "event", "message"]
    assert [i["message"]["message_id"] for i in items if i["type"] == "message"] == [first, second]
    assert items[1]["event"]["event_id"] == event_id and items[1]["action"] == "created"
    seqs = [i["seq"] for i in items]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


async def test_types_filter_and_since_forms(client: Client, channel: Channel) -> None:
    await send(client, channel, "one")
    await make_event(client, channel)
    await send(client, channel, "two")
    auth = basic(*channel)

    async def poll(query: str) -> list[dict[str, Any]]:
        async with client.get(path(channel, "json", f"{query}&poll=1"), headers=auth) as reply:
            assert reply.status == 200, await reply.text()
            return [json.loads(line) for line in (await reply.text()).splitlines()]

    everything = await poll("since=all")
    assert [i["type"] for i in await poll("since=all&types=event")] == ["event"]
    assert len(await poll("since=all&types=message,thing")) == 2
    assert await poll(f"since={everything[0]['seq']}") == everything[1:]
    assert await poll("since=latest") == everything[-1:]
    assert await poll("since=10m") == everything
    assert await poll(f"since={int(time.time()) - 600}") == everything
    assert await poll(f"since={int(time.time() * 1000) + 60_000}") == []
    assert await poll("types=message") == []  # no since: live items only


async def test_expired_messages_are_not_streamed(client: Client, channel: Channel) -> None:
    await send(client, channel, "gone", ttl=int(time.time()) - 5)
    kept = await send(client, channel, "kept")
    async with client.get(path(channel, "json", "since=all&poll=1"), headers=basic(*channel)) as r:
        items = [json.loads(line) for line in (await r.text()).splitlines()]
    assert [i["message"]["message_id"] for i in items] == [kept]


async def test_sse_live_and_resume_with_last_event_id(client: Client, channel: Channel) -> None:
    auth = basic(*channel)
    async with client.get(path(channel, "sse"), headers=auth) as reply:
        assert reply.content_type == "text/event-stream"
        first = await send(client, channel, "live one")
        [event] = await sse_events(reply, 1)
        assert event["event"] == "message"
        item = json.loads(event["data"])
        assert item["message"]["message_id"] == first and event["id"] == str(item["seq"])
    missed = [await send(client, channel, f"missed {n}") for n in range(3)]
    async with client.get(path(channel, "sse"), headers=auth | {"Last-Event-ID": event["id"]}) as r:
        resumed = await sse_events(r, 3)
        after = await send(client, channel, "after")
        [live] = await sse_events(r, 1)
    ids = [json.loads(e["data"])["message"]["message_id"] for e in [*resumed, live]]
    assert ids == [*missed, after]


async def test_websocket_delivers_items(client: Client, channel: Channel) -> None:
    await send(client, channel, "before")
    async with client.ws_connect(path(channel, "ws", "since=all"), headers=basic(*channel)) as ws:
        replayed = await ws.receive()
        assert replayed.type is WSMsgType.TEXT
        assert json.loads(replayed.data)["message"]["title"] == "before"
        await send(client, channel, "live")
        live = await ws.receive()
        assert json.loads(live.data)["message"]["title"] == "live"


async def test_no_gap_and_no_repeat_while_sends_race_the_replay(
    client: Client, channel: Channel
) -> None:
    """Sends commit while the stream subscribes and replays; every one arrives once."""
    for n in range(20):
        await send(client, channel, f"early {n}")
    sending = asyncio.gather(*(send(client, channel, f"racing {n}") for n in range(60)))
    async with client.get(path(channel, "json", "since=all"), headers=basic(*channel)) as reply:
        sent = set(await sending)
        later = [await send(client, channel, f"late {n}") for n in range(5)]
        items = await ndjson_lines(reply, 85)
    seqs = [item["seq"] for item in items]
    assert seqs == sorted(seqs) and len(set(seqs)) == 85
    titles = {item["message"]["title"] for item in items}
    assert {f"early {n}" for n in range(20)} <= titles
    ids = {item["message"]["message_id"] for item in items}
    assert sent <= ids and set(later) <= ids


class TestKeepalive:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGOD_STREAMS_KEEPALIVE="1s")

    async def test_idle_streams_send_keepalives(self, client: Client, channel: Channel) -> None:
        async with client.get(path(channel, "json"), headers=basic(*channel)) as reply:
            [line] = await ndjson_lines(reply, 1)
        assert line["type"] == "keepalive"
        async with client.get(path(channel, "sse"), headers=basic(*channel)) as reply:
            assert await reply.content.readline() == b"retry: 3000\n"
            assert await reply.content.readline() == b"\n"
            assert await reply.content.readline() == b": keepalive\n"


async def test_bad_stream_requests(client: Client, services: Services, channel: Channel) -> None:
    other, _ = await services.channels.create(LOCAL_OPERATOR, "other")
    publish_only = await channel_token(services, channel[0], Scope.PUBLISH)
    foreign = await channel_token(services, other.id, Scope.SUBSCRIBE)
    admin = await admin_token(services)
    auth = basic(*channel)
    for kind in ("sse", "json", "ws"):
        await fail(
            client, "GET", path(channel, kind, "since=soon"), 400, "invalid_query", headers=auth
        )
        await fail(
            client, "GET", path(channel, kind, "types=email"), 400, "invalid_query", headers=auth
        )
        await fail(client, "GET", path(channel, kind, "poll=2"), 400, "invalid_query", headers=auth)
        await fail(
            client,
            "GET",
            path(channel, kind, "since=all&since=1"),
            400,
            "invalid_query",
            headers=auth,
        )
        await fail(client, "GET", path(channel, kind), 401, "authentication_failed")
        await fail(
            client,
            "GET",
            path(channel, kind),
            403,
            "password_mismatch",
            headers=basic(channel[0], "wrong-password"),
        )
        await fail(
            client,
            "GET",
            path(channel, kind),
            403,
            "insufficient_scope",
            headers=bearer(publish_only),
        )
        await fail(
            client, "GET", path(channel, kind), 403, "channel_forbidden", headers=bearer(foreign)
        )
        await fail(
            client,
            "GET",
            f"/api/v1/channels/{'0' * 26}/{kind}",
            404,
            "channel_not_found",
            headers=bearer(admin),
        )
    await fail(
        client,
        "GET",
        path(channel, "sse"),
        400,
        "invalid_query",
        headers=auth | {"Last-Event-ID": "abc"},
    )


class TestSlowConsumer:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGOD_STREAMS_BUFFER="3")

    async def test_overflow_closes_with_where_to_resume(
        self, client: Client, services: Services, channel: Channel
    ) -> None:
        """A subscriber that falls more than `buffer` items behind is closed, not buffered
        without bound; resuming from the sequence it was given misses nothing."""
        creds = Credentials("192.0.2.1", password=channel[1])
        stream = await services.streams.open(creds, channel[0], STREAM_KINDS)
        items = stream.items(LIVE_ONLY, poll=False)
        sent = [await send(client, channel, f"burst {n}") for n in range(6)]  # nobody reads
        received = [item async for item in items]
        *batches, closing = received
        assert isinstance(closing, Closing) and closing.reason == "too far behind"
        delivered = [item for batch in batches for item in batch]  # type: ignore[attr-defined]
        assert len(delivered) == 3 and all(isinstance(i, Item) for i in delivered)
        query = f"since={closing.resume_after}&poll=1"
        async with client.get(path(channel, "json", query), headers=basic(*channel)) as reply:
            rest = [json.loads(line) for line in (await reply.text()).splitlines()]
        first = [json.loads(i.json) for i in delivered]
        assert [i["message"]["message_id"] for i in [*first, *rest]] == sent


async def test_shutdown_ends_open_streams(
    client: Client, services: Services, channel: Channel
) -> None:
    async with client.get(path(channel, "json"), headers=basic(*channel)) as reply:
        seen = await send(client, channel, "before shutdown")
        [item] = await ndjson_lines(reply, 1)
        services.streams.close_all()
        [closing] = await ndjson_lines(reply, 1)
        assert await reply.content.readline() == b""
    assert item["message"]["message_id"] == seen
    assert closing == {"type": "closed", "reason": "shutdown", "resume_after": item["seq"]}
