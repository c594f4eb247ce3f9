"""The MQTT bridge in-process against a real Mosquitto: acknowledgement after commit, every
input topic, bad input, broker and daemon restarts, Home Assistant discovery."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from integration.running_bridge import GUARD_S, Running, attrs, device, until


async def test_every_input_topic(running: Running) -> None:
    async with await device(running) as nas:
        await nas.publish("pushgod/things/nas/in/state", b'{"disk": 41, "ok": true}', qos=1)
        await nas.publish("pushgod/things/nas/in/state", b'{"disk": 40, "ok": null}', qos=1)
        await nas.publish("pushgod/things/nas/in/attr/label", b" cellar ", qos=1)
        meta = {
            "title": "The NAS",
            "tags": ["storage"],
            "attrs": {"disk": {"unit": "GB", "name": "Disk free"}},
        }
        await nas.publish("pushgod/things/nas/in/meta", json.dumps(meta).encode(), qos=1)
        await nas.publish("pushgod/things/nas/availability", b"Offline", qos=1)
        await until(running, lambda: running.thing()["availability"] == "offline")
        thing = running.thing()
        assert thing["attrs"] == {"disk": 40, "label": "cellar"}
        assert thing["title"] == "The NAS" and thing["tags"] == ["storage"]
        assert thing["attr_meta"] == {"disk": {"unit": "GB", "name": "Disk free"}}
        assert thing["availability"] == "offline"

        await nas.publish(
            "pushgod/things/nas/in/event", b'{"title": "Disk low", "body": "40 GB"}', qos=1
        )
        await until(
            running,
            lambda: bool(
                running.services.store.tables.execute("SELECT 1 FROM messages").fetchone()
            ),
        )
        listed = await running.services.messages.recent(
            _password(running), running.channel_id, limit=5, before_seq=None, since_ms=None
        )
        (message,) = listed["messages"]
        assert message["title"] == "Disk low" and message["thing_id"] == "nas"

        for payload in (
            {"event_id": "scrub-1", "title": "Scrub", "status": "running", "severity": "high"},
            {"event_id": "scrub-1", "message": "half way"},
            {"event_id": "scrub-1", "close": True, "message": "clean"},
        ):
            await nas.publish("pushgod/things/nas/in/event", json.dumps(payload).encode(), qos=1)
        await until(
            running,
            lambda: (
                running.services.store.tables.execute("SELECT state FROM events").fetchone()
                == ("CLOSED",)
            ),
        )
        event = await running.services.events.get(_password(running), running.channel_id, "scrub-1")
        assert event["event"]["state"] == "CLOSED" and event["event"]["thing_id"] == "nas"
        assert [update["action"] for update in event["updates"]] == ["create", "update", "close"]
        assert event["event"]["severity"] == "high"  # updates without one keep it

        await nas.publish("pushgod/things/nas/in/meta", b'{"name": "Renamed"}', qos=1)
        await until(running, lambda: running.thing()["title"] == "Renamed")
        assert running.thing()["attr_meta"] == {"disk": {"unit": "GB", "name": "Disk free"}}

    # Retained, so the newest: the discovery follows the rename.
    config = json.loads(
        await running.broker.first(
            "homeassistant/device/pushgod_nas/config", lambda p: b'"Renamed"' in p
        )
    )
    assert config["device"]["name"] == "Renamed"
    assert config["components"]["disk"]["unit_of_measurement"] == "GB"
    device_availability = [
        e for e in config["availability"] if e["topic"].endswith("/availability")
    ]
    assert device_availability == [
        {"topic": "pushgod/things/nas/availability", "value_template": "{{ value | lower }}"}
    ]


def _password(running: Running) -> Any:
    from pushgod.service.auth import Credentials

    return Credentials("127.0.0.1", password=running.password)


async def test_bad_input_is_dropped_counted_and_logged_once(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    await running.add_device("nas")
    bad = [
        ("pushgod/things/nas/in/state", b"{not json", "invalid_json_syntax"),
        ("pushgod/things/nas/in/state", b"{not json either", "invalid_json_syntax"),
        ("pushgod/things/nas/in/state", b"[1, 2]", "invalid_json_data"),
        ("pushgod/things/nas/in/state", b'{"list": [1, 2]}', "invalid_attrs"),
        ("pushgod/things/nas/in/state", b'{"k": "' + b"x" * 40_000 + b'"}', "payload_too_large"),
        ("pushgod/things/nas/in/attr/k", b'{"a": 1}', "invalid_attrs"),
        ("pushgod/things/nas/in/bogus", b"1", "invalid_topic"),
        ("pushgod/things/NAS/in/state", b"{}", "invalid_topic"),
        ("pushgod/things/ghost/in/state", b'{"a": 1}', "device_not_found"),
        ("pushgod/things/nas/availability", b"maybe", "invalid_field"),
        ("pushgod/things/nas/in/event", b'{"body": "no title"}', "title_required"),
        ("pushgod/things/nas/in/event", b'{"event_id": "e", "close": true}', "event_not_found"),
        ("pushgod/things/nas/in/meta", b'{"attrs": {"k": {"colour": "red"}}}', "invalid_attrs"),
        # What HTTP refuses, MQTT refuses: NaN, 1e400, repeated keys, lone surrogates.
        ("pushgod/things/nas/in/state", b'{"a": NaN}', "invalid_json_syntax"),
        ("pushgod/things/nas/in/state", b'{"a": 1e400}', "invalid_json_syntax"),
        ("pushgod/things/nas/in/state", b'{"a": 1, "a": 2}', "invalid_json_data"),
        (
            "pushgod/things/nas/in/meta",
            b'{"attrs": {"k": {"unit": "\\ud800"}}}',
            "invalid_json_data",
        ),
        ("pushgod/things/nas/in/attr/k", b'"\\ud800"', "invalid_attrs"),
        ("pushgod/things/nas/in/meta", b'{"colour": "red"}', "invalid_field"),
    ]
    before = running.thing()
    # The bridge account may write anywhere under pushgod/, so it can send what no
    # confined device could, such as another Thing's or a malformed topic.
    bridge = running.broker.client(running.broker.bridge_username, running.broker.bridge_password)
    with caplog.at_level(logging.WARNING, logger="pushgod.mqtt.bridge"):
        async with bridge as client:
            for topic, payload, _ in bad:
                await client.publish(topic, payload, qos=1)
            await client.publish("pushgod/things/nas/in/attr/good", b"1", qos=1)
    await running.broker.first("pushgod/things/nas/state", lambda p: "good" in attrs(p))
    after = running.thing()
    assert after["attrs"] == {"good": 1}
    assert {
        k: v
        for k, v in after.items()
        if k not in ("attrs", "updated_at", "observed_at", "last_seen_at")
    } == {
        k: v
        for k, v in before.items()
        if k not in ("attrs", "updated_at", "observed_at", "last_seen_at")
    }
    expected: dict[str, int] = {}
    for _, _, code in bad:
        expected[code] = expected.get(code, 0) + 1
    assert running.bridge.dropped == expected
    lines = [r.getMessage() for r in caplog.records if "dropped a message" in r.getMessage()]
    assert len(lines) == len(expected)  # one line per code, however many were dropped
    assert all("x" * 100 not in line for line in lines)


async def test_broker_restart_reconnects_and_republishes(running: Running) -> None:
    broker = running.broker
    await running.add_device("nas")
    async with broker.client(broker.bridge_username, broker.bridge_password) as client:
        await client.publish("pushgod/things/nas/in/attr/v", b"1", qos=1)
        await broker.first("pushgod/things/nas/state", lambda p: attrs(p).get("v") == 1)
        await client.publish("pushgod/things/nas/state", b"", qos=1, retain=True)  # lost
    await broker.restart()
    state = await broker.first("pushgod/things/nas/state", lambda p: attrs(p).get("v") == 1)
    assert json.loads(state)["thing_id"] == "nas"
    assert running.bridge.connected


async def test_updates_sent_while_pushgod_is_down_are_applied_when_it_returns(
    tmp_path: Path, running: Running
) -> None:
    password = await running.add_device("nas")
    await running.stop()
    async with running.broker.client("nas", password) as nas:
        for value in range(5):
            await nas.publish("pushgod/things/nas/in/attr/v", str(value).encode(), qos=1)
    again = Running(running.settings, running.broker)
    again.channel_id = running.channel_id
    await again.start()
    try:
        await running.broker.first("pushgod/things/nas/state", lambda p: attrs(p).get("v") == 4)
        assert again.thing()["attrs"] == {"v": 4}
    finally:
        await again.stop()


async def test_home_assistant_restart_and_thing_deletion(running: Running) -> None:
    broker = running.broker
    await running.add_device("nas")
    topic = "homeassistant/device/pushgod_nas/config"
    await broker.first(topic, lambda p: p != b"")
    async with broker.client(broker.bridge_username, broker.bridge_password) as client:
        await client.publish(topic, b"", qos=1, retain=True)  # as if HA's broker lost it
    async with broker.client(broker.ha_username, broker.ha_password) as ha:
        await ha.publish("homeassistant/status", b"online", qos=1)
    await broker.first(topic, lambda p: p != b"")

    from pushgod.model.things import ThingAction, parse_thing

    _, intent = parse_thing(
        ThingAction.DELETE,
        {"channel_id": running.channel_id, "thing_id": "nas", "observed_at": 1},
    )
    state_topic = "pushgod/things/nas/state"
    async with broker.client(broker.ha_username, broker.ha_password) as ha:
        await ha.subscribe([(topic, 1), (state_topic, 1)])
        await running.services.things.apply(_password(running), intent)
        cleared: set[str] = set()
        async with asyncio.timeout(GUARD_S):
            async for message in ha.messages:
                if message.payload == b"":  # an empty retained payload removes the topic
                    cleared.add(message.topic.value)
                if cleared == {topic, state_topic}:
                    break


async def test_home_assistant_status_messages_are_acknowledged(running: Running) -> None:
    """Unacknowledged messages hold the broker's window (Receive Maximum, 256) until
    nothing more reaches pushgod: more status messages than that must not stop devices."""
    broker = running.broker
    await running.add_device("nas")
    async with broker.client(broker.ha_username, broker.ha_password) as ha:
        for _ in range(300):
            await ha.publish("homeassistant/status", b"offline", qos=1)
    async with broker.client(broker.bridge_username, broker.bridge_password) as client:
        await client.publish("pushgod/things/nas/in/attr/after", b"1", qos=1)
    await broker.first("pushgod/things/nas/state", lambda p: attrs(p).get("after") == 1)


async def test_device_administration_needs_an_admin(running: Running) -> None:
    from pushgod.model.errors import PushgodError
    from pushgod.service.auth import Credentials

    with pytest.raises(PushgodError) as refused:
        running.services.devices.list(Credentials("127.0.0.1", bearer="not-a-token"))
    assert refused.value.code.value == "authentication_failed"
    await running.add_device("nas")
    listed = running.services.devices.list(None, running.channel_id.lower())
    assert [device["thing_id"] for device in listed] == ["nas"]
