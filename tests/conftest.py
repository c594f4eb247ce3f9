"""Fixtures shared by every test: settings on a temp dir, opened services, the real app,
a real MQTT broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from broker import Broker
from integration.running_bridge import Running, mqtt_settings

from pushgod.config import Settings, load_settings
from pushgod.http.app import create_app
from pushgod.service.services import Services


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Defaults with the data directory in the test's temp dir; no outside environment."""
    return load_settings(environ={"PUSHGOD_STORAGE_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = Services(settings)
    opened.open()
    yield opened
    opened.close()


@pytest.fixture
async def client(
    services: Services,
    settings: Settings,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> TestClient[Any, Any]:
    """The real app over real HTTP on 127.0.0.1, backed by a real SQLite file."""
    return await aiohttp_client(create_app(settings, services))


@pytest.fixture
async def channel(services: Services) -> tuple[str, str]:
    """A fresh channel: (channel_id, password)."""
    row, password = await services.channels.create(None, "test channel")
    return row.id, password


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    """A real Mosquitto with dynamic security and the `pushgod` bridge and `homeassistant`
    accounts (tests/broker.py); stopped afterwards."""
    async with Broker() as started:
        yield started


@pytest.fixture
async def running(tmp_path: Path, broker: Broker) -> AsyncIterator[Running]:
    run = Running(mqtt_settings(tmp_path, broker), broker)
    await run.start()
    row, run.password = await run.services.channels.create(None, "home")
    run.channel_id = row.id
    yield run
    if run.task is not None and not run.task.done():
        await run.stop()
