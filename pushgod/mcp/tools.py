"""The MCP tools: PushGo's send and channel tools, and pushgod's read tools.

Names, arguments and results follow PushGo (gateway reference §3.2): a send tool answers
`{status, payload: <the HTTP envelope>, auth_mode, channel_id, channel_name,
channel_display}`. Arguments are checked by the same wire schemas and parsers as the HTTP
routes, so a bad argument fails with the same `error_code`. Unlike PushGo, `event_time` and
`observed_at` default to now: a model seldom knows the time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pushgod.model import fields as f
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.events import EVENT_REQUIRED, EVENT_SCHEMAS, EventAction, parse_event
from pushgod.model.ids import check_entity_id
from pushgod.model.messages import MESSAGE_SCHEMA, parse_credentials, parse_message
from pushgod.model.oauth import OAuthScope
from pushgod.model.things import THING_SCHEMAS, ThingAction, parse_thing
from pushgod.service.auth import Credentials
from pushgod.service.bindings import channel_card
from pushgod.service.context import now_ms
from pushgod.service.services import Services

if TYPE_CHECKING:  # the caller module loads the MCP SDK; the /mcp route reads this table before
    from pushgod.mcp.caller import Caller

Run = Callable[[Services, "Caller", dict[str, Any]], Awaitable[dict[str, Any]]]

PASSWORD: Final = f.WireField(
    f.Kind.STRING,
    "The channel's password, in legacy mode only (the connection uses the server's gateway "
    "token). Never send it in OAuth mode: there the channel must be bound to you instead.",
)
CHANNEL_ID: Final = f.WireField(
    f.Kind.STRING,
    "The channel to act on: its 26-character id, as pushgo.channel.list shows it.",
)
_NOT_FOR_TOOLS = {"sealed"}  # end-to-end sealing is done by paired clients, not assistants


def _send_fields(schema: f.Schema) -> f.Schema:
    fields = {name: field for name, field in schema.items() if name not in _NOT_FOR_TOOLS}
    return fields | {"channel_id": CHANNEL_ID, "password": PASSWORD}


def _read_fields(extra: f.Schema) -> f.Schema:
    return {"channel_id": CHANNEL_ID, "password": PASSWORD} | extra


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    title: str
    description: str
    fields: f.Schema
    required: tuple[str, ...]
    scope: OAuthScope
    run: Run
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False

    @property
    def underscored(self) -> str:
        return self.name.replace(".", "_")

    def input_schema(self) -> dict[str, Any]:
        return f.json_schema(self.fields, self.required)


# -- results -----------------------------------------------------------------------------


def _card(services: Services, channel_id: str) -> dict[str, Any]:
    """How the answer names the channel. Read after the commit: a channel deleted meanwhile
    must not turn a stored write into a reported failure (a retry would store it twice)."""
    try:
        name: str | None = services.auth.channel(channel_id).name
    except PushgodError:
        name = None
    return channel_card(channel_id, name)


def _pushgo_result(
    services: Services, caller: Caller, channel_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "status": 200,
        "payload": {"success": True, "data": data},
        "auth_mode": caller.mode.value,
        **_card(services, channel_id),
    }


def _with_defaults(args: dict[str, Any], name: str) -> dict[str, Any]:
    """The arguments with a missing time set to now (in ms: PushGo's parsers take both)."""
    return args if args.get(name) is not None else {**args, name: now_ms()}


# -- send tools --------------------------------------------------------------------------


async def send_message(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    auth, intent = parse_message(args, now_ms())
    data = await services.messages.send(caller.credentials(auth.password), intent)
    return _pushgo_result(services, caller, auth.channel_id, data)


def _event_tool(action: EventAction) -> Run:
    async def run(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        auth, intent = parse_event(action, _with_defaults(args, "event_time"))
        data = await services.events.apply(caller.credentials(auth.password), intent)
        return _pushgo_result(services, caller, auth.channel_id, data)

    return run


def _thing_tool(action: ThingAction) -> Run:
    async def run(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        auth, intent = parse_thing(action, _with_defaults(args, "observed_at"))
        data = await services.things.apply(caller.credentials(auth.password), intent)
        return _pushgo_result(services, caller, auth.channel_id, data)

    return run


# -- read tools --------------------------------------------------------------------------

LIMIT: Final = f.WireField(
    f.Kind.INTEGER, f"How many to return, 1-{f.MAX_PAGE} (default {f.DEFAULT_PAGE})."
)
THING_ID: Final = f.WireField(f.Kind.STRING, "The thing's id.")
EVENT_ID: Final = f.WireField(f.Kind.STRING, "The event's id.")
CHANNELS_URI: Final = "pushgo://channels"
"""The resource listing the bound channels: the one resource that shows no channel's content,
so the only one `mcp:channels:manage` alone may read (the others also need `mcp:tools`)."""
MAX_SEQ: Final = 2**63 - 1
"""SQLite's largest integer: a larger seq would overflow the query."""
THING_STATES: Final = ("active", "archived", "deleted", "all")
EVENT_STATES: Final = ("ongoing", "closed", "all")


def _integer(args: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value: int = args.get(name, default)
    if not low <= value <= high:
        raise PushgodError(ErrorCode.INVALID_FIELD, f"{name} must be {low}-{high}")
    return value


def _entity(args: dict[str, Any], name: str, required: ErrorCode, invalid: ErrorCode) -> str:
    text = f.optional_text(args.get(name))
    if text is None:
        raise PushgodError(required, f"{name} is required")
    return check_entity_id(text, name, invalid)


def _limit(args: dict[str, Any]) -> int:
    return _integer(args, "limit", f.DEFAULT_PAGE, 1, f.MAX_PAGE)


def _read_result(
    services: Services, caller: Caller, channel_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {**_card(services, channel_id), "auth_mode": caller.mode.value, **data}


ReadOne = Callable[[Services], Callable[[Credentials, str, str], Awaitable[dict[str, Any]]]]
ReadMany = Callable[[Services], Callable[[Credentials, str, str, int], Awaitable[dict[str, Any]]]]


def _getter(read: ReadOne, name: str, required: ErrorCode, invalid: ErrorCode) -> Run:
    """A read tool of one event or thing, named by the `name` argument."""

    async def run(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        auth, _ = parse_credentials(args)
        entity_id = _entity(args, name, required, invalid)
        credentials = caller.credentials(auth.password)
        data = await read(services)(credentials, auth.channel_id, entity_id)
        return _read_result(services, caller, auth.channel_id, data)

    return run


def _lister(read: ReadMany, default_state: str) -> Run:
    """A read tool listing a channel's events or things in one state."""

    async def run(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
        auth, _ = parse_credentials(args)
        credentials = caller.credentials(auth.password)
        state = args.get("state", default_state)
        data = await read(services)(credentials, auth.channel_id, state, _limit(args))
        return _read_result(services, caller, auth.channel_id, data)

    return run


async def list_messages(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    auth, _ = parse_credentials(args)
    credentials = caller.credentials(auth.password)
    before_seq = _integer(args, "before_seq", MAX_SEQ, 1, MAX_SEQ) if "before_seq" in args else None
    data = await services.messages.recent(
        credentials, auth.channel_id, limit=_limit(args), before_seq=before_seq, since_ms=None
    )
    return _read_result(services, caller, auth.channel_id, data)


# -- channel tools -----------------------------------------------------------------------


async def bind_start(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    return await services.bindings.start(
        caller.principal(),
        caller.issuer,
        action=args.get("action", "bind"),
        requested_channel_id=f.optional_text(args.get("requested_channel_id")),
        redirect_uri=f.optional_text(args.get("redirect_uri")),
    )


async def bind_status(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    session_id = f.optional_text(args.get("bind_session_id"))
    if session_id is None:
        raise PushgodError(ErrorCode.INVALID_FIELD, "bind_session_id is required")
    return await services.bindings.status(caller.principal(), session_id)


async def list_channels(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    return {"channels": services.bindings.channels(caller.principal())}


async def unbind(services: Services, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    principal = caller.principal()
    auth, _ = parse_credentials(args)  # a password is accepted and ignored, as in PushGo
    return await services.bindings.unbind(principal, auth.channel_id)


# -- the table ---------------------------------------------------------------------------

_EVENT_WORDS = {
    EventAction.CREATE: (
        "Open an event",
        "Open an Event: long-running work the user should follow (a backup, a deploy, a "
        "download), shown as ongoing until closed. Give a title, a short status (up to 24 "
        "characters, e.g. 'running'), a message saying what is happening and a severity. "
        "Returns its event_id: keep it to update and close the event.",
    ),
    EventAction.UPDATE: (
        "Update an event",
        "Report progress on an ongoing Event: a new status and message; attrs merge into "
        "the event's (null deletes a key).",
    ),
    EventAction.CLOSE: (
        "Close an event",
        "Close an Event when the work is done or failed: a final status and message. A "
        "closed event no longer changes.",
    ),
}
_THING_WORDS = {
    ThingAction.CREATE: (
        "Create a thing",
        "Create a Thing: a persistent object whose state the user watches (a NAS, a "
        "sensor, a backup job). attrs hold its state as key/value pairs. Returns its "
        "thing_id.",
    ),
    ThingAction.UPDATE: (
        "Update a thing",
        "Change a Thing's state: attrs and external_ids merge into the current ones (null "
        "deletes a key); other fields replace theirs.",
    ),
    ThingAction.ARCHIVE: (
        "Archive a thing",
        "Archive a Thing that is no longer in use; its history is kept.",
    ),
    ThingAction.DELETE: (
        "Delete a thing",
        "Delete a Thing for good: it can no longer change. Prefer archiving.",
    ),
}
_EVENT_REQUIRED = {  # event_time defaults to now here
    action: tuple(name for name in EVENT_REQUIRED[action] if name != "event_time")
    for action in EventAction
}

TOOLS: Final[tuple[Tool, ...]] = (
    Tool(
        "pushgo.message.send",
        "Send a message",
        "Send a one-off notification to the user's devices: a title, optionally a Markdown "
        "body, a severity (critical, high, normal, low) and a link. Use it for results and "
        "alerts the user should see now; use events for work that goes on.",
        _send_fields(MESSAGE_SCHEMA),
        ("channel_id", "title"),
        OAuthScope.TOOLS,
        send_message,
    ),
    *(
        Tool(
            f"pushgo.event.{action.value}",
            _EVENT_WORDS[action][0],
            _EVENT_WORDS[action][1],
            _send_fields(EVENT_SCHEMAS[action]),
            _EVENT_REQUIRED[action],
            OAuthScope.TOOLS,
            _event_tool(action),
        )
        for action in EventAction
    ),
    *(
        Tool(
            f"pushgo.thing.{action.value}",
            _THING_WORDS[action][0],
            _THING_WORDS[action][1],
            _send_fields(THING_SCHEMAS[action]),
            ("channel_id",) if action is ThingAction.CREATE else ("channel_id", "thing_id"),
            OAuthScope.TOOLS,
            _thing_tool(action),
            destructive=action is ThingAction.DELETE,
        )
        for action in ThingAction
    ),
    Tool(
        "pushgo.thing.get",
        "Read a thing",
        "Read a Thing's current state: its attrs, status and when it last changed.",
        _read_fields({"thing_id": THING_ID}),
        ("channel_id", "thing_id"),
        OAuthScope.TOOLS,
        _getter(
            lambda s: s.things.get,
            "thing_id",
            ErrorCode.THING_ID_REQUIRED,
            ErrorCode.INVALID_THING_ID,
        ),
        read_only=True,
    ),
    Tool(
        "pushgo.thing.list",
        "List things",
        "List a channel's Things with their current state, most recently changed first.",
        _read_fields(
            {
                "state": f.WireField(f.Kind.STRING, "Which things (default active).", THING_STATES),
                "limit": LIMIT,
            }
        ),
        ("channel_id",),
        OAuthScope.TOOLS,
        _lister(lambda s: s.things.listing, "active"),
        read_only=True,
    ),
    Tool(
        "pushgo.event.get",
        "Read an event",
        "Read an Event's current state and its updates, oldest first.",
        _read_fields({"event_id": EVENT_ID}),
        ("channel_id", "event_id"),
        OAuthScope.TOOLS,
        _getter(
            lambda s: s.events.get,
            "event_id",
            ErrorCode.EVENT_ID_REQUIRED,
            ErrorCode.INVALID_EVENT_ID,
        ),
        read_only=True,
    ),
    Tool(
        "pushgo.event.list",
        "List events",
        "List a channel's Events, by default the ongoing ones: work still in progress.",
        _read_fields(
            {
                "state": f.WireField(
                    f.Kind.STRING, "Which events (default ongoing).", EVENT_STATES
                ),
                "limit": LIMIT,
            }
        ),
        ("channel_id",),
        OAuthScope.TOOLS,
        _lister(lambda s: s.events.listing, "ongoing"),
        read_only=True,
    ),
    Tool(
        "pushgo.message.list",
        "List recent messages",
        "List a channel's recent messages, newest first. To page back, pass the answer's "
        "next_before as before_seq.",
        _read_fields(
            {
                "limit": LIMIT,
                "before_seq": f.WireField(
                    f.Kind.INTEGER, "Only messages older than this seq (paging)."
                ),
            }
        ),
        ("channel_id",),
        OAuthScope.TOOLS,
        list_messages,
        read_only=True,
    ),
    Tool(
        "pushgo.channel.bind.start",
        "Bind a channel",
        "Ask the user to bind a channel to you (or, with action revoke, to unbind one). "
        "Returns a bind_url: show it to the user, who opens it and enters the channel's id "
        "and password there (never ask for the password yourself). Then poll "
        "pushgo.channel.bind.status every poll_after_ms until it is completed or expired.",
        {
            "requested_channel_id": f.WireField(
                f.Kind.STRING, "The channel to suggest on the page (optional)."
            ),
            "redirect_uri": f.WireField(
                f.Kind.STRING,
                "Where the browser goes when done; one of your registered redirect URIs.",
            ),
            "action": f.WireField(f.Kind.STRING, "bind (default) or revoke.", ("bind", "revoke")),
            "lang": f.WireField(f.Kind.STRING, "Accepted for PushGo; pages are in English."),
            "ui_locales": f.WireField(f.Kind.STRING, "Accepted for PushGo; pages are in English."),
        },
        (),
        OAuthScope.CHANNELS_MANAGE,
        bind_start,
    ),
    Tool(
        "pushgo.channel.bind.status",
        "Check a binding",
        "Whether the user completed a bind session: pending, completed or expired. "
        "resources_changed is true once, right after completion.",
        {"bind_session_id": f.WireField(f.Kind.STRING, "From pushgo.channel.bind.start.")},
        ("bind_session_id",),
        OAuthScope.CHANNELS_MANAGE,
        bind_status,
        read_only=True,
    ),
    Tool(
        "pushgo.channel.list",
        "List bound channels",
        "The channels bound to you: the ones you may send to and read.",
        {},
        (),
        OAuthScope.CHANNELS_MANAGE,
        list_channels,
        read_only=True,
    ),
    Tool(
        "pushgo.channel.unbind",
        "Unbind a channel",
        "Give up a channel: you can no longer send to it or read it until it is bound again.",
        {"channel_id": CHANNEL_ID, "password": f.WireField(f.Kind.STRING, "Ignored.")},
        ("channel_id",),
        OAuthScope.CHANNELS_MANAGE,
        unbind,
        destructive=True,
        idempotent=True,
    ),
)

BY_NAME: Final[dict[str, Tool]] = {
    name: tool for tool in TOOLS for name in (tool.name, tool.underscored)
}
"""Every tool under both its names: calls by either work whatever the listing shows."""

QUIET: Final[frozenset[str]] = frozenset(
    name for name, tool in BY_NAME.items() if tool.scope is OAuthScope.TOOLS
)
"""The tools that send the client nothing but their result, under both names: all but the
channel tools, which may tell it that its resources changed. /mcp answers a call of one of
these without the SDK's transport (mcp/direct.py)."""


def check_arguments(tool: Tool, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """The arguments, shape-checked against the tool's schema (unknown fields refused)."""
    return f.check_shape(arguments or {}, tool.fields)
