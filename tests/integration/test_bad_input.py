"""Every malformed or unauthorized request gets a 4xx with a stable code and changes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import encode_basic_auth
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pushgod.config import Settings
from pushgod.model.events import EVENT_SCHEMAS
from pushgod.model.messages import MESSAGE_SCHEMA
from pushgod.model.things import THING_SCHEMAS
from pushgod.model.tokens import Scope
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.services import Services

from .support import (
    Client,
    basic,
    bearer,
    call,
    channel_token,
    check_envelope,
    counts,
    expired_channel_token,
    ok,
    settings_with,
)

NOW_S = int(time.time())
UNKNOWN_CHANNEL = "0" * 26
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Wrong passwords are part of the bad input here: keep the rate limit out of the way."""
    return settings_with(tmp_path, PUSHGOD_SECURITY_FAILED_LOGINS="100000")


@dataclass
class World:
    channel_id: str
    password: str
    other_id: str
    other_password: str
    tokens: dict[str, str]
    event_id: str
    thing_id: str

    def msg(self, **fields: Any) -> dict[str, Any]:
        return {"channel_id": self.channel_id, "password": self.password, "title": "t"} | fields

    def event(self, **fields: Any) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "password": self.password,
            "title": "t",
            "status": "s",
            "message": "m",
            "severity": "low",
            "event_time": NOW_S,
        } | fields

    def thing(self, **fields: Any) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "password": self.password,
            "observed_at": NOW_S,
        } | fields

    @property
    def read(self) -> str:
        return f"/api/v1/channels/{self.channel_id}"

    @property
    def auth(self) -> dict[str, str]:
        return basic(self.channel_id, self.password)


@pytest.fixture
async def world(client: Client, services: Services, channel: tuple[str, str]) -> World:
    other, other_password = await services.channels.create(LOCAL_OPERATOR, "other")
    channel_id, password = channel
    revoked_row, revoked = await services.tokens.create(
        LOCAL_OPERATOR, channel_id=channel_id, scopes=frozenset({Scope.PUBLISH, Scope.SUBSCRIBE})
    )
    await services.tokens.revoke(LOCAL_OPERATOR, revoked_row.id)
    tokens = {
        "expired": await expired_channel_token(
            services, channel_id, Scope.PUBLISH, Scope.SUBSCRIBE
        ),
        "revoked": revoked,
        "other": await channel_token(services, other.id, Scope.PUBLISH, Scope.SUBSCRIBE),
        "subscribe": await channel_token(services, channel_id, Scope.SUBSCRIBE),
        "publish": await channel_token(services, channel_id, Scope.PUBLISH),
        "things": await channel_token(services, channel_id, Scope.THINGS),
    }
    base = {"channel_id": channel_id, "password": password}
    event = await ok(
        client,
        "POST",
        "/event/create",
        json=base
        | {"title": "e", "status": "s", "message": "m", "severity": "low", "event_time": NOW_S},
    )
    thing = await ok(client, "POST", "/thing/create", json=base | {"observed_at": NOW_S})
    return World(
        channel_id,
        password,
        other.id,
        other_password,
        tokens,
        event["event_id"],
        thing["thing_id"],
    )


Request = Callable[[World], tuple[str, str, dict[str, Any]]]


def post(path: str, body: Callable[[World], Any], **extra: Any) -> Request:
    return lambda w: (path, "POST", {"json": body(w)} | extra)


def raw(path: str, data: bytes | str, headers: dict[str, str] | None = None) -> Request:
    return lambda w: (path, "POST", {"data": data, "headers": JSON if headers is None else headers})


def get(path: Callable[[World], str], **extra: Any) -> Request:
    return lambda w: (path(w), "GET", {"headers": w.auth} | extra)


def read_query(suffix: str, query: str) -> Request:
    return lambda w: (f"{w.read}{suffix}?{query}", "GET", {"headers": w.auth})


def deep(n: int) -> str:
    return "[" * n + "]" * n


CASES: dict[str, list[tuple[str, Request, int, str]]] = {
    "body": [
        ("non-json", raw("/message", "{not json"), 400, "invalid_json_syntax"),
        ("empty-body", raw("/message", b""), 400, "invalid_json_syntax"),
        ("invalid-utf8", raw("/message", b'{"title": "\xff"}'), 400, "invalid_json_syntax"),
        ("trailing-garbage", raw("/message", '{"title": "t"} x'), 400, "invalid_json_syntax"),
        ("deep-nesting", raw("/message", deep(15_000)), 400, "invalid_json_syntax"),
        ("nan", raw("/message", '{"title": NaN}'), 400, "invalid_json_syntax"),
        (
            "lone-surrogate",  # valid JSON, but no text UTF-8 (so SQLite) can hold
            lambda w: raw("/message", json.dumps(w.msg(title="\ud800")))(w),
            400,
            "invalid_json_data",
        ),
        ("infinity", raw("/message", '{"title": -Infinity}'), 400, "invalid_json_syntax"),
        (
            "number-overflowing-to-infinity",
            lambda w: raw("/message", json.dumps(w.msg())[:-1] + ', "metadata": {"x": 1e400}}')(w),
            400,
            "invalid_json_syntax",
        ),
        (
            "text-plain",
            lambda w: raw("/message", json.dumps(w.msg()), {"Content-Type": "text/plain"})(w),
            400,
            "missing_json_content_type",
        ),
        (
            "no-content-type",
            lambda w: raw("/message", json.dumps(w.msg()).encode(), {})(w),
            400,
            "missing_json_content_type",
        ),
        (
            "form-body",
            lambda w: ("/message", "POST", {"data": w.msg()}),
            400,
            "missing_json_content_type",
        ),
        ("array-body", post("/message", lambda w: [w.msg()]), 400, "invalid_json_data"),
        ("string-body", post("/message", lambda w: "title"), 400, "invalid_json_data"),
        ("title-number", post("/message", lambda w: w.msg(title=5)), 400, "invalid_json_data"),
        ("tags-string", post("/message", lambda w: w.msg(tags="a,b")), 400, "invalid_json_data"),
        ("tags-numbers", post("/message", lambda w: w.msg(tags=[1, 2])), 400, "invalid_json_data"),
        (
            "metadata-list",
            post("/message", lambda w: w.msg(metadata=["a"])),
            400,
            "invalid_json_data",
        ),
        ("ttl-bool", post("/message", lambda w: w.msg(ttl=True)), 400, "invalid_json_data"),
        ("ttl-float", post("/message", lambda w: w.msg(ttl=1.5)), 400, "invalid_json_data"),
        ("ttl-text", post("/message", lambda w: w.msg(ttl="soon")), 400, "invalid_timestamp"),
        ("ttl-negative", post("/message", lambda w: w.msg(ttl=-5)), 400, "invalid_timestamp"),
        ("unknown-field", post("/message", lambda w: w.msg(priority=5)), 400, "invalid_json_data"),
        (
            "duplicate-key",
            lambda w: raw("/message", json.dumps(w.msg())[:-1] + ', "title": "again"}')(w),
            400,
            "invalid_json_data",
        ),
        (
            "too-large",
            post("/message", lambda w: w.msg(body="x" * (33 * 1024))),
            413,
            "payload_too_large",
        ),
        (
            "bad-channel-id",
            post("/message", lambda w: w.msg(channel_id="not-a-channel")),
            400,
            "invalid_channel_id",
        ),
        (
            "channel-id-bad-bits",
            post("/message", lambda w: w.msg(channel_id="Z" * 26)),
            400,
            "invalid_channel_id",
        ),
        (
            "missing-channel-id",
            post("/message", lambda w: {"password": w.password, "title": "t"}),
            400,
            "channel_id_required",
        ),
        (
            "blank-channel-id",
            post("/message", lambda w: w.msg(channel_id="  ")),
            400,
            "channel_id_required",
        ),
        (
            "no-password",
            post("/message", lambda w: {"channel_id": w.channel_id, "title": "t"}),
            400,
            "password_required",
        ),
        (
            "short-password",
            post("/message", lambda w: w.msg(password="short")),
            400,
            "invalid_password",
        ),
        (
            "wrong-password",
            post("/message", lambda w: w.msg(password="wrong-password")),
            403,
            "password_mismatch",
        ),
        (
            "other-channels-password",
            post("/message", lambda w: w.msg(password=w.other_password)),
            403,
            "password_mismatch",
        ),
        (
            "unknown-channel",
            post("/message", lambda w: w.msg(channel_id=UNKNOWN_CHANNEL)),
            404,
            "channel_not_found",
        ),
        ("blank-title", post("/message", lambda w: w.msg(title="   ")), 400, "title_required"),
        (
            "nested-metadata",
            post("/message", lambda w: w.msg(metadata={"a": {"b": 1}})),
            400,
            "invalid_metadata",
        ),
        (
            "too-many-tags",
            post("/message", lambda w: w.msg(tags=[str(n) for n in range(33)])),
            400,
            "invalid_tags",
        ),
        (
            "long-image",
            post("/message", lambda w: w.msg(images=["x" * 2049])),
            400,
            "invalid_images",
        ),
        ("bad-op-id", post("/message", lambda w: w.msg(op_id="a b")), 400, "invalid_op_id"),
        (
            "bad-thing-id",
            post("/message", lambda w: w.msg(thing_id="a/b")),
            400,
            "invalid_thing_id",
        ),
    ],
    "events": [
        (
            "event-create-with-event-id",
            post("/event/create", lambda w: w.event(event_id=w.event_id)),
            400,
            "invalid_json_data",
        ),
        (
            "event-update-without-event-id",
            post("/event/update", lambda w: w.event()),
            400,
            "event_id_required",
        ),
        (
            "event-update-bad-event-id",
            post("/event/update", lambda w: w.event(event_id="bad id!")),
            400,
            "invalid_event_id",
        ),
        (
            "event-update-with-started-at",
            post("/event/update", lambda w: w.event(event_id=w.event_id, started_at=NOW_S)),
            400,
            "invalid_json_data",
        ),
        (
            "event-create-with-ended-at",
            post("/event/create", lambda w: w.event(ended_at=NOW_S)),
            400,
            "invalid_json_data",
        ),
        (
            "event-without-time",
            post("/event/create", lambda w: w.event(event_time="")),
            400,
            "event_time_required",
        ),
        (
            "event-bad-severity",
            post("/event/create", lambda w: w.event(severity="urgent")),
            400,
            "invalid_severity",
        ),
        (
            "event-long-status",
            post("/event/create", lambda w: w.event(status="s" * 25)),
            400,
            "invalid_status",
        ),
        (
            "event-array-attr",
            post("/event/create", lambda w: w.event(attrs={"a": [1]})),
            400,
            "invalid_attrs",
        ),
        (
            "event-no-password",
            post("/event/close", lambda w: w.event(event_id=w.event_id) | {"password": None}),
            400,
            "password_required",
        ),
        (
            "event-wrong-password",
            post(
                "/event/update", lambda w: w.event(event_id=w.event_id, password="wrong-password")
            ),
            403,
            "password_mismatch",
        ),
    ],
    "things": [
        (
            "thing-create-with-thing-id",
            post("/thing/create", lambda w: w.thing(thing_id="x")),
            400,
            "invalid_json_data",
        ),
        (
            "thing-create-with-state",
            post("/thing/create", lambda w: w.thing(state="active")),
            400,
            "invalid_json_data",
        ),
        (
            "thing-update-without-id",
            post("/thing/update", lambda w: w.thing()),
            400,
            "thing_id_required",
        ),
        (
            "thing-update-bad-id",
            post("/thing/update", lambda w: w.thing(thing_id="x" * 65)),
            400,
            "invalid_thing_id",
        ),
        (
            "thing-without-observed-at",
            post("/thing/create", lambda w: w.thing(observed_at=None)),
            400,
            "observed_at_required",
        ),
        (
            "thing-half-location",
            post("/thing/create", lambda w: w.thing(location_type="geo")),
            400,
            "invalid_location",
        ),
        (
            "thing-bad-geo",
            post("/thing/create", lambda w: w.thing(location_type="geo", location_value="91,0")),
            400,
            "invalid_location",
        ),
        (
            "thing-bad-external-id",
            post("/thing/create", lambda w: w.thing(external_ids={"a b": "x"})),
            400,
            "invalid_external_ids",
        ),
        (
            "thing-deleted-at-on-update",
            post("/thing/update", lambda w: w.thing(thing_id=w.thing_id, deleted_at=NOW_S)),
            400,
            "invalid_json_data",
        ),
        (
            "thing-no-password",
            post("/thing/archive", lambda w: w.thing(thing_id=w.thing_id, password=None)),
            400,
            "password_required",
        ),
    ],
    "send-tokens": [
        (
            "expired-token",
            lambda w: post(
                "/message", lambda w: w.msg(password=None), headers=bearer(w.tokens["expired"])
            )(w),
            401,
            "authentication_failed",
        ),
        (
            "revoked-token",
            lambda w: post(
                "/message", lambda w: w.msg(password=None), headers=bearer(w.tokens["revoked"])
            )(w),
            401,
            "authentication_failed",
        ),
        (
            "unknown-token",
            lambda w: post("/message", lambda w: w.msg(password=None), headers=bearer("pgd_nope"))(
                w
            ),
            401,
            "authentication_failed",
        ),
        (
            "other-channels-token",
            lambda w: post(
                "/message", lambda w: w.msg(password=None), headers=bearer(w.tokens["other"])
            )(w),
            403,
            "channel_forbidden",
        ),
        (
            "subscribe-token-sends",
            lambda w: post(
                "/message", lambda w: w.msg(password=None), headers=bearer(w.tokens["subscribe"])
            )(w),
            403,
            "insufficient_scope",
        ),
        (
            "things-token-sends-event",
            lambda w: post(
                "/event/create",
                lambda w: w.event(password=None),
                headers=bearer(w.tokens["things"]),
            )(w),
            403,
            "insufficient_scope",
        ),
        (
            "bearer-without-token",
            lambda w: post("/message", lambda w: w.msg(), headers={"Authorization": "Bearer"})(w),
            401,
            "authentication_failed",
        ),
        (
            "bearer-with-three-parts",
            lambda w: post("/message", lambda w: w.msg(), headers={"Authorization": "Bearer a b"})(
                w
            ),
            401,
            "authentication_failed",
        ),
        (
            "bearer-too-long",
            lambda w: post("/message", lambda w: w.msg(), headers=bearer("x" * 5000))(w),
            401,
            "authentication_failed",
        ),
    ],
    "read-credentials": [
        (
            "read-without-credentials",
            lambda w: (w.read, "GET", {}),
            401,
            "authentication_failed",
        ),
        (
            "read-wrong-password",
            lambda w: (w.read, "GET", {"headers": basic(w.channel_id, "wrong-password")}),
            403,
            "password_mismatch",
        ),
        (
            "read-other-channels-credentials",
            lambda w: (w.read, "GET", {"headers": basic(w.other_id, w.other_password)}),
            403,
            "channel_forbidden",
        ),
        (
            "read-basic-without-colon",
            lambda w: (w.read, "GET", {"headers": {"Authorization": "Basic bm9jb2xvbg=="}}),
            401,
            "authentication_failed",
        ),
        (
            "read-basic-not-base64",
            lambda w: (w.read, "GET", {"headers": {"Authorization": "Basic !!!"}}),
            401,
            "authentication_failed",
        ),
        (
            "read-basic-bad-channel-id",
            lambda w: (w.read, "GET", {"headers": {"Authorization": encode_basic_auth("x", "pw")}}),
            400,
            "invalid_channel_id",
        ),
        (
            "read-unknown-scheme",
            lambda w: (w.read, "GET", {"headers": {"Authorization": "Digest abc"}}),
            401,
            "authentication_failed",
        ),
        (
            "read-expired-token",
            lambda w: (w.read, "GET", {"headers": bearer(w.tokens["expired"])}),
            401,
            "authentication_failed",
        ),
        (
            "read-revoked-token",
            lambda w: (w.read, "GET", {"headers": bearer(w.tokens["revoked"])}),
            401,
            "authentication_failed",
        ),
        (
            "read-other-channels-token",
            lambda w: (w.read, "GET", {"headers": bearer(w.tokens["other"])}),
            403,
            "channel_forbidden",
        ),
        (
            "read-with-publish-token",
            lambda w: (f"{w.read}/messages", "GET", {"headers": bearer(w.tokens["publish"])}),
            403,
            "insufficient_scope",
        ),
        (
            "read-with-things-token",
            lambda w: (f"{w.read}/things", "GET", {"headers": bearer(w.tokens["things"])}),
            403,
            "insufficient_scope",
        ),
        (
            "read-bad-channel-id",
            get(lambda w: "/api/v1/channels/not-a-channel/messages"),
            400,
            "invalid_channel_id",
        ),
        (
            "read-unknown-channel",
            lambda w: (f"/api/v1/channels/{UNKNOWN_CHANNEL}", "GET", {"headers": w.auth}),
            404,
            "channel_not_found",
        ),
        ("read-bad-event-id", get(lambda w: f"{w.read}/events/bad!id"), 400, "invalid_event_id"),
        (
            "read-bad-thing-id",
            get(lambda w: f"{w.read}/things/{'t' * 65}"),
            400,
            "invalid_thing_id",
        ),
        (
            "read-bad-thing-id-history",
            get(lambda w: f"{w.read}/things/a%20b/history"),
            400,
            "invalid_thing_id",
        ),
        ("read-unknown-event", get(lambda w: f"{w.read}/events/nope"), 404, "event_not_found"),
    ],
    "read-query": [
        ("limit-zero", read_query("/messages", "limit=0"), 400, "invalid_query"),
        ("limit-too-big", read_query("/messages", "limit=501"), 400, "invalid_query"),
        ("limit-negative", read_query("/messages", "limit=-1"), 400, "invalid_query"),
        ("limit-text", read_query("/events", "limit=ten"), 400, "invalid_query"),
        ("limit-superscript", read_query("/messages", "limit=%C2%B2"), 400, "invalid_query"),
        ("limit-arabic-digit", read_query("/things", "limit=%D9%A3"), 400, "invalid_query"),
        ("before-text", read_query("/messages", "before=x"), 400, "invalid_query"),
        ("before-superscript", read_query("/messages", "before=%C2%B2"), 400, "invalid_query"),
        (
            "history-before-superscript",
            lambda w: read_query(f"/things/{w.thing_id}/history", "before=%C2%B9")(w),
            400,
            "invalid_query",
        ),
        ("before-huge", read_query("/messages", "before=" + "9" * 30), 400, "invalid_query"),
        ("since-text", read_query("/messages", "since=yesterday"), 400, "invalid_query"),
        ("since-superscript", read_query("/messages", "since=%C2%B2"), 400, "invalid_query"),
        ("since-negative", read_query("/messages", "since=-5"), 400, "invalid_query"),
        ("events-bad-state", read_query("/events", "state=open"), 400, "invalid_query"),
        ("things-bad-state", read_query("/things", "state=gone"), 400, "invalid_query"),
        ("unknown-param", read_query("/messages", "page=2"), 400, "invalid_query"),
        ("repeated-param", read_query("/messages", "limit=1&limit=2"), 400, "invalid_query"),
        ("summary-param", read_query("", "verbose=1"), 400, "invalid_query"),
    ],
    "get-message": [
        (
            "get-message-unknown-param",
            lambda w: ("/message", "GET", {"params": w.msg(priority="5")}),
            400,
            "invalid_query",
        ),
        (
            "get-message-repeated-param",
            lambda w: (
                f"/message?channel_id={w.channel_id}&password={w.password}&title=a&title=b",
                "GET",
                {},
            ),
            400,
            "invalid_query",
        ),
        (
            "get-message-metadata-not-json",
            lambda w: ("/message", "GET", {"params": w.msg(metadata="{a:1}")}),
            400,
            "invalid_query",
        ),
        (
            "get-message-metadata-array",
            lambda w: ("/message", "GET", {"params": w.msg(metadata="[1]")}),
            400,
            "invalid_query",
        ),
        (
            "get-message-metadata-nan",
            lambda w: ("/message", "GET", {"params": w.msg(metadata='{"x": NaN}')}),
            400,
            "invalid_query",
        ),
        (
            "get-message-metadata-overflow",
            lambda w: ("/message", "GET", {"params": w.msg(metadata='{"x": 1e999}')}),
            400,
            "invalid_query",
        ),
        (
            "get-message-metadata-duplicate-key",
            lambda w: ("/message", "GET", {"params": w.msg(metadata='{"x": 1, "x": 2}')}),
            400,
            "invalid_query",
        ),
        (
            "get-message-metadata-deep",
            lambda w: ("/message", "GET", {"params": w.msg(metadata=deep(1100))}),
            400,
            "invalid_query",
        ),
        (
            "get-message-no-password",
            lambda w: ("/message", "GET", {"params": {"channel_id": w.channel_id, "title": "t"}}),
            400,
            "password_required",
        ),
    ],
    "admin": [
        (
            "admin-without-credentials",
            lambda w: ("/api/v1/admin/channels", "GET", {}),
            401,
            "authentication_failed",
        ),
        (
            "admin-with-channel-password",
            lambda w: ("/api/v1/admin/channels", "GET", {"headers": w.auth}),
            401,
            "authentication_failed",
        ),
        (
            "admin-with-channel-token",
            lambda w: (
                "/api/v1/admin/tokens",
                "POST",
                {"json": {"admin": True}, "headers": bearer(w.tokens["publish"])},
            ),
            403,
            "insufficient_scope",
        ),
    ],
    "routes": [
        ("unknown-route", lambda w: ("/nothing/here", "GET", {}), 404, "route_not_found"),
        ("unknown-sub-route", get(lambda w: f"{w.read}/widgets"), 404, "route_not_found"),
        (
            "unknown-event-action",
            post("/event/delete", lambda w: w.event()),
            404,
            "route_not_found",
        ),
        ("delete-message", lambda w: ("/message", "DELETE", {}), 405, "method_not_allowed"),
        ("get-event-create", lambda w: ("/event/create", "GET", {}), 405, "method_not_allowed"),
        ("put-thing-update", lambda w: ("/thing/update", "PUT", {}), 405, "method_not_allowed"),
        ("post-read-route", lambda w: (w.read, "POST", {"json": {}}), 405, "method_not_allowed"),
    ],
}


@pytest.mark.parametrize("group", CASES)
async def test_bad_requests_are_refused_and_change_nothing(
    client: Client, services: Services, world: World, group: str
) -> None:
    """Each case of the group in turn, on one channel; all mismatches are reported together."""
    mismatches = []
    for name, request_for, status, code in CASES[group]:
        path, method, kwargs = request_for(world)
        before = counts(services)
        got, body = await call(client, method, path, **kwargs)
        if (got, body.get("error_code")) != (status, code):
            mismatches.append(f"{name}: expected {status} {code}, got {got} {body}")
        if counts(services) != before:
            mismatches.append(f"{name}: changed the store: {before} -> {counts(services)}")
    summary = await ok(client, "GET", world.read, headers=world.auth)
    assert summary["counts"]["messages"] == 0
    assert not mismatches, "\n".join(mismatches)


async def test_wrong_password_on_every_send_route(
    client: Client, services: Services, world: World
) -> None:
    before = counts(services)
    bodies = {
        "/message": world.msg(),
        "/event/create": world.event(),
        "/event/update": world.event(event_id=world.event_id),
        "/event/close": world.event(event_id=world.event_id),
        "/thing/create": world.thing(),
        "/thing/update": world.thing(thing_id=world.thing_id),
        "/thing/archive": world.thing(thing_id=world.thing_id),
        "/thing/delete": world.thing(thing_id=world.thing_id),
    }
    for path, body in bodies.items():
        got, reply = await call(client, "POST", path, json=body | {"password": "wrong-password"})
        assert (got, reply["error_code"]) == (403, "password_mismatch"), path
        got, reply = await call(client, "POST", path, json=body | {"password": None})
        assert (got, reply["error_code"]) == (400, "password_required"), path
    assert counts(services) == before


# Property: any JSON at any send route gets a 2xx or 4xx envelope, never a 5xx.

SEND_ROUTES = {
    "/message": MESSAGE_SCHEMA,
    **{f"/event/{action.value}": schema for action, schema in EVENT_SCHEMAS.items()},
    **{f"/thing/{action.value}": schema for action, schema in THING_SCHEMAS.items()},
}
FRESH_EVENT, FRESH_THING = "<fresh event>", "<fresh thing>"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def valid_body(world: World, path: str) -> dict[str, Any]:
    """A body the route accepts; the property mutates it."""
    body: dict[str, Any] = {"channel_id": world.channel_id, "password": world.password}
    if path == "/message":
        return body | {"title": "t"}
    if path.startswith("/event/"):
        body |= {"status": "s", "message": "m", "severity": "low", "event_time": NOW_S}
        return body | ({"title": "t"} if path == "/event/create" else {"event_id": FRESH_EVENT})
    body["observed_at"] = NOW_S
    return body if path == "/thing/create" else body | {"thing_id": FRESH_THING}


def field_values(world: World) -> dict[str, st.SearchStrategy[Any]]:
    """Per schema key: plausible values, valid or not."""
    timestamps = st.integers(min_value=-10, max_value=2**62) | st.sampled_from(
        [NOW_S, str(NOW_S), "", "x", "1.5"]
    )
    return {
        "channel_id": st.sampled_from([world.channel_id, world.other_id, UNKNOWN_CHANNEL, "x"]),
        "password": st.sampled_from([world.password, "wrong-password", "short"]),
        "op_id": st.sampled_from(["op-1", "op-2", "bad op", ""]),
        "event_id": st.sampled_from([FRESH_EVENT, world.event_id, "nope", "bad id", ""]),
        "thing_id": st.sampled_from([FRESH_THING, world.thing_id, "nope", "bad/id", ""]),
        "event_time": timestamps,
        "observed_at": timestamps,
        "occurred_at": timestamps,
        "ttl": timestamps,
        "started_at": timestamps,
        "ended_at": timestamps,
        "created_at": timestamps,
        "deleted_at": timestamps,
        "severity": st.sampled_from(["low", "normal", "high", "critical", "LOW", "x", ""]),
        "location_type": st.sampled_from(["geo", "physical", "cloud", "datacenter", "logical"]),
        "location_value": st.sampled_from(["1,2", "a:b", "a/b", "x", "200,0"]) | st.text(),
        "tags": st.lists(st.text(max_size=70), max_size=34),
        "images": st.lists(st.text(max_size=20), max_size=3),
        "metadata": st.dictionaries(st.text(max_size=70), scalars, max_size=4),
        "attrs": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
        "external_ids": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    }


def bodies(world: World) -> st.SearchStrategy[tuple[str, Any]]:
    """Per route: a valid body with a few fields changed, a dict over the schema keys,
    or any JSON value at all."""
    plausible = field_values(world)

    def for_route(path: str) -> st.SearchStrategy[tuple[str, Any]]:
        keys = [*SEND_ROUTES[path], "unknown"]
        value = {k: plausible.get(k, st.text(max_size=40)) | json_values for k in keys}
        changes = st.lists(
            st.sampled_from(keys).flatmap(lambda k: st.tuples(st.just(k), value[k])), max_size=3
        ).map(dict)
        mutated = changes.map(lambda c: valid_body(world, path) | c)
        anything = st.fixed_dictionaries({}, optional=value)
        return st.tuples(st.just(path), mutated | mutated | anything | json_values)

    return st.one_of([for_route(path) for path in SEND_ROUTES])


async def test_any_json_to_any_send_route_never_fails_with_5xx(
    client: Client, services: Services, world: World
) -> None:
    loop = asyncio.get_running_loop()
    seen: dict[int, int] = {}

    async def send(path: str, method: str, kwargs: dict[str, Any]) -> None:
        async with client.request(method, path, **kwargs) as reply:
            assert reply.status < 500, await reply.text()
            body = await reply.json()
        check_envelope(body, reply.status)
        seen[reply.status] = seen.get(reply.status, 0) + 1

    async def fresh(body: dict[str, Any]) -> dict[str, Any]:
        """Targets for update, close, archive and delete that are still open."""
        if body.get("event_id") == FRESH_EVENT:
            created = await ok(
                client, "POST", "/event/create", json=valid_body(world, "/event/create")
            )
            body["event_id"] = created["event_id"]
        if body.get("thing_id") == FRESH_THING:
            created = await ok(
                client, "POST", "/thing/create", json=valid_body(world, "/thing/create")
            )
            body["thing_id"] = created["thing_id"]
        return body

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    @hypothesis_settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        request=bodies(world),
        query=st.dictionaries(st.sampled_from(list(MESSAGE_SCHEMA)), st.text(max_size=30)),
    )
    def property_(request: tuple[str, Any], query: dict[str, str]) -> None:
        path, body = request
        if isinstance(body, dict):
            body = run(fresh(body))
        run(send(path, "POST", {"json": body}))
        if path == "/message" and isinstance(body, dict):
            params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            run(send(path, "GET", {"params": params | query}))

    # hypothesis drives the requests from a thread; they run on this test's loop.
    await asyncio.to_thread(property_)
    assert seen.get(200, 0) >= 20, seen
    assert sum(n for status, n in seen.items() if 400 <= status < 500) >= 20, seen
