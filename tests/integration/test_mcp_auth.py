"""/mcp as an OAuth protected resource: challenges, accepted tokens, refused ones."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from aiohttp.test_utils import TestClient
from mcp.client.session import ClientSession as McpSession
from mcp.client.streamable_http import streamable_http_client

from pushgod.service.services import Services

from .oauth_flow import Flow

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


async def post(http: TestClient[Any, Any], token: str | None) -> Any:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http.post("/mcp", json=INITIALIZE, headers=headers)


async def test_no_token_is_challenged_towards_discovery(http: TestClient[Any, Any]) -> None:
    response = await post(http, None)
    assert response.status == 401
    challenge = response.headers["WWW-Authenticate"]
    path = "/.well-known/oauth-protected-resource/mcp"
    metadata = f"http://{http.host}:{http.port}{path}"
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{metadata}"' in challenge
    assert 'scope="mcp:tools mcp:channels:manage"' in challenge
    assert "error=" not in challenge
    discovered = await http.get(path)
    assert discovered.status == 200


@pytest.mark.parametrize(
    "token", ["pgdo_not-a-real-token", "pgd_an-admin-token-is-not-oauth", "x" * 5000]
)
async def test_bad_tokens_are_refused(http: TestClient[Any, Any], token: str) -> None:
    response = await post(http, token)
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_an_access_token_opens_an_mcp_session(
    flow: Flow, owned: tuple[str, str], http: TestClient[Any, Any]
) -> None:
    tokens = await flow.tokens([owned])
    url = str(http.make_url("/mcp"))
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        McpSession(read, write) as session,
    ):
        initialized = await session.initialize()
        assert initialized.server_info.name == "pushgod"


async def test_refresh_tokens_and_revoked_grants_are_refused(
    flow: Flow, owned: tuple[str, str], http: TestClient[Any, Any], oauth_services: Services
) -> None:
    tokens = await flow.tokens([owned])
    assert (await post(http, tokens["refresh_token"])).status == 401
    assert (await post(http, tokens["access_token"])).status == 200
    [grant] = oauth_services.oauth.grants(None)
    await oauth_services.oauth.revoke_grant(None, grant.grant.id)
    response = await post(http, tokens["access_token"])
    assert response.status == 401
    assert "revoked" in (await response.json())["error_description"]


async def test_a_token_is_bound_to_the_resource_it_was_issued_for(
    flow: Flow, owned: tuple[str, str], http: TestClient[Any, Any]
) -> None:
    tokens = await flow.tokens([owned])
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {tokens['access_token']}"}
    # The same server under another name is another resource (RFC 8707).
    response = await http.post(
        "/mcp", json=INITIALIZE, headers={**headers, "Host": f"localhost:{http.port}"}
    )
    assert response.status == 401
    assert "another resource" in (await response.json())["error_description"]
