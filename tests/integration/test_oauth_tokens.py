"""The token and revocation endpoints: PKCE, single-use codes, resources, rotation, revocation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.service.services import Services
from pushgod.store import oauth as oauth_rows

from .conftest import OAuthEnv
from .oauth_flow import Flow, pkce, query_of


def refused(services: Services, access_token: str, resource: str) -> bool:
    try:
        services.oauth.authenticate(access_token, resource)
    except PushgodError as error:
        assert error.code is ErrorCode.AUTHENTICATION_FAILED
        return True
    return False


async def test_a_code_becomes_tokens_that_speak_for_the_grant(
    flow: Flow, owned: tuple[str, str], oauth_services: Services, http: TestClient[Any, Any]
) -> None:
    code = await flow.code([owned])
    response = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "client_id": flow.client_id,
            "code_verifier": flow.verifier,
            "resource": flow.resource,
        },
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    tokens = await response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    assert tokens["access_token"].startswith("pgdo_")
    assert tokens["refresh_token"].startswith("pgdr_")
    principal = oauth_services.oauth.authenticate(tokens["access_token"], flow.resource)
    assert principal.client_id == flow.client_id
    assert principal.scopes == {"mcp:tools", "mcp:channels:manage"}
    assert oauth_services.oauth.channel_ids(principal) == [owned[0]]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_verifier": "-"}, "invalid_request"),
        ({"code_verifier": pkce()[0]}, "invalid_grant"),
        ({"code_verifier": "short"}, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:9/other"}, "invalid_grant"),
        ({"code": "not-a-code"}, "invalid_grant"),
        ({"resource": "https://elsewhere.example/mcp"}, "invalid_target"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"client_id": "pgdc_nobody"}, "invalid_client"),
    ],
)
async def test_bad_exchanges_are_refused_with_rfc6749_errors(
    flow: Flow, owned: tuple[str, str], overrides: dict[str, str], error: str
) -> None:
    code = await flow.code([owned])
    status, body = await flow.exchange(code, **overrides)
    assert status in (400, 401)
    assert body["error"] == error
    status, body = await flow.exchange(code)
    assert status == 200, "a refused exchange must not use the code up"


async def test_a_code_of_another_client_is_refused(
    flow: Flow, owned: tuple[str, str], http: TestClient[Any, Any]
) -> None:
    code = await flow.code([owned])
    other = Flow(http)
    await other.register()
    other.verifier = flow.verifier
    status, body = await other.exchange(code)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_a_code_used_twice_fails_and_revokes_what_the_first_use_issued(
    flow: Flow, owned: tuple[str, str], oauth_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    code = await flow.code([owned])
    status, first = await flow.exchange(code)
    assert status == 200
    status, second = await flow.exchange(code)
    assert (status, second["error"]) == (400, "invalid_grant")
    assert refused(oauth_services, first["access_token"], flow.resource)
    status, body = await flow.refresh(first["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert oauth_services.oauth.grants(None) == []
    assert "a code or refresh token was used again" in caplog.text
    assert first["access_token"] not in caplog.text


async def test_two_exchanges_of_one_code_at_once_issue_tokens_once(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    code = await flow.code([owned])
    results = await asyncio.gather(*(flow.exchange(code) for _ in range(4)))
    assert sorted(status for status, _ in results) == [200, 400, 400, 400]
    [token] = [body["access_token"] for status, body in results if status == 200]
    # The losers saw the code used: the grant is revoked, as for any reuse.
    assert refused(oauth_services, token, flow.resource)


async def test_an_expired_code_is_refused(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    code = await flow.code([owned])
    await oauth_services.store.write(
        lambda tx: tx.tables.execute("UPDATE oauth_codes SET expires_at = 1")
    )
    status, body = await flow.exchange(code)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_refresh_rotates_and_a_rotated_token_used_again_ends_the_grant(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    tokens = await flow.tokens([owned])
    status, renewed = await flow.refresh(tokens["refresh_token"])
    assert status == 200
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert renewed["scope"] == tokens["scope"]
    assert not refused(oauth_services, renewed["access_token"], flow.resource)
    status, body = await flow.refresh(tokens["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert refused(oauth_services, renewed["access_token"], flow.resource)
    status, body = await flow.refresh(renewed["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_refresh_may_narrow_the_scope_but_never_widen_it(
    flow: Flow, owned: tuple[str, str]
) -> None:
    narrow = await flow.tokens_with(owned, scope="mcp:tools")
    status, body = await flow.refresh(
        narrow["refresh_token"], scope="mcp:tools mcp:channels:manage"
    )
    assert (status, body["error"]) == (400, "invalid_scope")
    wide = await flow.tokens_with(owned)
    status, body = await flow.refresh(wide["refresh_token"], scope="mcp:tools")
    assert status == 200
    assert body["scope"] == "mcp:tools"


async def test_refresh_keeps_the_resource(flow: Flow, owned: tuple[str, str]) -> None:
    tokens = await flow.tokens([owned])
    status, body = await flow.refresh(
        tokens["refresh_token"], resource="https://elsewhere.example/mcp"
    )
    assert (status, body["error"]) == (400, "invalid_target")
    status, body = await flow.refresh(tokens["refresh_token"], resource=flow.resource)
    assert status == 200


async def test_a_token_is_refused_for_any_other_resource(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    tokens = await flow.tokens([owned])
    assert refused(oauth_services, tokens["access_token"], "http://127.0.0.1:1/mcp")
    assert refused(oauth_services, tokens["refresh_token"], flow.resource)
    assert refused(oauth_services, "pgd_" + tokens["access_token"][5:], flow.resource)


async def test_a_revoked_grant_ends_its_tokens_at_once(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    tokens = await flow.tokens([owned])
    [grant] = oauth_services.oauth.grants(None)
    await oauth_services.oauth.revoke_grant(None, grant.grant.id)
    assert refused(oauth_services, tokens["access_token"], flow.resource)
    status, body = await flow.refresh(tokens["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    with pytest.raises(PushgodError) as caught:
        await oauth_services.oauth.revoke_grant(None, grant.grant.id)
    assert caught.value.code is ErrorCode.GRANT_NOT_FOUND


async def test_deleting_a_channel_removes_it_from_grants(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    tokens = await flow.tokens([owned])
    await oauth_services.channels.delete(None, owned[0])
    principal = oauth_services.oauth.authenticate(tokens["access_token"], flow.resource)
    assert oauth_services.oauth.channel_ids(principal) == []


async def test_revoking_an_access_token_leaves_the_refresh_token(
    flow: Flow, owned: tuple[str, str], oauth_services: Services, http: TestClient[Any, Any]
) -> None:
    tokens = await flow.tokens([owned])
    response = await http.post(
        "/oauth/revoke",
        data={"token": tokens["access_token"], "client_id": flow.client_id},
    )
    assert response.status == 200
    assert refused(oauth_services, tokens["access_token"], flow.resource)
    status, _ = await flow.refresh(tokens["refresh_token"])
    assert status == 200


async def test_revoking_a_refresh_token_ends_the_grant(
    flow: Flow,
    owned: tuple[str, str],
    oauth_services: Services,
    http: TestClient[Any, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokens = await flow.tokens([owned])
    response = await http.post(
        "/oauth/revoke",
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": flow.client_id,
        },
    )
    assert response.status == 200
    assert refused(oauth_services, tokens["access_token"], flow.resource)
    assert oauth_services.oauth.grants(None) == []
    # A client revoking its own token is no alarm (it was logged as a reuse before).
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_revocation_of_unknown_or_foreign_tokens(
    flow: Flow, owned: tuple[str, str], oauth_services: Services, http: TestClient[Any, Any]
) -> None:
    response = await http.post(
        "/oauth/revoke", data={"token": "pgdo_unknown", "client_id": flow.client_id}
    )
    assert response.status == 200
    tokens = await flow.tokens([owned])
    other = Flow(http)
    await other.register()
    response = await http.post(
        "/oauth/revoke", data={"token": tokens["access_token"], "client_id": other.client_id}
    )
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_grant"
    assert not refused(oauth_services, tokens["access_token"], flow.resource)
    response = await http.post("/oauth/revoke", data={"client_id": flow.client_id})
    assert (await response.json())["error"] == "invalid_request"


@pytest.mark.parametrize(
    "oauth_env", [{"PUSHGOD_OAUTH_PREDEFINED_CLIENTS": "desktop:s3cret-desktop;other:x"}]
)
async def test_a_predefined_client_authenticates_with_its_secret(
    http: TestClient[Any, Any], owned: tuple[str, str], oauth_env: OAuthEnv
) -> None:
    flow = Flow(http, client_id="desktop", redirect_uri="https://claude.ai/api/mcp/auth_callback")
    code = await flow.code([owned])
    status, body = await flow.exchange(code, client_secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await flow.exchange(code, client_secret="s3cret-desktop")
    assert status == 200, body
    # Without a secret it is not a public client.
    status, body = await flow.refresh(body["refresh_token"])
    assert body["error"] == "invalid_client"


async def test_cleanup_deletes_what_expired(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    await flow.tokens([owned])
    await flow.code([owned])
    await oauth_services.store.write(
        lambda tx: [
            tx.tables.execute(f"UPDATE {table} SET expires_at = 1")  # noqa: S608
            for table in ("oauth_codes", "oauth_tokens", "oauth_grants")
        ]
    )
    await oauth_services.cleanup.run_once()
    tables = oauth_services.store.tables
    for table in ("oauth_codes", "oauth_tokens", "oauth_grants"):
        assert tables.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0  # noqa: S608
    assert [row.id for row in oauth_rows.clients(tables)] == [flow.client_id]
    await oauth_services.store.write(
        lambda tx: tx.tables.execute("UPDATE oauth_clients SET created_at = 1")
    )
    await oauth_services.cleanup.run_once()
    assert oauth_rows.clients(tables) == []


async def test_the_state_and_iss_survive_a_client_redirect_uri_with_a_query(
    http: TestClient[Any, Any], owned: tuple[str, str]
) -> None:
    flow = Flow(http, redirect_uri="https://app.example/cb?tenant=a%26b")
    await flow.register()
    location = await flow.consent(flow.authorize_params(state="x"), [owned])
    query = query_of(location)
    assert query["tenant"] == "a&b"
    assert query["state"] == "x"
