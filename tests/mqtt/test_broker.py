"""The broker fixture itself: accounts, ACLs, and persistence across a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiomqtt import Client, Message
from broker import Broker
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

NOT_AUTHORIZED = 0x87


async def subscribe(client: Client, topic: str) -> ReasonCode:
    """Subscribe at QoS 1 and return the broker's v5 reason code."""
    [code] = await client.subscribe(topic, qos=1)
    assert isinstance(code, ReasonCode)
    return code


async def next_message(client: Client) -> Message:
    async with asyncio.timeout(5):
        async for message in client.messages:
            return message
    raise AssertionError("message iterator ended")


async def test_bridge_publishes_and_subscribes_pushgod_topics(broker: Broker) -> None:
    async with broker.client(broker.bridge_username, broker.bridge_password) as client:
        code = await subscribe(client, "pushgod/things/+/state")
        assert code.value == 1  # Granted QoS 1
        await client.publish("pushgod/things/nas/state", b"online", qos=1)
        message = await next_message(client)
    assert message.topic.value == "pushgod/things/nas/state"
    assert message.payload == b"online"


async def test_bridge_has_the_admin_role(broker: Broker) -> None:
    [response] = await broker.dynsec([{"command": "getClient", "username": "pushgod"}])
    roles = {role["rolename"] for role in response["data"]["client"]["roles"]}
    assert roles == {"pushgod-bridge", "admin"}
    with pytest.raises(RuntimeError, match="already exists"):
        await broker.create_client("pushgod", "x", [])


async def test_home_assistant_receives_bridge_discovery(broker: Broker) -> None:
    async with (
        broker.client(broker.ha_username, broker.ha_password) as ha,
        broker.client(broker.bridge_username, broker.bridge_password) as bridge,
    ):
        code = await subscribe(ha, "#")
        assert code.value == 1
        await bridge.publish("homeassistant/sensor/nas/config", b"{}", qos=1)
        message = await next_message(ha)
    assert message.topic.value == "homeassistant/sensor/nas/config"


async def test_device_cannot_subscribe_to_another_things_topics(broker: Broker) -> None:
    own = "pushgod/things/nas/in/#"
    await broker.create_client(
        "nas",
        "nas-password",
        [
            {"acltype": "subscribePattern", "topic": own, "allow": True},
            {"acltype": "publishClientReceive", "topic": own, "allow": True},
        ],
    )
    async with broker.client("nas", "nas-password") as device:
        denied = await subscribe(device, "pushgod/things/lamp/in/#")
        granted = await subscribe(device, own)
    assert denied.value == NOT_AUTHORIZED
    assert str(denied) == "Not authorized"
    assert granted.value == 1


async def test_retained_message_survives_restart(broker: Broker) -> None:
    async with broker.client(broker.bridge_username, broker.bridge_password) as bridge:
        await bridge.publish("pushgod/things/nas/state", b"online", qos=1, retain=True)
    port = broker.port
    await broker.restart()
    assert broker.port == port
    async with broker.client(broker.bridge_username, broker.bridge_password) as bridge:
        await bridge.subscribe("pushgod/things/+/state", qos=1)
        message = await next_message(bridge)
    assert message.payload == b"online"
    assert message.retain


async def test_queued_qos1_message_is_delivered_after_restart(broker: Broker) -> None:
    expiry = Properties(PacketTypes.CONNECT)
    expiry.SessionExpiryInterval = 3600
    session: dict[str, Any] = {
        "identifier": "pushgod-session-test",
        "clean_start": False,
        "properties": expiry,
    }
    creds = (broker.bridge_username, broker.bridge_password)
    async with broker.client(*creds, **session) as subscriber:
        await subscriber.subscribe("pushgod/queued", qos=1)
    async with broker.client(*creds) as publisher:
        await publisher.publish("pushgod/queued", b"while-away", qos=1)
    await broker.restart()
    async with broker.client(*creds, **session) as subscriber:
        message = await next_message(subscriber)
    assert message.payload == b"while-away"
    assert message.qos == 1
    assert not message.retain
