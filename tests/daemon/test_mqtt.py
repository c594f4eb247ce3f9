"""The MQTT bridge as a new user meets it: a real daemon, a real Mosquitto, `pushgod device`,
and the printed mosquitto_pub line.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiomqtt
import pytest
from broker import Broker, logged

from .harness import Daemon, DaemonFactory, basic_auth

GUARD_S = 20.0
"""How long a change may take to show: a failure guard, never a wait."""


def _configure(daemon: Daemon, broker: Broker) -> None:
    daemon.config.write_text(
        "[mqtt]\n"
        "enabled = true\n"
        f'host = "{broker.host}"\n'
        f"port = {broker.port}\n"
        f'username = "{broker.bridge_username}"\n'
        f'password = "{broker.bridge_password}"\n'
    )


@pytest.fixture
async def mqtt_daemon(daemon_factory: DaemonFactory, broker: Broker) -> AsyncIterator[Daemon]:
    """A daemon whose bridge is connected to `broker` (it said so on pushgod/status)."""
    daemon = daemon_factory()
    _configure(daemon, broker)
    await asyncio.to_thread(daemon.start)
    await broker.first("pushgod/status", lambda payload: payload == b"online")
    yield daemon


def _attrs(payload: bytes) -> dict[str, Any]:
    if not payload:
        return {}
    attrs: dict[str, Any] = json.loads(payload)["attrs"]
    return attrs


async def _cli_json(daemon: Daemon, *args: str) -> dict[str, Any]:
    return await asyncio.to_thread(daemon.cli_json, *args)


async def _thing(daemon: Daemon, channel: tuple[str, str], thing_id: str) -> dict[str, Any]:
    url = f"{daemon.url}/api/v1/channels/{channel[0]}/things/{thing_id}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=basic_auth(*channel)) as reply,
    ):
        envelope: dict[str, Any] = await reply.json()
    assert reply.status == 200, envelope
    thing: dict[str, Any] = envelope["data"]["thing"]
    return thing


async def test_a_new_device_updates_its_thing_with_the_printed_line(
    mqtt_daemon: Daemon, broker: Broker
) -> None:
    daemon = mqtt_daemon
    channel = await asyncio.to_thread(daemon.create_channel)
    added = await _cli_json(daemon, "device", "add", "nas", "--channel", channel[0], "--create")
    assert added["mqtt_username"] == "nas" and added["provisioning"] == "dynsec"
    assert added["example"].startswith("mosquitto_pub ")

    stream_url = f"{daemon.url}/api/v1/channels/{channel[0]}/json"
    async with (
        aiohttp.ClientSession() as session,
        session.get(stream_url, headers=basic_auth(*channel)) as stream,
    ):
        assert stream.status == 200
        # The line a user pastes: the real mosquitto_pub with the printed credentials.
        done = await asyncio.to_thread(
            subprocess.run, shlex.split(added["example"]), capture_output=True, timeout=GUARD_S
        )
        assert done.returncode == 0, done.stderr
        async with asyncio.timeout(GUARD_S):
            while True:
                item = json.loads(await stream.content.readline())
                if item["type"] == "thing" and item["thing"]["attrs"].get("uptime_s") == 42:
                    break
        assert item["thing"]["thing_id"] == "nas" and item["thing"]["last_seen_at"]

    thing = await _thing(daemon, channel, "nas")
    assert thing["attrs"] == {"uptime_s": 42}
    state = await broker.first(
        "pushgod/things/nas/state", lambda p: _attrs(p).get("uptime_s") == 42
    )
    assert json.loads(state)["channel_id"] == channel[0]

    config = json.loads(
        await broker.first(
            "homeassistant/device/pushgod_nas/config",
            lambda p: b"uptime_s" in p,
        )
    )
    assert config["device"]["identifiers"] == ["pushgod_nas"]
    assert config["components"]["uptime_s"]["platform"] == "sensor"
    assert config["state_topic"] == "pushgod/things/nas/state"

    listed = await _cli_json(daemon, "device", "list")
    (nas,) = listed["devices"]
    assert nas["thing_id"] == "nas" and nas["updates"] == 1 and nas["last_seen_at"]


async def test_a_device_cannot_touch_another_things_topics(
    mqtt_daemon: Daemon, broker: Broker
) -> None:
    daemon = mqtt_daemon
    channel = await asyncio.to_thread(daemon.create_channel)
    await _cli_json(daemon, "device", "add", "nas", "--channel", channel[0], "--create")
    garage = await _cli_json(daemon, "device", "add", "garage", "--channel", channel[0], "--create")

    async with broker.client("garage", garage["mqtt_password"]) as client:
        codes = await client.subscribe("pushgod/things/nas/#", qos=1)
        assert [code.is_failure for code in codes] == [True]  # type: ignore[union-attr]
        await client.publish("pushgod/things/nas/in/attr/door", b"open", qos=1)
        # garage's own update comes after the refused one, through the same broker and
        # bridge in order: once it shows, the refused one would have shown too.
        await client.publish("pushgod/things/garage/in/attr/door", b"closed", qos=1)
    await broker.first("pushgod/things/garage/state", lambda p: _attrs(p).get("door") == "closed")
    assert (await _thing(daemon, channel, "nas"))["attrs"] == {}


async def test_revoking_a_device_cuts_its_connection(mqtt_daemon: Daemon, broker: Broker) -> None:
    daemon = mqtt_daemon
    channel = await asyncio.to_thread(daemon.create_channel)
    added = await _cli_json(daemon, "device", "add", "nas", "--channel", channel[0], "--create")
    async with broker.client("nas", added["mqtt_password"]) as client:
        await client.subscribe("pushgod/things/nas/state", qos=1)
        await _cli_json(daemon, "device", "revoke", "nas")
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(GUARD_S):
                async for _ in client.messages:
                    pass  # the retained state, then the broker drops the connection
    with pytest.raises(aiomqtt.MqttError):
        async with broker.client("nas", added["mqtt_password"]):
            pass


async def test_updates_received_but_not_committed_survive_a_crash(
    mqtt_daemon: Daemon, broker: Broker
) -> None:
    """pushgod acknowledges a QoS1 message to the broker only after the commit: a message
    it received but had not committed when it died is delivered again when it returns."""
    daemon = mqtt_daemon
    channel = await asyncio.to_thread(daemon.create_channel)
    added = await _cli_json(daemon, "device", "add", "nas", "--channel", channel[0], "--create")
    database = sqlite3.connect(daemon.data_dir / "pushgod.db", isolation_level=None)
    try:
        database.execute("BEGIN IMMEDIATE")  # the daemon's writer now waits (busy_timeout)
        async with broker.client("nas", added["mqtt_password"]) as nas:
            for value in range(3):
                await nas.publish("pushgod/things/nas/in/attr/v", str(value).encode(), qos=1)
        await logged(broker.log_path, "Sending PUBLISH to pushgod ", "things/nas/in", count=3)
        await asyncio.to_thread(daemon.stop, signal.SIGKILL)
    finally:
        database.rollback()
        database.close()
    await asyncio.to_thread(daemon.start)
    await broker.first("pushgod/things/nas/state", lambda p: _attrs(p).get("v") == 2)
    (nas_row,) = (await _cli_json(daemon, "device", "list"))["devices"]
    assert nas_row["updates"] == 3


async def test_a_burst_is_acknowledged_as_far_as_it_is_committed(
    mqtt_daemon: Daemon, broker: Broker
) -> None:
    """Device messages are written in batches, each acknowledged after its commit: killed
    mid-burst, pushgod has acknowledged exactly the messages its database holds, and the
    broker delivers the others again when it returns (docs/mqtt.md, "Bursts")."""
    daemon = mqtt_daemon
    channel = await asyncio.to_thread(daemon.create_channel)
    passwords: dict[str, str] = {}
    for thing_id in ("nas", "lamp", "door"):
        added = await _cli_json(
            daemon, "device", "add", thing_id, "--channel", channel[0], "--create"
        )
        passwords[thing_id] = added["mqtt_password"]
    before, during = 40, 30  # updates per Thing; 90 stay below the broker's 100 in flight
    acknowledged = "Received PUBACK from pushgod "

    async def burst(thing_id: str, values: range) -> None:
        async with broker.client(thing_id, passwords[thing_id]) as device:
            for value in values:
                topic = f"pushgod/things/{thing_id}/in/attr/v"
                await device.publish(topic, str(value).encode(), qos=1)

    async def states(value: int) -> None:
        for thing_id in passwords:
            topic = f"pushgod/things/{thing_id}/state"
            await broker.first(topic, lambda p: _attrs(p).get("v") == value)

    async def counted() -> dict[str, int]:
        listed = await _cli_json(daemon, "device", "list")
        return {row["thing_id"]: row["updates"] for row in listed["devices"]}

    await asyncio.gather(*(burst(thing_id, range(before)) for thing_id in passwords))
    await states(before - 1)
    await logged(broker.log_path, acknowledged, count=before * len(passwords))
    database = sqlite3.connect(daemon.data_dir / "pushgod.db", isolation_level=None)
    try:
        database.execute("BEGIN IMMEDIATE")  # the daemon's writer now waits (busy_timeout)
        later = range(before, before + during)
        await asyncio.gather(*(burst(thing_id, later) for thing_id in passwords))
        received = (before + during) * len(passwords)
        await logged(broker.log_path, "Sending PUBLISH to pushgod ", "/in/attr/v", count=received)
        await asyncio.to_thread(daemon.stop, signal.SIGKILL)
    finally:
        database.rollback()
        database.close()
    log = await asyncio.to_thread(broker.log_path.read_text, errors="replace")
    assert log.count(acknowledged) == before * len(passwords)
    assert await counted() == dict.fromkeys(passwords, before)

    await asyncio.to_thread(daemon.start)
    await states(before + during - 1)
    assert await counted() == dict.fromkeys(passwords, before + during)
