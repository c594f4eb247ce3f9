"""The authorization endpoint and its consent page, driven over real HTTP.

Every refusal is checked for what matters: whether the browser is sent anywhere (never to
a redirect URI that was not registered) and that no code was issued.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pushgod.service.services import Services
from pushgod.store import oauth as oauth_rows

from .oauth_flow import REDIRECT_URI, Flow, hidden, query_of


def issued_codes(services: Services) -> int:
    return int(services.store.tables.execute("SELECT count(*) FROM oauth_codes").fetchone()[0])


async def test_allow_returns_a_code_with_the_state_encoded_and_the_issuer(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    params = flow.authorize_params(state="a b&c=d/é?")
    location = await flow.consent(params, [owned])
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["state"] == "a b&c=d/é?"
    assert query["iss"] == f"http://{flow.http.host}:{flow.http.port}"
    assert len(query["code"]) >= 40
    [grant] = oauth_services.oauth.grants(None)
    assert grant.channel_ids == [owned[0]]
    assert grant.grant.scope == "mcp:tools mcp:channels:manage"


async def test_the_grant_covers_exactly_the_channels_added(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    second, second_password = await oauth_services.channels.create(None, "garage")
    other, _ = await oauth_services.channels.create(None, "not added")
    await flow.consent(flow.authorize_params(), [owned, (second.id, second_password)])
    [grant] = oauth_services.oauth.grants(None)
    assert sorted(grant.channel_ids) == sorted([owned[0], second.id])
    assert other.id not in grant.channel_ids


async def test_no_password_is_stored(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    await flow.tokens([owned])
    oauth_services.close()
    stored = b"".join(
        path.read_bytes() for path in oauth_services.store.path.parent.glob("pushgod.db*")
    )
    assert owned[1].encode() not in stored


async def test_deny_returns_access_denied_with_the_state(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    location = await flow.consent(flow.authorize_params(state="s1"), [owned], action="deny")
    query = query_of(location)
    assert query["error"] == "access_denied"
    assert query["state"] == "s1"
    assert "code" not in query
    assert issued_codes(oauth_services) == 0


async def test_the_page_shows_client_redirect_host_and_scopes(flow: Flow) -> None:
    response = await flow.http.get("/oauth/authorize", params=flow.authorize_params())
    page = await response.text()
    assert response.status == 200
    assert '<strong id="client-name">Test Assistant</strong>' in page
    assert '<strong id="redirect-host">127.0.0.1:9</strong>' in page
    assert 'data-scope="mcp:tools"' in page
    assert 'data-scope="mcp:channels:manage"' in page
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self' http://127.0.0.1:9" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "HttpOnly" in response.headers["Set-Cookie"]
    assert "SameSite=Strict" in response.headers["Set-Cookie"]


async def test_a_client_name_cannot_inject_markup(http: TestClient[Any, Any]) -> None:
    flow = Flow(http)
    await flow.register(client_name='<script>alert("x")</script>')
    page = await (await http.get("/oauth/authorize", params=flow.authorize_params())).text()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


async def post_form(
    flow: Flow, params: dict[str, str], page: str, **fields: str
) -> tuple[int, str, str | None]:
    data = {"csrf_token": hidden(page, "csrf_token"), "verified": hidden(page, "verified")}
    data.update(fields)
    data = {name: value for name, value in data.items() if value != "-"}
    response = await flow.http.post(
        "/oauth/authorize", params=params, data=data, allow_redirects=False
    )
    return response.status, await response.text(), response.headers.get("Location")


async def test_a_wrong_password_is_refused_and_nothing_is_added(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    params = flow.authorize_params()
    page = await (await flow.http.get("/oauth/authorize", params=params)).text()
    status, page, _ = await post_form(
        flow, params, page, channel_id=owned[0], password="wrong", action="add"
    )
    assert status == 403
    assert 'id="error"' in page
    assert "do not match" in page
    assert "data-channel-id" not in page
    status, page, location = await post_form(flow, params, page, action="allow")
    assert status == 400
    assert location is None
    assert "at least one channel" in page
    assert issued_codes(oauth_services) == 0


async def test_an_unknown_channel_reads_like_a_wrong_password(flow: Flow) -> None:
    params = flow.authorize_params()
    page = await (await flow.http.get("/oauth/authorize", params=params)).text()
    status, page, _ = await post_form(
        flow, params, page, channel_id="0" * 26, password="x", action="add"
    )
    assert status == 404
    assert "do not match" in page


async def test_wrong_passwords_are_rate_limited(flow: Flow, owned: tuple[str, str]) -> None:
    params = flow.authorize_params()
    page = await (await flow.http.get("/oauth/authorize", params=params)).text()
    statuses = []
    for attempt in range(11):
        status, page, _ = await post_form(
            flow, params, page, channel_id=owned[0], password=f"guess {attempt}", action="add"
        )
        statuses.append(status)
    assert statuses[:10] == [403] * 10
    assert statuses[10] == 429
    assert "Too many wrong passwords" in page
    # Even the right password waits now: the limit is per address and channel.
    status, page, _ = await post_form(
        flow, params, page, channel_id=owned[0], password=owned[1], action="add"
    )
    assert status == 429


@pytest.mark.parametrize("token", ["-", "", "forged-token"])
async def test_a_form_without_its_csrf_token_is_refused(
    flow: Flow, owned: tuple[str, str], oauth_services: Services, token: str
) -> None:
    params = flow.authorize_params()
    page = await (await flow.http.get("/oauth/authorize", params=params)).text()
    status, page, _ = await post_form(
        flow, params, page, csrf_token=token, channel_id=owned[0], password=owned[1], action="allow"
    )
    assert status == 403
    assert "expired" in page
    assert issued_codes(oauth_services) == 0


async def test_a_form_posted_from_a_browser_without_the_cookie_is_refused(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    params = flow.authorize_params()
    page = await (await flow.http.get("/oauth/authorize", params=params)).text()
    flow.http.session.cookie_jar.clear()
    status, _, location = await post_form(
        flow, params, page, channel_id=owned[0], password=owned[1], action="allow"
    )
    assert status == 403
    assert location is None
    assert issued_codes(oauth_services) == 0


async def test_proven_channels_do_not_carry_over_to_another_client(
    flow: Flow, owned: tuple[str, str], http: TestClient[Any, Any], oauth_services: Services
) -> None:
    params = flow.authorize_params()
    page = await (await http.get("/oauth/authorize", params=params)).text()
    status, page, _ = await post_form(
        flow, params, page, channel_id=owned[0], password=owned[1], action="add"
    )
    assert status == 200
    proven = hidden(page, "verified")
    attacker = Flow(http)
    await attacker.register(client_name="Other")
    other_params = attacker.authorize_params()
    other_page = await (await http.get("/oauth/authorize", params=other_params)).text()
    status, other_page, location = await post_form(
        attacker, other_params, other_page, verified=proven, action="allow"
    )
    assert status == 400
    assert location is None
    assert issued_codes(oauth_services) == 0


async def test_a_channel_can_be_removed_before_allowing(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    second, second_password = await oauth_services.channels.create(None, "garage")
    params = flow.authorize_params()
    page = await (await flow.http.get("/oauth/authorize", params=params)).text()
    for channel_id, password in (owned, (second.id, second_password)):
        _, page, _ = await post_form(
            flow, params, page, channel_id=channel_id, password=password, action="add"
        )
    _, page, _ = await post_form(flow, params, page, remove=owned[0])
    assert f'data-channel-id="{owned[0]}"' not in page
    _, _, location = await post_form(flow, params, page, action="allow")
    assert location is not None
    [grant] = oauth_services.oauth.grants(None)
    assert grant.channel_ids == [second.id]


async def error_page(http: TestClient[Any, Any], params: dict[str, str]) -> str:
    """The authorize request must end on an error page: 400, HTML, no redirect."""
    response = await http.get("/oauth/authorize", params=params, allow_redirects=False)
    assert response.status == 400
    assert "Location" not in response.headers
    assert response.content_type == "text/html"
    return await response.text()


async def test_an_unregistered_client_gets_an_error_page(flow: Flow) -> None:
    page = await error_page(flow.http, flow.authorize_params(client_id="pgdc_nobody"))
    assert "cannot go ahead" in page


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://127.0.0.1:9/callback/../evil",
        "http://127.0.0.1:9/other",
        "http://127.0.0.1.evil.example:9/callback",
        "http://localhost@evil.example/callback",
        "http://evil.example/?next=http://127.0.0.1:9/callback",
        "//evil.example/callback",
        "http://localhost:9/callback",  # loopback, but another host name than registered
        "-",
    ],
)
async def test_a_redirect_uri_that_was_not_registered_never_redirects(
    flow: Flow, redirect_uri: str, oauth_services: Services
) -> None:
    await error_page(flow.http, flow.authorize_params(redirect_uri=redirect_uri))
    response = await flow.http.post(
        "/oauth/authorize",
        params=flow.authorize_params(redirect_uri=redirect_uri),
        data={"action": "allow"},
        allow_redirects=False,
    )
    assert response.status == 400
    assert "Location" not in response.headers
    assert issued_codes(oauth_services) == 0


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://127.0.0.1:9/callback", "http://127.0.0.1:51234/callback"),
        ("http://localhost/callback", "http://localhost:41999/callback"),
        ("http://[::1]/cb", "http://[::1]:8080/cb"),
    ],
)
async def test_loopback_redirects_may_use_any_port(
    http: TestClient[Any, Any], owned: tuple[str, str], registered: str, requested: str
) -> None:
    flow = Flow(http, redirect_uri=registered)
    await flow.register()
    flow.redirect_uri = requested
    location = await flow.consent(flow.authorize_params(), [owned])
    assert location.startswith(requested + "?")
    status, body = await flow.exchange(query_of(location)["code"])
    assert status == 200, body


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": "-", "code_challenge_method": "-"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": "-"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"resource": "https://elsewhere.example/mcp"}, "invalid_target"),
        ({"scope": "mcp:tools admin"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
async def test_bad_requests_from_a_known_client_return_to_it_with_an_error(
    flow: Flow, overrides: dict[str, str], error: str, oauth_services: Services
) -> None:
    response = await flow.http.get(
        "/oauth/authorize",
        params=flow.authorize_params(state="keep", **overrides),
        allow_redirects=False,
    )
    assert response.status == 303
    query = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    assert query["error"] == error
    assert query["state"] == "keep"
    assert issued_codes(oauth_services) == 0


async def test_no_scope_asks_for_the_tools(
    flow: Flow, owned: tuple[str, str], oauth_services: Services
) -> None:
    tokens = await flow.tokens_with(owned, scope="-")
    assert tokens["scope"] == "mcp:tools"
    [grant] = oauth_rows.grants(oauth_services.store.tables)
    assert grant.scope == "mcp:tools"
