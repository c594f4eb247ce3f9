"""Timestamps (seconds or milliseconds, as PushGo reads them) and durations."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.times import format_duration, parse_duration_ms, parse_timestamp

MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_SECONDS = MAX_MS // 1000
THRESHOLD = 10**12

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.integers(min_value=-(10**15), max_value=10**16).map(lambda n: f" {n}")
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def expect(code: ErrorCode) -> pytest.RaisesExc[PushgodError]:
    return pytest.raises(PushgodError, check=lambda error: error.code is code)


@pytest.mark.parametrize(
    ("value", "millis"),
    [
        (0, 0),
        (1, 1000),
        (1_700_000_000, 1_700_000_000_000),
        (MAX_SECONDS, MAX_SECONDS * 1000),
        (THRESHOLD, THRESHOLD),  # 1e12 is the first value read as milliseconds
        (1_700_000_000_123, 1_700_000_000_123),
        (MAX_MS, MAX_MS),
        ("1700000000", 1_700_000_000_000),
        ("1700000000123", 1_700_000_000_123),
        (" 42 ", 42_000),
        ("007", 7000),
        ("-0", 0),
    ],
)
def test_timestamps(value: object, millis: int) -> None:
    assert parse_timestamp(value, "event_time") == millis


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_an_empty_string_means_absent(value: str) -> None:
    assert parse_timestamp(value, "ttl") is None


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        1.0,
        1.5,
        -1,
        "-1",
        "1.5",
        "1e9",
        "0x10",
        "+5",
        "12 34",
        "1_000",
        "abc",
        "12345678901234567",  # 17 digits
        "\u0661\u0662\u0663",  # Arabic-Indic digits: numeric to Python, not to PushGo
        "\uff11\uff12",  # fullwidth digits
        None,
        [],
        {},
        [1],
        MAX_SECONDS + 1,  # seconds past year 9999
        THRESHOLD - 1,  # still seconds, so far past year 9999
        MAX_MS + 1,
        str(MAX_MS + 1),
    ],
)
def test_invalid_timestamps(value: object) -> None:
    with expect(ErrorCode.INVALID_TIMESTAMP) as caught:
        parse_timestamp(value, "occurred_at")
    assert "occurred_at" in caught.value.message


@given(st.integers(min_value=0, max_value=MAX_SECONDS), st.booleans())
def test_values_below_1e12_are_seconds(seconds: int, as_text: bool) -> None:
    value: int | str = str(seconds) if as_text else seconds
    assert parse_timestamp(value, "t") == seconds * 1000


@given(st.integers(min_value=THRESHOLD, max_value=MAX_MS), st.booleans())
def test_values_from_1e12_are_milliseconds(millis: int, as_text: bool) -> None:
    value: int | str = f" {millis}\n" if as_text else millis
    assert parse_timestamp(value, "t") == millis


@given(st.integers(min_value=MAX_SECONDS + 1, max_value=THRESHOLD - 1) | st.integers(MAX_MS + 1))
def test_past_year_9999_is_refused(value: int) -> None:
    with expect(ErrorCode.INVALID_TIMESTAMP):
        parse_timestamp(value, "t")


@given(st.integers(max_value=-1), st.booleans())
def test_negatives_are_refused(value: int, as_text: bool) -> None:
    with expect(ErrorCode.INVALID_TIMESTAMP):
        parse_timestamp(str(value) if as_text else value, "t")


@given(st.floats(allow_nan=True) | st.booleans())
def test_floats_and_bools_are_refused(value: object) -> None:
    with expect(ErrorCode.INVALID_TIMESTAMP):
        parse_timestamp(value, "t")


@given(JSON)
def test_any_json_value_is_a_time_none_or_invalid_timestamp(value: Any) -> None:
    try:
        result = parse_timestamp(value, "t")
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_TIMESTAMP
        return
    if result is None:
        assert isinstance(value, str) and not value.strip()
    else:
        assert 0 <= result <= MAX_MS
        assert type(value) is int or (isinstance(value, str) and value.strip().isascii())


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("0", 0),
        ("90", 90_000),
        ("250ms", 250),
        ("30s", 30_000),
        ("10m", 600_000),
        ("12h", 43_200_000),
        ("30d", 2_592_000_000),
        ("2w", 1_209_600_000),
        (" 5m ", 300_000),
        ("999999999w", 999_999_999 * 604_800_000),
    ],
)
def test_durations(text: str, millis: int) -> None:
    assert parse_duration_ms(text, "retention") == millis


@pytest.mark.parametrize(
    "text",
    ["", "m", "10x", "10 m", "-1s", "1.5h", "10M", "1000000000s", "1h30m", "\u0661s", "\uff15m"],
)
def test_invalid_durations(text: str) -> None:
    with expect(ErrorCode.INVALID_DURATION) as caught:
        parse_duration_ms(text, "since")
    assert "since" in caught.value.message
    assert repr(text) in caught.value.message


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        (0, "0ms"),
        (1, "1ms"),
        (1500, "1500ms"),
        (30_000, "30s"),
        (90_000, "90s"),
        (600_000, "10m"),
        (3_600_000, "1h"),
        (86_400_000, "1d"),
        (30 * 86_400_000, "30d"),
        (14 * 86_400_000, "2w"),
    ],
)
def test_format_duration(millis: int, text: str) -> None:
    assert format_duration(millis) == text


UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@given(st.integers(min_value=0, max_value=999_999_999), st.sampled_from(["", *UNITS]))
def test_parse_then_format_round_trips(number: int, unit: str) -> None:
    millis = parse_duration_ms(f"{number}{unit}", "d")
    assert millis == number * UNITS[unit or "s"]
    text = format_duration(millis)
    assert parse_duration_ms(text, "d") == millis


@given(st.integers(min_value=0, max_value=999_999_999))
def test_format_uses_the_largest_exact_unit(millis: int) -> None:
    text = format_duration(millis)
    assert parse_duration_ms(text, "d") == millis
    number = int(text.rstrip("mshdw"))
    unit = text[len(str(number)) :]
    larger = [size for size in UNITS.values() if size > UNITS[unit]]
    assert millis == 0 or all(millis % size for size in larger)


@given(st.text(max_size=12) | st.from_regex(r"[0-9]{1,12}(ms|s|m|h|d|w)?", fullmatch=True))
def test_any_text_is_a_duration_or_invalid_duration(text: str) -> None:
    try:
        millis = parse_duration_ms(text, "d")
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_DURATION
        return
    number = text.strip().rstrip("mshdw")
    assert number.isascii() and number.isdigit() and len(number) <= 9
    assert (
        millis >= 0
        and format_duration(millis)
        and parse_duration_ms(format_duration(millis), "d") == millis
    )
