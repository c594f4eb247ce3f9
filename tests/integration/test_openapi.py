"""GET /openapi.json describes every route the app serves, and describes it truly."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from .support import Client, call, ok

Channel = tuple[str, str]
NOW_S = int(time.time())


@pytest.fixture
async def spec(client: Client) -> dict[str, Any]:
    async with client.get("/openapi.json") as reply:
        assert reply.status == 200
        assert reply.content_type == "application/json"
        document: dict[str, Any] = await reply.json()
    return document


def app_routes(client: Client) -> set[tuple[str, str]]:
    return {
        (route.method.lower(), route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


async def test_document_is_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "pushgod" and spec["info"]["version"]
    assert spec["paths"]


async def test_every_route_is_documented_and_nothing_else(
    client: Client, spec: dict[str, Any]
) -> None:
    served = app_routes(client)
    documented = set(operations(spec))
    assert served - documented == set(), "routes missing from /openapi.json"
    assert documented - served == set(), "documented routes the app does not serve"


async def test_operations_are_complete(spec: dict[str, Any]) -> None:
    schemes = set(spec["components"]["securitySchemes"])
    ids = [operation["operationId"] for operation in operations(spec).values()]
    assert len(ids) == len(set(ids)), "operationIds repeat"
    for (method, path), operation in operations(spec).items():
        assert operation["summary"], (method, path)
        assert "200" in operation["responses"], (method, path)
        for requirement in operation.get("security", []):
            assert set(requirement) <= schemes, (method, path, requirement)
        in_path = set(re.findall(r"\{(\w+)\}", path))
        params = operation.get("parameters", [])
        declared = {p["name"] for p in params if p["in"] == "path"}
        assert declared == in_path, (method, path)
        for param in params:
            assert param["in"] in ("path", "query"), param
            assert param["description"] and "type" in param["schema"], param
            if param["in"] == "path":
                assert param["required"] is True, param


async def test_request_bodies_are_strict_and_list_required_fields(spec: dict[str, Any]) -> None:
    bodies = {
        key: operation["requestBody"]["content"]["application/json"]["schema"]
        for key, operation in operations(spec).items()
        if "requestBody" in operation
    }
    posts = {key for key in operations(spec) if key[0] in ("post", "patch")}
    assert set(bodies) == posts, "every POST/PATCH route takes a documented JSON body"
    for key, schema in bodies.items():
        assert schema["type"] == "object", key
        assert schema["additionalProperties"] is False, key
        assert isinstance(schema["required"], list), key
        assert set(schema["required"]) <= set(schema["properties"]), key
        for name, field in schema["properties"].items():
            assert field.get("type") and field.get("description"), (key, name)
    required = {key[1]: set(schema["required"]) for key, schema in bodies.items()}
    assert required["/message"] == {"channel_id", "title"}
    assert required["/event/create"] == {
        "channel_id",
        "title",
        "status",
        "message",
        "severity",
        "event_time",
    }
    for action in ("update", "close"):
        assert {"channel_id", "event_id", "event_time"} <= required[f"/event/{action}"]
    assert required["/thing/create"] == {"channel_id", "observed_at"}
    for action in ("update", "archive", "delete"):
        assert required[f"/thing/{action}"] == {"channel_id", "thing_id", "observed_at"}
    assert required["/api/v1/admin/channels"] == {"name"}
    # What PushGo forbids is not even a property.
    props = {key[1]: set(schema["properties"]) for key, schema in bodies.items()}
    assert "event_id" not in props["/event/create"] and "ended_at" not in props["/event/create"]
    assert "started_at" not in props["/event/update"]
    assert "thing_id" not in props["/thing/create"] and "state" not in props["/thing/update"]
    assert "deleted_at" in props["/thing/delete"] and "deleted_at" not in props["/thing/update"]


async def test_get_message_documents_its_query_parameters(
    spec: dict[str, Any],
) -> None:
    post = spec["paths"]["/message"]["post"]["requestBody"]["content"]["application/json"]
    get = spec["paths"]["/message"]["get"]
    query = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
    assert query == set(post["schema"]["properties"])


def valid_bodies(channel: Channel, event_id: str, thing_id: str) -> dict[str, dict[str, Any]]:
    base = {"channel_id": channel[0], "password": channel[1]}
    event = base | {"status": "s", "message": "m", "severity": "low", "event_time": NOW_S}
    return {
        "/message": base | {"title": "t"},
        "/event/create": event | {"title": "t"},
        "/event/update": event | {"event_id": event_id},
        "/event/close": event | {"event_id": event_id},
        "/thing/create": base | {"observed_at": NOW_S},
        "/thing/update": base | {"observed_at": NOW_S, "thing_id": thing_id},
        "/thing/archive": base | {"observed_at": NOW_S, "thing_id": thing_id},
        "/thing/delete": base | {"observed_at": NOW_S, "thing_id": thing_id},
    }


async def test_documented_required_fields_are_required(
    client: Client, spec: dict[str, Any], channel: Channel
) -> None:
    """Each send route refuses its valid body minus any one required field, and says why."""
    base = {"channel_id": channel[0], "password": channel[1]}
    event = await ok(
        client,
        "POST",
        "/event/create",
        json=base
        | {"title": "t", "status": "s", "message": "m", "severity": "low", "event_time": NOW_S},
    )
    thing = await ok(client, "POST", "/thing/create", json=base | {"observed_at": NOW_S})
    bodies = valid_bodies(channel, event["event_id"], thing["thing_id"])
    for path, body in bodies.items():
        schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        for name in schema["schema"]["required"]:
            status, reply = await call(
                client, "POST", path, json={k: v for k, v in body.items() if k != name}
            )
            assert status == 400, (path, name, reply)
    # And the unmutilated bodies are accepted (close and delete last: they end the story).
    for path, body in bodies.items():
        await ok(client, "POST", path, json=body)
