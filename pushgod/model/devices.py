"""What a device may send over MQTT, and how each topic's payload becomes a write.

Topics (docs/mqtt.md), under a configurable root:

    <root>/things/<thing_id>/in/state        JSON merge-patch of the Thing's attrs
    <root>/things/<thing_id>/in/attr/<key>   one scalar attribute (`mosquitto_pub -m 42`)
    <root>/things/<thing_id>/in/event        a Message, or opens, updates or closes an Event
    <root>/things/<thing_id>/in/meta         the device's self-description
    <root>/things/<thing_id>/availability    online or offline (birth and last will)

Each payload is turned into the same PushGo request body an HTTP sender would post, and
checked by the same parser, so MQTT input meets exactly the HTTP rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pushgod.model import fields as f
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.homeassistant import HINTS
from pushgod.model.ids import check_entity_id
from pushgod.model.messages import MessageIntent, parse_message
from pushgod.model.things import ThingAction, ThingIntent, parse_thing

DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""A device's thing_id, which is also its MQTT username: never `+ # / $` (peers.md §3.3)."""

MAX_PAYLOAD_BYTES = 32 * 1024
"""The largest MQTT payload accepted, the same as an HTTP request body."""

AVAILABILITY = ("online", "offline")
META_HINTS = tuple(HINTS)
"""Per-attribute hints `in/meta` may give, as Home Assistant discovery reads them."""
MAX_HINT_CHARS = 64


class Inbound(StrEnum):
    STATE = "in/state"
    ATTR = "in/attr"
    EVENT = "in/event"
    META = "in/meta"
    AVAILABILITY = "availability"


@dataclass(frozen=True, slots=True)
class Topic:
    thing_id: str
    kind: Inbound
    key: str | None = None  # the attribute of in/attr/<key>


def check_device_id(value: str) -> str:
    if not DEVICE_ID.fullmatch(value):
        raise PushgodError(
            ErrorCode.INVALID_THING_ID,
            "a device's thing_id must be 1-63 characters of a-z, 0-9, '_', '-', "
            "starting with a letter or digit",
        )
    return value


def parse_topic(root: str, topic: str) -> Topic:
    """The Thing and input kind a device topic names; raises `invalid_topic` otherwise."""
    prefix = f"{root}/things/"
    rest = topic[len(prefix) :].split("/") if topic.startswith(prefix) else []
    if len(rest) >= 2 and DEVICE_ID.fullmatch(rest[0]):
        thing_id, path = rest[0], rest[1:]
        if path == ["availability"]:
            return Topic(thing_id, Inbound.AVAILABILITY)
        if len(path) == 2 and path[0] == "in" and path[1] in ("state", "event", "meta"):
            return Topic(thing_id, Inbound(f"in/{path[1]}"))
        if len(path) == 3 and path[:2] == ["in", "attr"] and path[2].strip():
            return Topic(thing_id, Inbound.ATTR, path[2])
    raise PushgodError(ErrorCode.INVALID_TOPIC, "the topic is not one of pushgod's device topics")


def thing_update(topic: Topic, payload: bytes, channel_id: str, now_ms: int) -> ThingIntent:
    """The Thing update a state, attr, meta or availability payload asks for."""
    body: dict[str, Any] = {"channel_id": channel_id, "thing_id": topic.thing_id}
    body["observed_at"] = now_ms
    extra: dict[str, Any] = {"seen_at": now_ms}
    if topic.kind is Inbound.STATE:
        body["attrs"] = _json_object(payload)
    elif topic.kind is Inbound.ATTR:
        assert topic.key is not None
        body["attrs"] = {topic.key: _scalar(payload)}
    elif topic.kind is Inbound.META:
        meta = _json_object(payload)
        unknown = set(meta) - {"title", "name", "description", "tags", "attrs"}
        if unknown:
            raise PushgodError(
                ErrorCode.INVALID_FIELD, f"unknown field {sorted(unknown)[0]!r} in meta"
            )
        if "name" in meta:  # Homie's and peers' word for it
            meta.setdefault("title", meta.pop("name"))
        for name in ("title", "description", "tags"):
            if name in meta:
                body[name] = meta[name]
        if "attrs" in meta:
            extra["attr_meta"] = _attr_meta(meta["attrs"])
    else:
        extra["availability"] = _availability(payload)
    _, intent = parse_thing(ThingAction.UPDATE, body, **extra)
    return intent


@dataclass(frozen=True, slots=True)
class EventRequest:
    """An `in/event` that names an Event: opened if new, else updated, or closed.

    `body` has no severity when the device gave none: an update keeps the Event's.
    """

    event_id: str
    body: dict[str, Any]
    close: bool


def device_event(
    topic: Topic, payload: bytes, channel_id: str, now_ms: int
) -> MessageIntent | EventRequest:
    """`{title, body|message, severity, status?, event_id?, close?}` as a Message or Event.

    Without `event_id` it is a Message about the Thing. With one, the device names its
    own Event (it cannot learn a generated id): the first payload opens it, later ones
    update it, and `close: true` closes it.
    """
    data = _json_object(payload)
    text = data.get("message", data.get("body"))
    severity = data.get("severity")
    if "event_id" not in data:
        unknown = set(data) - {"title", "body", "message", "severity"}
        if unknown:
            raise PushgodError(
                ErrorCode.INVALID_FIELD, f"unknown field {sorted(unknown)[0]!r} in a message"
            )
        message = {"channel_id": channel_id, "thing_id": topic.thing_id, "occurred_at": now_ms}
        message |= {"title": data.get("title"), "body": text, "severity": severity}
        _, intent = parse_message({k: v for k, v in message.items() if v is not None}, now_ms)
        return intent
    event_id = data["event_id"]
    if not isinstance(event_id, str):
        raise PushgodError(ErrorCode.INVALID_EVENT_ID, "event_id must be a string")
    check_entity_id(event_id, "event_id", ErrorCode.INVALID_EVENT_ID)
    close = data.get("close", False)
    if not isinstance(close, bool):
        raise PushgodError(ErrorCode.INVALID_FIELD, "close must be true or false")
    unknown = set(data) - {"title", "body", "message", "severity", "status", "event_id", "close"}
    if unknown:
        raise PushgodError(
            ErrorCode.INVALID_FIELD, f"unknown field {sorted(unknown)[0]!r} in an event"
        )
    status = data.get("status", "closed" if close else "ongoing")
    body = {
        "channel_id": channel_id,
        "event_id": event_id,
        "thing_id": topic.thing_id,
        "event_time": now_ms,
        "title": data.get("title"),
        "status": status,
        "message": text if text is not None else data.get("title", status),
        "severity": severity,  # None: the Event's own, or normal for a new one
    }
    return EventRequest(event_id, {k: v for k, v in body.items() if v is not None}, close)


def _json_object(payload: bytes) -> dict[str, Any]:
    """A JSON object read as strictly as an HTTP body (no duplicate keys, NaN, 1e400)."""
    value = f.strict_json(payload, "the payload")
    if not isinstance(value, dict):
        raise PushgodError(ErrorCode.INVALID_JSON_DATA, "the payload must be a JSON object")
    if not f.is_unicode(value):  # a lone surrogate ("\ud800") cannot be stored as UTF-8
        raise PushgodError(ErrorCode.INVALID_JSON_DATA, "the payload holds invalid Unicode")
    return value


def _scalar(payload: bytes) -> Any:
    """`42`, `21.5`, `true`, `null` as JSON; anything else as trimmed text; empty deletes."""
    try:
        text = payload.decode().strip()
    except UnicodeDecodeError:
        raise PushgodError(ErrorCode.INVALID_ATTRS, "the payload is not UTF-8 text") from None
    if not text:
        return None
    try:
        value = f.strict_json(text)
    except PushgodError:
        return text
    if isinstance(value, dict | list):
        raise PushgodError(
            ErrorCode.INVALID_ATTRS, "in/attr takes one scalar; send objects to in/state"
        )
    if not f.is_unicode(value):
        raise PushgodError(ErrorCode.INVALID_ATTRS, "the payload holds invalid Unicode")
    return value


def _availability(payload: bytes) -> str:
    text = payload.decode(errors="replace").strip().lower()
    if text not in AVAILABILITY:
        raise PushgodError(ErrorCode.INVALID_FIELD, "availability must be online or offline")
    return text


def _attr_meta(value: object) -> dict[str, dict[str, str]]:
    """`{"temp": {"unit": "°C", "device_class": "temperature"}}`: known hints, short strings."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > f.MAX_PAGE:
        raise PushgodError(ErrorCode.INVALID_ATTRS, "meta attrs must be an object of hints")
    result: dict[str, dict[str, str]] = {}
    for key, hints in value.items():
        if not isinstance(hints, dict) or not key.strip():
            raise PushgodError(ErrorCode.INVALID_ATTRS, f"meta attrs[{key!r}] must be an object")
        for name, hint in hints.items():
            if name not in META_HINTS:
                raise PushgodError(
                    ErrorCode.INVALID_ATTRS,
                    f"meta attrs[{key!r}] may only give {', '.join(META_HINTS)}",
                )
            if not isinstance(hint, str) or not 0 < len(hint) <= MAX_HINT_CHARS:
                raise PushgodError(
                    ErrorCode.INVALID_ATTRS,
                    f"meta attrs[{key!r}][{name!r}] must be 1-{MAX_HINT_CHARS} characters",
                )
        result[key] = dict(hints)
    return result
