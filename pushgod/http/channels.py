"""The read API: a channel's summary, messages, events and things, for its subscribers."""

from __future__ import annotations

from aiohttp import web

from pushgod.http.envelope import ok
from pushgod.http.keys import SERVICES
from pushgod.http.requests import (
    check_query,
    int_param,
    optional_int_param,
    path_channel_id,
    reader_credentials,
    since_param,
)
from pushgod.http.routing import Param, Route
from pushgod.model.errors import ErrorCode
from pushgod.model.fields import DEFAULT_PAGE, MAX_PAGE
from pushgod.model.ids import check_entity_id
from pushgod.service.context import now_ms

READ_AUTH = ("bearerToken", "channelBasic")
BASE = "/api/v1/channels/{channel_id}"

LIMIT = Param(
    "limit", f"Items per page, 1-{MAX_PAGE} (default {DEFAULT_PAGE}).", {"type": "integer"}
)
BEFORE = Param(
    "before",
    "Page cursor: the next_before value of the previous page.",
    {"type": "integer"},
)


async def channel(request: web.Request) -> web.Response:
    check_query(request, set())
    services = request.app[SERVICES]
    return ok(
        await services.channels.summary(reader_credentials(request), path_channel_id(request))
    )


async def messages(request: web.Request) -> web.Response:
    check_query(request, {"since", "limit", "before"})
    services = request.app[SERVICES]
    return ok(
        await services.messages.recent(
            reader_credentials(request),
            path_channel_id(request),
            limit=int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
            before_seq=optional_int_param(request, "before"),
            since_ms=since_param(request, now_ms()),
        )
    )


async def events(request: web.Request) -> web.Response:
    check_query(request, {"state", "limit"})
    services = request.app[SERVICES]
    return ok(
        await services.events.listing(
            reader_credentials(request),
            path_channel_id(request),
            request.query.get("state", "ongoing"),
            int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
        )
    )


async def event(request: web.Request) -> web.Response:
    check_query(request, set())
    event_id = check_entity_id(
        request.match_info["event_id"], "event_id", ErrorCode.INVALID_EVENT_ID
    )
    services = request.app[SERVICES]
    return ok(
        await services.events.get(reader_credentials(request), path_channel_id(request), event_id)
    )


async def things(request: web.Request) -> web.Response:
    check_query(request, {"state", "limit"})
    services = request.app[SERVICES]
    return ok(
        await services.things.listing(
            reader_credentials(request),
            path_channel_id(request),
            request.query.get("state", "active"),
            int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
        )
    )


def _thing_id(request: web.Request) -> str:
    return check_entity_id(request.match_info["thing_id"], "thing_id", ErrorCode.INVALID_THING_ID)


async def thing(request: web.Request) -> web.Response:
    check_query(request, set())
    services = request.app[SERVICES]
    return ok(
        await services.things.get(
            reader_credentials(request), path_channel_id(request), _thing_id(request)
        )
    )


async def thing_history(request: web.Request) -> web.Response:
    check_query(request, {"limit", "before"})
    services = request.app[SERVICES]
    return ok(
        await services.things.history(
            reader_credentials(request),
            path_channel_id(request),
            _thing_id(request),
            limit=int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
            before_seq=optional_int_param(request, "before"),
        )
    )


CHANNEL_ID = Param("channel_id", "Channel id.", {"type": "string"}, "path", True)
EVENT_ID = Param("event_id", "Event id.", {"type": "string"}, "path", True)
THING_ID = Param("thing_id", "Thing id.", {"type": "string"}, "path", True)

ROUTES = [
    Route(
        "GET",
        BASE,
        channel,
        "channel",
        "Channel name and counts",
        "read",
        READ_AUTH,
        params=(CHANNEL_ID,),
    ),
    Route(
        "GET",
        f"{BASE}/messages",
        messages,
        "channel-messages",
        "Unexpired messages, newest first",
        "read",
        READ_AUTH,
        params=(
            CHANNEL_ID,
            Param(
                "since",
                "Only messages created since: a unix timestamp (s or ms) or a duration "
                "back from now such as 10m or 2d.",
                {"type": "string"},
            ),
            LIMIT,
            BEFORE,
        ),
    ),
    Route(
        "GET",
        f"{BASE}/events",
        events,
        "channel-events",
        "Events, most recently changed first",
        "read",
        READ_AUTH,
        params=(
            CHANNEL_ID,
            Param(
                "state",
                "ongoing (default), closed or all.",
                {"type": "string", "enum": ["ongoing", "closed", "all"]},
            ),
            LIMIT,
        ),
    ),
    Route(
        "GET",
        f"{BASE}/events/{{event_id}}",
        event,
        "channel-event",
        "An event's merged state and its updates in order",
        "read",
        READ_AUTH,
        params=(CHANNEL_ID, EVENT_ID),
    ),
    Route(
        "GET",
        f"{BASE}/things",
        things,
        "channel-things",
        "Things, most recently changed first",
        "read",
        READ_AUTH,
        params=(
            CHANNEL_ID,
            Param(
                "state",
                "active (default), archived, deleted or all.",
                {"type": "string", "enum": ["active", "archived", "deleted", "all"]},
            ),
            LIMIT,
        ),
    ),
    Route(
        "GET",
        f"{BASE}/things/{{thing_id}}",
        thing,
        "channel-thing",
        "A thing's merged current state",
        "read",
        READ_AUTH,
        params=(CHANNEL_ID, THING_ID),
    ),
    Route(
        "GET",
        f"{BASE}/things/{{thing_id}}/history",
        thing_history,
        "channel-thing-history",
        "A thing's changes, newest first",
        "read",
        READ_AUTH,
        params=(CHANNEL_ID, THING_ID, LIMIT, BEFORE),
    ),
]
