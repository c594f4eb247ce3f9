"""End-to-end encryption: the sealed envelope, a channel's sealing policy, and opening.

An envelope holds some fields of one item, encrypted once with XChaCha20-Poly1305
(IETF) under a random 32-byte content key; that key is sealed to each paired client's
X25519 public key with libsodium's `crypto_box_seal`. The exact format, with test
vectors, is docs/e2ee.md; keep the two in step.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from pushgod.model.errors import ErrorCode, PushgodError

VERSION = 1
NONCE_BYTES = 24
KEY_BYTES = 32
SEALED_KEY_BYTES = 80  # crypto_box_seal of a 32-byte key: 32 ephemeral pk + 32 + 16 MAC
PUBLIC_KEY_BYTES = 32
MAX_CIPHERTEXT_BYTES = 64 * 1024
MAX_ENVELOPES = 4
"""Envelopes one request may carry pre-sealed."""
MAX_RECIPIENTS = 64
"""Paired clients per channel: every sealed item carries one sealed key per client."""

KINDS = ("message", "event", "thing")
SEALABLE: dict[str, frozenset[str]] = {
    "message": frozenset({"title", "body", "url", "images", "metadata"}),
    "event": frozenset({"title", "description", "message", "attrs"}),
    "thing": frozenset({"attrs"}),
}
"""The fields each kind may seal; `attrs` is sealed key by key, as `attrs.<key>`."""

DEFAULT_POLICY = (
    "message.title",
    "message.body",
    "message.url",
    "message.images",
    "message.metadata",
    "event.title",
    "event.description",
    "event.message",
    "event.attrs",
)
"""What `channel e2ee --on` seals without --fields. Thing attrs only when named
(`thing.attrs.<key>`), so MQTT and Home Assistant keep seeing the others."""

PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "message": {
        "title": "Encrypted message",
        "body": None,
        "url": None,
        "images": (),
        "metadata": {},
    },
    "event": {
        "title": "Encrypted event",
        "description": None,
        "message": "Encrypted update",
    },
    "thing": {},
}
"""What readers without the key see in place of a sealed field."""


def b64encode(data: bytes) -> str:
    """Base64url without padding, the encoding of every binary value in the format."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: object, field: str, size: int | None = None) -> bytes:
    """Strict base64url (padding optional); `size` is the exact length required."""
    if not isinstance(text, str) or not text.isascii() or len(text) > 2 * MAX_CIPHERTEXT_BYTES:
        raise PushgodError(ErrorCode.INVALID_SEALED, f"{field} must be a base64url string")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise PushgodError(ErrorCode.INVALID_SEALED, f"{field} is not valid base64url") from None
    if b64encode(data) != text.rstrip("=") or len(text) - len(text.rstrip("=")) > 2:
        raise PushgodError(ErrorCode.INVALID_SEALED, f"{field} is not valid base64url")
    if size is not None and len(data) != size:
        raise PushgodError(ErrorCode.INVALID_SEALED, f"{field} must be {size} bytes")
    return data


def associated_data(channel_id: str, kind: str, fields: Iterable[str]) -> bytes:
    """Binds a ciphertext to its channel, its kind of item and the fields it claims."""
    return f"pushgod-e2ee/v{VERSION}\n{channel_id}\n{kind}\n{','.join(fields)}".encode()


def paths(values: Mapping[str, Any]) -> list[str]:
    """The sorted field paths of `values`: names, and `attrs.<key>` for each attr."""
    found = [name for name in values if name != "attrs"]
    found += [f"attrs.{key}" for key in values.get("attrs") or {}]
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Policy:
    """Which fields a channel seals, per kind; `attr_keys` None means every attr."""

    fields: Mapping[str, frozenset[str]]
    attr_keys: Mapping[str, frozenset[str] | None]

    def split(self, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The part of `values` (the fields a request gave) that this policy seals."""
        wanted = self.fields.get(kind, frozenset())
        sealed = {
            name: value
            for name, value in values.items()
            if name in wanted and name != "attrs" and value not in (None, (), [], {})
        }
        attrs = values.get("attrs")
        if "attrs" in wanted and attrs:
            keys = self.attr_keys.get(kind)
            chosen = {k: v for k, v in attrs.items() if keys is None or k in keys}
            if chosen:
                sealed["attrs"] = chosen
        return sealed

    def text(self) -> str:
        names = [f"{kind}.{name}" for kind in KINDS for name in sorted(self.fields.get(kind, ()))]
        out = []
        for name in names:
            kind, field = name.split(".")
            keys = self.attr_keys.get(kind) if field == "attrs" else None
            out += [f"{name}.{key}" for key in sorted(keys)] if keys else [name]
        return ",".join(out)


def parse_policy(text: str | Iterable[str]) -> Policy:
    """`message.title,event.attrs,thing.attrs.location,…` into a Policy."""
    names = text.split(",") if isinstance(text, str) else list(text)
    fields: dict[str, set[str]] = {}
    attr_keys: dict[str, set[str] | None] = {}
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        kind, _, rest = name.partition(".")
        field, _, key = rest.partition(".")
        if kind not in SEALABLE or field not in SEALABLE[kind] or (key and field != "attrs"):
            raise PushgodError(
                ErrorCode.INVALID_FIELD,
                f"cannot seal {name!r}: use message.title|body|url|images|metadata, "
                "event.title|description|message|attrs, or thing.attrs.KEY",
            )
        if kind == "thing" and not key:
            raise PushgodError(
                ErrorCode.INVALID_FIELD, "thing attrs are sealed by key: thing.attrs.KEY"
            )
        fields.setdefault(kind, set()).add(field)
        if field == "attrs":
            if not key:
                attr_keys[kind] = None
            elif attr_keys.get(kind, set()) is not None:
                attr_keys.setdefault(kind, set()).add(key)  # type: ignore[union-attr]
    if not fields:
        raise PushgodError(ErrorCode.INVALID_FIELD, "name at least one field to seal")
    return Policy(
        {kind: frozenset(names) for kind, names in fields.items()},
        {kind: None if keys is None else frozenset(keys) for kind, keys in attr_keys.items()},
    )


def seal(
    values: Mapping[str, Any],
    recipients: Mapping[str, bytes],
    channel_id: str,
    kind: str,
    *,
    content_key: bytes | None = None,
    nonce: bytes | None = None,
) -> dict[str, Any]:
    """An envelope of `values` for each recipient (client id → X25519 public key).

    `content_key` and `nonce` are for test vectors only; by default both are random.
    """
    fields = paths(values)
    if content_key is None:
        content_key = nacl.utils.random(KEY_BYTES)
    if nonce is None:
        nonce = nacl.utils.random(NONCE_BYTES)
    plaintext = json.dumps(
        _jsonable(values), separators=(",", ":"), ensure_ascii=False, sort_keys=True
    )
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext.encode(), associated_data(channel_id, kind, fields), nonce, content_key
    )
    return {
        "v": VERSION,
        "fields": fields,
        "nonce": b64encode(nonce),
        "ciphertext": b64encode(ciphertext),
        "keys": {
            client_id: b64encode(sodium.crypto_box_seal(content_key, public_key))
            for client_id, public_key in sorted(recipients.items())
        },
    }


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def check_envelope(envelope: object, kind: str) -> dict[str, Any]:
    """A pre-sealed envelope from a sender, checked for shape and sizes (not content)."""
    if not isinstance(envelope, dict) or set(envelope) != {
        "v",
        "fields",
        "nonce",
        "ciphertext",
        "keys",
    }:
        raise PushgodError(
            ErrorCode.INVALID_SEALED,
            "an envelope is an object with exactly v, fields, nonce, ciphertext and keys",
        )
    if type(envelope["v"]) is not int or envelope["v"] != VERSION:
        raise PushgodError(ErrorCode.INVALID_SEALED, f"envelope version must be {VERSION}")
    fields = envelope["fields"]
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(name, str) for name in fields)
        or fields != sorted(set(fields))
    ):
        raise PushgodError(
            ErrorCode.INVALID_SEALED, "fields must be a sorted list of distinct field paths"
        )
    for name in fields:
        field, dot, key = name.partition(".")
        attr_path = field == "attrs" and dot and 0 < len(key.encode()) <= 64
        if field not in SEALABLE[kind] or (field == "attrs" or bool(dot)) != bool(attr_path):
            raise PushgodError(ErrorCode.INVALID_SEALED, f"a {kind} cannot seal {name!r}")
    b64decode(envelope["nonce"], "nonce", NONCE_BYTES)
    ciphertext = b64decode(envelope["ciphertext"], "ciphertext")
    if not 16 < len(ciphertext) <= MAX_CIPHERTEXT_BYTES:
        raise PushgodError(
            ErrorCode.INVALID_SEALED, f"ciphertext must be 17-{MAX_CIPHERTEXT_BYTES} bytes"
        )
    keys = envelope["keys"]
    if not isinstance(keys, dict) or not 0 < len(keys) <= MAX_RECIPIENTS:
        raise PushgodError(
            ErrorCode.INVALID_SEALED, f"keys must map 1-{MAX_RECIPIENTS} client ids to sealed keys"
        )
    for client_id, sealed_key in keys.items():
        if not (0 < len(client_id) <= 64 and client_id.isascii() and client_id.isalnum()):
            raise PushgodError(ErrorCode.INVALID_SEALED, "keys must be keyed by client id")
        b64decode(sealed_key, "a sealed key", SEALED_KEY_BYTES)
    return envelope


SEALED_FIELD = (
    "Fields sealed by the sender for the channel's paired clients: up to 4 envelopes "
    "(docs/e2ee.md), passed on as they are. A field an envelope seals may be left out."
)


def parse_sealed(value: list[Any] | None, kind: str) -> tuple[dict[str, Any], ...] | None:
    """The `sealed` field of a request: checked envelopes, or None when absent."""
    if not value:
        return None
    if len(value) > MAX_ENVELOPES:
        raise PushgodError(
            ErrorCode.INVALID_SEALED, f"sealed holds at most {MAX_ENVELOPES} envelopes"
        )
    return tuple(check_envelope(envelope, kind) for envelope in value)


def seals(envelopes: Iterable[Mapping[str, Any]] | None, path: str) -> bool:
    """Whether one of `envelopes` seals the field `path`."""
    return any(path in envelope["fields"] for envelope in envelopes or ())


def accumulate(
    kept: Iterable[dict[str, Any]],
    added: Iterable[dict[str, Any]],
    plain: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The envelopes a state keeps after a change: all, in order, less those whose every
    field a later envelope holds too, or the change set in plain text (`plain`, paths).
    Their number is bounded by the number of distinct fields."""
    result: list[dict[str, Any]] = []
    covered: set[str] = set()
    for envelopes in ([*added], [*kept]):
        for envelope in reversed(envelopes):
            if not set(envelope["fields"]) <= covered:
                result.append(envelope)
            covered.update(envelope["fields"])
        covered.update(plain)
    result.reverse()
    return result


def given_paths(intent: object, kind: str) -> list[str]:
    """The paths of the sealable fields a request set (in plain text or placeholders)."""
    values = {name: getattr(intent, name) for name in SEALABLE[kind]}
    return paths({name: value for name, value in values.items() if value is not None})


def open_envelope(
    envelope: Mapping[str, Any],
    client_id: str,
    secret_key: bytes,
    public_key: bytes,
    channel_id: str,
    kind: str,
) -> dict[str, Any]:
    """The fields an envelope holds, for the client with this key pair.

    Raises PushgodError(decryption_failed) when the envelope was not sealed for this
    client or any byte of it (or its field list) was changed.
    """
    keys = envelope.get("keys")
    sealed_key = keys.get(client_id) if isinstance(keys, dict) else None
    if sealed_key is None:
        raise PushgodError(ErrorCode.DECRYPTION_FAILED, "not sealed for this client")
    if type(envelope.get("v")) is not int or envelope.get("v") != VERSION:
        raise PushgodError(ErrorCode.DECRYPTION_FAILED, f"not a version {VERSION} envelope")
    try:
        content_key = sodium.crypto_box_seal_open(
            b64decode(sealed_key, "sealed key", SEALED_KEY_BYTES), public_key, secret_key
        )
        fields = list(envelope["fields"])
        plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            b64decode(envelope["ciphertext"], "ciphertext"),
            associated_data(channel_id, kind, fields),
            b64decode(envelope["nonce"], "nonce", NONCE_BYTES),
            content_key,
        )
        values = json.loads(plaintext)
    except (nacl.exceptions.CryptoError, PushgodError, ValueError, KeyError, TypeError):
        raise PushgodError(
            ErrorCode.DECRYPTION_FAILED, "the sealed fields failed to decrypt (tampered?)"
        ) from None
    if (
        not isinstance(values, dict)
        or not isinstance(values.get("attrs", {}), dict)
        or paths(values) != fields
    ):
        raise PushgodError(
            ErrorCode.DECRYPTION_FAILED, "the sealed fields do not match the envelope's list"
        )
    return values


def reveal(item: Mapping[str, Any], opened: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`item` with the opened envelopes' fields put back, in order.

    A sealed attr's value replaces the key's value whole (null deletes the key), unlike
    a plain attrs merge-patch, which merges object values: so a later envelope that seals
    the same key makes an earlier one redundant, which `accumulate` relies on.
    """
    result = dict(item)
    for values in opened:
        for name, value in values.items():
            if name == "attrs":
                attrs = dict(result.get("attrs") or {})
                for key, attr in value.items():
                    if attr is None:
                        attrs.pop(key, None)
                    else:
                        attrs[key] = attr
                result["attrs"] = attrs
            else:
                result[name] = value
    result.pop("sealed", None)
    return result
