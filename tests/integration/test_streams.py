"""Streams: replay from the change feed, then live from the hub, without gaps or repeats."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, HttpVersion10, TCPConnector, WSMsgType

from pushgod.config import Settings
from pushgod.model.since import LIVE_ONLY, STREAM_KINDS
from pushgod.model.tokens import Scope
from pushgod.service.auth import LOCAL_OPERATOR, Credentials
from pushgod.service.services import Services
from pushgod.service.streams import KEEPALIVE, Batch, Closing, Item

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
            assert name in ("id", "event", "data"), f"not an SSE field: {line!r}"
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


async def test_caught_up_sse_client_gets_every_live_item_in_order(
    client: Client, channel: Channel
) -> None:
    """Live items written straight to a waiting client's connection (the direct path)
    arrive whole, once each and in order, also when sends come in bursts."""
    async with client.get(path(channel, "sse"), headers=basic(*channel)) as reply:
        sent = [await send(client, channel, f"one by one {n}") for n in range(10)]
        for burst in range(5):
            titles = [f"burst {burst}.{n}" for n in range(8)]
            sent += await asyncio.gather(*(send(client, channel, title) for title in titles))
        events = await sse_events(reply, len(sent))
    items = [json.loads(event["data"]) for event in events]
    seqs = [item["seq"] for item in items]
    assert [event["id"] for event in events] == [str(seq) for seq in seqs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(sent)
    assert sorted(item["message"]["message_id"] for item in items) == sorted(sent)


async def test_a_stream_gets_only_its_own_channel(
    client: Client, services: Services, channel: Channel
) -> None:
    """The hub hands each channel's changes to that channel's streams only."""
    row, password = await services.channels.create(LOCAL_OPERATOR, "other")
    other = (row.id, password)
    async with (
        client.get(path(channel, "json"), headers=basic(*channel)) as mine,
        client.get(path(other, "json"), headers=basic(*other)) as theirs,
    ):
        for_them = await send(client, other, "theirs")
        for_me = await send(client, channel, "mine")
        [item] = await ndjson_lines(mine, 1)
        [their_item] = await ndjson_lines(theirs, 1)
    assert (item["channel_id"], item["message"]["message_id"]) == (channel[0], for_me)
    assert (their_item["channel_id"], their_item["message"]["message_id"]) == (row.id, for_them)


async def test_http_1_0_client_gets_the_stream_without_chunks(
    client: Client, channel: Channel
) -> None:
    """HTTP/1.0 has no chunked coding: the body is the bare events, ended by the end of the
    connection, live items written straight to it included."""
    url = client.make_url(path(channel, "sse"))
    async with (
        ClientSession(version=HttpVersion10) as session,
        session.get(url, headers=basic(*channel)) as reply,
    ):
        assert reply.version == HttpVersion10 and "Transfer-Encoding" not in reply.headers
        assert await reply.content.readline() == b"retry: 3000\n"
        sent = [await send(client, channel, f"old client {n}") for n in range(3)]
        events = await sse_events(reply, len(sent))
    assert [json.loads(e["data"])["message"]["message_id"] for e in events] == sent


async def test_direct_writer_takes_live_items_while_the_consumer_waits(
    client: Client, services: Services, channel: Channel
) -> None:
    """Live items go to the direct writer while the consumer waits for the next one; while
    it refuses them (a backed-up connection) they come out of items() instead. Each item
    goes out once, in order, and the Closing resumes after the last one, however sent."""
    creds = Credentials("192.0.2.1", password=channel[1])
    stream = await services.streams.open(creds, channel[0], STREAM_KINDS)
    written: list[Item] = []
    accept = True

    def direct(batch: Batch) -> bool:
        if accept:
            written.extend(batch)
        return accept

    items = stream.items(LIVE_ONLY, poll=False, direct=direct)
    # The consumer waits; each send below awaits a commit, so it is waiting by then.
    waiting = asyncio.ensure_future(anext(items))
    sent = [await send(client, channel, f"direct {n}") for n in range(3)]
    assert [json.loads(i.json)["message"]["message_id"] for i in written] == sent
    assert not waiting.done()

    accept = False
    refused = [await send(client, channel, f"refused {n}") for n in range(3)]
    queued: list[Item] = []
    while len(queued) < len(refused):
        batch = await waiting
        assert isinstance(batch, list), batch
        queued += batch
        waiting = asyncio.ensure_future(anext(items))
    assert [json.loads(i.json)["message"]["message_id"] for i in queued] == refused
    assert len(written) == len(sent)

    accept = True
    sent += [await send(client, channel, f"direct again {n}") for n in range(2)]
    assert [json.loads(i.json)["message"]["message_id"] for i in written] == sent
    assert not waiting.done()

    services.streams.close_all()
    closing = await waiting
    while closing is KEEPALIVE:
        closing = await anext(items)
    assert closing == Closing("shutdown", written[-1].seq)
    seqs = [i.seq for i in [*written[:3], *queued, *written[3:]]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    await items.aclose()


def _small_receive_buffer(address: Any) -> socket.socket:
    """A client socket whose kernel receive buffer is small, so the daemon's side backs up
    after a few hundred KB rather than megabytes."""
    family, kind, proto, _, _ = address
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


class TestClientThatStopsReading:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGOD_STREAMS_BUFFER="3")

    async def test_is_closed_as_too_far_behind_not_buffered(
        self, client: Client, services: Services, channel: Channel
    ) -> None:
        """An SSE client stops reading: once its connection backs up, live items stop going
        straight to it and queue in the bounded buffer; when that overflows the stream is
        closed and drops its share of the hub, so nothing more is kept for it however much
        is sent. Reading again, it gets what was written, in order, then the closing event,
        and resuming from there misses nothing."""
        body = "x" * 30_000  # about 30 KB a message on the wire
        auth = basic(*channel)
        connector = TCPConnector(socket_factory=_small_receive_buffer)
        async with (
            ClientSession(connector=connector) as session,
            session.get(client.make_url(path(channel, "sse")), headers=auth) as reply,
        ):
            assert await reply.content.readline() == b"retry: 3000\n"
            assert services.streams.open_count == 1
            sent: list[str] = []
            while services.streams.open_count and len(sent) < 1_000:  # nobody reads now
                sent.append(await send(client, channel, f"big {len(sent)}", body=body))
            assert services.streams.open_count == 0, f"still open after {len(sent)} sends"
            sent += [await send(client, channel, f"after {n}", body=body) for n in range(3)]

            events: list[dict[str, str]] = []
            while not events or events[-1].get("event") != "closed":
                events += await sse_events(reply, 1)
            assert await reply.content.read() == b""  # the response ended there
        *delivered, closed = events
        seqs = [int(event["id"]) for event in delivered]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        closing = json.loads(closed["data"])
        assert closing == {"type": "closed", "reason": "too far behind", "resume_after": seqs[-1]}
        query = f"since={closing['resume_after']}&poll=1"
        async with client.get(path(channel, "json", query), headers=auth) as reply:
            rest = [json.loads(line) for line in (await reply.text()).splitlines()]
        first = [json.loads(event["data"]) for event in delivered]
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
