"""Fixtures for the OAuth tests: the real app with MCP enabled, a channel, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pushgod.config import Settings
from pushgod.http.app import create_app
from pushgod.service.services import Services

from .oauth_flow import Flow
from .support import settings_with

OAuthEnv = dict[str, str]


@pytest.fixture
def oauth_env() -> OAuthEnv:
    """Extra PUSHGOD_* settings for a test; override the fixture to change them."""
    return {}


@pytest.fixture
def oauth_settings(tmp_path: Path, oauth_env: OAuthEnv) -> Settings:
    return settings_with(tmp_path, PUSHGOD_MCP_ENABLED="true", **oauth_env)


@pytest.fixture
async def oauth_services(oauth_settings: Settings) -> AsyncIterator[Services]:
    services = Services(oauth_settings)
    services.open()
    yield services
    services.close()


@pytest.fixture
async def http(
    oauth_services: Services,
    oauth_settings: Settings,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(oauth_settings, oauth_services))


@pytest.fixture
async def owned(oauth_services: Services) -> tuple[str, str]:
    """A channel the person owns: (channel_id, password)."""
    row, password = await oauth_services.channels.create(None, "home")
    return row.id, password


@pytest.fixture
async def flow(http: TestClient[Any, Any]) -> Flow:
    """A registered public client of the test server."""
    registered = Flow(http)
    await registered.register()
    return registered
