"""The admin API: channels and tokens under /api/v1/admin, for admin tokens only."""

from __future__ import annotations

from typing import Any

import pytest

from pushgod.model.tokens import Scope
from pushgod.service.services import Services

from .support import Client, admin_token, basic, bearer, call, channel_token, counts, fail, ok

CHANNELS = "/api/v1/admin/channels"
TOKENS = "/api/v1/admin/tokens"
Channel = tuple[str, str]


@pytest.fixture
async def admin(services: Services) -> dict[str, str]:
    return bearer(await admin_token(services))


async def send(client: Client, channel_id: str, password: str) -> tuple[int, Any]:
    return await call(
        client,
        "POST",
        "/message",
        json={"channel_id": channel_id, "password": password, "title": "t"},
    )


async def test_channel_create_shows_the_password_once(
    client: Client, services: Services, admin: dict[str, str]
) -> None:
    generated = await ok(client, "POST", CHANNELS, json={"name": "Garage"}, headers=admin)
    assert set(generated) == {
        "channel_id",
        "name",
        "e2ee",
        "password",
        "retention_count",
        "retention_age_ms",
        "created_at",
        "updated_at",
    }
    assert generated["name"] == "Garage"
    assert len(generated["password"]) >= 16
    chosen = await ok(
        client,
        "POST",
        CHANNELS,
        json={
            "name": "  NAS  ",
            "password": "correct horse battery",
            "retention_count": 50,
            "retention_age": "7d",
        },
        headers=admin,
    )
    assert chosen["name"] == "NAS"
    assert chosen["password"] == "correct horse battery"
    assert (chosen["retention_count"], chosen["retention_age_ms"]) == (50, 7 * 86_400_000)
    assert (await send(client, generated["channel_id"], generated["password"]))[0] == 200
    assert (await send(client, chosen["channel_id"], "correct horse battery"))[0] == 200

    async with client.get(CHANNELS, headers=admin) as reply:
        text = await reply.text()
    listing = (await ok(client, "GET", CHANNELS, headers=admin))["channels"]
    assert [c["channel_id"] for c in listing] == [generated["channel_id"], chosen["channel_id"]]
    for item in listing:
        assert "password" not in item and "password_hash" not in item
    for secret in (generated["password"], "correct horse battery", "argon2"):
        assert secret not in text


async def test_channel_update(
    client: Client, services: Services, admin: dict[str, str], channel: Channel
) -> None:
    channel_id, old = channel
    path = f"{CHANNELS}/{channel_id}"
    renamed = await ok(client, "PATCH", path, json={"name": "Renamed"}, headers=admin)
    assert renamed["name"] == "Renamed" and renamed["channel_id"] == channel_id
    assert "password" not in renamed and "password_hash" not in renamed
    summary = await ok(client, "GET", f"/api/v1/channels/{channel_id}", headers=admin)
    assert summary["name"] == "Renamed"

    assert (await send(client, channel_id, old))[0] == 200  # remembered as verified
    await ok(client, "PATCH", path, json={"password": "a-brand-new-password"}, headers=admin)
    status, body = await send(client, channel_id, old)
    assert (status, body["error_code"]) == (403, "password_mismatch")
    assert (await send(client, channel_id, "a-brand-new-password"))[0] == 200

    retention = await ok(
        client, "PATCH", path, json={"retention_count": 10, "retention_age": "12h"}, headers=admin
    )
    assert (retention["retention_count"], retention["retention_age_ms"]) == (10, 12 * 3_600_000)
    assert retention["name"] == "Renamed"
    [listed] = (await ok(client, "GET", CHANNELS, headers=admin))["channels"]
    assert listed == retention


CHANNEL_UPDATE_REFUSALS: list[tuple[dict[str, Any], int, str]] = [
    ({}, 400, "invalid_json_data"),
    ({"name": ""}, 400, "invalid_channel_name"),
    ({"name": "a\x00b"}, 400, "invalid_channel_name"),
    ({"name": "n" * 129}, 400, "invalid_channel_name"),
    ({"password": "short"}, 400, "invalid_password"),
    ({"retention_count": 0}, 400, "invalid_field"),
    ({"retention_count": 2**63}, 400, "invalid_field"),
    ({"retention_count": "10"}, 400, "invalid_json_data"),
    ({"retention_age": "soon"}, 400, "invalid_duration"),
    ({"retention_age": "0s"}, 400, "invalid_field"),
    ({"owner": "me"}, 400, "invalid_json_data"),
]


async def test_channel_update_refusals(
    client: Client, services: Services, admin: dict[str, str], channel: Channel
) -> None:
    [row] = services.channels.list(None)
    before = counts(services)
    for body, status, code in CHANNEL_UPDATE_REFUSALS:
        path = f"{CHANNELS}/{channel[0]}"
        got, reply = await call(client, "PATCH", path, json=body, headers=admin)
        assert (got, reply["error_code"]) == (status, code), (body, reply)
        assert counts(services) == before, body
        assert services.channels.list(None) == [row], body


CHANNEL_CREATE_REFUSALS: list[tuple[dict[str, Any], int, str]] = [
    ({}, 400, "invalid_channel_name"),
    ({"name": "x", "retention_count": 2**63}, 400, "invalid_field"),
    ({"name": "x", "retention_count": -1}, 400, "invalid_field"),
    ({"name": "x", "password": "x" * 129}, 400, "invalid_password"),
    ({"name": "x", "retention_age": "1y"}, 400, "invalid_duration"),
    ({"name": 5}, 400, "invalid_json_data"),
]


async def test_channel_create_refusals(
    client: Client, services: Services, admin: dict[str, str]
) -> None:
    for body, status, code in CHANNEL_CREATE_REFUSALS:
        got, reply = await call(client, "POST", CHANNELS, json=body, headers=admin)
        assert (got, reply["error_code"]) == (status, code), (body, reply)
    assert counts(services)["channels"] == 0


async def test_unknown_or_bad_channel(client: Client, admin: dict[str, str]) -> None:
    unknown = f"{CHANNELS}/{'0' * 26}"
    await fail(
        client, "PATCH", unknown, 404, "channel_not_found", json={"name": "x"}, headers=admin
    )
    await fail(client, "DELETE", unknown, 404, "channel_not_found", headers=admin)
    await fail(
        client,
        "PATCH",
        f"{CHANNELS}/nope",
        400,
        "invalid_channel_id",
        json={"name": "x"},
        headers=admin,
    )
    await fail(client, "DELETE", f"{CHANNELS}/nope", 400, "invalid_channel_id", headers=admin)


async def test_channel_delete_removes_everything_in_it(
    client: Client, services: Services, admin: dict[str, str], channel: Channel
) -> None:
    channel_id, password = channel
    kept, kept_password = await services.channels.create(None, "kept")
    for target, secret in ((channel_id, password), (kept.id, kept_password)):
        assert (await send(client, target, secret))[0] == 200
        await ok(
            client,
            "POST",
            "/thing/create",
            json={"channel_id": target, "password": secret, "observed_at": 1_700_000_000},
        )
    await channel_token(services, channel_id, Scope.PUBLISH)
    before = counts(services)
    reply = await ok(client, "DELETE", f"{CHANNELS}/{channel_id.lower()}", headers=admin)
    assert reply == {"channel_id": channel_id, "deleted": True}
    after = counts(services)
    assert after["channels"] == before["channels"] - 1
    assert after["messages"] == before["messages"] - 1
    assert after["things"] == before["things"] - 1
    assert after["tokens"] == before["tokens"] - 1
    tables = services.store.tables
    for name in ("changes", "messages", "things", "events", "ops", "tokens"):
        table = getattr(tables, name)
        assert table.select().where(table.channel_id == channel_id).count() == 0, name
    await fail(
        client, "GET", f"/api/v1/channels/{channel_id}", 404, "channel_not_found", headers=admin
    )
    status, body = await send(client, channel_id, password)
    assert (status, body["error_code"]) == (404, "channel_not_found")
    assert (await ok(client, "GET", f"/api/v1/channels/{kept.id}", headers=admin))["counts"][
        "messages"
    ] == 1
    await fail(
        client, "DELETE", f"{CHANNELS}/{channel_id}", 404, "channel_not_found", headers=admin
    )


async def test_tokens_are_shown_once_and_never_listed(
    client: Client, services: Services, admin: dict[str, str], channel: Channel
) -> None:
    channel_id = channel[0]
    other, _ = await services.channels.create(None, "other")
    created = await ok(
        client,
        "POST",
        TOKENS,
        json={
            "channel_id": channel_id,
            "scopes": ["subscribe", "publish"],
            "label": "backup script",
        },
        headers=admin,
    )
    assert set(created) == {
        "token_id",
        "token",
        "channel_id",
        "scopes",
        "label",
        "created_at",
        "expires_at",
        "last_used_at",
    }
    assert created["token"].startswith("pgd_")
    assert created["scopes"] == ["publish", "subscribe"]
    assert (created["channel_id"], created["label"]) == (channel_id, "backup script")
    assert created["expires_at"] is None and created["last_used_at"] is None
    await ok(client, "GET", f"/api/v1/channels/{channel_id}", headers=bearer(created["token"]))

    root = await ok(client, "POST", TOKENS, json={"admin": True, "label": "root"}, headers=admin)
    assert root["scopes"] == ["admin"] and root["channel_id"] is None
    await ok(client, "GET", CHANNELS, headers=bearer(root["token"]))
    elsewhere = await ok(
        client, "POST", TOKENS, json={"channel_id": other.id, "scopes": ["things"]}, headers=admin
    )

    async with client.get(TOKENS, headers=admin) as reply:
        text = await reply.text()
    for secret in (created["token"], root["token"], elsewhere["token"]):
        assert secret not in text
    listing = (await ok(client, "GET", TOKENS, headers=admin))["tokens"]
    assert {t["token_id"] for t in listing} >= {
        created["token_id"],
        root["token_id"],
        elsewhere["token_id"],
    }
    for item in listing:
        assert "token" not in item and "hash" not in item
    [mine] = [t for t in listing if t["token_id"] == created["token_id"]]
    assert {k: v for k, v in created.items() if k not in ("token", "last_used_at")} == {
        k: v for k, v in mine.items() if k != "last_used_at"
    }
    only = (await ok(client, "GET", f"{TOKENS}?channel_id={other.id}", headers=admin))["tokens"]
    assert [t["token_id"] for t in only] == [elsewhere["token_id"]]


async def test_token_revoke(
    client: Client, services: Services, admin: dict[str, str], channel: Channel
) -> None:
    created = await ok(
        client,
        "POST",
        TOKENS,
        json={"channel_id": channel[0], "scopes": ["subscribe"]},
        headers=admin,
    )
    reply = await ok(client, "DELETE", f"{TOKENS}/{created['token_id']}", headers=admin)
    assert reply == {"token_id": created["token_id"], "revoked": True}
    listing = (await ok(client, "GET", TOKENS, headers=admin))["tokens"]
    assert created["token_id"] not in {t["token_id"] for t in listing}
    await fail(
        client,
        "GET",
        f"/api/v1/channels/{channel[0]}",
        401,
        "authentication_failed",
        headers=bearer(created["token"]),
    )
    await fail(
        client, "DELETE", f"{TOKENS}/{created['token_id']}", 404, "token_not_found", headers=admin
    )


TOKEN_CREATE_REFUSALS: list[tuple[dict[str, Any], int, str]] = [
    ({}, 400, "invalid_scope"),
    ({"admin": True, "channel_id": "CHANNEL"}, 400, "invalid_scope"),
    ({"admin": True, "scopes": ["publish"]}, 400, "invalid_scope"),
    ({"channel_id": "CHANNEL"}, 400, "invalid_scope"),
    ({"scopes": ["publish"]}, 400, "invalid_scope"),
    ({"channel_id": "CHANNEL", "scopes": []}, 400, "invalid_scope"),
    ({"channel_id": "CHANNEL", "scopes": ["admin"]}, 400, "invalid_scope"),
    ({"channel_id": "CHANNEL", "scopes": ["read"]}, 400, "invalid_scope"),
    ({"channel_id": "CHANNEL", "scopes": "publish"}, 400, "invalid_json_data"),
    ({"channel_id": "0" * 26, "scopes": ["publish"]}, 404, "channel_not_found"),
    ({"channel_id": "nope", "scopes": ["publish"]}, 400, "invalid_channel_id"),
    (
        {"channel_id": "CHANNEL", "scopes": ["publish"], "expires_in": "later"},
        400,
        "invalid_duration",
    ),
    (
        {"channel_id": "CHANNEL", "scopes": ["publish"], "label": "l" * 129},
        400,
        "invalid_field",
    ),
    ({"admin": "yes"}, 400, "invalid_json_data"),
]


async def test_token_create_refusals(
    client: Client, services: Services, admin: dict[str, str], channel: Channel
) -> None:
    before = counts(services)
    for template, status, code in TOKEN_CREATE_REFUSALS:
        body = {k: channel[0] if v == "CHANNEL" else v for k, v in template.items()}
        got, reply = await call(client, "POST", TOKENS, json=body, headers=admin)
        assert (got, reply["error_code"]) == (status, code), (body, reply)
        assert counts(services) == before, body


ADMIN_ROUTES = [
    ("GET", CHANNELS, None),
    ("POST", CHANNELS, {"name": "x"}),
    ("PATCH", f"{CHANNELS}/CHANNEL", {"name": "x"}),
    ("DELETE", f"{CHANNELS}/CHANNEL", None),
    ("GET", TOKENS, None),
    ("POST", TOKENS, {"admin": True}),
    ("DELETE", f"{TOKENS}/TOKEN", None),
]


async def test_non_admin_credentials_are_refused(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id, password = channel
    row, _ = await services.tokens.create(
        None,
        channel_id=channel_id,
        scopes=frozenset({Scope.PUBLISH, Scope.SUBSCRIBE, Scope.THINGS}),
    )
    strong = bearer(
        await channel_token(services, channel_id, Scope.PUBLISH, Scope.SUBSCRIBE, Scope.THINGS)
    )
    before = counts(services)
    refusals = [
        (strong, 403, "insufficient_scope"),
        (basic(channel_id, password), 401, "authentication_failed"),
        ({}, 401, "authentication_failed"),
        (bearer("pgd_unknown"), 401, "authentication_failed"),
    ]
    for method, template, body in ADMIN_ROUTES:
        path = template.replace("CHANNEL", channel_id).replace("TOKEN", row.id)
        for headers, status, code in refusals:
            kwargs: dict[str, Any] = {"headers": headers}
            if body is not None:
                kwargs["json"] = body
            got, reply = await call(client, method, path, **kwargs)
            assert (got, reply["error_code"]) == (status, code), (method, path, headers, reply)
    assert counts(services) == before
    assert len(services.tokens.list(None, channel_id)) == 2
