"""Messages: the PushGo `/message` request, its rules and the stored form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pushgod.model import fields as f
from pushgod.model import sealing
from pushgod.model.channels import check_password
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import check_entity_id, check_op_id, parse_channel_id
from pushgod.model.times import DAY_MS, parse_timestamp

MAX_TTL_MS = 30 * DAY_MS
"""PushGo caps `ttl` (an absolute expiry time) at now + 30 days."""

CREDENTIAL_FIELDS: f.Schema = {
    "channel_id": f.WireField(f.Kind.STRING, "Channel id: 26 Crockford base32 characters."),
    "password": f.WireField(
        f.Kind.STRING,
        "Channel password (8-128 bytes). May be omitted when an `Authorization: Bearer` "
        "token with the needed scope is sent.",
    ),
    "op_id": f.WireField(
        f.Kind.STRING,
        "Idempotency key, 1-128 of [A-Za-z0-9_:-]. Repeating an op returns the original ids "
        "and changes nothing.",
    ),
}

MESSAGE_SCHEMA: f.Schema = CREDENTIAL_FIELDS | {
    "thing_id": f.WireField(f.Kind.STRING, "Scope the message to this Thing of the channel."),
    "occurred_at": f.WireField(
        f.Kind.TIMESTAMP,
        "When it happened (unix s or ms); required with thing_id, else defaults to now.",
    ),
    "title": f.WireField(f.Kind.STRING, "Title (required, not blank, unless sealed)."),
    "body": f.WireField(f.Kind.STRING, "Body, Markdown allowed."),
    "severity": f.WireField(
        f.Kind.STRING, "critical, high, normal or low; anything else counts as normal."
    ),
    "ttl": f.WireField(
        f.Kind.TIMESTAMP,
        "Absolute expiry time (unix s or ms), capped at now + 30 days. Expired messages "
        "disappear from reads at once.",
    ),
    "url": f.WireField(f.Kind.STRING, "A link to open."),
    "images": f.WireField(f.Kind.STRINGS, "Up to 32 image URLs of at most 2048 bytes."),
    "ciphertext": f.WireField(f.Kind.STRING, "Opaque end-to-end encrypted payload, kept as is."),
    "tags": f.WireField(f.Kind.STRINGS, "Up to 32 tags of at most 64 bytes."),
    "metadata": f.WireField(
        f.Kind.OBJECT, "Scalar values only; keys 1-64 bytes, values 1-512 bytes."
    ),
    "sealed": f.WireField(f.Kind.OBJECTS, sealing.SEALED_FIELD),
}


@dataclass(frozen=True, slots=True)
class ChannelAuth:
    """The credentials a PushGo request carries in its body."""

    channel_id: str
    password: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class MessageIntent:
    channel_id: str
    op_id: str | None
    thing_id: str | None
    occurred_at: int | None
    title: str
    body: str | None
    severity: f.Severity
    expires_at: int | None
    url: str | None
    images: tuple[str, ...]
    ciphertext: str | None
    tags: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    sealed: tuple[dict[str, Any], ...] | None = None


def parse_credentials(data: dict[str, Any]) -> tuple[ChannelAuth, str | None]:
    """Channel id, password and op_id of an already shape-checked PushGo request."""
    raw_channel = f.optional_text(data.get("channel_id"))
    if raw_channel is None:
        raise PushgodError(ErrorCode.CHANNEL_ID_REQUIRED, "channel_id is required")
    channel_id = parse_channel_id(raw_channel)
    password = f.optional_text(data.get("password"))
    if password is not None:
        password = check_password(password)
    op_id = f.optional_text(data.get("op_id"))
    return ChannelAuth(channel_id, password), (check_op_id(op_id) if op_id else None)


def parse_message(body: object, now_ms: int) -> tuple[ChannelAuth, MessageIntent]:
    data = f.check_shape(body, MESSAGE_SCHEMA)
    auth, op_id = parse_credentials(data)
    thing_id = f.optional_text(data.get("thing_id"))
    if thing_id is not None:
        check_entity_id(thing_id, "thing_id", ErrorCode.INVALID_THING_ID)
    occurred_at = (
        parse_timestamp(data["occurred_at"], "occurred_at") if "occurred_at" in data else None
    )
    if thing_id is not None and occurred_at is None:
        raise PushgodError(
            ErrorCode.OCCURRED_AT_REQUIRED, "occurred_at is required when thing_id is given"
        )
    sealed = sealing.parse_sealed(data.get("sealed"), "message")
    title = f.optional_text(data.get("title"))
    if title is None:
        if not sealing.seals(sealed, "title"):
            raise PushgodError(ErrorCode.TITLE_REQUIRED, "title is required and must not be blank")
        title = sealing.PLACEHOLDERS["message"]["title"]
    expires_at = parse_timestamp(data["ttl"], "ttl") if "ttl" in data else None
    if expires_at is not None:
        expires_at = min(expires_at, now_ms + MAX_TTL_MS)
    intent = MessageIntent(
        channel_id=auth.channel_id,
        op_id=op_id,
        thing_id=thing_id,
        occurred_at=occurred_at,
        title=title,
        body=f.optional_text(data.get("body")),
        severity=f.lenient_severity(data.get("severity")),
        expires_at=expires_at,
        url=f.optional_text(data.get("url")),
        images=f.images(data.get("images")),
        ciphertext=f.optional_text(data.get("ciphertext")),
        tags=f.tags(data.get("tags")),
        metadata=f.metadata(data.get("metadata")),
        sealed=sealed,
    )
    return auth, intent
