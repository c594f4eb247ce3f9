"""GET /openapi.json: an OpenAPI 3.1 document built from the route tables and wire schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from pushgod import __version__
from pushgod.http.routing import Route
from pushgod.model.errors import ErrorCode
from pushgod.model.fields import json_schema

_ENVELOPE = {
    "type": "object",
    "required": ["success"],
    "properties": {
        "success": {"type": "boolean"},
        "data": {},
        "error": {"type": "string"},
        "error_code": {"type": "string", "enum": [code.value for code in ErrorCode]},
    },
}


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "security": [{} if scheme == "none" else {scheme: []} for scheme in route.auth],
        "responses": {
            "200": {"$ref": "#/components/responses/Envelope"},
            "default": {"$ref": "#/components/responses/Envelope"},
        },
    }
    if route.params:
        operation["parameters"] = [
            {
                "name": param.name,
                "in": param.location,
                "required": param.required,
                "description": param.description,
                "schema": param.schema,
            }
            for param in route.params
        ]
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": json_schema(route.body, route.required)}},
        }
    return operation


def document(routes: Sequence[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pushgod",
            "version": __version__,
            "description": "PushGo-compatible send API plus history, state and administration. "
            "Every reply is the envelope {success, data} or {success, error, error_code}. "
            "The send routes take channel_id and password in the JSON body, or a bearer token "
            "with the publish scope instead of the password.",
        },
        "paths": paths,
        "components": {
            "responses": {
                "Envelope": {
                    "description": "The response envelope",
                    "content": {"application/json": {"schema": _ENVELOPE}},
                }
            },
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer"},
                "channelBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "channel_id as user name, the channel password as password",
                },
            },
        },
    }


def route(routes: Sequence[Route]) -> Route:
    """The /openapi.json route itself, describing `routes` and itself."""
    spec: dict[str, Any] = {}

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(spec)

    own = Route("GET", "/openapi.json", openapi, "openapi", "This document", "health")
    spec.update(document([*routes, own]))
    return own
