"""An MQTT bridge running in-process on Services, against a real Mosquitto (tests/broker.py);
the `running` fixture (tests/conftest.py) starts one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker import Broker

from pushgod.config import Settings, load_settings
from pushgod.mqtt.accounts import open_accounts
from pushgod.mqtt.bridge import Bridge
from pushgod.service.services import Services

GUARD_S = 20.0
"""How long a change may take to show: a failure guard, never a wait."""


class Running:
    """Services with a connected bridge, and a registered device `nas` with its password."""

    def __init__(self, settings: Settings, broker: Broker) -> None:
        self.settings = settings
        self.broker = broker
        self.services = Services(settings)
        self.bridge = Bridge(settings.mqtt, self.services)
        self.task: asyncio.Task[None] | None = None
        self.channel_id = ""
        self.password = ""

    async def start(self) -> None:
        self.services.open()
        self.task = asyncio.create_task(self.bridge.run())
        await self.broker.first("pushgod/status", lambda p: p == b"online")

    async def stop(self) -> None:
        await self.bridge.stop()
        assert self.task is not None
        await self.task
        self.services.close()

    async def add_device(self, thing_id: str) -> str:
        async with open_accounts(self.settings.mqtt, self.settings.data_dir) as accounts:
            _, password = await self.services.devices.add(
                None, accounts, thing_id, self.channel_id, create=True
            )
        return password

    def thing(self, thing_id: str = "nas") -> dict[str, Any]:
        return self.services.things._existing(self.channel_id, thing_id).to_json()  # type: ignore[no-any-return]


def mqtt_settings(tmp_path: Path, broker: Broker, **extra: str) -> Settings:
    environ = {
        "PUSHGOD_STORAGE_DATA_DIR": str(tmp_path / "data"),
        "PUSHGOD_MQTT_ENABLED": "true",
        "PUSHGOD_MQTT_HOST": broker.host,
        "PUSHGOD_MQTT_PORT": str(broker.port),
        "PUSHGOD_MQTT_USERNAME": broker.bridge_username,
        "PUSHGOD_MQTT_PASSWORD": broker.bridge_password,
        "PUSHGOD_MQTT_CLIENT_ID": f"pushgod-test-{broker.port}",
    } | {f"PUSHGOD_MQTT_{key.upper()}": value for key, value in extra.items()}
    return load_settings(environ=environ)


async def until(running: Running, holds: Callable[[], bool]) -> None:
    """Until `holds()` is true, checked again after each committed change."""
    changed = asyncio.Event()
    unsubscribe = running.services.hub.subscribe(lambda changes: changed.set())
    try:
        async with asyncio.timeout(GUARD_S):
            while not holds():
                await changed.wait()
                changed.clear()
    finally:
        unsubscribe()


def attrs(payload: bytes) -> dict[str, Any]:
    return json.loads(payload)["attrs"] if payload else {}  # type: ignore[no-any-return]


async def device(running: Running, thing_id: str = "nas") -> Any:
    password = await running.add_device(thing_id)
    return running.broker.client(thing_id, password)
