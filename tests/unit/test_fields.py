"""Request shapes and the field rules shared by Messages, Events and Things (PushGo's limits)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgod.model import fields as f
from pushgod.model.errors import ErrorCode, PushgodError

# Text including lone surrogates: Python's json.loads turns "\ud800" into one. (st.text never
# draws surrogates, whatever its alphabet, so the characters are joined by hand.)
CHARS = st.characters(codec="utf-8") | st.sampled_from(["\ud800", "\udfff", " "])
ANY_TEXT = st.lists(CHARS, max_size=12).map("".join)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)

SCHEMA: f.Schema = {
    "name": f.WireField(f.Kind.STRING, "a string"),
    "when": f.WireField(f.Kind.TIMESTAMP, "a timestamp"),
    "labels": f.WireField(f.Kind.STRINGS, "strings"),
    "extra": f.WireField(f.Kind.OBJECT, "an object"),
    "count": f.WireField(f.Kind.INTEGER, "an integer"),
    "flag": f.WireField(f.Kind.BOOLEAN, "a boolean"),
}
KIND_OF = {wire.kind: name for name, wire in SCHEMA.items()}
OF_KIND = {
    f.Kind.STRING: ANY_TEXT,
    f.Kind.TIMESTAMP: ANY_TEXT | st.integers(),
    f.Kind.STRINGS: st.lists(ANY_TEXT, max_size=3),
    f.Kind.OBJECT: st.dictionaries(ANY_TEXT, JSON, max_size=3),
    f.Kind.INTEGER: st.integers(),
    f.Kind.BOOLEAN: st.booleans(),
}
# Mostly values of the field's kind, so that many bodies pass and reach the later checks.
SCHEMA_BODIES = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(OF_KIND[w.kind], OF_KIND[w.kind], JSON) for name, w in SCHEMA.items()
    },
)


def expect(code: ErrorCode) -> pytest.RaisesExc[PushgodError]:
    return pytest.raises(PushgodError, check=lambda error: error.code is code)


# -- check_shape ------------------------------------------------------------------------------


def test_a_valid_body_passes_and_nulls_are_dropped() -> None:
    body = {
        "name": "x",
        "when": "170",
        "labels": ["a", "b"],
        "extra": {"k": [1, None]},
        "count": 3,
        "flag": False,
    }
    assert f.check_shape(body, SCHEMA) == body
    assert f.check_shape(body | {"count": None, "flag": None}, SCHEMA) == {
        "name": "x",
        "when": "170",
        "labels": ["a", "b"],
        "extra": {"k": [1, None]},
    }


@pytest.mark.parametrize("body", [None, [], "x", 1, True, [{"name": "x"}]])
def test_the_body_must_be_an_object(body: object) -> None:
    with expect(ErrorCode.INVALID_JSON_DATA):
        f.check_shape(body, SCHEMA)


def test_unknown_fields_are_refused_by_name() -> None:
    with expect(ErrorCode.INVALID_JSON_DATA) as caught:
        f.check_shape({"name": "x", "state": "active"}, SCHEMA)
    assert "'state'" in caught.value.message


def test_an_unknown_field_is_refused_even_when_null() -> None:
    with expect(ErrorCode.INVALID_JSON_DATA):
        f.check_shape({"state": None}, SCHEMA)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (f.Kind.STRING, ["", "x"], [1, True, ["x"], {}, 1.5]),
        (f.Kind.TIMESTAMP, ["", "12", "abc", 0, 10**13], [True, 1.5, ["1"], {}]),
        (f.Kind.STRINGS, [[], ["a", ""]], ["a", ["a", 1], [None], [["a"]], {}]),
        (f.Kind.OBJECT, [{}, {"a": [1, {"b": None}]}], [[], "x", 1, True]),
        (f.Kind.INTEGER, [0, -5, 2**70], [True, 1.0, "1", []]),
        (f.Kind.BOOLEAN, [True, False], [0, 1, "true", []]),
    ],
)
def test_each_kind_accepts_only_its_json_type(
    kind: f.Kind, good: list[Any], bad: list[Any]
) -> None:
    name = KIND_OF[kind]
    for value in good:
        assert f.check_shape({name: value}, SCHEMA) == {name: value}
    for value in bad:
        with expect(ErrorCode.INVALID_JSON_DATA) as caught:
            f.check_shape({name: value}, SCHEMA)
        assert caught.value.message.startswith(name)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\ud800b"},
        {"when": "\udfff"},
        {"labels": ["ok", "\ud83d"]},
        {"extra": {"k": "\ud800"}},
        {"extra": {"\ud800": 1}},
        {"extra": {"k": [{"deep": ["\udc00"]}]}},
    ],
)
def test_text_that_is_not_unicode_is_refused(body: dict[str, Any]) -> None:
    """json.loads accepts a lone surrogate escape, which cannot be encoded as UTF-8."""
    with expect(ErrorCode.INVALID_JSON_DATA) as caught:
        f.check_shape(body, SCHEMA)
    assert caught.value.message.startswith(next(iter(body)))


def test_deeply_nested_values_are_checked_without_recursion() -> None:
    deep: Any = "end"
    for _ in range(5000):
        deep = {"k": [deep]}
    assert f.check_shape({"extra": deep}, SCHEMA)["extra"] is deep
    deep = "\ud800"
    for _ in range(5000):
        deep = [deep]
    with expect(ErrorCode.INVALID_JSON_DATA):
        f.check_shape({"extra": {"k": deep}}, SCHEMA)


def test_paired_surrogates_as_json_decodes_them_are_fine() -> None:
    assert f.check_shape({"name": "\U0001f600"}, SCHEMA) == {"name": "\U0001f600"}


@given(JSON)
def test_check_shape_returns_or_refuses_any_json(body: Any) -> None:
    try:
        result = f.check_shape(body, SCHEMA)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_JSON_DATA
        return
    assert isinstance(body, dict)
    assert result == {k: v for k, v in body.items() if v is not None}


@given(SCHEMA_BODIES)
def test_check_shape_on_schema_keys_keeps_the_values_as_given(body: dict[str, Any]) -> None:
    before = copy.deepcopy(body)
    try:
        result = f.check_shape(body, SCHEMA)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_JSON_DATA
        return
    finally:
        assert body == before
    assert result == {k: v for k, v in body.items() if v is not None}
    assert all_text_encodes(result)  # everything accepted can be stored as UTF-8


def all_text_encodes(value: Any) -> bool:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == value
    if isinstance(value, dict):
        return all(all_text_encodes(k) and all_text_encodes(v) for k, v in value.items())
    if isinstance(value, list):
        return all(all_text_encodes(item) for item in value)
    return True


# -- text --------------------------------------------------------------------------------------


def test_optional_text() -> None:
    assert f.optional_text(None) is None
    assert f.optional_text("   ") is None
    assert f.optional_text("") is None
    assert f.optional_text("  hi \n") == "hi"


def test_required_text() -> None:
    assert f.required_text(" t ", "title", ErrorCode.TITLE_REQUIRED) == "t"
    for value in (None, "", " \t"):
        with expect(ErrorCode.TITLE_REQUIRED) as caught:
            f.required_text(value, "title", ErrorCode.TITLE_REQUIRED)
        assert "title" in caught.value.message


# -- tags and images ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "limit", "code"),
    [(f.tags, 64, ErrorCode.INVALID_TAGS), (f.images, 2048, ErrorCode.INVALID_IMAGES)],
)
def test_list_limits(parse: Any, limit: int, code: ErrorCode) -> None:
    assert parse(None) == ()
    assert parse([]) == ()
    assert parse([str(i) for i in range(32)]) == tuple(str(i) for i in range(32))
    assert parse(["x" * limit]) == ("x" * limit,)
    assert parse(["é" * (limit // 2)]) == ("é" * (limit // 2),)  # 2 bytes each
    assert parse([" " + "x" * limit + " "]) == ("x" * limit,)  # measured once trimmed
    for bad in (
        [str(i) for i in range(33)],
        ["a"] * 33,  # counted before duplicates are dropped
        ["x" * (limit + 1)],
        ["é" * (limit // 2) + "x"],  # limit+1 bytes, fewer characters
        ["ok", ""],
        ["ok", "  \t"],
    ):
        with expect(code):
            parse(bad)


def test_duplicates_are_dropped_in_first_seen_order_once_trimmed() -> None:
    assert f.tags(["b", "a", " b", "c", "a ", "B"]) == ("b", "a", "c", "B")


ITEM = st.text(st.characters(codec="utf-8"), max_size=70)


@given(st.lists(ITEM, max_size=40))
def test_tags_property(values: list[str]) -> None:
    trimmed = [value.strip() for value in values]
    valid = (
        len(values) <= 32 and all(trimmed) and all(len(value.encode()) <= 64 for value in trimmed)
    )
    try:
        result = f.tags(values)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_TAGS
        assert not valid
        return
    assert valid
    assert result == tuple(dict.fromkeys(trimmed))
    assert len(set(result)) == len(result) <= 32


def test_image_url() -> None:
    assert f.image_url(None, "primary_image") is None
    assert f.image_url("  ", "primary_image") is None
    assert f.image_url(" https://x/a.png ", "primary_image") == "https://x/a.png"
    assert f.image_url("é" * 1024, "primary_image") == "é" * 1024
    with expect(ErrorCode.INVALID_IMAGES) as caught:
        f.image_url("é" * 1024 + "x", "primary_image")
    assert "primary_image" in caught.value.message


# -- metadata ----------------------------------------------------------------------------------


def test_metadata_accepts_scalars() -> None:
    value = {"s": "x", "i": 3, "f": 1.5, "t": True, "n": -0, " k ": "v"}
    assert f.metadata(value) == {"s": "x", "i": 3, "f": 1.5, "t": True, "n": 0, "k": "v"}
    assert f.metadata(None) == {}
    assert f.metadata({}) == {}


@pytest.mark.parametrize(
    "value",
    [
        {"k": None},
        {"k": []},
        {"k": ["x"]},
        {"k": {}},
        {"k": {"a": 1}},
        {"": "v"},
        {"  ": "v"},
        {"k" * 65: "v"},
        {"é" * 33: "v"},  # 66 bytes, 33 characters
        {"k": ""},
        {"k": "v" * 513},
        {"k": "é" * 257},
        {"k": 10**513},
        {"k": "v", " k": "w"},  # the same key once trimmed
    ],
)
def test_invalid_metadata(value: dict[str, Any]) -> None:
    with expect(ErrorCode.INVALID_METADATA):
        f.metadata(value)


def test_metadata_limits_are_bytes() -> None:
    assert f.metadata({"k" * 64: "v" * 512}) == {"k" * 64: "v" * 512}
    assert f.metadata({"é" * 32: "é" * 256}) == {"é" * 32: "é" * 256}
    assert f.metadata({"n": 10**511}) == {"n": 10**511}


METADATA_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=600)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)
)


@given(
    st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=70), METADATA_VALUES, max_size=6)
)
def test_metadata_property(value: dict[str, Any]) -> None:
    try:
        result = f.metadata(value)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_METADATA
        keys = [key.strip() for key in value]
        assert (
            len(set(keys)) < len(keys)
            or any(not 1 <= len(key.encode()) <= 64 for key in keys)
            or any(
                item is None
                or isinstance(item, list | dict)
                or (isinstance(item, str) and not 1 <= len(item.encode()) <= 512)
                for item in value.values()
            )
        )
        return
    assert list(result.values()) == list(value.values())
    assert list(result) == [key.strip() for key in value]
    for key, item in result.items():
        assert 1 <= len(key.encode()) <= 64
        assert isinstance(item, str | int | float | bool)


# -- attrs and external_ids --------------------------------------------------------------------


def test_attrs_patch_accepts_scalars_nulls_and_one_level_objects() -> None:
    value = {"temp": 21.5, "on": True, "name": "x", "gone": None, "m": {"a": 1, "b": None}, "e": {}}
    result = f.attrs_patch(value)
    assert result == value
    assert result is not value
    assert f.attrs_patch(None) is None


@pytest.mark.parametrize(
    "value",
    [
        {"list": [1]},
        {"list": []},
        {"deep": {"a": {"b": 1}}},
        {"deep": {"a": [1]}},
        {"": 1},
        {" ": 1},
        {"m": {"": 1}},
        {"m": {"  ": None}},
    ],
)
def test_invalid_attrs(value: dict[str, Any]) -> None:
    with expect(ErrorCode.INVALID_ATTRS):
        f.attrs_patch(value)


def one_level(value: Any) -> bool:
    scalar = value is None or isinstance(value, str | int | float | bool)
    return scalar or (
        isinstance(value, dict)
        and all(
            k.strip() and (v is None or isinstance(v, str | int | float | bool))
            for k, v in value.items()
        )
    )


SCALARS = st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3)
ATTR_VALUES = (
    st.none()
    | SCALARS
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(
        st.sampled_from(["", " ", "a", "B"]),
        st.none() | SCALARS | st.lists(st.integers(), max_size=1) | st.just({}),
        max_size=3,
    )
)


@given(st.dictionaries(st.sampled_from(["", " ", "t", "m", "x y"]), ATTR_VALUES, max_size=4))
def test_attrs_property(value: dict[str, Any]) -> None:
    valid = all(key.strip() and one_level(item) for key, item in value.items())
    try:
        result = f.attrs_patch(value)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_ATTRS
        assert not valid
        return
    assert valid
    assert result == value


def test_external_ids_patch() -> None:
    assert f.external_ids_patch(None) is None
    assert f.external_ids_patch({"Serial": " SN-1 ", "mac.addr": None, "a:b_c-d": "x" * 256}) == {
        "serial": "SN-1",
        "mac.addr": None,
        "a:b_c-d": "x" * 256,
    }
    assert f.external_ids_patch({"k" * 64: "v"}) == {"k" * 64: "v"}


@pytest.mark.parametrize(
    "value",
    [
        {"": "v"},
        {"k" * 65: "v"},
        {"has space": "v"},
        {"a/b": "v"},
        {"é": "v"},
        {"k": ""},
        {"k": "   "},
        {"k": 1},
        {"k": True},
        {"k": ["v"]},
        {"k": {"a": "b"}},
        {"k": "x" * 257},
    ],
)
def test_invalid_external_ids(value: dict[str, Any]) -> None:
    with expect(ErrorCode.INVALID_EXTERNAL_IDS):
        f.external_ids_patch(value)


@given(
    st.dictionaries(
        st.sampled_from(["Serial", "serial", "a.b:c-d_e", "", "bad key", "k" * 65])
        | st.text(max_size=3),
        st.none() | st.booleans() | st.integers() | st.text(max_size=4) | st.just("v" * 257),
        max_size=4,
    )
)
def test_external_ids_property(value: dict[str, Any]) -> None:
    try:
        result = f.external_ids_patch(value)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_EXTERNAL_IDS
        return
    assert result is not None
    assert {key.lower() for key in value} == set(result)
    for key, item in result.items():
        assert key == key.lower() and 1 <= len(key) <= 64
        assert item is None or (
            isinstance(item, str) and item == item.strip() and 1 <= len(item) <= 256
        )


# -- severity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        (None, f.Severity.NORMAL),
        ("", f.Severity.NORMAL),
        ("critical", f.Severity.CRITICAL),
        (" HIGH ", f.Severity.HIGH),
        ("Low", f.Severity.LOW),
        ("urgent", f.Severity.NORMAL),
        ("info", f.Severity.NORMAL),
    ],
)
def test_message_severity_is_lenient(value: str | None, severity: f.Severity) -> None:
    assert f.lenient_severity(value) is severity


def test_event_severity_is_strict() -> None:
    assert f.strict_severity(" Critical ") is f.Severity.CRITICAL
    assert f.strict_severity("normal") is f.Severity.NORMAL
    for value in (None, "", " ", "urgent", "info"):
        with expect(ErrorCode.INVALID_SEVERITY) as caught:
            f.strict_severity(value)
        assert "severity" in caught.value.message


@given(st.none() | st.text(max_size=10))
def test_any_severity_text(value: str | None) -> None:
    lenient = f.lenient_severity(value)
    try:
        strict = f.strict_severity(value)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_SEVERITY
        assert lenient is f.Severity.NORMAL
        return
    assert strict is lenient
    assert value is not None and value.strip().lower() == strict.value


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"a": 1, "b": {"c": 2, "c": 3}}', ErrorCode.INVALID_JSON_DATA),
        (b'{"a": NaN}', ErrorCode.INVALID_JSON_SYNTAX),
        (b'{"a": 1e400}', ErrorCode.INVALID_JSON_SYNTAX),
        (b'{"a": "\xff"}', ErrorCode.INVALID_JSON_SYNTAX),
        (b"", ErrorCode.INVALID_JSON_SYNTAX),
    ],
)
def test_strict_json_refuses(raw: bytes, code: ErrorCode) -> None:
    with pytest.raises(PushgodError) as caught:
        f.strict_json(raw)
    assert caught.value.code is code


def test_strict_json_reads_what_json_loads_reads() -> None:
    """The shared decoder keeps json.loads's reading of bytes, UTF-16 and -32 included."""
    document = {"title": "Größe ✓", "n": [1, 2.5, None, True], "o": {"k": "v"}}
    for encoding in ("utf-8", "utf-16", "utf-32"):
        raw = json.dumps(document, ensure_ascii=False).encode(encoding)
        assert f.strict_json(raw) == json.loads(raw) == document
    assert f.strict_json(json.dumps(document)) == document
