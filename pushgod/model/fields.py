"""Wire schemas and the field rules shared by Messages, Events and Things (PushGo's limits).

A schema is an ordered table of fields with a JSON kind and a description. The same
table checks request shapes here and describes them in OpenAPI (and later MCP).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from pushgod.model.errors import ErrorCode, PushgodError

JSONObject: TypeAlias = dict[str, Any]

MAX_PAGE = 500
"""Items a read returns at most; DEFAULT_PAGE when the caller does not say."""
DEFAULT_PAGE = 50
MAX_LIST_ITEMS = 32
MAX_TAG_BYTES = 64
MAX_IMAGE_BYTES = 2048
MAX_METADATA_KEY_BYTES = 64
MAX_METADATA_VALUE_BYTES = 512
MAX_STATUS_CHARS = 24
MAX_EVENT_MESSAGE_CHARS = 512
MAX_EXTERNAL_ID_KEY_CHARS = 64
MAX_EXTERNAL_ID_VALUE_CHARS = 256


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise PushgodError(ErrorCode.INVALID_JSON_DATA, f"field {key!r} appears twice")
            seen.add(key)
    return result


def _no_constants(name: str) -> Any:
    raise PushgodError(ErrorCode.INVALID_JSON_SYNTAX, f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: valid JSON syntax, but no number we can store
        raise PushgodError(ErrorCode.INVALID_JSON_SYNTAX, f"the number {text} is out of range")
    return value


# One decoder for every call: json.loads with hooks builds a new one each time, which
# costs more than decoding a send's body.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_no_constants, parse_float=_finite
)


compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""JSON without spaces, non-ASCII kept as is: how pushgod writes JSON everywhere (stored
rows, replies, streams, MQTT). One encoder: json.dumps with options builds one per call."""


def strict_json(raw: str | bytes, what: str = "the body") -> object:
    """Parsed JSON without duplicate keys, NaN or infinities; `invalid_json_syntax` otherwise.

    HTTP bodies and MQTT payloads are read by this one parser.
    """
    try:
        if isinstance(raw, bytes):  # as json.loads does: UTF-8, or UTF-16/32 told by the NULs
            raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return _DECODER.decode(raw)
    except (ValueError, RecursionError):
        raise PushgodError(ErrorCode.INVALID_JSON_SYNTAX, f"{what} is not valid JSON") from None


class Kind(StrEnum):
    STRING = "string"
    TIMESTAMP = "timestamp"
    STRINGS = "strings"
    OBJECT = "object"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    OBJECTS = "objects"


@dataclass(frozen=True, slots=True)
class WireField:
    kind: Kind
    description: str
    choices: tuple[str, ...] = ()


Schema: TypeAlias = dict[str, WireField]

_KIND_SCHEMAS: dict[Kind, dict[str, Any]] = {
    Kind.STRING: {"type": "string"},
    Kind.TIMESTAMP: {"type": ["integer", "string"], "description": "unix time in s or ms"},
    Kind.STRINGS: {"type": "array", "items": {"type": "string"}},
    Kind.OBJECT: {"type": "object"},
    Kind.INTEGER: {"type": "integer"},
    Kind.BOOLEAN: {"type": "boolean"},
    Kind.OBJECTS: {"type": "array", "items": {"type": "object"}},
}


def json_schema(schema: Schema, required: Sequence[str]) -> dict[str, Any]:
    """The JSON Schema of a request object: OpenAPI bodies and MCP tool inputs."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": {
            name: _KIND_SCHEMAS[field.kind]
            | {"description": field.description}
            | ({"enum": list(field.choices)} if field.choices else {})
            for name, field in schema.items()
        },
    }


def given_fields(intent: object, skip: set[str]) -> dict[str, Any]:
    """The fields of a dataclass that were given (not None), lists as JSON lists."""
    result: dict[str, Any] = {}
    for name in _field_names(type(intent)):
        value = getattr(intent, name)
        if name not in skip and value is not None:
            result[name] = list(value) if isinstance(value, tuple) else value
    return result


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    """A dataclass's field names, kept: dataclasses.fields() builds them again on every
    call, and this runs for every device message."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(item.name for item in dataclasses.fields(kind))
    return names


def check_shape(data: object, schema: Schema) -> dict[str, Any]:
    """The request object with nulls dropped, or `invalid_json_data` naming the offending field.

    Unknown fields are refused (PushGo's `deny_unknown_fields`), and every value must
    have its field's JSON type. A null is the same as an absent field.
    """
    if not isinstance(data, dict):
        raise PushgodError(ErrorCode.INVALID_JSON_DATA, "the request body must be a JSON object")
    result: dict[str, Any] = {}
    for name, value in data.items():
        field = schema.get(name)
        if field is None:
            raise PushgodError(ErrorCode.INVALID_JSON_DATA, f"unknown field {name!r}")
        if value is None:
            continue
        if not _has_kind(value, field.kind):
            raise PushgodError(
                ErrorCode.INVALID_JSON_DATA, f"{name} must be {_KIND_WORDS[field.kind]}"
            )
        if not is_unicode(value):
            raise PushgodError(
                ErrorCode.INVALID_JSON_DATA, f"{name} holds text that is not valid Unicode"
            )
        result[name] = value
    return result


def is_unicode(value: object) -> bool:
    """False when a string in `value` has a lone surrogate: JSON allows one (`"\\ud800"`),
    UTF-8 (hence SQLite and every length check in bytes) does not. Iterative: any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            pending += item
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return True


_KIND_WORDS = {
    Kind.STRING: "a string",
    Kind.TIMESTAMP: "an integer or a numeric string",
    Kind.STRINGS: "an array of strings",
    Kind.OBJECT: "a JSON object",
    Kind.INTEGER: "an integer",
    Kind.BOOLEAN: "true or false",
    Kind.OBJECTS: "an array of JSON objects",
}


def _has_kind(value: object, kind: Kind) -> bool:
    if kind is Kind.STRING:
        return isinstance(value, str)
    if kind is Kind.TIMESTAMP:
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    if kind is Kind.STRINGS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind is Kind.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Kind.BOOLEAN:
        return isinstance(value, bool)
    if kind is Kind.OBJECTS:
        return isinstance(value, list) and all(isinstance(item, dict) for item in value)
    return isinstance(value, dict)


def optional_text(value: str | None) -> str | None:
    """Trimmed text, or None when absent or blank (PushGo ignores blank optional strings)."""
    if value is None:
        return None
    text = value.strip()
    return text or None


def required_text(value: str | None, field: str, code: ErrorCode) -> str:
    text = optional_text(value)
    if text is None:
        raise PushgodError(code, f"{field} is required and must not be blank")
    return text


def string_list(
    values: list[str] | None, field: str, max_item_bytes: int, code: ErrorCode
) -> tuple[str, ...]:
    """At most 32 non-empty trimmed items of at most `max_item_bytes`, duplicates dropped."""
    if values is None:
        return ()
    if len(values) > MAX_LIST_ITEMS:
        raise PushgodError(code, f"{field} must have at most {MAX_LIST_ITEMS} items")
    seen: dict[str, None] = {}
    for raw in values:
        item = raw.strip()
        if not item:
            raise PushgodError(code, f"{field} must not contain empty items")
        if len(item.encode()) > max_item_bytes:
            raise PushgodError(code, f"each item of {field} must be at most {max_item_bytes} bytes")
        seen.setdefault(item, None)
    return tuple(seen)


def tags(values: list[str] | None) -> tuple[str, ...]:
    return string_list(values, "tags", MAX_TAG_BYTES, ErrorCode.INVALID_TAGS)


def images(values: list[str] | None) -> tuple[str, ...]:
    return string_list(values, "images", MAX_IMAGE_BYTES, ErrorCode.INVALID_IMAGES)


def image_url(value: str | None, field: str) -> str | None:
    text = optional_text(value)
    if text is not None and len(text.encode()) > MAX_IMAGE_BYTES:
        raise PushgodError(
            ErrorCode.INVALID_IMAGES, f"{field} must be at most {MAX_IMAGE_BYTES} bytes"
        )
    return text


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def metadata(value: Mapping[str, Any] | None) -> JSONObject:
    """Scalar values only; keys 1-64 bytes and values 1-512 bytes, keys unique once trimmed."""
    if value is None:
        return {}
    result: JSONObject = {}
    for raw_key, item in value.items():
        key = raw_key.strip()
        if not key or len(key.encode()) > MAX_METADATA_KEY_BYTES:
            raise PushgodError(
                ErrorCode.INVALID_METADATA,
                f"metadata keys must be 1-{MAX_METADATA_KEY_BYTES} bytes once trimmed",
            )
        if key in result:
            raise PushgodError(ErrorCode.INVALID_METADATA, f"metadata key {key!r} is repeated")
        if not _is_scalar(item) or item is None:
            raise PushgodError(
                ErrorCode.INVALID_METADATA,
                f"metadata[{key!r}] must be a string, number or boolean",
            )
        size = len((item if isinstance(item, str) else json.dumps(item)).encode())
        if not 1 <= size <= MAX_METADATA_VALUE_BYTES:
            raise PushgodError(
                ErrorCode.INVALID_METADATA,
                f"metadata[{key!r}] must be 1-{MAX_METADATA_VALUE_BYTES} bytes",
            )
        result[key] = item
    return result


def attrs_patch(value: Mapping[str, Any] | None) -> JSONObject | None:
    """An attrs merge-patch: scalars, null (delete) or a one-level object of those; no arrays."""
    if value is None:
        return None
    for key, item in value.items():
        if not key.strip():
            raise PushgodError(ErrorCode.INVALID_ATTRS, "attrs keys must not be empty")
        if item is None or _is_scalar(item):
            continue
        if isinstance(item, dict):
            for inner_key, inner in item.items():
                if not inner_key.strip():
                    raise PushgodError(ErrorCode.INVALID_ATTRS, f"attrs[{key!r}] has an empty key")
                if inner is not None and not _is_scalar(inner):
                    raise PushgodError(
                        ErrorCode.INVALID_ATTRS,
                        f"attrs[{key!r}][{inner_key!r}] must be a string, number, boolean or null",
                    )
            continue
        raise PushgodError(
            ErrorCode.INVALID_ATTRS,
            f"attrs[{key!r}] must be a string, number, boolean, null or a one-level object",
        )
    return dict(value)


_EXTERNAL_ID_KEY = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_EXTERNAL_ID_KEY_CHARS}}}")


def external_ids_patch(value: Mapping[str, Any] | None) -> JSONObject | None:
    """Keys 1-64 of `[A-Za-z0-9_.:-]` (lower-cased); values a string of 1-256 or null (delete)."""
    if value is None:
        return None
    result: JSONObject = {}
    for raw_key, item in value.items():
        if not _EXTERNAL_ID_KEY.fullmatch(raw_key):
            raise PushgodError(
                ErrorCode.INVALID_EXTERNAL_IDS,
                "external_ids keys must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', ':', '-'",
            )
        if item is not None:
            if not isinstance(item, str) or not item.strip():
                raise PushgodError(
                    ErrorCode.INVALID_EXTERNAL_IDS,
                    f"external_ids[{raw_key!r}] must be a non-empty string or null",
                )
            item = item.strip()
            if len(item) > MAX_EXTERNAL_ID_VALUE_CHARS:
                raise PushgodError(
                    ErrorCode.INVALID_EXTERNAL_IDS,
                    f"external_ids[{raw_key!r}] must be at most "
                    f"{MAX_EXTERNAL_ID_VALUE_CHARS} characters",
                )
        result[raw_key.lower()] = item
    return result


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


def lenient_severity(value: str | None) -> Severity:
    """Message severity as PushGo reads it: case-insensitive, unknown values become normal."""
    try:
        return Severity((value or "normal").strip().lower())
    except ValueError:
        return Severity.NORMAL


def strict_severity(value: str | None, field: str = "severity") -> Severity:
    """Event severity: one of critical, high, normal, low (case-insensitive)."""
    text = required_text(value, field, ErrorCode.INVALID_SEVERITY)
    try:
        return Severity(text.lower())
    except ValueError:
        raise PushgodError(
            ErrorCode.INVALID_SEVERITY, f"{field} must be one of critical, high, normal, low"
        ) from None
