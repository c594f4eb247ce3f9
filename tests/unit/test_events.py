"""Events: the create, update and close bodies, and the open -> update -> close state machine."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.events import (
    EVENT_SCHEMAS,
    Event,
    EventAction,
    EventIntent,
    EventState,
    advance_event,
    open_event,
    parse_event,
)
from pushgod.model.fields import Kind, Severity
from pushgod.model.merge_patch import merge_patch

CHANNEL = "0123456789ABCDEFGHJKMNPQR0"
PASSWORD = "correct horse"
T0 = 1_700_000_000_000
NOW = T0 + 5_000

CREATE, UPDATE, CLOSE = EventAction.CREATE, EventAction.UPDATE, EventAction.CLOSE


def expect(code: ErrorCode) -> pytest.RaisesExc[PushgodError]:
    return pytest.raises(PushgodError, check=lambda error: error.code is code)


def body(action: EventAction, **fields: Any) -> dict[str, Any]:
    base = {
        "channel_id": CHANNEL,
        "password": PASSWORD,
        "event_time": T0,
        "status": "running",
        "message": "started",
        "severity": "normal",
    }
    if action is CREATE:
        base["title"] = "Nightly backup"
    else:
        base["event_id"] = "backup-1"
    return {k: v for k, v in (base | fields).items() if v is not ...}


def intent(action: EventAction, **fields: Any) -> EventIntent:
    return parse_event(action, body(action, **fields))[1]


def opened(**fields: Any) -> Event:
    return open_event(intent(CREATE, **fields), "backup-1", T0)


# -- parsing -----------------------------------------------------------------------------------


def test_a_full_create() -> None:
    auth, result = parse_event(
        CREATE,
        {
            "channel_id": CHANNEL.lower(),
            "password": PASSWORD,
            "op_id": "op-1",
            "thing_id": "nas",
            "event_time": str(T0 // 1000),
            "title": " Backup ",
            "description": " nightly ",
            "status": " running ",
            "message": " 0% ",
            "severity": "HIGH",
            "tags": ["b", "a", "b"],
            "images": ["https://x/1.png"],
            "ciphertext": "c",
            "started_at": T0 - 1000,
            "attrs": {"progress": 0, "host": {"name": "nas", "ip": None}, "gone": None},
            "metadata": {"k": "v"},
        },
    )
    assert (auth.channel_id, auth.password) == (CHANNEL, PASSWORD)
    assert result.action is CREATE
    assert (result.op_id, result.event_id, result.thing_id) == ("op-1", None, "nas")
    assert result.event_time == T0
    assert (result.title, result.description) == ("Backup", "nightly")
    assert (result.status, result.message, result.severity) == ("running", "0%", Severity.HIGH)
    assert (result.tags, result.images, result.ciphertext) == (
        ("b", "a"),
        ("https://x/1.png",),
        "c",
    )
    assert (result.started_at, result.ended_at) == (T0 - 1000, None)
    assert result.attrs == {"progress": 0, "host": {"name": "nas", "ip": None}, "gone": None}
    assert result.metadata == {"k": "v"}


def test_fields_not_given_are_none_meaning_keep() -> None:
    result = intent(UPDATE)
    assert result.event_id == "backup-1"
    for name in ("title", "description", "tags", "images", "ciphertext", "attrs", "metadata"):
        assert getattr(result, name) is None, name
    assert (result.started_at, result.ended_at) == (None, None)


def test_empty_lists_and_objects_are_given_not_absent() -> None:
    result = intent(UPDATE, tags=[], images=[], metadata={})
    assert (result.tags, result.images, result.metadata) == ((), (), {})


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        (CREATE, {"event_id": "e1"}),  # the server picks the id
        (CREATE, {"ended_at": T0}),
        (UPDATE, {"started_at": T0}),
        (UPDATE, {"ended_at": T0}),
        (CLOSE, {"started_at": T0}),
        (CREATE, {"state": "CLOSED"}),
        (UPDATE, {"title": 1}),
        (UPDATE, {"attrs": [1]}),
        (UPDATE, {"tags": "a"}),
    ],
)
def test_fields_a_route_does_not_accept(action: EventAction, fields: dict[str, Any]) -> None:
    with expect(ErrorCode.INVALID_JSON_DATA):
        parse_event(action, body(action, **fields))


@pytest.mark.parametrize("action", [UPDATE, CLOSE])
@pytest.mark.parametrize("value", [..., None, "", "  "])
def test_update_and_close_need_an_event_id(action: EventAction, value: object) -> None:
    with expect(ErrorCode.EVENT_ID_REQUIRED):
        parse_event(action, body(action, event_id=value))


@pytest.mark.parametrize("value", ["a/b", "e" * 65, "with space"])
def test_invalid_event_id(value: str) -> None:
    with expect(ErrorCode.INVALID_EVENT_ID):
        parse_event(UPDATE, body(UPDATE, event_id=value))


def test_invalid_thing_id() -> None:
    with expect(ErrorCode.INVALID_THING_ID):
        parse_event(CREATE, body(CREATE, thing_id="a b"))


@pytest.mark.parametrize("action", list(EventAction))
@pytest.mark.parametrize("value", [..., None, "", " "])
def test_event_time_is_required(action: EventAction, value: object) -> None:
    with expect(ErrorCode.EVENT_TIME_REQUIRED):
        parse_event(action, body(action, event_time=value))


@pytest.mark.parametrize("value", ["yesterday", -1, "1.5"])
def test_invalid_event_time(value: object) -> None:
    with expect(ErrorCode.INVALID_TIMESTAMP):
        parse_event(CREATE, body(CREATE, event_time=value))


@pytest.mark.parametrize("value", [..., None, "", "  "])
def test_create_needs_a_title(value: object) -> None:
    with expect(ErrorCode.TITLE_REQUIRED):
        parse_event(CREATE, body(CREATE, title=value))


@pytest.mark.parametrize("action", list(EventAction))
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"status": ...}, ErrorCode.INVALID_STATUS),
        ({"status": " "}, ErrorCode.INVALID_STATUS),
        ({"status": "s" * 25}, ErrorCode.INVALID_STATUS),
        ({"message": ...}, ErrorCode.INVALID_MESSAGE),
        ({"message": ""}, ErrorCode.INVALID_MESSAGE),
        ({"message": "m" * 513}, ErrorCode.INVALID_MESSAGE),
        ({"severity": ...}, ErrorCode.INVALID_SEVERITY),
        ({"severity": "info"}, ErrorCode.INVALID_SEVERITY),
        ({"tags": [""]}, ErrorCode.INVALID_TAGS),
        ({"images": ["i"] * 33}, ErrorCode.INVALID_IMAGES),
        ({"attrs": {"a": [1]}}, ErrorCode.INVALID_ATTRS),
        ({"metadata": {"a": {}}}, ErrorCode.INVALID_METADATA),
        ({"channel_id": "x"}, ErrorCode.INVALID_CHANNEL_ID),
        ({"password": "short"}, ErrorCode.INVALID_PASSWORD),
        ({"op_id": "a b"}, ErrorCode.INVALID_OP_ID),
    ],
)
def test_field_rules_on_every_route(
    action: EventAction, fields: dict[str, Any], code: ErrorCode
) -> None:
    with expect(code):
        parse_event(action, body(action, **fields))


def test_status_and_message_limits_are_characters_once_trimmed() -> None:
    result = intent(UPDATE, status=" " + "é" * 24 + " ", message="m" * 512)
    assert (result.status, result.message) == ("é" * 24, "m" * 512)


def test_every_field_of_every_route_is_described() -> None:
    for schema in EVENT_SCHEMAS.values():
        assert all(field.description.strip() for field in schema.values())
    assert "event_id" not in EVENT_SCHEMAS[CREATE]
    assert "ended_at" in EVENT_SCHEMAS[CLOSE] and "ended_at" not in EVENT_SCHEMAS[UPDATE]
    assert "started_at" in EVENT_SCHEMAS[CREATE] and "started_at" not in EVENT_SCHEMAS[CLOSE]


# -- the state machine -------------------------------------------------------------------------


def test_open() -> None:
    event = opened(
        thing_id="nas", tags=["x"], attrs={"progress": 0, "gone": None, "h": {"a": None}}
    )
    assert event.state is EventState.ONGOING
    assert (event.event_id, event.channel_id, event.thing_id) == ("backup-1", CHANNEL, "nas")
    assert event.title == "Nightly backup"
    assert event.attrs == {"progress": 0, "h": {}}  # nulls delete nothing on open: dropped
    assert event.tags == ("x",)
    assert event.metadata == {}
    assert (event.started_at, event.ended_at) == (T0, None)  # started_at defaults to event_time
    assert (event.event_time, event.created_at, event.updated_at) == (T0, T0, T0)


def test_open_with_an_explicit_start() -> None:
    assert opened(started_at=T0 - 60_000).started_at == T0 - 60_000


def test_update_merges_attrs_and_a_null_deletes() -> None:
    event = opened(attrs={"progress": 0, "host": {"name": "nas", "ip": "10.0.0.2"}, "keep": True})
    later = advance_event(
        event,
        intent(
            UPDATE, event_time=T0 + 1000, attrs={"progress": 50, "host": {"ip": None}, "keep": None}
        ),
        NOW,
    )
    assert later.attrs == {"progress": 50, "host": {"name": "nas"}}
    assert event.attrs == {"progress": 0, "host": {"name": "nas", "ip": "10.0.0.2"}, "keep": True}


def test_update_replaces_what_it_gives_and_keeps_the_rest() -> None:
    event = opened(
        description="d",
        tags=["a"],
        images=["i"],
        ciphertext="c",
        metadata={"k": "v"},
        thing_id="t1",
    )
    later = advance_event(
        event,
        intent(UPDATE, event_time=T0 + 1000, status="half", message="50%", severity="high"),
        NOW,
    )
    assert later.state is EventState.ONGOING
    assert (later.title, later.description, later.thing_id) == ("Nightly backup", "d", "t1")
    assert (later.tags, later.images, later.ciphertext) == (("a",), ("i",), "c")
    assert later.metadata == {"k": "v"}
    assert (later.status, later.message, later.severity) == ("half", "50%", Severity.HIGH)
    assert (later.started_at, later.ended_at) == (T0, None)
    assert (later.event_time, later.created_at, later.updated_at) == (T0 + 1000, T0, NOW)

    replaced = advance_event(
        later, intent(UPDATE, title="New", tags=[], images=["j"], metadata={}, thing_id="t2"), NOW
    )
    assert (replaced.title, replaced.tags, replaced.images) == ("New", (), ("j",))
    assert (replaced.metadata, replaced.thing_id) == ({}, "t2")


def test_close_sets_ended_at_to_event_time_by_default() -> None:
    closed = advance_event(opened(), intent(CLOSE, event_time=T0 + 9000, message="done"), NOW)
    assert closed.state is EventState.CLOSED
    assert (closed.started_at, closed.ended_at) == (T0, T0 + 9000)
    assert closed.message == "done"


def test_close_with_an_explicit_end() -> None:
    closed = advance_event(opened(), intent(CLOSE, event_time=T0 + 9000, ended_at=T0 + 8000), NOW)
    assert closed.ended_at == T0 + 8000


def test_close_merges_attrs_too() -> None:
    closed = advance_event(opened(attrs={"a": 1, "b": 2}), intent(CLOSE, attrs={"a": None}), NOW)
    assert closed.attrs == {"b": 2}


@pytest.mark.parametrize("action", [UPDATE, CLOSE])
def test_a_closed_event_refuses_to_change(action: EventAction) -> None:
    closed = advance_event(opened(), intent(CLOSE), NOW)
    with expect(ErrorCode.EVENT_CLOSED) as caught:
        advance_event(closed, intent(action, message="again"), NOW + 1)
    assert caught.value.status == 409
    assert "backup-1" in caught.value.message


def test_changes_records_only_what_the_request_set() -> None:
    assert intent(UPDATE, attrs={"a": None}, tags=["x"]).changes() == {
        "action": "update",
        "event_time": T0,
        "status": "running",
        "message": "started",
        "severity": "normal",
        "tags": ["x"],
        "attrs": {"a": None},
    }
    assert intent(CLOSE, ended_at=T0).changes()["ended_at"] == T0
    assert "title" in intent(CREATE).changes()


def test_the_stored_form_round_trips_through_json() -> None:
    event = advance_event(
        opened(tags=["a"], images=["i"], attrs={"h": {"x": 1}}, metadata={"k": 1.5}),
        intent(CLOSE),
        NOW,
    )
    data = json.loads(json.dumps(event.to_json()))
    assert data["state"] == "CLOSED" and data["tags"] == ["a"]
    assert Event.from_json(data) == event


# -- properties --------------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from("ab -1:"), max_size=10)
ANY_TEXT = st.lists(st.characters() | st.sampled_from(["\ud800", " ", "a"]), max_size=8).map(
    "".join
)
SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON = st.recursive(
    st.none() | SCALARS | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)


def attrs(keys: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    inner = st.dictionaries(keys, st.none() | SCALARS, max_size=2)
    return st.dictionaries(keys, st.none() | SCALARS | TEXT | inner, max_size=3)


ATTRS = attrs(st.sampled_from(["a", "b", "c", " "]))
VALID_ATTRS = attrs(st.sampled_from(["a", "b", "c"]))
KIND_VALUES: dict[Kind, st.SearchStrategy[Any]] = {
    Kind.STRING: TEXT,
    Kind.TIMESTAMP: st.integers(min_value=-10, max_value=2 * 10**15) | st.just(""),
    Kind.STRINGS: st.lists(TEXT, max_size=3),
    Kind.OBJECT: st.dictionaries(TEXT, st.none() | SCALARS | TEXT, max_size=3),
    Kind.OBJECTS: st.lists(st.dictionaries(TEXT, SCALARS, max_size=5), max_size=2),
}
# Each mostly valid, sometimes not, so that many bodies get through and all rules are reached.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "channel_id": st.sampled_from([CHANNEL] * 9 + [""]),
    "password": st.sampled_from([PASSWORD] * 9 + ["short"]),
    "op_id": st.sampled_from(["op-1", "op-2", "op-3", "", "bad op"]),
    "event_id": st.sampled_from(["e1", "e2", " e3 ", "e4", "e5", "", "bad/id"]),
    "thing_id": st.sampled_from(["nas", "x:y", "", "bad/id"]),
    "severity": st.sampled_from(["critical", "LOW", "normal", "high", "bogus"]),
    "status": st.sampled_from(["ok", "done", "a", "b", "c", "", "s" * 25]),
    "message": st.sampled_from(["ok", "done", "a", "b", "c", "", "m" * 513]),
    "event_time": st.one_of(*[st.integers(min_value=0, max_value=T0)] * 5, st.just("")),
    "attrs": ATTRS,
}
JUNK = st.one_of(JSON, ANY_TEXT, st.lists(ANY_TEXT, max_size=2), st.dictionaries(ANY_TEXT, JSON))


def with_lone_surrogate(value: Any) -> Any:
    if isinstance(value, str):
        return value + "\udc00"
    if isinstance(value, list):
        return [*value, "\udc00"]
    if isinstance(value, dict):
        return value | {"\udc00": "x"}
    return "\udc00"


def bodies(action: EventAction) -> st.SearchStrategy[dict[str, Any]]:
    """Plausible bodies for the route, sometimes with one field junk or not Unicode."""
    schema = EVENT_SCHEMAS[action]
    fields = {name: PLAUSIBLE.get(name, KIND_VALUES[w.kind]) for name, w in schema.items()}
    required = {"channel_id", "event_time", "status", "message", "severity"}
    required |= {"title"} if action is CREATE else {"event_id"}
    drawn = st.fixed_dictionaries(
        {name: fields[name] for name in required},
        optional={name: fields[name] for name in schema if name not in required},
    )

    def with_junk(data: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        junk = st.tuples(st.sampled_from([*EVENT_SCHEMAS[UPDATE], "ended_at", "state"]), JUNK)
        return st.one_of(
            st.just(data),
            st.just(data),
            junk.map(lambda item: data | {item[0]: item[1]}),
            st.sampled_from(sorted(data)).map(
                lambda name: data | {name: with_lone_surrogate(data[name])}
            ),
        )

    return drawn.flatmap(with_junk)


@given(st.sampled_from(EventAction), JSON)
def test_any_json_is_parsed_or_refused_with_a_pushgod_error(
    action: EventAction, value: Any
) -> None:
    with contextlib.suppress(PushgodError):
        parse_event(action, value)


@given(
    st.sampled_from(EventAction).flatmap(lambda action: st.tuples(st.just(action), bodies(action)))
)
def test_any_body_of_event_fields_is_parsed_or_refused(
    case: tuple[EventAction, dict[str, Any]],
) -> None:
    action, data = case
    try:
        _, result = parse_event(action, data)
    except PushgodError as error:
        assert error.status == 400
        return
    assert result.action is action
    assert (result.event_id is None) == (action is CREATE)
    assert 1 <= len(result.status) <= 24 and 1 <= len(result.message) <= 512
    assert action is not CREATE or result.title
    assert result.attrs is None or all(key.strip() for key in result.attrs)
    json.dumps(result.changes())  # what is recorded is plain JSON
    if action is CREATE:
        event = open_event(result, "e1", NOW)
        assert event.state is EventState.ONGOING
        assert None not in event.attrs.values()


@settings(max_examples=50)  # each example is a sequence of parses and changes
@given(VALID_ATTRS, st.lists(st.tuples(VALID_ATTRS, st.booleans()), max_size=5))
def test_attrs_after_updates_are_the_merge_patches_in_order(
    first: dict[str, Any], updates: list[tuple[dict[str, Any], bool]]
) -> None:
    event = opened(attrs=first)
    expected = merge_patch({}, first)
    for number, (patch, closing) in enumerate(updates):
        action = CLOSE if closing else UPDATE
        change = intent(action, attrs=patch, event_time=T0 + number)
        if event.state is EventState.CLOSED:
            with expect(ErrorCode.EVENT_CLOSED):
                advance_event(event, change, NOW)
            continue
        event = advance_event(event, change, NOW)
        expected = merge_patch(expected, patch)
        assert event.attrs == expected
        assert event.state is (EventState.CLOSED if closing else EventState.ONGOING)
        assert (event.ended_at is not None) == closing
