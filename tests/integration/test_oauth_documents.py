"""Clients identified by a metadata document URL (Claude Code's way), fetched for real over
HTTPS from a server on 127.0.0.1 whose certificate the test trusts through SSL_CERT_FILE."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509

from pushgod.service.services import Services
from pushgod.store import oauth as oauth_rows

from .conftest import OAuthEnv
from .oauth_flow import Flow, query_of
from .tls import make_cert

CALLBACK = "http://localhost/callback"
PRIVATE_ALLOWED = {"PUSHGOD_OAUTH_CLIENT_DOCUMENTS_PRIVATE_HOSTS": "true"}


@pytest.fixture
async def documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """An HTTPS origin serving client metadata documents: `/good`, `/liar`, `/count`."""
    cert = make_cert(
        tmp_path / "tls",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_file))
    fetched: list[str] = []

    async def document(request: web.Request) -> web.Response:
        fetched.append(request.path)
        url = f"https://localhost:{request.url.port}{request.path}"
        client_id = url if request.path != "/liar" else "https://claude.ai/oauth/metadata"
        return web.json_response(
            {
                "client_id": client_id,
                "client_name": "Document Client",
                "redirect_uris": [CALLBACK, "http://127.0.0.1/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            },
            headers={"Cache-Control": "max-age=600"},
        )

    async def count(request: web.Request) -> web.Response:
        return web.json_response(fetched)

    app = web.Application()
    app.router.add_get("/good", document)
    app.router.add_get("/liar", document)
    app.router.add_get("/fetched", count)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert_file, cert.key_file)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://localhost:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("oauth_env", [PRIVATE_ALLOWED])
async def test_a_document_client_completes_the_flow(
    http: TestClient[Any, Any],
    owned: tuple[str, str],
    documents: str,
    oauth_services: Services,
    oauth_env: OAuthEnv,
) -> None:
    flow = Flow(http, client_id=f"{documents}/good", redirect_uri="http://localhost:40123/callback")
    page = await (await http.get("/oauth/authorize", params=flow.authorize_params())).text()
    assert '<strong id="client-name">Document Client</strong>' in page
    location = await flow.consent(flow.authorize_params(), [owned])
    status, tokens = await flow.exchange(query_of(location)["code"])
    assert status == 200, tokens
    status, _ = await flow.refresh(tokens["refresh_token"])
    assert status == 200
    [row] = oauth_rows.clients(oauth_services.store.tables)
    assert (row.id, row.kind, row.name) == (f"{documents}/good", "document", "Document Client")
    assert row.expires_at is not None
    assert row.expires_at - row.created_at == 600_000


@pytest.mark.parametrize("oauth_env", [PRIVATE_ALLOWED])
async def test_a_document_that_lies_about_its_client_id_is_refused(
    http: TestClient[Any, Any],
    documents: str,
    oauth_services: Services,
    oauth_env: OAuthEnv,
) -> None:
    flow = Flow(http, client_id=f"{documents}/liar", redirect_uri=CALLBACK)
    response = await http.get(
        "/oauth/authorize", params=flow.authorize_params(), allow_redirects=False
    )
    assert response.status == 400
    assert "Location" not in response.headers
    assert "client_id is not the URL" in await response.text()
    assert oauth_rows.clients(oauth_services.store.tables) == []


async def test_a_document_on_a_private_address_is_never_fetched(
    http: TestClient[Any, Any], documents: str, oauth_services: Services
) -> None:
    for client_id in (f"{documents}/good", "https://10.1.2.3/client", "https://[::1]/client"):
        flow = Flow(http, client_id=client_id, redirect_uri=CALLBACK)
        response = await http.get(
            "/oauth/authorize", params=flow.authorize_params(), allow_redirects=False
        )
        assert response.status == 400, client_id
        assert "Location" not in response.headers
    status, body = await flow.exchange("any-code", client_id=f"{documents}/good")
    assert (status, body["error"]) == (400, "invalid_client")
    async with http.session.get(f"{documents}/fetched", ssl=False) as fetched:
        assert await fetched.json() == []
    assert oauth_rows.clients(oauth_services.store.tables) == []


@pytest.mark.parametrize("oauth_env", [{**PRIVATE_ALLOWED, "PUSHGOD_OAUTH_CLIENT_DOCUMENTS": "0"}])
async def test_documents_can_be_turned_off(
    http: TestClient[Any, Any], documents: str, oauth_env: OAuthEnv
) -> None:
    flow = Flow(http, client_id=f"{documents}/good", redirect_uri=CALLBACK)
    response = await http.get("/oauth/authorize", params=flow.authorize_params())
    assert response.status == 400
    metadata = await (await http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["client_id_metadata_document_supported"] is False
