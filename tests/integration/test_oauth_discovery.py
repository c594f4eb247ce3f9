"""Discovery and dynamic registration over real HTTP: what MCP clients read first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pushgod.http.app import create_app
from pushgod.oauth.discovery import AUTHORIZATION_SERVER_PATHS, PROTECTED_RESOURCE_PATHS
from pushgod.service.services import Services
from pushgod.store import oauth as oauth_rows

from .conftest import OAuthEnv
from .support import settings_with


def base(http: TestClient[Any, Any]) -> str:
    return f"http://{http.host}:{http.port}"


async def test_metadata_is_served_at_every_path_with_s256_only(
    http: TestClient[Any, Any],
) -> None:
    documents = []
    for path in AUTHORIZATION_SERVER_PATHS:
        response = await http.get(path)
        assert response.status == 200, path
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        documents.append(await response.json())
    assert all(document == documents[0] for document in documents)
    metadata = documents[0]
    assert metadata["issuer"] == base(http)
    assert metadata["token_endpoint"] == base(http) + "/oauth/token"
    assert metadata["registration_endpoint"] == base(http) + "/oauth/register"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert metadata["scopes_supported"] == ["mcp:tools", "mcp:channels:manage"]
    assert metadata["client_id_metadata_document_supported"] is True


async def test_protected_resource_names_the_issuer_byte_for_byte(
    http: TestClient[Any, Any],
) -> None:
    issuer = (await (await http.get(AUTHORIZATION_SERVER_PATHS[0])).json())["issuer"]
    for path in PROTECTED_RESOURCE_PATHS:
        response = await http.get(path)
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        document = await response.json()
        assert document["resource"] == base(http) + "/mcp"
        assert document["authorization_servers"] == [issuer]
        assert document["bearer_methods_supported"] == ["header"]


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/register", PROTECTED_RESOURCE_PATHS[1]])
async def test_cors_preflight(http: TestClient[Any, Any], path: str) -> None:
    response = await http.options(
        path,
        headers={"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize(
    "oauth_env", [{"PUSHGOD_SERVER_PUBLIC_BASE_URL": "https://push.example.net/"}]
)
async def test_the_configured_public_url_is_the_issuer(
    http: TestClient[Any, Any], oauth_env: OAuthEnv
) -> None:
    metadata = await (await http.get(AUTHORIZATION_SERVER_PATHS[0])).json()
    assert metadata["issuer"] == "https://push.example.net"
    resource = await (await http.get(PROTECTED_RESOURCE_PATHS[1])).json()
    assert resource["resource"] == "https://push.example.net/mcp"


async def test_without_mcp_there_is_no_oauth(
    tmp_path: Path, aiohttp_client: Any, services: Services
) -> None:
    settings = settings_with(tmp_path)
    http = await aiohttp_client(create_app(settings, services))
    for path in ("/oauth/token", AUTHORIZATION_SERVER_PATHS[0], "/oauth/authorize"):
        response = await http.get(path)
        assert response.status == 404, path


async def test_a_public_client_registers_without_a_secret(http: TestClient[Any, Any]) -> None:
    response = await http.post(
        "/oauth/register",
        json={
            "client_name": "Claude Code",
            "redirect_uris": ["http://localhost:43121/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "mcp:tools",
            "software_id": "ignored-unknown-field",
        },
    )
    assert response.status == 201
    body = await response.json()
    assert body["client_id"].startswith("pgdc_")
    assert "client_secret" not in body
    assert body["token_endpoint_auth_method"] == "none"
    assert body["redirect_uris"] == ["http://localhost:43121/callback"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_confidential_client_gets_a_secret(http: TestClient[Any, Any]) -> None:
    response = await http.post(
        "/oauth/register",
        json={
            "redirect_uris": ["https://assistant.example/cb"],
            "token_endpoint_auth_method": "client_secret_post",
        },
    )
    assert response.status == 201
    body = await response.json()
    assert len(body["client_secret"]) >= 40
    assert body["client_secret_expires_at"] == 0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://a.example/cb"}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["data:text/html,hi"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example/c b"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["/relative/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https:///nohost"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example:99999/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": [f"https://a.example/{i}" for i in range(11)]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example/" + "x" * 2001]}, "invalid_redirect_uri"),
        ({"redirect_uris": [7]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example/cb"], "client_name": "x" * 201}, None),
        ({"redirect_uris": ["https://a.example/cb"], "client_name": 5}, None),
        ({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}, None),
        ({"redirect_uris": ["https://a.example/cb"], "grant_types": ["refresh_token"]}, None),
        ({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}, None),
        ({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}, None),
        (
            {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "jwt"},
            None,
        ),
        ([{"redirect_uris": ["https://a.example/cb"]}], None),
    ],
)
async def test_malformed_registrations_are_refused_and_store_nothing(
    http: TestClient[Any, Any], oauth_services: Services, body: object, error: str | None
) -> None:
    response = await http.post("/oauth/register", json=body)
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == (error or "invalid_client_metadata")
    assert answer["error_description"]
    assert oauth_rows.clients(oauth_services.store.tables) == []


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"redirect_uris": ["https://a.example/cb"],', "application/json"),
        (b'{"redirect_uris": ["https://a.example/cb"]}', "text/plain"),
        (b'{"a": 1, "a": 2}', "application/json"),
        (b"\xff\xfe", "application/json"),
    ],
)
async def test_registrations_that_are_not_json_are_refused(
    http: TestClient[Any, Any], oauth_services: Services, data: bytes, content_type: str
) -> None:
    response = await http.post("/oauth/register", data=data, headers={"Content-Type": content_type})
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_client_metadata"
    assert oauth_rows.clients(oauth_services.store.tables) == []


async def test_an_oversized_registration_is_refused(
    http: TestClient[Any, Any], oauth_services: Services
) -> None:
    body = {"redirect_uris": ["https://a.example/cb"], "padding": "x" * 40_000}
    response = await http.post("/oauth/register", json=body)
    assert response.status == 413
    assert oauth_rows.clients(oauth_services.store.tables) == []


@pytest.mark.parametrize("oauth_env", [{"PUSHGOD_OAUTH_REGISTRATION": "false"}])
async def test_registration_can_be_turned_off(
    http: TestClient[Any, Any], oauth_env: OAuthEnv
) -> None:
    metadata = await (await http.get(AUTHORIZATION_SERVER_PATHS[0])).json()
    assert "registration_endpoint" not in metadata
    response = await http.post("/oauth/register", json={"redirect_uris": ["https://a.b/c"]})
    assert response.status == 404
