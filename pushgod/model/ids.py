"""Identifier formats shared with PushGo: Crockford base32 channel ids, hex entity ids."""

from __future__ import annotations

import random
import re
import secrets

from pushgod.model.errors import ErrorCode, PushgodError

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {ch: i for i, ch in enumerate(CROCKFORD)} | {"O": 0, "I": 1, "L": 1}
CHANNEL_ID_LENGTH = 26
_CANONICAL = re.compile(f"[{CROCKFORD}]{{{CHANNEL_ID_LENGTH}}}")

ENTITY_ID = re.compile(r"[A-Za-z0-9_:-]{1,64}")
OP_ID = re.compile(r"[A-Za-z0-9_:-]{1,128}")


def new_channel_id() -> str:
    """128 random bits as 26 Crockford base32 characters (the last 2 bits are zero)."""
    value = int.from_bytes(secrets.token_bytes(16), "big") << 2
    digits = []
    for _ in range(CHANNEL_ID_LENGTH):
        digits.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(digits))


def parse_channel_id(text: str) -> str:
    """The canonical form of a channel id, accepting what PushGo's decoder accepts.

    Lower case, `O` for 0, `I`/`L` for 1, dashes and whitespace are tolerated; the
    result is upper case. Raises `invalid_channel_id` otherwise.
    """
    if _CANONICAL.fullmatch(text) and _DECODE[text[-1]] & 3 == 0:
        return text  # the common case, checked without decoding
    kept = "".join(ch for ch in text if ch != "-" and not ch.isspace())
    # Only ASCII: str.upper() maps some other letters to ASCII (U+0131 to "I", U+FB00 to "FF").
    cleaned = kept.upper() if kept.isascii() else ""
    if len(cleaned) != CHANNEL_ID_LENGTH or any(ch not in _DECODE for ch in cleaned):
        raise PushgodError(
            ErrorCode.INVALID_CHANNEL_ID,
            "channel_id must be 26 Crockford base32 characters (0-9, A-Z without I, L, O, U)",
        )
    value = 0
    for ch in cleaned:
        value = value << 5 | _DECODE[ch]
    if value & 3:
        raise PushgodError(ErrorCode.INVALID_CHANNEL_ID, "channel_id is not a valid 128-bit id")
    return "".join(CROCKFORD[_DECODE[ch]] for ch in cleaned)


def new_hex_id() -> str:
    """A 32-character lowercase hex id (128 random bits): message, event, thing, request ids.

    These ids name things but grant nothing (every read and write is authorized), so
    they come from the fast Mersenne Twister, seeded from os.urandom at start, rather
    than a system call per id; channel ids and tokens use `secrets`.
    """
    return f"{random.getrandbits(128):032x}"


def check_entity_id(value: str, field: str, code: ErrorCode) -> str:
    """An event or thing id: 1-64 characters of `[A-Za-z0-9_:-]`."""
    if not ENTITY_ID.fullmatch(value):
        raise PushgodError(code, f"{field} must be 1-64 characters of A-Z, a-z, 0-9, '_', ':', '-'")
    return value


def check_op_id(value: str) -> str:
    if not OP_ID.fullmatch(value):
        raise PushgodError(
            ErrorCode.INVALID_OP_ID,
            "op_id must be 1-128 characters of A-Z, a-z, 0-9, '_', ':', '-'",
        )
    return value
