"""Every response: an x-request-id, the exact envelope, the same safe headers; never a 500."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pushgod.config import Settings
from pushgod.model.errors import STATUS, ErrorCode
from pushgod.model.tokens import Scope
from pushgod.service.services import Services

from .support import (
    HEX32,
    Client,
    admin_token,
    basic,
    bearer,
    channel_token,
    check_envelope,
    ok,
    settings_with,
)

Channel = tuple[str, str]
NOW_S = int(time.time())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A low failed-login limit, so that 429 is one of the paths checked here."""
    return settings_with(tmp_path, PUSHGOD_SECURITY_FAILED_LOGINS="2")


async def raw(client: Client, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
    """(status, headers, parsed body) with no assumption about the body."""
    async with client.request(method, path, **kwargs) as reply:
        return reply.status, reply.headers, await reply.json()


def check_headers(headers: Any) -> str:
    request_id: str = headers["x-request-id"]
    assert HEX32.fullmatch(request_id), request_id
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    return request_id


async def test_successes_are_the_envelope(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id, password = channel
    admin = bearer(await admin_token(services))
    sent = {"channel_id": channel_id, "password": password}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/", {}),
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("POST", "/message", {"json": sent | {"title": "t"}}),
        ("GET", "/message", {"params": sent | {"title": "t"}}),
        ("POST", "/thing/create", {"json": sent | {"observed_at": NOW_S}}),
        ("GET", f"/api/v1/channels/{channel_id}", {"headers": basic(*channel)}),
        ("GET", f"/api/v1/channels/{channel_id}/messages", {"headers": basic(*channel)}),
        ("GET", "/api/v1/admin/channels", {"headers": admin}),
        ("GET", "/api/v1/admin/tokens", {"headers": admin}),
    ]
    ids = set()
    for method, path, kwargs in requests:
        status, headers, body = await raw(client, method, path, **kwargs)
        assert status == 200, (path, body)
        ids.add(check_headers(headers))
        assert set(body) == {"success", "data"} and body["success"] is True
    assert len(ids) == len(requests), "request ids repeat"


async def test_each_error_path_is_the_envelope(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id, password = channel
    read = f"/api/v1/channels/{channel_id}"
    subscribe = bearer(await channel_token(services, channel_id, Scope.SUBSCRIBE))
    base = {"channel_id": channel_id, "password": password}
    event = await ok(
        client,
        "POST",
        "/event/create",
        json=base
        | {"title": "t", "status": "s", "message": "m", "severity": "low", "event_time": NOW_S},
    )
    closing = base | {
        "event_id": event["event_id"],
        "status": "s",
        "message": "m",
        "severity": "low",
        "event_time": NOW_S,
    }
    await ok(client, "POST", "/event/close", json=closing)
    json_ct = {"Content-Type": "application/json"}
    wrong = {"channel_id": channel_id, "password": "wrong-password", "title": "t"}
    requests: list[tuple[str, str, dict[str, Any], ErrorCode]] = [
        ("POST", "/message", {"data": "{", "headers": json_ct}, ErrorCode.INVALID_JSON_SYNTAX),
        ("POST", "/message", {"data": "{}"}, ErrorCode.MISSING_JSON_CONTENT_TYPE),
        ("POST", "/message", {"json": {"x": 1}}, ErrorCode.INVALID_JSON_DATA),
        ("GET", f"{read}/messages?limit=0", {"headers": subscribe}, ErrorCode.INVALID_QUERY),
        ("POST", "/message", {"json": {"title": "t"}}, ErrorCode.CHANNEL_ID_REQUIRED),
        ("GET", read, {}, ErrorCode.AUTHENTICATION_FAILED),
        ("POST", "/message", {"json": base | {"title": "t"}, "headers": subscribe}, None),
        (
            "POST",
            "/message",
            {"json": {"channel_id": channel_id, "title": "t"}, "headers": subscribe},
            ErrorCode.INSUFFICIENT_SCOPE,
        ),
        (
            "GET",
            f"/api/v1/channels/{'0' * 26}",
            {"headers": subscribe},
            ErrorCode.CHANNEL_NOT_FOUND,
        ),
        ("GET", f"{read}/events/nope", {"headers": subscribe}, ErrorCode.EVENT_NOT_FOUND),
        ("POST", "/event/update", {"json": closing}, ErrorCode.EVENT_CLOSED),
        ("GET", "/no/such/route", {}, ErrorCode.ROUTE_NOT_FOUND),
        ("PUT", "/message", {}, ErrorCode.METHOD_NOT_ALLOWED),
        ("POST", "/message", {"json": base | {"body": "x" * 40_000}}, ErrorCode.PAYLOAD_TOO_LARGE),
        ("POST", "/message", {"json": wrong}, ErrorCode.PASSWORD_MISMATCH),
        ("POST", "/message", {"json": wrong}, ErrorCode.PASSWORD_MISMATCH),
        ("POST", "/message", {"json": wrong}, ErrorCode.RATE_LIMITED),
    ]
    seen = set()
    for method, path, kwargs, code in requests:
        status, headers, body = await raw(client, method, path, **kwargs)
        check_headers(headers)
        if code is None:  # a token and a password: the password decides
            assert status == 200, body
            continue
        assert (status, body.get("error_code")) == (STATUS[code], code.value), (path, body)
        assert set(body) == {"success", "error", "error_code"}, body
        assert body["success"] is False and body["error"]
        seen.add(status)
    assert seen == {400, 401, 403, 404, 405, 409, 413, 429}


async def test_framework_errors_have_request_ids(client: Client) -> None:
    for method, path, status in [
        ("GET", "/nothing", 404),
        ("GET", "/message/extra", 404),
        ("DELETE", "/healthz", 405),
        ("PATCH", "/api/v1/admin/channels", 405),
    ]:
        got, headers, body = await raw(client, method, path)
        assert got == status
        check_headers(headers)
        check_envelope(body, status)
    # HEAD has no body, but still its id.
    async with client.head("/nothing") as reply:
        assert reply.status == 404
        assert HEX32.fullmatch(reply.headers["x-request-id"])


async def test_openapi_document_has_a_request_id_too(client: Client) -> None:
    async with client.get("/openapi.json") as reply:
        assert reply.status == 200
        assert HEX32.fullmatch(reply.headers["x-request-id"])
        assert (await reply.json())["openapi"].startswith("3.1")


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def test_no_route_answers_500_to_anything(
    client: Client, services: Services, channel: Channel
) -> None:
    """Every route of the app, with every kind of bad (and some good) input."""
    channel_id, password = channel
    admin = bearer(await admin_token(services))
    token_row, _ = await services.tokens.create(
        None, channel_id=channel_id, scopes=frozenset({Scope.PUBLISH})
    )
    thing = await ok(
        client,
        "POST",
        "/thing/create",
        json={"channel_id": channel_id, "password": password, "observed_at": NOW_S},
    )
    path_values = [
        {
            "channel_id": channel_id,
            "event_id": "e1",
            "thing_id": thing["thing_id"],
            "token_id": "nope",
        },
        {
            "channel_id": "not-a-channel",
            "event_id": "a b",
            "thing_id": "x" * 65,
            "token_id": token_row.id,
        },
        {"channel_id": "0" * 26, "event_id": "%00", "thing_id": "%FF", "token_id": "%2F"},
    ]
    credentials: list[dict[str, str]] = [
        {},
        admin,
        basic(channel_id, password),
        {"Authorization": "Basic %%%"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer pgd_x"},
    ]
    bodies: list[dict[str, Any]] = [
        {},
        {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
        {"json": None},
        {"json": []},
        {"json": {}},
        {"json": {"channel_id": channel_id, "password": password}},
        {"json": {"name": "n", "retention_count": 10**30, "retention_age": "9w"}},
        {"json": {"admin": True, "label": "x" * 200}},
    ]
    routes = [
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    ]
    assert len(routes) > 20
    requests = {(method, fill(path, values)) for method, path in routes for values in path_values}
    sent = 0
    for method, path in sorted(requests):
        for headers in credentials:
            for body in bodies if method in ("POST", "PATCH") else [{}]:
                kwargs = dict(body)
                kwargs["headers"] = {**headers, **body.get("headers", {})}
                async with client.request(method, path, **kwargs) as reply:
                    assert reply.status < 500, (method, path, kwargs, await reply.text())
                    assert HEX32.fullmatch(reply.headers["x-request-id"])
                    if path != "/openapi.json":
                        check_envelope(await reply.json(), reply.status)
                sent += 1
    assert sent > 500, sent


async def test_health_routes_answer_head(client: TestClient[Any, Any]) -> None:
    """Health checks often use HEAD; GET-only routes answered it with 405."""
    for path in ("/", "/healthz", "/readyz"):
        reply = await client.head(path)
        assert reply.status == 200, path
    assert (await client.head("/message")).status == 405
