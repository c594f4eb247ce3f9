"""Channel ids (Crockford base32, PushGo's decoder rules), hex ids, entity ids and op ids."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import (
    CROCKFORD,
    check_entity_id,
    check_op_id,
    new_channel_id,
    new_hex_id,
    parse_channel_id,
)

# The alphabet written out, not taken from the module, so a typo there fails here.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_128 = st.integers(min_value=0, max_value=2**128 - 1)


def encode(value: int) -> str:
    """128 bits as 26 characters, left-aligned so that the last 2 bits are zero (as PushGo)."""
    shifted = value << 2
    return "".join(ALPHABET[(shifted >> (5 * i)) & 31] for i in reversed(range(26)))


def decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value << 5 | ALPHABET.index(ch)
    return value >> 2


def expect(code: ErrorCode) -> pytest.RaisesExc[PushgodError]:
    return pytest.raises(PushgodError, check=lambda error: error.code is code)


def test_the_alphabet_is_crockfords() -> None:
    assert CROCKFORD == ALPHABET


def test_new_channel_ids_parse_back_to_themselves() -> None:
    seen = set()
    for _ in range(200):
        channel_id = new_channel_id()
        assert re.fullmatch(f"[{ALPHABET}]{{26}}", channel_id)
        assert parse_channel_id(channel_id) == channel_id
        seen.add(channel_id)
    assert len(seen) == 200


@given(ID_128)
def test_every_128_bit_id_round_trips(value: int) -> None:
    text = encode(value)
    assert parse_channel_id(text) == text
    assert decode(parse_channel_id(text)) == value


SPELLINGS = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from(["", "", "", "-", " ", "\t", "--"])),
    min_size=26,
    max_size=26,
)


@given(ID_128, SPELLINGS)
def test_lower_case_lookalikes_dashes_and_spaces_are_accepted(
    value: int, spelling: list[tuple[int, str]]
) -> None:
    canonical = encode(value)
    spelled = []
    for ch, (choice, separator) in zip(canonical, spelling, strict=True):
        variants = [ch, ch.lower(), *{"0": ["O", "o"], "1": ["I", "i", "L", "l"]}.get(ch, [])]
        spelled.append(variants[choice % len(variants)] + separator)
    assert parse_channel_id("".join(spelled)) == canonical


def test_known_spellings() -> None:
    canonical = "0123456789ABCDEFGHJKMNPQR0"
    assert parse_channel_id(canonical) == canonical
    assert parse_channel_id("o123456789abcdefghjkmnpqro") == canonical
    assert parse_channel_id(" 0123-4567-89AB-CDEF-GHJK-MNPQ-R0\n") == canonical
    assert parse_channel_id("0L23456789ABCDEFGHJKMNPQR0") == canonical
    assert parse_channel_id("0i23456789abcdefghjkmnpqrO") == canonical


@given(ID_128, st.integers(min_value=1, max_value=3))
def test_nonzero_trailing_bits_are_rejected(value: int, low_bits: int) -> None:
    canonical = encode(value)
    last = ALPHABET[ALPHABET.index(canonical[-1]) | low_bits]
    with expect(ErrorCode.INVALID_CHANNEL_ID):
        parse_channel_id(canonical[:-1] + last)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0" * 25,
        "0" * 27,
        "0" * 25 + "U",  # U is not in Crockford's alphabet
        "0" * 25 + "*",
        "0" * 24 + "_0",
        # Non-ASCII characters that str.upper() turns into ASCII: dotless i, long s, the
        # ligature "ff" (two letters); all would otherwise decode to a valid id.
        "0" * 24 + "\u01310",
        "0" * 24 + "\u017f0",
        "0" * 23 + "\ufb000",
        "0" * 25 + "\uff10",  # fullwidth zero
    ],
)
def test_malformed_channel_ids_are_rejected(text: str) -> None:
    with expect(ErrorCode.INVALID_CHANNEL_ID) as caught:
        parse_channel_id(text)
    assert caught.value.status == 400


@given(
    st.lists(
        st.characters() | st.sampled_from([*ALPHABET, *"oil-\t\ud800\u0131\u017f\ufb00"]),
        min_size=20,
        max_size=32,
    ).map("".join)
)
def test_any_text_parses_to_a_canonical_id_or_is_refused(text: str) -> None:
    try:
        result = parse_channel_id(text)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_CHANNEL_ID
        return
    assert re.fullmatch(f"[{ALPHABET}]{{26}}", result)
    assert encode(decode(result)) == result
    cleaned = re.sub(r"[\s-]", "", text)
    assert cleaned.isascii() and len(cleaned) == 26
    assert parse_channel_id(result) == result


def test_new_hex_ids_are_32_lowercase_hex() -> None:
    ids = {new_hex_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch("[0-9a-f]{32}", value) for value in ids)


@pytest.mark.parametrize(
    "value", ["a", "A" * 64, "nas-01", "sensor:door_1", "0123456789abcdef" * 2]
)
def test_entity_ids_accepted(value: str) -> None:
    assert check_entity_id(value, "thing_id", ErrorCode.INVALID_THING_ID) == value


@pytest.mark.parametrize("value", ["", "A" * 65, "has space", "a/b", "a.b", "é", "a\n"])
def test_entity_ids_refused_with_the_given_code_and_field(value: str) -> None:
    with expect(ErrorCode.INVALID_EVENT_ID) as caught:
        check_entity_id(value, "event_id", ErrorCode.INVALID_EVENT_ID)
    assert "event_id" in caught.value.message


@given(st.text(max_size=70))
def test_entity_id_rule(value: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-")
    valid = 1 <= len(value) <= 64 and set(value) <= allowed
    try:
        assert check_entity_id(value, "thing_id", ErrorCode.INVALID_THING_ID) == value
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_THING_ID
        assert not valid
    else:
        assert valid


@pytest.mark.parametrize("value", ["x", "o" * 128, "retry:2026-01-01_a"])
def test_op_ids_accepted(value: str) -> None:
    assert check_op_id(value) == value


@pytest.mark.parametrize("value", ["", "o" * 129, "a b", "a.b", "a\n"])
def test_op_ids_refused(value: str) -> None:
    with expect(ErrorCode.INVALID_OP_ID):
        check_op_id(value)
