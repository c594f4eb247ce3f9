"""The PushGo send API over HTTP: messages, the event lifecycle and the thing lifecycle."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pushgod.config import Settings
from pushgod.service.services import Services

from .support import HEX32, Client, basic, call, counts, fail, ok, settings_with

Channel = tuple[str, str]


def now_s() -> int:
    return int(time.time())


async def messages(client: Client, channel: Channel, query: str = "") -> list[dict[str, Any]]:
    data = await ok(
        client, "GET", f"/api/v1/channels/{channel[0]}/messages{query}", headers=basic(*channel)
    )
    result: list[dict[str, Any]] = data["messages"]
    return result


async def summary(client: Client, channel: Channel) -> dict[str, Any]:
    data: dict[str, Any] = await ok(
        client, "GET", f"/api/v1/channels/{channel[0]}", headers=basic(*channel)
    )
    return data


# Messages


async def test_pushgo_message_reply_and_stored_form(client: Client, channel: Channel) -> None:
    channel_id, password = channel
    ttl = now_s() + 86_400
    request = {
        "channel_id": channel_id,
        "password": password,
        "op_id": "backup-2026-05-26",
        "title": "Backup finished",
        "body": "**NAS** nightly backup completed in 12m",
        "severity": "high",
        "url": "https://nas.local/backups",
        "images": ["https://nas.local/a.png"],
        "tags": ["backup", "nas"],
        "metadata": {"host": "nas", "duration_s": 720},
        "ttl": ttl,
    }
    status, reply = await call(client, "POST", "/message", json=request)
    assert status == 200
    assert reply == {
        "success": True,
        "data": {
            "channel_id": channel_id,
            "op_id": "backup-2026-05-26",
            "message_id": reply["data"]["message_id"],
            "accepted": True,
        },
    }
    assert list(reply["data"]) == ["channel_id", "op_id", "message_id", "accepted"]
    message_id = reply["data"]["message_id"]
    assert HEX32.fullmatch(message_id)

    [stored] = await messages(client, channel)
    assert stored["message_id"] == message_id
    assert stored["channel_id"] == channel_id
    assert stored["op_id"] == "backup-2026-05-26"
    assert stored["title"] == "Backup finished"
    assert stored["body"] == "**NAS** nightly backup completed in 12m"
    assert stored["severity"] == "high"
    assert stored["url"] == "https://nas.local/backups"
    assert stored["images"] == ["https://nas.local/a.png"]
    assert stored["tags"] == ["backup", "nas"]
    assert stored["metadata"] == {"host": "nas", "duration_s": 720}
    assert stored["expires_at"] == ttl * 1000
    assert stored["thing_id"] is None
    assert isinstance(stored["seq"], int) and stored["seq"] > 0
    assert stored["occurred_at"] == stored["created_at"]  # defaults to the time it arrived
    assert (await summary(client, channel))["counts"]["messages"] == 1


async def test_repeated_op_id_returns_the_first_ids_and_stores_nothing(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id, password = channel
    request = {"channel_id": channel_id, "password": password, "op_id": "op-1", "title": "once"}
    first = await ok(client, "POST", "/message", json=request)
    before = counts(services)
    again = await ok(client, "POST", "/message", json=request)
    # PushGo ignores payload differences for a repeated op: same ids, nothing new.
    changed = await ok(client, "POST", "/message", json=request | {"title": "twice"})
    assert again == first and changed == first
    assert counts(services) == before
    assert [m["title"] for m in await messages(client, channel)] == ["once"]

    # The op id is per channel and per kind: a new op_id is a new message.
    other = await ok(client, "POST", "/message", json=request | {"op_id": "op-2"})
    assert other["message_id"] != first["message_id"]
    assert len(await messages(client, channel)) == 2


async def test_message_without_op_id_gets_a_fresh_one_each_time(
    client: Client, channel: Channel
) -> None:
    request = {"channel_id": channel[0], "password": channel[1], "title": "t"}
    first = await ok(client, "POST", "/message", json=request)
    second = await ok(client, "POST", "/message", json=request)
    assert HEX32.fullmatch(first["op_id"]) and first["op_id"] != second["op_id"]
    assert first["message_id"] != second["message_id"]


async def test_get_message_takes_query_parameters(client: Client, channel: Channel) -> None:
    channel_id, password = channel
    params = {
        "channel_id": channel_id,
        "password": password,
        "title": "From a URL",
        "body": "hello",
        "severity": "LOW",
        "images": "https://a/1.png,https://a/2.png",
        "tags": "x,y,x",
        "metadata": '{"room": "hall", "level": 3, "on": true}',
        "op_id": "get-1",
    }
    reply = await ok(client, "GET", "/message", params=params)
    assert reply["op_id"] == "get-1" and HEX32.fullmatch(reply["message_id"])
    [stored] = await messages(client, channel)
    assert stored["message_id"] == reply["message_id"]
    assert stored["title"] == "From a URL"
    assert stored["severity"] == "low"
    assert stored["images"] == ["https://a/1.png", "https://a/2.png"]
    assert stored["tags"] == ["x", "y"]
    assert stored["metadata"] == {"room": "hall", "level": 3, "on": True}


async def test_expired_ttl_hides_the_message_at_once(client: Client, channel: Channel) -> None:
    channel_id, password = channel
    base = {"channel_id": channel_id, "password": password}
    gone = await ok(client, "POST", "/message", json=base | {"title": "old", "ttl": now_s() - 60})
    assert gone["accepted"] is True
    kept = await ok(client, "POST", "/message", json=base | {"title": "new", "ttl": now_s() + 600})
    assert [m["message_id"] for m in await messages(client, channel)] == [kept["message_id"]]
    assert (await summary(client, channel))["counts"]["messages"] == 1


async def test_ttl_is_capped_at_thirty_days(client: Client, channel: Channel) -> None:
    far = now_s() + 365 * 86_400
    await ok(
        client,
        "POST",
        "/message",
        json={"channel_id": channel[0], "password": channel[1], "title": "t", "ttl": far},
    )
    [stored] = await messages(client, channel)
    assert stored["expires_at"] <= (now_s() + 30 * 86_400 + 1) * 1000


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("urgent", "normal"), ("", "normal"), ("HIGH", "high"), (" Critical ", "critical")],
)
async def test_message_severity_is_lenient(
    client: Client, channel: Channel, sent: str, stored: str
) -> None:
    await ok(
        client,
        "POST",
        "/message",
        json={"channel_id": channel[0], "password": channel[1], "title": "t", "severity": sent},
    )
    [message] = await messages(client, channel)
    assert message["severity"] == stored


async def create_thing(client: Client, channel: Channel, **fields: Any) -> str:
    body = {"channel_id": channel[0], "password": channel[1], "observed_at": now_s()} | fields
    data = await ok(client, "POST", "/thing/create", json=body)
    thing_id: str = data["thing_id"]
    return thing_id


async def test_thing_scoped_message(client: Client, services: Services, channel: Channel) -> None:
    channel_id, password = channel
    base = {"channel_id": channel_id, "password": password, "title": "door opened"}
    thing_id = await create_thing(client, channel, title="Front door")
    before = counts(services)
    await fail(
        client,
        "POST",
        "/message",
        400,
        "occurred_at_required_for_thing_scoped_message",
        json=base | {"thing_id": thing_id},
    )
    await fail(
        client,
        "POST",
        "/message",
        404,
        "thing_not_found",
        json=base | {"thing_id": "no-such-thing", "occurred_at": now_s()},
    )
    assert counts(services) == before

    occurred = now_s() - 30
    reply = await ok(
        client, "POST", "/message", json=base | {"thing_id": thing_id, "occurred_at": occurred}
    )
    assert list(reply) == ["channel_id", "op_id", "message_id", "thing_id", "accepted"]
    assert reply["thing_id"] == thing_id
    [stored] = await messages(client, channel)
    assert stored["thing_id"] == thing_id
    assert stored["occurred_at"] == occurred * 1000

    # A deleted thing takes no more messages.
    await ok(
        client,
        "POST",
        "/thing/delete",
        json={
            "channel_id": channel_id,
            "password": password,
            "thing_id": thing_id,
            "observed_at": now_s(),
        },
    )
    await fail(
        client,
        "POST",
        "/message",
        404,
        "thing_not_found",
        json=base | {"thing_id": thing_id, "occurred_at": occurred},
    )


async def test_messages_page_with_before_and_since(client: Client, channel: Channel) -> None:
    for n in range(5):
        await ok(
            client,
            "POST",
            "/message",
            json={"channel_id": channel[0], "password": channel[1], "title": f"m{n}"},
        )
    path = f"/api/v1/channels/{channel[0]}/messages"
    first = await ok(client, "GET", f"{path}?limit=2", headers=basic(*channel))
    assert [m["title"] for m in first["messages"]] == ["m4", "m3"]
    second = await ok(
        client, "GET", f"{path}?limit=2&before={first['next_before']}", headers=basic(*channel)
    )
    assert [m["title"] for m in second["messages"]] == ["m2", "m1"]
    last = await ok(
        client, "GET", f"{path}?limit=2&before={second['next_before']}", headers=basic(*channel)
    )
    assert [m["title"] for m in last["messages"]] == ["m0"] and last["next_before"] is None
    recent = await ok(client, "GET", f"{path}?since=1h", headers=basic(*channel))
    assert len(recent["messages"]) == 5
    future = await ok(client, "GET", f"{path}?since={now_s() + 3600}", headers=basic(*channel))
    assert future["messages"] == []


# Events


async def event_call(client: Client, channel: Channel, action: str, **fields: Any) -> Any:
    body = {
        "channel_id": channel[0],
        "password": channel[1],
        "status": "running",
        "message": "working",
        "severity": "normal",
        "event_time": now_s(),
    } | fields
    return await ok(client, "POST", f"/event/{action}", json=body)


async def test_event_lifecycle_merges_state_and_keeps_updates(
    client: Client, channel: Channel
) -> None:
    started = now_s() - 600
    created = await event_call(
        client,
        channel,
        "create",
        title="Nightly backup",
        status="started",
        message="copying",
        event_time=started,
        tags=["backup"],
        attrs={"progress": 0, "disk": "sda", "host": {"name": "nas", "ip": "10.0.0.2"}},
    )
    event_id = created["event_id"]
    assert HEX32.fullmatch(event_id)
    assert list(created) == ["channel_id", "op_id", "event_id", "accepted"]

    await event_call(
        client, channel, "update", event_id=event_id, attrs={"progress": 40, "rate": 1.5}
    )
    await event_call(
        client,
        channel,
        "update",
        event_id=event_id,
        status="verifying",
        severity="high",
        attrs={"disk": None, "host": {"ip": None, "rack": "r1"}},
    )
    ended = now_s()
    await event_call(
        client,
        channel,
        "close",
        event_id=event_id,
        status="done",
        message="finished",
        event_time=ended,
        attrs={"progress": 100},
    )

    data = await ok(
        client, "GET", f"/api/v1/channels/{channel[0]}/events/{event_id}", headers=basic(*channel)
    )
    event = data["event"]
    assert event["event_id"] == event_id
    assert event["state"] == "CLOSED"
    assert event["title"] == "Nightly backup"
    assert event["status"] == "done"
    assert event["message"] == "finished"
    assert event["severity"] == "normal"
    assert event["tags"] == ["backup"]
    assert event["attrs"] == {"progress": 100, "rate": 1.5, "host": {"name": "nas", "rack": "r1"}}
    assert event["started_at"] == started * 1000
    assert event["ended_at"] == ended * 1000

    updates = data["updates"]
    assert [u["action"] for u in updates] == ["create", "update", "update", "close"]
    seqs = [u["seq"] for u in updates]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert updates[1]["attrs"] == {"progress": 40, "rate": 1.5}
    assert updates[2]["attrs"] == {"disk": None, "host": {"ip": None, "rack": "r1"}}
    assert updates[2]["status"] == "verifying" and updates[2]["severity"] == "high"


async def test_event_listing_by_state(client: Client, channel: Channel) -> None:
    ongoing = (await event_call(client, channel, "create", title="still running"))["event_id"]
    closed = (await event_call(client, channel, "create", title="will close"))["event_id"]
    await event_call(client, channel, "close", event_id=closed)
    path = f"/api/v1/channels/{channel[0]}/events"

    async def ids(query: str) -> list[str]:
        data = await ok(client, "GET", path + query, headers=basic(*channel))
        return [e["event_id"] for e in data["events"]]

    assert await ids("") == [ongoing]
    assert await ids("?state=ongoing") == [ongoing]
    assert await ids("?state=closed") == [closed]
    assert sorted(await ids("?state=all")) == sorted([ongoing, closed])
    assert len(await ids("?state=all&limit=1")) == 1
    assert (await summary(client, channel))["counts"]["events"] == {"ongoing": 1, "closed": 1}


async def test_event_changes_refused_for_unknown_and_closed_events(
    client: Client, services: Services, channel: Channel
) -> None:
    base = {
        "channel_id": channel[0],
        "password": channel[1],
        "status": "s",
        "message": "m",
        "severity": "low",
        "event_time": now_s(),
    }
    event_id = (await event_call(client, channel, "create", title="t"))["event_id"]
    await event_call(client, channel, "close", event_id=event_id)
    before = counts(services)
    for action in ("update", "close"):
        await fail(
            client,
            "POST",
            f"/event/{action}",
            404,
            "event_not_found",
            json=base | {"event_id": "0123456789abcdef0123456789abcdef"},
        )
        await fail(
            client,
            "POST",
            f"/event/{action}",
            409,
            "event_closed",
            json=base | {"event_id": event_id},
        )
    await fail(
        client,
        "GET",
        f"/api/v1/channels/{channel[0]}/events/unknown-event",
        404,
        "event_not_found",
        headers=basic(*channel),
    )
    assert counts(services) == before


async def test_event_op_id_is_idempotent(
    client: Client, services: Services, channel: Channel
) -> None:
    first = await event_call(client, channel, "create", title="t", op_id="ev-1")
    before = counts(services)
    again = await event_call(client, channel, "create", title="other", op_id="ev-1")
    assert again == first
    update = await event_call(client, channel, "update", event_id=first["event_id"], op_id="u-1")
    after_update = counts(services)
    assert after_update["changes"] == before["changes"] + 1
    assert (
        await event_call(client, channel, "update", event_id=first["event_id"], op_id="u-1")
        == update
    )
    assert counts(services) == after_update


async def test_thing_scoped_event(client: Client, channel: Channel) -> None:
    thing_id = await create_thing(client, channel, title="NAS")
    reply = await event_call(client, channel, "create", title="scrub", thing_id=thing_id)
    assert reply["thing_id"] == thing_id
    assert list(reply) == ["channel_id", "op_id", "event_id", "thing_id", "accepted"]
    await fail(
        client,
        "POST",
        "/event/create",
        404,
        "thing_not_found",
        json={
            "channel_id": channel[0],
            "password": channel[1],
            "title": "t",
            "status": "s",
            "message": "m",
            "severity": "low",
            "event_time": now_s(),
            "thing_id": "missing",
        },
    )


# Things


async def thing_call(client: Client, channel: Channel, action: str, **fields: Any) -> Any:
    body = {"channel_id": channel[0], "password": channel[1], "observed_at": now_s()} | fields
    return await ok(client, "POST", f"/thing/{action}", json=body)


async def test_thing_lifecycle_state_and_history(client: Client, channel: Channel) -> None:
    created = await thing_call(
        client,
        channel,
        "create",
        title="NAS",
        tags=["storage"],
        external_ids={"Serial": "ABC123"},
        location_type="geo",
        location_value="52.5,13.4",
        attrs={"temp": 40, "fan": "auto", "disk": {"sda": "ok", "sdb": "ok"}},
    )
    thing_id = created["thing_id"]
    assert HEX32.fullmatch(thing_id)
    assert list(created) == ["channel_id", "op_id", "thing_id", "accepted"]
    await thing_call(client, channel, "update", thing_id=thing_id, attrs={"temp": 45, "load": 0.5})
    await thing_call(
        client,
        channel,
        "update",
        thing_id=thing_id,
        title="NAS (basement)",
        external_ids={"mac": "aa:bb"},
        attrs={"fan": None, "disk": {"sdb": None, "sdc": "new"}},
    )
    base = f"/api/v1/channels/{channel[0]}/things/{thing_id}"
    thing = (await ok(client, "GET", base, headers=basic(*channel)))["thing"]
    assert thing["thing_id"] == thing_id
    assert thing["state"] == "active"
    assert thing["title"] == "NAS (basement)"
    assert thing["tags"] == ["storage"]
    assert thing["external_ids"] == {"serial": "ABC123", "mac": "aa:bb"}
    assert (thing["location_type"], thing["location_value"]) == ("geo", "52.500000,13.400000")
    assert thing["attrs"] == {"temp": 45, "load": 0.5, "disk": {"sda": "ok", "sdc": "new"}}

    history = await ok(client, "GET", f"{base}/history", headers=basic(*channel))
    changes = history["changes"]
    assert [c["update"]["action"] for c in changes] == ["update", "update", "create"]
    assert [c["seq"] for c in changes] == sorted((c["seq"] for c in changes), reverse=True)
    assert changes[0]["thing"]["attrs"] == thing["attrs"]
    assert changes[0]["update"]["attrs"] == {"fan": None, "disk": {"sdb": None, "sdc": "new"}}
    assert changes[2]["thing"]["attrs"] == {
        "temp": 40,
        "fan": "auto",
        "disk": {"sda": "ok", "sdb": "ok"},
    }
    assert history["next_before"] is None

    page = await ok(client, "GET", f"{base}/history?limit=2", headers=basic(*channel))
    assert [c["seq"] for c in page["changes"]] == [c["seq"] for c in changes[:2]]
    assert page["next_before"] == changes[1]["seq"]
    rest = await ok(
        client,
        "GET",
        f"{base}/history?limit=2&before={page['next_before']}",
        headers=basic(*channel),
    )
    assert [c["seq"] for c in rest["changes"]] == [changes[2]["seq"]]
    assert rest["next_before"] is None


async def test_thing_archive_delete_and_after(
    client: Client, services: Services, channel: Channel
) -> None:
    thing_id = (await thing_call(client, channel, "create", title="sensor"))["thing_id"]
    listing = f"/api/v1/channels/{channel[0]}/things"

    async def ids(query: str) -> list[str]:
        data = await ok(client, "GET", listing + query, headers=basic(*channel))
        return [t["thing_id"] for t in data["things"]]

    assert await ids("") == [thing_id]
    await thing_call(client, channel, "archive", thing_id=thing_id)
    assert await ids("") == []
    assert await ids("?state=archived") == [thing_id]
    deleted_at = now_s() - 5
    await thing_call(client, channel, "delete", thing_id=thing_id, deleted_at=deleted_at)
    assert await ids("?state=archived") == []
    assert await ids("?state=deleted") == [thing_id]
    assert await ids("?state=all") == [thing_id]
    thing = (await ok(client, "GET", f"{listing}/{thing_id}", headers=basic(*channel)))["thing"]
    assert thing["state"] == "deleted" and thing["deleted_at"] == deleted_at * 1000
    assert (await summary(client, channel))["counts"]["things"] == {"deleted": 1}

    before = counts(services)
    for action in ("update", "archive", "delete"):
        await fail(
            client,
            "POST",
            f"/thing/{action}",
            409,
            "thing_deleted",
            json={
                "channel_id": channel[0],
                "password": channel[1],
                "thing_id": thing_id,
                "observed_at": now_s(),
            },
        )
    assert counts(services) == before


async def test_unknown_thing(client: Client, services: Services, channel: Channel) -> None:
    before = counts(services)
    for action in ("update", "archive", "delete"):
        await fail(
            client,
            "POST",
            f"/thing/{action}",
            404,
            "thing_not_found",
            json={
                "channel_id": channel[0],
                "password": channel[1],
                "thing_id": "nope",
                "observed_at": now_s(),
            },
        )
    base = f"/api/v1/channels/{channel[0]}/things/nope"
    await fail(client, "GET", base, 404, "thing_not_found", headers=basic(*channel))
    await fail(client, "GET", f"{base}/history", 404, "thing_not_found", headers=basic(*channel))
    assert counts(services) == before


async def test_thing_op_id_is_idempotent(
    client: Client, services: Services, channel: Channel
) -> None:
    first = await thing_call(client, channel, "create", title="t", op_id="th-1")
    before = counts(services)
    assert await thing_call(client, channel, "create", title="u", op_id="th-1") == first
    assert counts(services) == before


class TestBoundedThingHistory:
    """settings.retention.thing_history bounds each thing's history."""

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGOD_RETENTION_THING_HISTORY="3")

    async def test_history_keeps_the_newest_changes(
        self, client: Client, settings: Settings, channel: Channel
    ) -> None:
        assert settings.retention.thing_history == 3
        thing_id = (await thing_call(client, channel, "create", attrs={"n": 0}))["thing_id"]
        other = (await thing_call(client, channel, "create", attrs={"n": 0}))["thing_id"]
        for n in range(1, 6):
            await thing_call(client, channel, "update", thing_id=thing_id, attrs={"n": n})
        base = f"/api/v1/channels/{channel[0]}/things"
        history = await ok(client, "GET", f"{base}/{thing_id}/history", headers=basic(*channel))
        assert [c["thing"]["attrs"]["n"] for c in history["changes"]] == [5, 4, 3]
        # Another thing's history is not touched by this one's bound.
        untouched = await ok(client, "GET", f"{base}/{other}/history", headers=basic(*channel))
        assert len(untouched["changes"]) == 1
        thing = await ok(client, "GET", f"{base}/{thing_id}", headers=basic(*channel))
        assert thing["thing"]["attrs"] == {"n": 5}


class TestBoundedEventUpdates:
    """settings.retention.event_updates bounds each event's list of updates (an event
    updated every second used to grow without limit)."""

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGOD_RETENTION_EVENT_UPDATES="3")

    async def test_updates_keep_the_newest(self, client: Client, channel: Channel) -> None:
        event_id = (await event_call(client, channel, "create", title="t", attrs={"n": 0}))[
            "event_id"
        ]
        for n in range(1, 6):
            await event_call(client, channel, "update", event_id=event_id, attrs={"n": n})
        path = f"/api/v1/channels/{channel[0]}/events/{event_id}"
        event = await ok(client, "GET", path, headers=basic(*channel))
        assert [u["attrs"]["n"] for u in event["updates"]] == [3, 4, 5]
        assert event["event"]["attrs"] == {"n": 5}
