"""The consent page in Chromium, against the real daemon: what a person sees and clicks when an
assistant asks for their channels, and where the browser ends up.

The client's side (registration, the code exchange, refresh) is plain HTTP through
tests/integration/oauth_flow.py; its redirect URI is a real little server (`callback`), so a
redirect that should not happen would be seen arriving there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
from daemon.harness import Daemon
from integration.oauth_flow import Flow
from playwright.async_api import ConsoleMessage, Page, Request, expect

from pushgod.oauth.text import ENGLISH

from .conftest import Callback

STATE = "st 1&x=2 ünïcødé ✓ +/?;"
"""Spaces, &, =, +, / and non-ASCII: each would come back changed if encoded wrongly."""
SCOPES = ["mcp:tools", "mcp:channels:manage"]
MCP_ACCEPT = "application/json, text/event-stream"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "browser-test", "version": "0"},
    },
}


class DaemonHttp:
    """The part of aiohttp's TestClient that `Flow` uses, over a session to the daemon."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        parts = urlsplit(url)
        self.host = parts.hostname
        self.port = parts.port

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._session.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._session.post(path, **kwargs)


@pytest.fixture
async def session(mcp_daemon: Daemon) -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url=mcp_daemon.url, timeout=timeout) as opened:
        yield opened


@pytest.fixture
async def flow(mcp_daemon: Daemon, session: aiohttp.ClientSession, callback: Callback) -> Flow:
    """A client registered with the daemon (HTTP), its redirect URI the `callback` server."""
    registered = Flow(DaemonHttp(session, mcp_daemon.url), redirect_uri=callback.url)  # type: ignore[arg-type]
    await registered.register(client_name="Kitchen Assistant")
    return registered


@pytest.fixture
async def channel(mcp_daemon: Daemon) -> tuple[str, str]:
    """A channel made with the real CLI: (channel_id, password)."""
    return await asyncio.to_thread(mcp_daemon.create_channel, "kitchen")


def authorize_url(daemon: Daemon, params: dict[str, str]) -> str:
    return f"{daemon.url}/oauth/authorize?{urlencode(params)}"


async def add_channel(page: Page, channel_id: str, password: str) -> None:
    await page.locator("#channel-id").fill(channel_id)
    await page.locator("#password").fill(password)
    await page.locator("#add").click()


async def grants_of(daemon: Daemon, client_id: str) -> list[dict[str, Any]]:
    """The client's grants, as `pushgod oauth grants list --json` tells the operator."""
    listed = await asyncio.to_thread(daemon.cli_json, "oauth", "grants", "list")
    return [grant for grant in listed["grants"] if grant["client_id"] == client_id]


async def mcp_post(
    session: aiohttp.ClientSession, access_token: str, body: dict[str, Any]
) -> tuple[int, Mapping[str, str], str]:
    """POST one JSON-RPC message to /mcp with a bearer token: status, headers, body."""
    headers = {
        "Authorization": f"Bearer {access_token}",
        "Accept": MCP_ACCEPT,
        "Content-Type": "application/json",
    }
    async with session.post("/mcp", json=body, headers=headers) as reply:
        return reply.status, reply.headers.copy(), await reply.text()


async def test_a_new_user_connects_an_assistant_and_the_operator_revokes_it(
    mcp_daemon: Daemon,
    browser_page: Page,
    callback: Callback,
    flow: Flow,
    session: aiohttp.ClientSession,
    channel: tuple[str, str],
) -> None:
    """The "done when" story, end to end: consent in the browser, tokens, CLI revocation."""
    page = browser_page
    channel_id, password = channel
    await page.goto(authorize_url(mcp_daemon, flow.authorize_params(state=STATE)))

    # Who asks, where the browser goes afterwards, and for what.
    await expect(page.locator("#client-name")).to_have_text("Kitchen Assistant")
    await expect(page.locator("#redirect-host")).to_have_text(urlsplit(callback.url).netloc)
    scopes = page.locator("#scopes li[data-scope]")
    await expect(scopes).to_have_count(len(SCOPES))
    assert [await item.get_attribute("data-scope") for item in await scopes.all()] == SCOPES
    await expect(page.locator("#channels li")).to_have_count(0)

    await add_channel(page, channel_id, password)
    listed = page.locator("#channels li[data-channel-id]")
    await expect(listed).to_have_count(1)
    await expect(listed).to_have_attribute("data-channel-id", channel_id)
    await expect(page.locator("#error")).to_have_count(0)
    assert password not in await page.content()  # the password is checked, never echoed back

    await page.locator("#allow").click()
    returned = await callback.next()
    await page.wait_for_url(callback.returned_to)
    await expect(page.locator("body")).to_have_text("ok")
    assert returned["state"] == STATE
    assert returned["iss"] == mcp_daemon.url
    assert set(returned) == {"code", "state", "iss"}

    # The client's side: the code once, then one refresh (which rotates the refresh token).
    status, tokens = await flow.exchange(returned["code"])
    assert status == 200, tokens
    assert tokens["token_type"].lower() == "bearer"
    status, refreshed = await flow.refresh(tokens["refresh_token"])
    assert status == 200, refreshed
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]

    [grant] = await grants_of(mcp_daemon, flow.client_id)
    assert grant["channel_ids"] == [channel_id]
    assert grant["resource"] == f"{mcp_daemon.url}/mcp"

    # The token works at /mcp before the operator steps in...
    status, headers, body = await mcp_post(session, refreshed["access_token"], INITIALIZE)
    assert status == 200, body
    assert headers.get("Content-Type", "").startswith(("text/event-stream", "application/json"))
    assert '"protocolVersion"' in body

    # ...and neither token works once the operator revoked the grant from the command line.
    revoked = await asyncio.to_thread(
        mcp_daemon.cli_json, "oauth", "grants", "revoke", grant["grant_id"]
    )
    assert revoked == {"grant_id": grant["grant_id"], "revoked": True}
    assert await grants_of(mcp_daemon, flow.client_id) == []
    for access_token in (refreshed["access_token"], tokens["access_token"]):
        status, headers, body = await mcp_post(session, access_token, INITIALIZE)
        assert status == 401, body
        challenge = headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer "), challenge
        assert 'error="invalid_token"' in challenge
        metadata = f"{mcp_daemon.url}/.well-known/oauth-protected-resource/mcp"
        assert f'resource_metadata="{metadata}"' in challenge
    status, refused = await flow.refresh(refreshed["refresh_token"])
    assert status == 400, refused
    assert refused["error"] == "invalid_grant"


async def test_deny_returns_access_denied_with_the_state(
    mcp_daemon: Daemon,
    browser_page: Page,
    callback: Callback,
    flow: Flow,
    channel: tuple[str, str],
) -> None:
    page = browser_page
    await page.goto(authorize_url(mcp_daemon, flow.authorize_params(state=STATE)))
    await add_channel(page, *channel)  # a proven channel does not turn a deny into an allow
    await expect(page.locator("#channels li[data-channel-id]")).to_have_count(1)

    await page.locator("#deny").click()
    returned = await callback.next()
    await page.wait_for_url(callback.returned_to)
    assert returned["error"] == "access_denied"
    assert returned["state"] == STATE
    assert returned["iss"] == mcp_daemon.url
    assert "code" not in returned
    assert await grants_of(mcp_daemon, flow.client_id) == []


async def test_a_wrong_password_adds_nothing(
    mcp_daemon: Daemon,
    browser_page: Page,
    callback: Callback,
    flow: Flow,
    channel: tuple[str, str],
) -> None:
    page = browser_page
    channel_id, password = channel
    await page.goto(authorize_url(mcp_daemon, flow.authorize_params()))

    await add_channel(page, channel_id, password + "x")
    await expect(page.locator("#error")).to_have_text(ENGLISH.wrong_password)
    await expect(page.locator("#channels li")).to_have_count(0)
    await expect(page.locator("#no-channels")).to_be_visible()
    await expect(page.locator("#password")).to_have_value("")

    # Allowing now is refused on the page: no channel was proven, nothing is granted.
    await page.locator("#allow").click()
    await expect(page.locator("#error")).to_have_text(ENGLISH.need_a_channel)
    assert page.url.startswith(f"{mcp_daemon.url}/oauth/authorize?")
    assert callback.hits == []
    assert await grants_of(mcp_daemon, flow.client_id) == []


async def test_an_unregistered_redirect_uri_shows_an_error_and_goes_nowhere(
    mcp_daemon: Daemon,
    browser_page: Page,
    callback: Callback,
    flow: Flow,
) -> None:
    """The bad URI is a live server too, so a redirect there would be recorded."""
    page = browser_page
    elsewhere = callback.url.replace("/callback", "/callback/elsewhere")
    url = authorize_url(mcp_daemon, flow.authorize_params(redirect_uri=elsewhere))

    response = await page.goto(url)
    assert response is not None
    assert response.status == 400
    assert response.request.redirected_from is None
    assert page.url == url
    await expect(page.locator("#error")).to_be_visible()
    await expect(page.locator("#consent")).to_have_count(0)
    assert callback.hits == []


async def test_consent_page_headers_and_no_third_party_requests(
    mcp_daemon: Daemon,
    browser_page: Page,
    flow: Flow,
) -> None:
    page = browser_page
    requested: list[Request] = []
    console: list[str] = []

    def on_request(request: Request) -> None:
        requested.append(request)

    page.on("request", on_request)

    def on_console(message: ConsoleMessage) -> None:
        console.append(message.text)

    page.on("console", on_console)

    response = await page.goto(authorize_url(mcp_daemon, flow.authorize_params()))
    assert response is not None and response.status == 200
    await page.wait_for_load_state("networkidle")

    headers = await response.all_headers()
    policy = [directive.strip() for directive in headers["content-security-policy"].split(";")]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-frame-options"] == "DENY"

    origin = mcp_daemon.url
    assert [r.url for r in requested if not r.url.startswith(f"{origin}/")] == []
    # The listener saw the page's own requests (so an empty list above means something).
    assert any(r.resource_type == "stylesheet" for r in requested), [r.url for r in requested]
    # Nothing of its own was blocked by its own policy.
    assert [text for text in console if "Content Security Policy" in text] == []


async def test_phone_layout_has_no_horizontal_scroll(
    mcp_daemon: Daemon,
    browser_page: Page,
    flow: Flow,
    channel: tuple[str, str],
) -> None:
    page = browser_page
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(authorize_url(mcp_daemon, flow.authorize_params()))
    await expect(page.locator("#consent")).to_be_visible()
    await check_fits(page)

    await add_channel(page, *channel)  # a listed channel id is long and unbroken
    await expect(page.locator("#channels li[data-channel-id]")).to_have_count(1)
    await check_fits(page)


@pytest.mark.parametrize(
    ("client_name", "redirect_uri"),
    [
        ("HomeAssistantVoicePipelineIntegrationForKitchen", None),
        ("Kitchen Assistant", "https://assistantcallbacks.eucentral.examplecompany.com/cb"),
    ],
    ids=["long-client-name", "long-redirect-host"],
)
async def test_phone_layout_wraps_long_unbroken_names(
    mcp_daemon: Daemon,
    browser_page: Page,
    session: aiohttp.ClientSession,
    callback: Callback,
    client_name: str,
    redirect_uri: str | None,
) -> None:
    """The client chooses its name (up to 200 characters) and its redirect host: a long word
    there must wrap on a phone, not push the page sideways."""
    page = browser_page
    flow = Flow(DaemonHttp(session, mcp_daemon.url), redirect_uri=redirect_uri or callback.url)  # type: ignore[arg-type]
    await flow.register(client_name=client_name)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(authorize_url(mcp_daemon, flow.authorize_params()))
    await expect(page.locator("#client-name")).to_have_text(client_name)
    await check_fits(page)


async def check_fits(page: Page) -> None:
    widths = await page.evaluate(
        """() => ({
            scroll: document.scrollingElement.scrollWidth,
            inner: window.innerWidth,
            form: document.querySelector('#consent').getBoundingClientRect().right,
        })"""
    )
    assert widths["inner"] == 390, widths
    assert widths["scroll"] <= widths["inner"], widths
    assert widths["form"] <= widths["inner"], widths


async def test_state_with_percent_and_hash_comes_back_unchanged(
    mcp_daemon: Daemon,
    browser_page: Page,
    callback: Callback,
    flow: Flow,
    channel: tuple[str, str],
) -> None:
    """Regression: the consent form's action was the request's *decoded* path and query
    (`rel_url.path_qs`), so after the first click an escaped `%` in the query was decoded
    once too often and a `#` cut the action URL short as a fragment, dropping every parameter
    after it (here `scope` and `resource`)."""
    page = browser_page
    state = "50%25 off #1"
    await page.goto(authorize_url(mcp_daemon, flow.authorize_params(state=state)))
    await add_channel(page, *channel)
    await expect(page.locator("#channels li[data-channel-id]")).to_have_count(1)
    await page.locator("#allow").click()

    returned = await callback.next()
    status, tokens = await flow.exchange(returned["code"])
    assert status == 200, tokens
    [grant] = await grants_of(mcp_daemon, flow.client_id)
    assert {
        "state": returned.get("state"),
        "scope": sorted(grant["scope"].split()),
        "resource": grant["resource"],
    } == {"state": state, "scope": sorted(SCOPES), "resource": f"{mcp_daemon.url}/mcp"}


async def test_enter_in_the_password_field_adds_a_second_channel(
    mcp_daemon: Daemon,
    browser_page: Page,
    flow: Flow,
    channel: tuple[str, str],
) -> None:
    """Pressing Enter submits with the form's first submit button: with a channel listed,
    that must still be "add", not the listed channel's "remove"."""
    page = browser_page
    second = await asyncio.to_thread(mcp_daemon.create_channel, "garage")
    await page.goto(authorize_url(mcp_daemon, flow.authorize_params()))
    await add_channel(page, *channel)
    listed = page.locator("#channels li[data-channel-id]")
    await expect(listed).to_have_count(1)

    await page.locator("#channel-id").fill(second[0])
    await page.locator("#password").fill(second[1])
    async with page.expect_navigation():  # the form is posted and the page comes back
        await page.locator("#password").press("Enter")
    listed_ids = [await item.get_attribute("data-channel-id") for item in await listed.all()]
    assert listed_ids == [channel[0], second[0]]
