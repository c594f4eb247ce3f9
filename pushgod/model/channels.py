"""Channel rules: names and passwords (PushGo's limits)."""

from __future__ import annotations

import secrets
import string
import unicodedata

from pushgod.model.errors import ErrorCode, PushgodError

MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 128
MAX_NAME_CHARS = 128
MAX_RETENTION_COUNT = 1_000_000_000
"""Far beyond what one box keeps; much larger numbers do not fit an SQLite integer."""
MIN_RETENTION_AGE_MS = 1000


def check_password(password: str) -> str:
    """The password as it is hashed and compared: trimmed, 8-128 bytes (as PushGo)."""
    text = password.strip()
    if not MIN_PASSWORD_BYTES <= len(text.encode()) <= MAX_PASSWORD_BYTES:
        raise PushgodError(
            ErrorCode.INVALID_PASSWORD,
            f"password must be {MIN_PASSWORD_BYTES}-{MAX_PASSWORD_BYTES} bytes once trimmed",
        )
    return text


def check_channel_name(name: str) -> str:
    text = name.strip()
    if not 1 <= len(text) <= MAX_NAME_CHARS or any(unicodedata.category(ch) == "Cc" for ch in text):
        raise PushgodError(
            ErrorCode.INVALID_CHANNEL_NAME,
            f"channel name must be 1-{MAX_NAME_CHARS} characters without control characters",
        )
    return text


PASSWORD_ALPHABET = string.ascii_letters + string.digits
GENERATED_PASSWORD_CHARS = 24


def generate_password() -> str:
    """24 letters and digits (142 random bits): safe to paste into a shell or a URL, and
    never starting with '-', which command-line parsers take for an option."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_CHARS))
