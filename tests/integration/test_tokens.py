"""Scoped tokens: what each scope may do, expiry, revocation and the last-used time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pushgod.config import Settings
from pushgod.model.tokens import Scope
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.context import now_ms
from pushgod.service.services import Services

from .support import (
    Client,
    admin_token,
    barrier,
    bearer,
    call,
    channel_token,
    expired_channel_token,
    fail,
    ok,
    settings_with,
)

Channel = tuple[str, str]
NOW_S = int(time.time())


def sends(channel_id: str) -> dict[str, dict[str, Any]]:
    """One request per kind of send route, without a password."""
    return {
        "/message": {"channel_id": channel_id, "title": "by token"},
        "/event/create": {
            "channel_id": channel_id,
            "title": "t",
            "status": "s",
            "message": "m",
            "severity": "low",
            "event_time": NOW_S,
        },
        "/thing/create": {"channel_id": channel_id, "observed_at": NOW_S},
    }


def reads(channel_id: str) -> list[str]:
    base = f"/api/v1/channels/{channel_id}"
    return [base, f"{base}/messages", f"{base}/events", f"{base}/things"]


# What each kind of token may do: 200 or the refusal.
ALLOWED = {
    "publish": {"/message": 200, "/event/create": 200, "/thing/create": 200, "read": 403},
    "subscribe": {"/message": 403, "/event/create": 403, "/thing/create": 403, "read": 200},
    "things": {"/message": 403, "/event/create": 403, "/thing/create": 200, "read": 403},
    "publish+subscribe": {"/message": 200, "/event/create": 200, "/thing/create": 200, "read": 200},
    "admin": {"/message": 200, "/event/create": 200, "/thing/create": 200, "read": 200},
}
SCOPES = {
    "publish": (Scope.PUBLISH,),
    "subscribe": (Scope.SUBSCRIBE,),
    "things": (Scope.THINGS,),
    "publish+subscribe": (Scope.PUBLISH, Scope.SUBSCRIBE),
}


@pytest.mark.parametrize("kind", ALLOWED)
async def test_what_each_scope_may_do(
    client: Client, services: Services, channel: Channel, kind: str
) -> None:
    channel_id = channel[0]
    if kind == "admin":
        token = await admin_token(services)
    else:
        token = await channel_token(services, channel_id, *SCOPES[kind])
    for path, body in sends(channel_id).items():
        status, reply = await call(client, "POST", path, json=body, headers=bearer(token))
        assert status == ALLOWED[kind][path], (path, reply)
        if status != 200:
            assert reply["error_code"] == "insufficient_scope"
    for path in reads(channel_id):
        status, reply = await call(client, "GET", path, headers=bearer(token))
        assert status == ALLOWED[kind]["read"], (path, reply)
        if status != 200:
            assert reply["error_code"] == "insufficient_scope"
    # Only admin tokens reach the admin API.
    status, reply = await call(client, "GET", "/api/v1/admin/channels", headers=bearer(token))
    assert (status == 200) == (kind == "admin"), reply


async def test_publish_token_sends_everything_without_password(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id = channel[0]
    token = await channel_token(services, channel_id, Scope.PUBLISH)
    auth = bearer(token)
    sent = await ok(client, "POST", "/message", json=sends(channel_id)["/message"], headers=auth)
    got = await ok(
        client, "GET", "/message", params={"channel_id": channel_id, "title": "get"}, headers=auth
    )
    event = await ok(
        client, "POST", "/event/create", json=sends(channel_id)["/event/create"], headers=auth
    )
    await ok(
        client,
        "POST",
        "/event/close",
        json=sends(channel_id)["/event/create"] | {"event_id": event["event_id"], "title": None},
        headers=auth,
    )
    reader = await channel_token(services, channel_id, Scope.SUBSCRIBE)
    listing = await ok(
        client, "GET", f"/api/v1/channels/{channel_id}/messages", headers=bearer(reader)
    )
    assert [m["message_id"] for m in listing["messages"]] == [
        got["message_id"],
        sent["message_id"],
    ]
    closed = await ok(
        client, "GET", f"/api/v1/channels/{channel_id}/events?state=closed", headers=bearer(reader)
    )
    assert [e["event_id"] for e in closed["events"]] == [event["event_id"]]


async def test_things_token_may_run_the_whole_thing_lifecycle(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id = channel[0]
    auth = bearer(await channel_token(services, channel_id, Scope.THINGS))
    base = {"channel_id": channel_id, "observed_at": NOW_S}
    thing_id = (await ok(client, "POST", "/thing/create", json=base, headers=auth))["thing_id"]
    for action in ("update", "archive", "delete"):
        await ok(
            client, "POST", f"/thing/{action}", json=base | {"thing_id": thing_id}, headers=auth
        )
    # ...and nothing else: not even reading the thing it wrote.
    await fail(
        client,
        "GET",
        f"/api/v1/channels/{channel_id}/things/{thing_id}",
        403,
        "insufficient_scope",
        headers=auth,
    )
    await fail(
        client,
        "POST",
        "/message",
        403,
        "insufficient_scope",
        json={"channel_id": channel_id, "title": "t"},
        headers=auth,
    )


async def test_admin_token_works_on_every_channel(
    client: Client, services: Services, channel: Channel
) -> None:
    other, _ = await services.channels.create(LOCAL_OPERATOR, "other")
    auth = bearer(await admin_token(services))
    for channel_id in (channel[0], other.id):
        await ok(client, "POST", "/message", json=sends(channel_id)["/message"], headers=auth)
        summary = await ok(client, "GET", f"/api/v1/channels/{channel_id}", headers=auth)
        assert summary["counts"]["messages"] == 1
    channels = await ok(client, "GET", "/api/v1/admin/channels", headers=auth)
    assert {c["channel_id"] for c in channels["channels"]} == {channel[0], other.id}


async def test_token_for_another_channel_is_forbidden(
    client: Client, services: Services, channel: Channel
) -> None:
    other, _ = await services.channels.create(LOCAL_OPERATOR, "other")
    token = await channel_token(services, other.id, Scope.PUBLISH, Scope.SUBSCRIBE, Scope.THINGS)
    await fail(
        client,
        "POST",
        "/message",
        403,
        "channel_forbidden",
        json=sends(channel[0])["/message"],
        headers=bearer(token),
    )
    await fail(
        client,
        "GET",
        f"/api/v1/channels/{channel[0]}",
        403,
        "channel_forbidden",
        headers=bearer(token),
    )


async def test_expired_token_is_refused(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id = channel[0]
    expired = await expired_channel_token(services, channel_id, Scope.PUBLISH, Scope.SUBSCRIBE)
    live = await channel_token(
        services, channel_id, Scope.PUBLISH, Scope.SUBSCRIBE, expires_in_ms=86_400_000
    )
    body = sends(channel_id)["/message"]
    await fail(
        client, "POST", "/message", 401, "authentication_failed", json=body, headers=bearer(expired)
    )
    await fail(
        client,
        "GET",
        f"/api/v1/channels/{channel_id}",
        401,
        "authentication_failed",
        headers=bearer(expired),
    )
    await ok(client, "POST", "/message", json=body, headers=bearer(live))


async def test_expiry_set_through_the_admin_api(
    client: Client, services: Services, channel: Channel
) -> None:
    admin = bearer(await admin_token(services))
    before = now_ms()
    created = await ok(
        client,
        "POST",
        "/api/v1/admin/tokens",
        json={"channel_id": channel[0], "scopes": ["publish"], "expires_in": "2d"},
        headers=admin,
    )
    after = now_ms()
    assert before + 2 * 86_400_000 <= created["expires_at"] <= after + 2 * 86_400_000
    await ok(
        client,
        "POST",
        "/message",
        json=sends(channel[0])["/message"],
        headers=bearer(created["token"]),
    )


async def test_revocation_takes_effect_on_the_next_request(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id = channel[0]
    admin = bearer(await admin_token(services))
    created = await ok(
        client,
        "POST",
        "/api/v1/admin/tokens",
        json={"channel_id": channel_id, "scopes": ["publish", "subscribe"]},
        headers=admin,
    )
    token = bearer(created["token"])
    body = sends(channel_id)["/message"]
    await ok(client, "POST", "/message", json=body, headers=token)
    await ok(client, "GET", f"/api/v1/channels/{channel_id}", headers=token)
    await ok(client, "DELETE", f"/api/v1/admin/tokens/{created['token_id']}", headers=admin)
    await fail(client, "POST", "/message", 401, "authentication_failed", json=body, headers=token)
    await fail(
        client, "GET", f"/api/v1/channels/{channel_id}", 401, "authentication_failed", headers=token
    )
    await fail(
        client,
        "DELETE",
        f"/api/v1/admin/tokens/{created['token_id']}",
        404,
        "token_not_found",
        headers=admin,
    )


async def test_revocation_by_the_operator_takes_effect_at_once(
    client: Client, services: Services, channel: Channel
) -> None:
    """As `pushgod token revoke` does it: straight through the service, no HTTP."""
    row, token = await services.tokens.create(
        LOCAL_OPERATOR, channel_id=channel[0], scopes=frozenset({Scope.SUBSCRIBE})
    )
    path = f"/api/v1/channels/{channel[0]}"
    await ok(client, "GET", path, headers=bearer(token))
    await services.tokens.revoke(LOCAL_OPERATOR, row.id)
    await fail(client, "GET", path, 401, "authentication_failed", headers=bearer(token))


async def test_deleting_the_channel_revokes_its_tokens(
    client: Client, services: Services, channel: Channel
) -> None:
    token = await channel_token(services, channel[0], Scope.SUBSCRIBE)
    await services.channels.delete(LOCAL_OPERATOR, channel[0])
    await fail(
        client,
        "GET",
        f"/api/v1/channels/{channel[0]}",
        401,
        "authentication_failed",
        headers=bearer(token),
    )
    assert services.tokens.list(LOCAL_OPERATOR) == []


async def test_last_used_at_is_recorded(
    client: Client, services: Services, channel: Channel
) -> None:
    row, token = await services.tokens.create(
        LOCAL_OPERATOR, channel_id=channel[0], scopes=frozenset({Scope.SUBSCRIBE})
    )
    [listed] = services.tokens.list(LOCAL_OPERATOR)
    assert listed.last_used_at is None
    before = now_ms()
    await ok(client, "GET", f"/api/v1/channels/{channel[0]}", headers=bearer(token))
    after = now_ms()
    await barrier(services)  # the last-used time is written after the reply
    [used] = services.tokens.list(LOCAL_OPERATOR)
    assert used.id == row.id
    assert used.last_used_at is not None and before <= used.last_used_at <= after
    admin = bearer(await admin_token(services))
    listing = await ok(client, "GET", "/api/v1/admin/tokens", headers=admin)
    [shown] = [t for t in listing["tokens"] if t["token_id"] == row.id]
    assert shown["last_used_at"] == used.last_used_at


class TestGatewayToken:
    """PushGo's PUSHGO_TOKEN: the send routes also need it (or a pushgod token)."""

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGO_TOKEN="gateway-secret")

    async def test_send_routes_need_the_gateway_token(
        self, client: Client, services: Services, channel: Channel
    ) -> None:
        channel_id, password = channel
        body = {"channel_id": channel_id, "password": password, "title": "t"}
        await fail(client, "POST", "/message", 401, "authentication_failed", json=body)
        await fail(
            client,
            "POST",
            "/message",
            401,
            "authentication_failed",
            json=body,
            headers=bearer("not-the-gateway-token"),
        )
        await ok(client, "POST", "/message", json=body, headers=bearer("gateway-secret"))
        publish = await channel_token(services, channel_id, Scope.PUBLISH)
        await ok(client, "POST", "/message", json=body, headers=bearer(publish))
        await ok(
            client,
            "POST",
            "/message",
            json=body | {"password": None},
            headers=bearer(publish),
        )
        # The gateway token alone is no channel credential.
        await fail(
            client,
            "POST",
            "/message",
            400,
            "password_required",
            json=body | {"password": None},
            headers=bearer("gateway-secret"),
        )

    async def test_health_needs_no_gateway_token(self, client: Client) -> None:
        assert (await ok(client, "GET", "/healthz"))["status"] == "ok"
        assert (await ok(client, "GET", "/readyz"))["status"] == "ok"


async def test_a_stray_bearer_beside_the_password_is_ignored(
    client: Client, services: Services, channel: Channel
) -> None:
    """PushGo ignores Authorization when it has no gateway token; a script that still sends
    an old one next to the right password used to get 401 here."""
    body = {"channel_id": channel[0], "password": channel[1], "title": "t"}
    await ok(client, "POST", "/message", json=body, headers=bearer("old-gateway-token"))


async def test_a_refused_token_is_not_recorded_as_used(
    client: Client, services: Services, channel: Channel
) -> None:
    """last_used_at was written before the scope check, so refusals looked like use."""
    _, token = await services.tokens.create(
        LOCAL_OPERATOR, channel_id=channel[0], scopes=frozenset({Scope.SUBSCRIBE})
    )
    body = {"channel_id": channel[0], "title": "t"}
    await fail(
        client, "POST", "/message", 403, "insufficient_scope", json=body, headers=bearer(token)
    )
    await barrier(services)
    [listed] = services.tokens.list(LOCAL_OPERATOR)
    assert listed.last_used_at is None
