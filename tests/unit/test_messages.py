"""PushGo's `POST /message` body: credentials, the field rules and the validated intent."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import Kind, Severity
from pushgod.model.messages import (
    CREDENTIAL_FIELDS,
    MAX_TTL_MS,
    MESSAGE_SCHEMA,
    ChannelAuth,
    parse_credentials,
    parse_message,
)

CHANNEL = "0123456789ABCDEFGHJKMNPQR0"
PASSWORD = "correct horse"
NOW = 1_700_000_000_000
DAY = 86_400_000

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
TIMESTAMPS = st.integers(min_value=-10, max_value=2 * 10**15) | st.integers(
    min_value=0, max_value=3 * 10**11
).map(str)
KIND_VALUES: dict[Kind, st.SearchStrategy[Any]] = {
    Kind.STRING: TEXT,
    Kind.TIMESTAMP: TIMESTAMPS,
    Kind.STRINGS: st.lists(TEXT, max_size=4) | st.lists(st.just("t"), min_size=30, max_size=34),
    Kind.OBJECT: st.dictionaries(TEXT, st.none() | SCALARS | TEXT | JSON, max_size=3),
    Kind.OBJECTS: st.lists(st.dictionaries(TEXT, JSON, max_size=5), max_size=2),
}
CHANNELS = st.sampled_from([CHANNEL, CHANNEL.lower(), f" {CHANNEL[:13]}-{CHANNEL[13:]} "])
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "channel_id": st.one_of(CHANNELS, CHANNELS, CHANNELS, TEXT),
    "password": st.sampled_from([PASSWORD, PASSWORD, "short", " " + "p" * 128 + " ", "p" * 129]),
    "op_id": st.sampled_from(["op-1", "", "bad op", "o" * 129]) | TEXT,
    "thing_id": st.sampled_from(["nas", "", "bad/id"]) | TEXT,
    "severity": st.sampled_from(["critical", "HIGH", "bogus"]) | TEXT,
}
FIELDS = {name: PLAUSIBLE.get(name, KIND_VALUES[w.kind]) for name, w in MESSAGE_SCHEMA.items()}


JUNK = st.one_of(JSON, ANY_TEXT, st.lists(ANY_TEXT, max_size=2), st.dictionaries(ANY_TEXT, JSON))


def with_lone_surrogate(value: Any) -> Any:
    """The value with text that JSON can carry but UTF-8 cannot ("\\udc00")."""
    if isinstance(value, str):
        return value + "\udc00"
    if isinstance(value, list):
        return [*value, "\udc00"]
    if isinstance(value, dict):
        return value | {"\udc00": "x"}
    return "\udc00"


def with_junk(data: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The body as drawn, or with one field (maybe an unknown one) set to any JSON value, or
    with a lone surrogate added to one of its fields."""
    junk = st.tuples(st.sampled_from([*MESSAGE_SCHEMA, "state"]) | ANY_TEXT, JUNK)
    return st.one_of(
        st.just(data),
        junk.map(lambda item: data | {item[0]: item[1]}),
        st.sampled_from(sorted(data)).map(
            lambda name: data | {name: with_lone_surrogate(data[name])}
        ),
    )


# Mostly plausible values of each field, so that parsing gets past the shape to later rules.
BODIES = st.fixed_dictionaries(
    {name: FIELDS[name] for name in ("channel_id", "title")},
    optional={name: FIELDS[name] for name in MESSAGE_SCHEMA if name not in ("channel_id", "title")},
).flatmap(with_junk)


def expect(code: ErrorCode) -> pytest.RaisesExc[PushgodError]:
    return pytest.raises(PushgodError, check=lambda error: error.code is code)


def body(**fields: Any) -> dict[str, Any]:
    return {"channel_id": CHANNEL, "password": PASSWORD, "title": "Backup done"} | fields


def test_a_full_message() -> None:
    auth, intent = parse_message(
        {
            "channel_id": f" {CHANNEL.lower()} ",
            "password": f"  {PASSWORD}\n",
            "op_id": "op:1",
            "thing_id": "nas-01",
            "occurred_at": 1_700_000_000,
            "title": "  Disk full ",
            "body": " **90%** used ",
            "severity": "CRITICAL",
            "ttl": str(NOW + DAY),
            "url": " https://nas.local/ ",
            "images": ["https://x/a.png", "https://x/a.png", " https://x/b.png"],
            "ciphertext": "opaque==",
            "tags": ["nas", " disk ", "nas"],
            "metadata": {" volume ": "/srv", "percent": 90},
        },
        NOW,
    )
    assert auth == ChannelAuth(CHANNEL, PASSWORD)
    assert intent.channel_id == CHANNEL
    assert intent.op_id == "op:1"
    assert intent.thing_id == "nas-01"
    assert intent.occurred_at == 1_700_000_000_000
    assert intent.title == "Disk full"
    assert intent.body == "**90%** used"
    assert intent.severity is Severity.CRITICAL
    assert intent.expires_at == NOW + DAY
    assert intent.url == "https://nas.local/"
    assert intent.images == ("https://x/a.png", "https://x/b.png")
    assert intent.ciphertext == "opaque=="
    assert intent.tags == ("nas", "disk")
    assert intent.metadata == {"volume": "/srv", "percent": 90}


def test_a_minimal_message_and_its_defaults() -> None:
    auth, intent = parse_message({"channel_id": CHANNEL, "title": "hi"}, NOW)
    assert auth == ChannelAuth(CHANNEL, None)  # a bearer token may stand in for the password
    assert (intent.op_id, intent.thing_id, intent.occurred_at, intent.expires_at) == (None,) * 4
    assert (intent.body, intent.url, intent.ciphertext) == (None, None, None)
    assert intent.severity is Severity.NORMAL
    assert (intent.tags, intent.images, intent.metadata) == ((), (), {})


def test_blank_optional_fields_are_absent() -> None:
    _, intent = parse_message(
        body(body="  ", url="", ciphertext=" ", op_id=" ", thing_id=" ", ttl="", severity=""), NOW
    )
    assert (intent.body, intent.url, intent.ciphertext, intent.op_id) == (None,) * 4
    assert (intent.thing_id, intent.expires_at) == (None, None)
    assert intent.severity is Severity.NORMAL


@pytest.mark.parametrize("value", [None, "", "  "])
def test_channel_id_is_required(value: str | None) -> None:
    with expect(ErrorCode.CHANNEL_ID_REQUIRED):
        parse_message(body(channel_id=value), NOW)
    data = body()
    del data["channel_id"]
    with expect(ErrorCode.CHANNEL_ID_REQUIRED):
        parse_message(data, NOW)


@pytest.mark.parametrize("value", ["nope", CHANNEL[:-1], CHANNEL[:-1] + "1", CHANNEL + "0"])
def test_invalid_channel_id(value: str) -> None:
    with expect(ErrorCode.INVALID_CHANNEL_ID):
        parse_message(body(channel_id=value), NOW)


@pytest.mark.parametrize("value", ["1234567", "p" * 129, " short  ", "é" * 64 + "x"])
def test_invalid_password(value: str) -> None:
    with expect(ErrorCode.INVALID_PASSWORD) as caught:
        parse_message(body(password=value), NOW)
    assert value.strip() not in caught.value.message


@pytest.mark.parametrize("value", ["12345678", "p" * 128, "é" * 64, " 12345678 "])
def test_password_limits_are_bytes_once_trimmed(value: str) -> None:
    auth, _ = parse_message(body(password=value), NOW)
    assert auth.password == value.strip()


def test_a_blank_password_is_absent() -> None:
    auth, _ = parse_message(body(password="   "), NOW)
    assert auth.password is None


@pytest.mark.parametrize("value", ["has space", "o" * 129, "a.b"])
def test_invalid_op_id(value: str) -> None:
    with expect(ErrorCode.INVALID_OP_ID):
        parse_message(body(op_id=value), NOW)


def test_parse_credentials_alone() -> None:
    auth, op_id = parse_credentials({"channel_id": CHANNEL.lower(), "op_id": " a1 "})
    assert auth == ChannelAuth(CHANNEL, None)
    assert op_id == "a1"


def test_a_thing_scoped_message_needs_occurred_at() -> None:
    for extra in ({}, {"occurred_at": ""}, {"occurred_at": None}, {"occurred_at": "  "}):
        with expect(ErrorCode.OCCURRED_AT_REQUIRED) as caught:
            parse_message(body(thing_id="nas", **extra), NOW)
        assert caught.value.status == 400
    _, intent = parse_message(body(thing_id="nas", occurred_at="1700000000000"), NOW)
    assert intent.occurred_at == 1_700_000_000_000


def test_occurred_at_without_thing_id_is_kept() -> None:
    _, intent = parse_message(body(occurred_at=1), NOW)
    assert intent.occurred_at == 1000


@pytest.mark.parametrize("value", ["a/b", "x" * 65, "sp ace"])
def test_invalid_thing_id(value: str) -> None:
    with expect(ErrorCode.INVALID_THING_ID):
        parse_message(body(thing_id=value, occurred_at=1), NOW)


@pytest.mark.parametrize(
    ("ttl", "expires_at"),
    [
        (NOW + DAY, NOW + DAY),
        ((NOW + DAY) // 1000, (NOW + DAY) // 1000 * 1000),  # seconds
        (NOW + MAX_TTL_MS, NOW + MAX_TTL_MS),
        (NOW + MAX_TTL_MS + 1, NOW + MAX_TTL_MS),  # capped at now + 30 days
        (str(NOW + 365 * DAY), NOW + MAX_TTL_MS),
        (NOW - DAY, NOW - DAY),  # already expired: kept, readers hide it
    ],
)
def test_ttl_is_an_absolute_expiry_capped_at_30_days(ttl: int | str, expires_at: int) -> None:
    assert MAX_TTL_MS == 30 * DAY
    _, intent = parse_message(body(ttl=ttl), NOW)
    assert intent.expires_at == expires_at


@pytest.mark.parametrize("field", ["ttl", "occurred_at"])
@pytest.mark.parametrize("value", ["soon", "1.5", -1, "-1", True])
def test_invalid_timestamps(field: str, value: object) -> None:
    # A boolean is the wrong JSON type for a timestamp field; the rest are bad timestamps.
    code = ErrorCode.INVALID_JSON_DATA if value is True else ErrorCode.INVALID_TIMESTAMP
    with expect(code) as caught:
        parse_message(body(**{field: value}), NOW)
    assert field in caught.value.message


@pytest.mark.parametrize("value", [None, "", " \n "])
def test_title_is_required(value: str | None) -> None:
    with expect(ErrorCode.TITLE_REQUIRED):
        parse_message(body(title=value), NOW)


def test_title_has_no_length_limit() -> None:
    _, intent = parse_message(body(title="t" * 10_000), NOW)
    assert intent.title == "t" * 10_000


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"event_id": "e1"}, ErrorCode.INVALID_JSON_DATA),
        ({"Title": "x"}, ErrorCode.INVALID_JSON_DATA),
        ({"title": 5}, ErrorCode.INVALID_JSON_DATA),
        ({"tags": "a,b"}, ErrorCode.INVALID_JSON_DATA),
        ({"metadata": ["a"]}, ErrorCode.INVALID_JSON_DATA),
        ({"severity": 1}, ErrorCode.INVALID_JSON_DATA),
        ({"tags": ["a", ""]}, ErrorCode.INVALID_TAGS),
        ({"tags": ["t"] * 33}, ErrorCode.INVALID_TAGS),
        ({"images": ["x" * 2049]}, ErrorCode.INVALID_IMAGES),
        ({"metadata": {"k": {"nested": 1}}}, ErrorCode.INVALID_METADATA),
        ({"metadata": {"k": None}}, ErrorCode.INVALID_METADATA),
        ({"title": "\ud800"}, ErrorCode.INVALID_JSON_DATA),
        ({"password": "\ud800" + PASSWORD}, ErrorCode.INVALID_JSON_DATA),
    ],
)
def test_field_errors(fields: dict[str, Any], code: ErrorCode) -> None:
    with expect(code):
        parse_message(body(**fields), NOW)


@pytest.mark.parametrize("value", [None, [], "x", 1, [body()]])
def test_the_body_must_be_an_object(value: object) -> None:
    with expect(ErrorCode.INVALID_JSON_DATA):
        parse_message(value, NOW)


def test_every_field_is_described() -> None:
    assert set(CREDENTIAL_FIELDS) == {"channel_id", "password", "op_id"}
    assert set(CREDENTIAL_FIELDS) <= set(MESSAGE_SCHEMA)
    assert all(field.description.strip() for field in MESSAGE_SCHEMA.values())


@given(JSON)
def test_any_json_is_parsed_or_refused_with_a_pushgod_error(value: Any) -> None:
    with contextlib.suppress(PushgodError):
        parse_message(value, NOW)


@given(BODIES)
def test_any_body_of_message_fields_is_parsed_or_refused(data: dict[str, Any]) -> None:
    try:
        auth, intent = parse_message(data, NOW)
    except PushgodError as error:
        assert error.status == 400
        return
    assert auth.channel_id == intent.channel_id == CHANNEL
    assert auth.password is None or 8 <= len(auth.password.encode()) <= 128
    assert intent.title == intent.title.strip() != ""
    assert intent.thing_id is None or intent.occurred_at is not None
    assert intent.expires_at is None or intent.expires_at <= NOW + MAX_TTL_MS
    assert len(intent.tags) <= 32 and len(set(intent.tags)) == len(intent.tags)
    assert len(intent.images) <= 32
    assert isinstance(intent.severity, Severity)
    for text in (intent.title, intent.body, intent.url, intent.ciphertext, *intent.tags):
        assert text is None or text.encode()
