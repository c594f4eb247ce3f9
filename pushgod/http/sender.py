"""PushGo's sender routes: /message, /event/create|update|close, /thing/create|...|delete."""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from pushgod.http.envelope import ok
from pushgod.http.keys import SERVICES
from pushgod.http.requests import json_body, sender_credentials
from pushgod.http.routing import Param, Route
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.events import EVENT_REQUIRED, EVENT_SCHEMAS, EventAction, parse_event
from pushgod.model.fields import Kind, strict_json
from pushgod.model.messages import MESSAGE_SCHEMA, parse_message
from pushgod.model.things import THING_SCHEMAS, ThingAction, parse_thing
from pushgod.service.context import now_ms

SENDER_AUTH = ("none", "bearerToken")  # the password travels in the body, PushGo style


async def post_message(request: web.Request) -> web.Response:
    return await _send_message(request, await json_body(request))


async def get_message(request: web.Request) -> web.Response:
    """PushGo's GET /message: the same fields as query parameters."""
    return await _send_message(request, _query_message(request))


async def _send_message(request: web.Request, body: object) -> web.Response:
    auth, intent = parse_message(body, now_ms())
    credentials = sender_credentials(request, auth)
    return ok(await request.app[SERVICES].messages.send(credentials, intent))


def _query_message(request: web.Request) -> dict[str, Any]:
    """Lists come comma-separated and metadata as a JSON object string, as in PushGo."""
    body: dict[str, Any] = {}
    for name in request.query:
        values = request.query.getall(name)
        if len(values) > 1:
            raise PushgodError(ErrorCode.INVALID_QUERY, f"query parameter {name!r} is repeated")
        field = MESSAGE_SCHEMA.get(name)
        if field is None:
            raise PushgodError(ErrorCode.INVALID_QUERY, f"unknown query parameter {name!r}")
        value: Any = values[0]
        if field.kind is Kind.STRINGS:
            value = [item for item in value.split(",") if item.strip()]
        elif field.kind in (Kind.OBJECT, Kind.OBJECTS):
            try:
                value = strict_json(value, name)
            except PushgodError as error:
                raise PushgodError(ErrorCode.INVALID_QUERY, error.message) from None
            if not isinstance(value, dict if field.kind is Kind.OBJECT else list):
                kind = "object" if field.kind is Kind.OBJECT else "array"
                raise PushgodError(ErrorCode.INVALID_QUERY, f"{name} must be a JSON {kind}")
        body[name] = value
    return body


async def event_route(action: EventAction, request: web.Request) -> web.Response:
    auth, intent = parse_event(action, await json_body(request))
    credentials = sender_credentials(request, auth)
    return ok(await request.app[SERVICES].events.apply(credentials, intent))


async def thing_route(action: ThingAction, request: web.Request) -> web.Response:
    auth, intent = parse_thing(action, await json_body(request))
    credentials = sender_credentials(request, auth)
    return ok(await request.app[SERVICES].things.apply(credentials, intent))


_QUERY_NOTES = {
    Kind.STRINGS: " Comma-separated.",
    Kind.OBJECT: " A JSON object, as text.",
    Kind.OBJECTS: " A JSON array, as text.",
}
_MESSAGE_QUERY = tuple(
    Param(
        name,
        field.description + _QUERY_NOTES.get(field.kind, ""),
        {"type": "string"},
        required=name in ("channel_id", "title"),
    )
    for name, field in MESSAGE_SCHEMA.items()
)

_EVENT_SUMMARY = {
    EventAction.CREATE: "Open an event (state ONGOING)",
    EventAction.UPDATE: "Update an ongoing event; attrs merge, null deletes",
    EventAction.CLOSE: "Close an event (state CLOSED)",
}
_THING_SUMMARY = {
    ThingAction.CREATE: "Create a thing (state active)",
    ThingAction.UPDATE: "Update a thing; attrs and external_ids merge, null deletes",
    ThingAction.ARCHIVE: "Archive a thing (state archived, history kept)",
    ThingAction.DELETE: "Delete a thing (state deleted; it no longer changes)",
}

ROUTES = [
    Route(
        "POST",
        "/message",
        post_message,
        "message",
        "Send a message (PushGo compatible)",
        "send",
        SENDER_AUTH,
        MESSAGE_SCHEMA,
        ("channel_id", "title"),
    ),
    Route(
        "GET",
        "/message",
        get_message,
        "message-get",
        "Send a message with query parameters (images and tags comma-separated, "
        "metadata as a JSON string)",
        "send",
        SENDER_AUTH,
        params=_MESSAGE_QUERY,
    ),
    *(
        Route(
            "POST",
            f"/event/{action.value}",
            partial(event_route, action),
            f"event-{action.value}",
            _EVENT_SUMMARY[action],
            "send",
            SENDER_AUTH,
            EVENT_SCHEMAS[action],
            EVENT_REQUIRED[action],
        )
        for action in EventAction
    ),
    *(
        Route(
            "POST",
            f"/thing/{action.value}",
            partial(thing_route, action),
            f"thing-{action.value}",
            _THING_SUMMARY[action],
            "send",
            SENDER_AUTH,
            THING_SCHEMAS[action],
            ("channel_id", "observed_at")
            if action is ThingAction.CREATE
            else ("channel_id", "thing_id", "observed_at"),
        )
        for action in ThingAction
    ),
]
