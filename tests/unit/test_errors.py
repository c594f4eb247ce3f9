"""The error codes, their HTTP statuses, and the one error type."""

from __future__ import annotations

import re

import pytest

from pushgod.model import errors
from pushgod.model.errors import STATUS, ErrorCode, PushgodError

# Codes that PushGo's clients match on; their spelling must never change.
PUSHGO_CODES = {
    "channel_id_required",
    "invalid_channel_id",
    "password_required",
    "invalid_password",
    "password_mismatch",
    "title_required",
    "event_time_required",
    "observed_at_required",
    "occurred_at_required_for_thing_scoped_message",
    "invalid_json_data",
    "invalid_json_syntax",
    "missing_json_content_type",
    # PushGo's MCP tools
    "password_forbidden_in_oauth_mode",
    "password_required_in_legacy_mode",
    "channel_not_bound",
    "auth_mode_not_supported",
    "resource_not_found",
}


def documented_statuses() -> dict[str, int]:
    """The table in the module docstring: `<status> <group>  code, code, ...` lines."""
    table: dict[str, int] = {}
    status = 0
    assert errors.__doc__ is not None
    for line in errors.__doc__.splitlines():
        row = re.match(r"\s{4}(\d{3})\s", line)
        if row:
            status = int(row.group(1))
        if status and line.startswith("    "):
            for code in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", line):
                table[code] = status
    return table


def test_code_values_are_unique_snake_case() -> None:
    values = [member.value for member in ErrorCode.__members__.values()]
    assert len(values) == len(set(values))  # an alias would hide a code
    assert all(re.fullmatch("[a-z]+(_[a-z]+)*", value) for value in values)


def test_pushgo_spellings() -> None:
    values = {code.value for code in ErrorCode}
    assert values >= PUSHGO_CODES


def test_every_code_has_a_status() -> None:
    assert set(STATUS) == set(ErrorCode)
    statuses = (400, 401, 403, 404, 405, 409, 410, 413, 429, 500, 503)
    assert all(status in statuses for status in STATUS.values())


def test_the_docstring_table_matches_the_statuses() -> None:
    documented = documented_statuses()
    assert set(documented) == {code.value for code in ErrorCode}
    assert {code.value: STATUS[code] for code in ErrorCode} == documented


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.INVALID_TAGS, 400),
        (ErrorCode.AUTHENTICATION_FAILED, 401),
        (ErrorCode.PASSWORD_MISMATCH, 403),
        (ErrorCode.CHANNEL_NOT_FOUND, 404),
        (ErrorCode.METHOD_NOT_ALLOWED, 405),
        (ErrorCode.EVENT_CLOSED, 409),
        (ErrorCode.THING_DELETED, 409),
        (ErrorCode.PAYLOAD_TOO_LARGE, 413),
        (ErrorCode.RATE_LIMITED, 429),
        (ErrorCode.INVALID_CONFIG, 500),
        (ErrorCode.SERVER_BUSY, 503),
    ],
)
def test_statuses(code: ErrorCode, status: int) -> None:
    assert PushgodError(code, "m").status == status


def test_the_error_carries_code_message_and_retry_after() -> None:
    error = PushgodError(ErrorCode.RATE_LIMITED, "slow down", retry_after=30)
    assert (error.code, error.message, error.retry_after) == (
        ErrorCode.RATE_LIMITED,
        "slow down",
        30,
    )
    assert str(error) == "slow down"
    assert repr(error) == "PushgodError('rate_limited', 'slow down')"
    assert PushgodError(ErrorCode.INVALID_TAGS, "x").retry_after is None
    with pytest.raises(PushgodError) as caught:
        raise PushgodError(ErrorCode.INVALID_TAGS, "tags must not contain empty items")
    assert isinstance(caught.value, Exception)
    assert caught.value.code == "invalid_tags"  # a StrEnum compares equal to its text
