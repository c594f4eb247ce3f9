"""Timestamps (PushGo's lenient seconds-or-milliseconds) and durations (`10m`, `30d`)."""

from __future__ import annotations

import re

from pushgod.model.errors import ErrorCode, PushgodError

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# PushGo's rule: a value below 1e12 is seconds, anything else milliseconds.
_SECONDS_BELOW = 10**12
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_INTEGER = re.compile(r"-?[0-9]{1,16}")  # not \d: that matches any script's digits
_DURATION = re.compile(r"([0-9]{1,9})(ms|s|m|h|d|w)?")
_UNIT_MS = {"ms": 1, "s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


def parse_timestamp(value: object, field: str) -> int | None:
    """Unix time in milliseconds from an integer or numeric string, seconds or milliseconds.

    An empty string means absent (None), as in PushGo. Booleans, fractions, negative
    values and dates past year 9999 are refused with `invalid_timestamp`.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not _INTEGER.fullmatch(text):
            raise PushgodError(
                ErrorCode.INVALID_TIMESTAMP, f"{field} must be a unix timestamp in s or ms"
            )
        number = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise PushgodError(
            ErrorCode.INVALID_TIMESTAMP, f"{field} must be a unix timestamp (integer) in s or ms"
        )
    if number < 0:
        raise PushgodError(ErrorCode.INVALID_TIMESTAMP, f"{field} must not be negative")
    millis = number * SECOND_MS if number < _SECONDS_BELOW else number
    if millis > _MAX_MS:
        raise PushgodError(ErrorCode.INVALID_TIMESTAMP, f"{field} is past the year 9999")
    return millis


def parse_duration_ms(text: str, what: str) -> int:
    """A duration such as `90`, `30s`, `10m`, `12h`, `30d` or `2w`; a bare number is seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise PushgodError(
            ErrorCode.INVALID_DURATION,
            f"{what} must be a duration like 30s, 10m, 12h, 30d or 2w (got {text!r})",
        )
    number, unit = match.groups()
    return int(number) * _UNIT_MS[unit or "s"]


def format_duration(millis: int) -> str:
    """The shortest exact spelling of a duration, the inverse of `parse_duration_ms`."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_MS[unit]
        if millis and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
