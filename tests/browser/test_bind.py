"""The bind and unbind pages in Chromium, in process: an assistant holding a grant asks for one
more channel (or one less), and the person completes it in the browser.

The grant comes from the real OAuth flow over the same server (tests/integration/oauth_flow.py);
bind sessions are started through the service, as the MCP tool does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from integration.oauth_flow import Flow
from playwright.async_api import Page, expect

from pushgod.config import Settings, load_settings
from pushgod.http.app import create_app
from pushgod.model.oauth import Principal
from pushgod.oauth.text import ENGLISH
from pushgod.service.services import Services

from .conftest import Callback

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Defaults with MCP on (the OAuth server and its pages); no outside environment."""
    return load_settings(
        environ={
            "PUSHGOD_STORAGE_DATA_DIR": str(tmp_path / "data"),
            "PUSHGOD_MCP_ENABLED": "true",
        }
    )


@pytest.fixture
async def http(
    settings: Settings, services: Services, aiohttp_client: ClientFactory
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings, services))


@pytest.fixture
async def second(services: Services) -> tuple[str, str]:
    """Another channel of the same person: (channel_id, password)."""
    row, password = await services.channels.create(None, "garage")
    return row.id, password


@pytest.fixture
async def flow(http: TestClient[Any, Any], callback: Callback) -> Flow:
    """A registered client whose redirect URI is the live `callback` server."""
    registered = Flow(http, redirect_uri=callback.url)
    await registered.register(client_name="Garage Assistant")
    return registered


@pytest.fixture
async def principal(services: Services, flow: Flow, channel: tuple[str, str]) -> Principal:
    """The grant of an assistant the person allowed `channel` to, through the real flow."""
    tokens = await flow.tokens([channel])
    return services.oauth.authenticate(tokens["access_token"], flow.resource)


def issuer(http: TestClient[Any, Any]) -> str:
    return f"http://{http.host}:{http.port}"


async def prove(page: Page, channel_id: str | None, password: str) -> None:
    """Type into the bind form and submit it; `None` leaves the channel id as it is."""
    if channel_id is not None:
        await page.locator("#channel-id").fill(channel_id)
    await page.locator("#password").fill(password)
    await page.locator("#submit").click()


async def test_bind_then_unbind_a_channel(
    services: Services,
    http: TestClient[Any, Any],
    browser_page: Page,
    principal: Principal,
    channel: tuple[str, str],
    second: tuple[str, str],
) -> None:
    page = browser_page
    bindings = services.bindings
    started = await bindings.start(principal, issuer(http))
    session_id = started["bind_session_id"]
    assert started["bind_url"].startswith(f"{issuer(http)}/mcp/bind/session?bind_session_id=")
    pending = await bindings.status(principal, session_id)
    assert (pending["status"], pending["resources_changed"]) == ("pending", False)

    response = await page.goto(started["bind_url"])
    assert response is not None and response.status == 200
    await expect(page.locator("#channel-id")).to_have_value("")  # the session named none
    await prove(page, *second)
    await expect(page.locator("#done")).to_contain_text(second[0])

    done = await bindings.status(principal, session_id)
    assert (done["status"], done["channel_id"], done["resources_changed"]) == (
        "completed",
        second[0],
        True,
    )
    assert (await bindings.status(principal, session_id))["resources_changed"] is False
    assert services.oauth.channel_ids(principal) == [channel[0], second[0]]

    # The link is single-use.
    response = await page.goto(started["bind_url"])
    assert response is not None and response.status == 409
    await expect(page.locator("#error")).to_have_text(ENGLISH.bind_completed)
    await expect(page.locator("#bind")).to_have_count(0)

    # Unbinding: the session names the channel, the person confirms with its password.
    unbind = await bindings.start(
        principal, issuer(http), action="revoke", requested_channel_id=second[0]
    )
    assert unbind["bind_url"].startswith(f"{issuer(http)}/mcp/revoke/session?")
    await page.goto(unbind["bind_url"])
    await expect(page.locator("#channel-id")).to_have_value(second[0])
    await prove(page, None, second[1])
    await expect(page.locator("#done")).to_contain_text(second[0])
    assert services.oauth.channel_ids(principal) == [channel[0]]
    removed = await bindings.status(principal, unbind["bind_session_id"])
    assert (removed["status"], removed["action"], removed["resources_changed"]) == (
        "completed",
        "revoke",
        True,
    )


async def test_a_wrong_password_binds_nothing_and_keeps_the_link(
    services: Services,
    http: TestClient[Any, Any],
    browser_page: Page,
    principal: Principal,
    channel: tuple[str, str],
    second: tuple[str, str],
) -> None:
    page = browser_page
    started = await services.bindings.start(principal, issuer(http), requested_channel_id=second[0])
    await page.goto(started["bind_url"])
    await expect(page.locator("#channel-id")).to_have_value(second[0])

    await prove(page, None, second[1] + "x")
    await expect(page.locator("#error")).to_have_text(ENGLISH.wrong_password)
    await expect(page.locator("#password")).to_have_value("")
    assert services.oauth.channel_ids(principal) == [channel[0]]
    status = await services.bindings.status(principal, started["bind_session_id"])
    assert status["status"] == "pending"

    # The same page, with the right password this time.
    await prove(page, None, second[1])
    await expect(page.locator("#done")).to_be_visible()
    assert services.oauth.channel_ids(principal) == [channel[0], second[0]]


async def test_bind_with_a_redirect_uri_returns_the_browser_to_the_client(
    services: Services,
    http: TestClient[Any, Any],
    browser_page: Page,
    callback: Callback,
    principal: Principal,
    channel: tuple[str, str],
    second: tuple[str, str],
) -> None:
    page = browser_page
    started = await services.bindings.start(principal, issuer(http), redirect_uri=callback.url)
    await page.goto(started["bind_url"])
    await prove(page, *second)

    assert await callback.next() == {}
    await page.wait_for_url(callback.url)
    await expect(page.locator("body")).to_have_text("ok")
    assert services.oauth.channel_ids(principal) == [channel[0], second[0]]
