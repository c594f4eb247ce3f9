"""Things: the four request bodies, locations, and how a thing's state changes."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import Kind
from pushgod.model.merge_patch import merge_patch
from pushgod.model.things import (
    LOCATION_TYPES,
    THING_SCHEMAS,
    Thing,
    ThingAction,
    ThingIntent,
    ThingState,
    change_thing,
    create_thing,
    parse_location,
    parse_thing,
)

CHANNEL = "0123456789ABCDEFGHJKMNPQR0"
PASSWORD = "correct horse"
T0 = 1_700_000_000_000
NOW = T0 + 5_000

CREATE, UPDATE, ARCHIVE, DELETE = (
    ThingAction.CREATE,
    ThingAction.UPDATE,
    ThingAction.ARCHIVE,
    ThingAction.DELETE,
)


def expect(code: ErrorCode) -> pytest.RaisesExc[PushgodError]:
    return pytest.raises(PushgodError, check=lambda error: error.code is code)


def body(action: ThingAction, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"channel_id": CHANNEL, "password": PASSWORD, "observed_at": T0}
    if action is not CREATE:
        base["thing_id"] = "nas"
    return {k: v for k, v in (base | fields).items() if v is not ...}


def intent(action: ThingAction, **fields: Any) -> ThingIntent:
    return parse_thing(action, body(action, **fields))[1]


def created(**fields: Any) -> Thing:
    return create_thing(intent(CREATE, **fields), "nas", T0)


# -- parsing -----------------------------------------------------------------------------------


def test_a_full_create() -> None:
    auth, result = parse_thing(
        CREATE,
        {
            "channel_id": CHANNEL,
            "password": PASSWORD,
            "op_id": "op-1",
            "title": " NAS ",
            "description": " the box ",
            "tags": ["home", "home", " storage "],
            "external_ids": {"Serial": " SN1 ", "old": None},
            "location_type": " Cloud ",
            "location_value": "AWS:EU-West-1:a",
            "primary_image": " https://x/p.png ",
            "images": ["https://x/1.png"],
            "ciphertext": "c",
            "observed_at": str(T0),
            "created_at": T0 // 1000 - 60,
            "attrs": {"disk": 80, "manufacturer": {"name": "Acme"}, "gone": None},
            "metadata": {"k": "v"},
        },
    )
    assert auth.channel_id == CHANNEL
    assert (result.action, result.op_id, result.thing_id) == (CREATE, "op-1", None)
    assert (result.title, result.description) == ("NAS", "the box")
    assert result.tags == ("home", "storage")
    assert result.external_ids == {"serial": "SN1", "old": None}
    assert result.location == ("cloud", "aws:eu-west-1:a")
    assert (result.primary_image, result.images) == ("https://x/p.png", ("https://x/1.png",))
    assert (result.ciphertext, result.observed_at) == ("c", T0)
    assert (result.created_at, result.deleted_at) == (T0 - 60_000, None)
    assert result.attrs == {"disk": 80, "manufacturer": {"name": "Acme"}, "gone": None}
    assert result.metadata == {"k": "v"}


def test_fields_not_given_are_none_meaning_keep() -> None:
    result = intent(UPDATE)
    assert result.thing_id == "nas"
    for name in (
        "title",
        "description",
        "tags",
        "external_ids",
        "location",
        "primary_image",
        "images",
        "ciphertext",
        "created_at",
        "deleted_at",
        "attrs",
        "metadata",
    ):
        assert getattr(result, name) is None, name


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        (CREATE, {"thing_id": "nas"}),  # the server picks the id
        (UPDATE, {"created_at": T0}),
        (ARCHIVE, {"deleted_at": T0}),
        (UPDATE, {"deleted_at": T0}),
        (CREATE, {"state": "active"}),
        (DELETE, {"state": "deleted"}),
        (UPDATE, {"external_ids": ["x"]}),
        (UPDATE, {"location_value": 5}),
    ],
)
def test_fields_a_route_does_not_accept(action: ThingAction, fields: dict[str, Any]) -> None:
    with expect(ErrorCode.INVALID_JSON_DATA):
        parse_thing(action, body(action, **fields))


@pytest.mark.parametrize("action", [UPDATE, ARCHIVE, DELETE])
@pytest.mark.parametrize("value", [..., None, "", " "])
def test_thing_id_is_required_after_create(action: ThingAction, value: object) -> None:
    with expect(ErrorCode.THING_ID_REQUIRED):
        parse_thing(action, body(action, thing_id=value))


@pytest.mark.parametrize("value", ["a/b", "t" * 65])
def test_invalid_thing_id(value: str) -> None:
    with expect(ErrorCode.INVALID_THING_ID):
        parse_thing(UPDATE, body(UPDATE, thing_id=value))


@pytest.mark.parametrize("action", list(ThingAction))
@pytest.mark.parametrize("value", [..., None, ""])
def test_observed_at_is_required(action: ThingAction, value: object) -> None:
    with expect(ErrorCode.OBSERVED_AT_REQUIRED):
        parse_thing(action, body(action, observed_at=value))


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"observed_at": "now"}, ErrorCode.INVALID_TIMESTAMP),
        ({"tags": ["x" * 65]}, ErrorCode.INVALID_TAGS),
        ({"images": [" "]}, ErrorCode.INVALID_IMAGES),
        ({"primary_image": "p" * 2049}, ErrorCode.INVALID_IMAGES),
        ({"external_ids": {"bad key": "v"}}, ErrorCode.INVALID_EXTERNAL_IDS),
        ({"external_ids": {"k": 1}}, ErrorCode.INVALID_EXTERNAL_IDS),
        ({"attrs": {"a": {"b": {}}}}, ErrorCode.INVALID_ATTRS),
        ({"attrs": {"manufacturer": "Acme"}}, ErrorCode.INVALID_ATTRS),
        ({"attrs": {"manufacturer": 1}}, ErrorCode.INVALID_ATTRS),
        ({"attrs": {"manufacturer": {"k" * 65: "v"}}}, ErrorCode.INVALID_ATTRS),
        ({"metadata": {"k": [1]}}, ErrorCode.INVALID_METADATA),
        ({"location_type": "geo"}, ErrorCode.INVALID_LOCATION),
        ({"channel_id": " "}, ErrorCode.CHANNEL_ID_REQUIRED),
    ],
)
def test_field_rules(fields: dict[str, Any], code: ErrorCode) -> None:
    for action in ThingAction:
        with expect(code):
            parse_thing(action, body(action, **fields))


def test_manufacturer_may_be_null_or_an_object() -> None:
    assert intent(UPDATE, attrs={"manufacturer": None}).attrs == {"manufacturer": None}
    result = intent(UPDATE, attrs={"manufacturer": {"k" * 64: "v"}})
    assert result.attrs == {"manufacturer": {"k" * 64: "v"}}


def test_every_field_of_every_route_is_described() -> None:
    for schema in THING_SCHEMAS.values():
        assert all(field.description.strip() for field in schema.values())
        assert "state" not in schema
    assert [a for a in ThingAction if "thing_id" in THING_SCHEMAS[a]] == [UPDATE, ARCHIVE, DELETE]
    assert [a for a in ThingAction if "created_at" in THING_SCHEMAS[a]] == [CREATE]
    assert [a for a in ThingAction if "deleted_at" in THING_SCHEMAS[a]] == [DELETE]


# -- locations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "normalised"),
    [
        ("physical", "  Rack 3, Basement  ", ("physical", "Rack 3, Basement")),
        ("PHYSICAL", "p" * 256, ("physical", "p" * 256)),
        ("geo", "48.8566,2.3522", ("geo", "48.856600,2.352200")),
        ("geo", " -90 , 180 ", ("geo", "-90.000000,180.000000")),
        ("geo", "0,-180", ("geo", "0.000000,-180.000000")),
        ("geo", "1.23456789,1e1", ("geo", "1.234568,10.000000")),
        ("Cloud", "AWS:EU-West-1", ("cloud", "aws:eu-west-1")),
        ("cloud", "gcp:europe-west1:b", ("cloud", "gcp:europe-west1:b")),
        ("datacenter", "HOME", ("datacenter", "home")),
        ("datacenter", "home:Cellar:R_1", ("datacenter", "home:cellar:r_1")),
        ("logical", "Lab", ("logical", "lab")),
        ("logical", "Home/Network/Switch.1", ("logical", "home/network/switch.1")),
        ("logical", "/".join(["p"] * 32), ("logical", "/".join(["p"] * 32))),
        ("cloud", "a:" + "R" * 64, ("cloud", "a:" + "r" * 64)),
    ],
)
def test_locations_are_normalised(kind: str, value: str, normalised: tuple[str, str]) -> None:
    assert parse_location(kind, value) == normalised


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("geo", None),
        (None, "somewhere"),
        ("", "x"),
        ("geo", "  "),
        ("space", "mars"),
        ("physical", "p" * 257),
        ("geo", "48.8"),
        ("geo", "1,2,3"),
        ("geo", "north,east"),
        ("geo", "90.0001,0"),
        ("geo", "0,-180.5"),
        ("geo", "nan,0"),
        ("geo", "inf,0"),
        ("cloud", "aws"),
        ("cloud", "aws:eu:a:b"),
        ("cloud", "aws::a"),
        ("cloud", "aws:eu west"),
        ("datacenter", "a:b:c:d"),
        ("datacenter", "site:"),
        ("logical", "/".join(["p"] * 33)),
        ("logical", "a//b"),
        ("logical", "/a"),
        ("logical", "a/" + "b" * 65),
        ("logical", "a:b"),
        ("logical", "caf\u00e9"),
    ],
)
def test_invalid_locations(kind: str | None, value: str | None) -> None:
    with expect(ErrorCode.INVALID_LOCATION):
        parse_location(kind, value)


def test_no_location_is_none() -> None:
    assert parse_location(None, None) is None
    assert parse_location(" ", "") is None


TOKEN = st.text("abcXYZ019_.-", min_size=1, max_size=8)
LOCATIONS = st.one_of(
    st.tuples(st.just("physical"), st.text(min_size=1, max_size=40)),
    st.tuples(
        st.just("geo"),
        st.tuples(st.floats(-90, 90), st.floats(-180, 180)).map(lambda p: f"{p[0]},{p[1]}"),
    ),
    st.tuples(st.just("cloud"), st.lists(TOKEN, min_size=2, max_size=3).map(":".join)),
    st.tuples(st.just("datacenter"), st.lists(TOKEN, min_size=1, max_size=3).map(":".join)),
    st.tuples(st.just("logical"), st.lists(TOKEN, min_size=1, max_size=32).map("/".join)),
)


@given(LOCATIONS)
def test_a_normalised_location_is_its_own_normal_form(location: tuple[str, str]) -> None:
    kind, value = location
    try:
        parsed = parse_location(kind.upper(), value)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_LOCATION
        assert kind == "physical" and not value.strip()
        return
    assert parsed is not None and parsed[0] == kind
    assert parse_location(*parsed) == parsed
    if kind in ("cloud", "datacenter", "logical"):
        assert parsed[1] == value.lower()
    if kind == "geo":
        lat, lng = (float(part) for part in parsed[1].split(","))
        given_lat, given_lng = (float(part) for part in value.split(","))
        assert abs(lat - given_lat) <= 5e-7 and abs(lng - given_lng) <= 5e-7


@given(st.sampled_from([*LOCATION_TYPES, "other"]) | st.text(max_size=5), st.text(max_size=30))
def test_any_location_is_parsed_or_invalid_location(kind: str, value: str) -> None:
    try:
        parsed = parse_location(kind, value)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_LOCATION
        return
    assert parsed is None or parsed[0] in LOCATION_TYPES


# -- the life of a thing -----------------------------------------------------------------------


def test_create() -> None:
    thing = created(title="NAS", attrs={"disk": 80, "gone": None, "m": {"x": None}}, tags=["a"])
    assert thing.state is ThingState.ACTIVE
    assert (thing.thing_id, thing.channel_id, thing.title) == ("nas", CHANNEL, "NAS")
    assert thing.attrs == {"disk": 80, "m": {}}
    assert thing.tags == ("a",)
    assert (thing.external_ids, thing.metadata, thing.images) == ({}, {}, ())
    assert (thing.location_type, thing.location_value) == (None, None)
    assert (thing.created_at, thing.observed_at, thing.updated_at) == (T0, T0, T0)
    assert (thing.archived_at, thing.deleted_at) == (None, None)


def test_create_with_an_explicit_creation_time() -> None:
    assert created(created_at=T0 - 1).created_at == T0 - 1


def test_update_merges_attrs_and_external_ids_and_replaces_tags() -> None:
    thing = created(
        title="NAS",
        tags=["a", "b"],
        attrs={"disk": 80, "net": {"ip": "10.0.0.2", "mac": "m"}, "old": 1},
        external_ids={"serial": "S1", "asset": "A1"},
        location_type="geo",
        location_value="1,2",
        metadata={"k": "v"},
        images=["i"],
        primary_image="p",
        description="d",
        ciphertext="c",
    )
    later = change_thing(
        thing,
        intent(
            UPDATE,
            observed_at=T0 + 1000,
            tags=["c"],
            attrs={"disk": 81, "net": {"ip": None}, "old": None},
            external_ids={"ASSET": None, "mac": "M"},
        ),
        NOW,
    )
    assert later.attrs == {"disk": 81, "net": {"mac": "m"}}
    assert later.external_ids == {"serial": "S1", "mac": "M"}
    assert later.tags == ("c",)
    # Everything else is kept.
    assert (later.title, later.description, later.ciphertext) == ("NAS", "d", "c")
    assert (later.location_type, later.location_value) == ("geo", "1.000000,2.000000")
    assert (later.metadata, later.images, later.primary_image) == ({"k": "v"}, ("i",), "p")
    assert (later.created_at, later.observed_at, later.updated_at) == (T0, T0 + 1000, NOW)
    assert thing.attrs["old"] == 1  # the earlier state is untouched


def test_given_empty_lists_replace_and_an_empty_patch_changes_nothing() -> None:
    thing = created(tags=["a"], images=["i"], attrs={"a": 1}, external_ids={"k": "v"})
    later = change_thing(thing, intent(UPDATE, tags=[], images=[], attrs={}, external_ids={}), NOW)
    assert (later.tags, later.images) == ((), ())
    assert (later.attrs, later.external_ids) == ({"a": 1}, {"k": "v"})


def test_a_new_location_replaces_the_old() -> None:
    thing = created(location_type="logical", location_value="a/b")
    later = change_thing(
        thing, intent(UPDATE, location_type="physical", location_value="Attic"), NOW
    )
    assert (later.location_type, later.location_value) == ("physical", "Attic")


def test_observed_at_never_goes_back() -> None:
    thing = created(observed_at=T0)
    later = change_thing(thing, intent(UPDATE, observed_at=T0 - 60_000, title="late"), NOW)
    assert later.observed_at == T0
    assert later.title == "late"


def test_archive_then_update_makes_it_active_again() -> None:
    archived = change_thing(created(), intent(ARCHIVE, observed_at=T0 + 10), NOW)
    assert archived.state is ThingState.ARCHIVED
    assert (archived.archived_at, archived.deleted_at) == (T0 + 10, None)
    active = change_thing(archived, intent(UPDATE, observed_at=T0 + 20), NOW)
    assert active.state is ThingState.ACTIVE
    assert active.archived_at is None


@pytest.mark.parametrize(("deleted_at", "expected"), [(..., T0 + 10), (T0 + 5, T0 + 5)])
def test_delete(deleted_at: object, expected: int) -> None:
    gone = change_thing(created(), intent(DELETE, observed_at=T0 + 10, deleted_at=deleted_at), NOW)
    assert gone.state is ThingState.DELETED
    assert (gone.deleted_at, gone.archived_at) == (expected, None)


@pytest.mark.parametrize("action", [UPDATE, ARCHIVE, DELETE])
def test_a_deleted_thing_refuses_every_change(action: ThingAction) -> None:
    gone = change_thing(created(), intent(DELETE), NOW)
    with expect(ErrorCode.THING_DELETED) as caught:
        change_thing(gone, intent(action, title="again"), NOW)
    assert caught.value.status == 409
    assert "nas" in caught.value.message


def test_an_archived_thing_can_be_deleted() -> None:
    archived = change_thing(created(), intent(ARCHIVE), NOW)
    assert change_thing(archived, intent(DELETE), NOW).state is ThingState.DELETED


def test_changes_records_only_what_the_request_set() -> None:
    assert intent(UPDATE, tags=["x"], location_type="geo", location_value="1,2").changes() == {
        "action": "update",
        "tags": ["x"],
        "observed_at": T0,
        "location_type": "geo",
        "location_value": "1.000000,2.000000",
    }
    assert intent(DELETE, deleted_at=T0).changes() == {
        "action": "delete",
        "observed_at": T0,
        "deleted_at": T0,
    }


def test_the_stored_form_round_trips_through_json() -> None:
    thing = change_thing(
        created(
            tags=["a"],
            images=["i"],
            attrs={"m": {"x": 1}},
            location_type="geo",
            location_value="1,2",
        ),
        intent(ARCHIVE),
        NOW,
    )
    data = json.loads(json.dumps(thing.to_json()))
    assert data["state"] == "archived" and data["tags"] == ["a"]
    assert Thing.from_json(data) == thing


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


ID_KEYS = st.sampled_from(["serial", "Serial", "mac", "a.b"])
EXTERNAL_IDS = st.dictionaries(
    ID_KEYS, st.none() | st.sampled_from(["v1", "v2", " v3 "]), max_size=3
)
VALID_ATTRS = attrs(st.sampled_from(["a", "b", "c"]))
KIND_VALUES: dict[Kind, st.SearchStrategy[Any]] = {
    Kind.STRING: TEXT,
    Kind.TIMESTAMP: st.integers(min_value=-10, max_value=2 * 10**15) | st.just(""),
    Kind.STRINGS: st.lists(TEXT, max_size=3),
    Kind.OBJECT: st.dictionaries(TEXT, st.none() | SCALARS | TEXT, max_size=3),
    Kind.OBJECTS: st.lists(st.dictionaries(TEXT, SCALARS, max_size=5), max_size=2),
}
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "channel_id": st.sampled_from([CHANNEL] * 9 + [""]),
    "password": st.sampled_from([PASSWORD] * 9 + ["short"]),
    "op_id": st.sampled_from(["op-1", "op-2", "op-3", "", "bad op"]),
    "thing_id": st.sampled_from(["t1", "t2", " t3 ", "t4", "t5", "", "bad/id"]),
    "observed_at": st.one_of(*[st.integers(min_value=0, max_value=T0)] * 5, st.just("")),
    "location_type": st.sampled_from([*LOCATION_TYPES, "GEO", "space"]),
    "location_value": st.sampled_from(["1,2", "a:b", "a/b/c", "Room 1", "91,0"]),
    "external_ids": EXTERNAL_IDS | KIND_VALUES[Kind.OBJECT],
    "attrs": VALID_ATTRS | attrs(st.sampled_from(["", "a", "manufacturer"])),
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


def bodies(action: ThingAction) -> st.SearchStrategy[dict[str, Any]]:
    """Plausible bodies for the route, sometimes with one field junk or not Unicode."""
    schema = THING_SCHEMAS[action]
    fields = {name: PLAUSIBLE.get(name, KIND_VALUES[w.kind]) for name, w in schema.items()}
    required = {"channel_id", "observed_at"} | ({"thing_id"} if action is not CREATE else set())
    drawn = st.fixed_dictionaries(
        {name: fields[name] for name in required},
        optional={name: fields[name] for name in schema if name not in required},
    )

    def with_junk(data: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        names = [*THING_SCHEMAS[DELETE], "created_at", "state"]
        junk = st.tuples(st.sampled_from(names), JUNK)
        return st.one_of(
            st.just(data),
            st.just(data),
            junk.map(lambda item: data | {item[0]: item[1]}),
            st.sampled_from(sorted(data)).map(
                lambda name: data | {name: with_lone_surrogate(data[name])}
            ),
        )

    return drawn.flatmap(with_junk)


@given(st.sampled_from(ThingAction), JSON)
def test_any_json_is_parsed_or_refused_with_a_pushgod_error(
    action: ThingAction, value: Any
) -> None:
    with contextlib.suppress(PushgodError):
        parse_thing(action, value)


@given(
    st.sampled_from(ThingAction).flatmap(lambda action: st.tuples(st.just(action), bodies(action)))
)
def test_any_body_of_thing_fields_is_parsed_or_refused(
    case: tuple[ThingAction, dict[str, Any]],
) -> None:
    action, data = case
    try:
        _, result = parse_thing(action, data)
    except PushgodError as error:
        assert error.status == 400
        return
    assert result.action is action
    assert (result.thing_id is None) == (action is CREATE)
    assert result.location is None or result.location[0] in LOCATION_TYPES
    assert result.external_ids is None or all(key == key.lower() for key in result.external_ids)
    json.dumps(result.changes())
    thing = (
        create_thing(result, "t", NOW) if action is CREATE else change_thing(created(), result, NOW)
    )
    assert (
        thing.state
        is {
            CREATE: ThingState.ACTIVE,
            UPDATE: ThingState.ACTIVE,
            ARCHIVE: ThingState.ARCHIVED,
            DELETE: ThingState.DELETED,
        }[action]
    )
    assert None not in thing.external_ids.values() and None not in thing.attrs.values()


@settings(max_examples=50)  # each example is a sequence of parses and changes
@given(
    VALID_ATTRS,
    EXTERNAL_IDS,
    st.lists(
        st.tuples(VALID_ATTRS, EXTERNAL_IDS, st.sampled_from([UPDATE, ARCHIVE, DELETE])), max_size=5
    ),
)
def test_attrs_and_external_ids_follow_merge_patch_until_deleted(
    first_attrs: dict[str, Any],
    first_ids: dict[str, Any],
    changes: list[tuple[dict[str, Any], dict[str, Any], ThingAction]],
) -> None:
    first = intent(CREATE, attrs=first_attrs, external_ids=first_ids)
    thing = create_thing(first, "nas", T0)
    expected_attrs, expected_ids = merge_patch({}, first_attrs), merge_patch({}, first.external_ids)
    assert (thing.attrs, thing.external_ids) == (expected_attrs, expected_ids)
    for number, (patch, ids, action) in enumerate(changes):
        change = intent(action, attrs=patch, external_ids=ids, observed_at=T0 + number)
        if thing.state is ThingState.DELETED:
            with expect(ErrorCode.THING_DELETED):
                change_thing(thing, change, NOW)
            continue
        thing = change_thing(thing, change, NOW)
        expected_attrs = merge_patch(expected_attrs, patch)
        expected_ids = merge_patch(expected_ids, change.external_ids)
        assert (thing.attrs, thing.external_ids) == (expected_attrs, expected_ids)
        assert all(
            key == key.lower() and value == value.strip() for key, value in expected_ids.items()
        )
