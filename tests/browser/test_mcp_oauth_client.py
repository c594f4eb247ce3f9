"""The MCP SDK's own OAuth client against the real daemon, with a person in Chromium.

`OAuthClientProvider` does everything a real MCP client does on its first 401 from /mcp:
protected resource metadata (RFC 9728), authorization server metadata (RFC 8414, whose
`issuer` it compares byte for byte with the PRM's `authorization_servers`), dynamic
registration (RFC 7591), then the code flow with PKCE and `resource`. Its redirect handler
hands the authorization URL to Chromium, where the person adds a channel and allows; its
callback handler waits for the browser to arrive at the loopback redirect URI.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx2
from daemon.harness import Daemon
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from playwright.async_api import Page, expect

from .conftest import GUARD_S, Callback

CLIENT_NAME = "SDK Test Assistant"
FLOW_GUARD_S = 4 * GUARD_S
"""The whole connection, OAuth dance included, gives up after this: a guard, not a wait."""


@dataclass
class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class Person:
    """Who sits at the browser: opens the authorization URL, adds the channel, allows."""

    page: Page
    channel_id: str
    password: str
    opened: list[str] = field(default_factory=list)

    async def consent(self, authorization_url: str) -> None:
        self.opened.append(authorization_url)
        await self.page.goto(authorization_url)
        await expect(self.page.locator("#client-name")).to_have_text(CLIENT_NAME)
        await self.page.locator("#channel-id").fill(self.channel_id)
        await self.page.locator("#password").fill(self.password)
        await self.page.locator("#add").click()
        listed = self.page.locator("#channels li[data-channel-id]")
        await expect(listed).to_have_attribute("data-channel-id", self.channel_id)
        await self.page.locator("#allow").click()


def provider(
    daemon: Daemon, storage: MemoryStorage, callback: Callback, person: Person
) -> OAuthClientProvider:
    async def returned() -> AuthorizationCodeResult:
        query = await callback.next()
        return AuthorizationCodeResult(
            code=query["code"], state=query.get("state"), iss=query.get("iss")
        )

    metadata = OAuthClientMetadata(
        client_name=CLIENT_NAME,
        redirect_uris=[callback.url],  # type: ignore[list-item]  # pydantic parses the str
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(
        server_url=f"{daemon.url}/mcp",
        client_metadata=metadata,
        storage=storage,
        redirect_handler=person.consent,
        callback_handler=returned,
    )


@asynccontextmanager
async def mcp_session(url: str, auth: OAuthClientProvider) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(GUARD_S)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        yield session


async def test_sdk_client_authorizes_through_the_consent_page(
    mcp_daemon: Daemon, browser_page: Page, callback: Callback
) -> None:
    channel_id, password = await asyncio.to_thread(mcp_daemon.create_channel, "office")
    person = Person(browser_page, channel_id, password)
    storage = MemoryStorage()
    url = f"{mcp_daemon.url}/mcp"

    async with (
        asyncio.timeout(FLOW_GUARD_S),
        mcp_session(url, provider(mcp_daemon, storage, callback, person)) as session,
    ):
        init = await session.initialize()
        await session.list_tools()  # an authenticated request after initialize; raises if refused
    assert init.server_info.name == "pushgod"

    # It went through discovery, registration and the page, once.
    assert len(person.opened) == 1
    assert person.opened[0].startswith(f"{mcp_daemon.url}/oauth/authorize?")
    assert len(callback.hits) == 1
    assert callback.hits[0]["iss"] == mcp_daemon.url
    assert storage.client_info is not None and storage.tokens is not None
    assert storage.client_info.client_name == CLIENT_NAME
    assert storage.tokens.refresh_token

    listed = await asyncio.to_thread(mcp_daemon.cli_json, "oauth", "grants", "list")
    [grant] = listed["grants"]
    assert grant["client_id"] == storage.client_info.client_id
    assert grant["channel_ids"] == [channel_id]
    assert grant["resource"] == url

    # A second connection with the stored token needs no person.
    again = Person(browser_page, channel_id, password)
    async with (
        asyncio.timeout(FLOW_GUARD_S),
        mcp_session(url, provider(mcp_daemon, storage, callback, again)) as session,
    ):
        await session.initialize()
    assert again.opened == []
