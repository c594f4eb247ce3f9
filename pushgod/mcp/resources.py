"""The MCP resources: the channels bound to the assistant, each channel's state, a Thing.

    pushgo://channels                           the bound channels (PushGo's listing)
    pushgo://channels/{channel_id}              one of them: counts and recent activity
    pushgo://things/{channel_id}/{thing_id}     a Thing's current state

All need OAuth and `mcp:channels:manage` (as in PushGo); the channel and thing resources show
a channel's content, so they also need `mcp:tools`. Legacy mode has no grant to list.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from mcp_types import ReadResourceResult, Resource, ResourceTemplate, TextResourceContents

from pushgod.mcp.caller import Caller
from pushgod.mcp.tools import CHANNELS_URI
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import ENTITY_ID, parse_channel_id
from pushgod.service.services import Services

JSON: Final = "application/json"
RECENT: Final = 5
"""Recent messages, ongoing events and changed things a channel resource shows."""

TEMPLATES: Final = [
    ResourceTemplate(
        name="channel",
        title="A bound channel",
        uri_template="pushgo://channels/{channel_id}",
        description="A channel bound to you: counts, recent messages, ongoing events and "
        "recently changed things.",
        mime_type=JSON,
    ),
    ResourceTemplate(
        name="thing",
        title="A thing",
        uri_template="pushgo://things/{channel_id}/{thing_id}",
        description="A Thing's current state.",
        mime_type=JSON,
    ),
]
_CHANNEL_URI = re.compile(r"pushgo://channels/(?P<channel>[^/?#]+)")
_THING_URI = re.compile(r"pushgo://things/(?P<channel>[^/?#]+)/(?P<thing>[^/?#]+)")


def listing(services: Services, caller: Caller) -> list[Resource]:
    channels = services.bindings.channels(caller.principal())
    return [
        Resource(
            name="channels",
            title="Bound channels",
            uri=CHANNELS_URI,
            description="The channels bound to you.",
            mime_type=JSON,
        ),
        *(
            Resource(
                name=f"channel {channel['channel_id']}",
                title=channel["channel_display"],
                uri=f"pushgo://channels/{channel['channel_id']}",
                mime_type=JSON,
            )
            for channel in channels
        ),
    ]


async def read(services: Services, caller: Caller, uri: str) -> ReadResourceResult:
    principal = caller.principal()
    if uri == CHANNELS_URI:
        return _json(uri, {"channels": services.bindings.channels(principal)})
    credentials = caller.credentials(None)
    if match := _CHANNEL_URI.fullmatch(uri):
        channel_id = _channel_id(match["channel"], uri)
        bound = [c for c in services.bindings.channels(principal) if c["channel_id"] == channel_id]
        if not bound:
            raise _not_found(uri)
        summary = await services.channels.summary(credentials, channel_id)
        messages = await services.messages.recent(
            credentials, channel_id, limit=RECENT, before_seq=None, since_ms=None
        )
        events = await services.events.listing(credentials, channel_id, "ongoing", RECENT)
        things = await services.things.listing(credentials, channel_id, "active", RECENT)
        return _json(
            uri,
            bound[0]
            | {
                "counts": summary["counts"],
                "recent": {
                    "messages": messages["messages"],
                    "ongoing_events": events["events"],
                    "things": things["things"],
                },
            },
        )
    if match := _THING_URI.fullmatch(uri):
        channel_id = _channel_id(match["channel"], uri)
        if not ENTITY_ID.fullmatch(match["thing"]):
            raise _not_found(uri)
        try:
            thing = await services.things.get(credentials, channel_id, match["thing"])
        except PushgodError as error:
            if error.code in (ErrorCode.CHANNEL_NOT_BOUND, ErrorCode.THING_NOT_FOUND):
                raise _not_found(uri) from None
            raise
        return _json(uri, thing)
    raise _not_found(uri)


def _channel_id(text: str, uri: str) -> str:
    try:
        return parse_channel_id(text)
    except PushgodError:
        raise _not_found(uri) from None


def _not_found(uri: str) -> PushgodError:
    return PushgodError(ErrorCode.RESOURCE_NOT_FOUND, f"no resource {uri}")


def _json(uri: str, data: dict[str, Any]) -> ReadResourceResult:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return ReadResourceResult(contents=[TextResourceContents(uri=uri, mime_type=JSON, text=text)])
