"""Events: long work that is opened, updated and closed, and its merged current state."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pushgod.model import fields as f
from pushgod.model import sealing
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import check_entity_id
from pushgod.model.merge_patch import merge_patch
from pushgod.model.messages import CREDENTIAL_FIELDS, ChannelAuth, parse_credentials
from pushgod.model.times import parse_timestamp


class EventAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    CLOSE = "close"


class EventState(StrEnum):
    ONGOING = "ONGOING"
    CLOSED = "CLOSED"


_PAYLOAD: f.Schema = {
    "thing_id": f.WireField(f.Kind.STRING, "Scope the event to this Thing of the channel."),
    "event_time": f.WireField(f.Kind.TIMESTAMP, "When this change happened (unix s or ms)."),
    "title": f.WireField(f.Kind.STRING, "Title; required on create."),
    "description": f.WireField(f.Kind.STRING, "Longer description."),
    "status": f.WireField(f.Kind.STRING, "Short status, at most 24 characters."),
    "message": f.WireField(f.Kind.STRING, "What happened, at most 512 characters."),
    "severity": f.WireField(f.Kind.STRING, "critical, high, normal or low."),
    "tags": f.WireField(f.Kind.STRINGS, "Up to 32 tags of at most 64 bytes; replaces the tags."),
    "images": f.WireField(f.Kind.STRINGS, "Up to 32 image URLs; replaces the images."),
    "ciphertext": f.WireField(f.Kind.STRING, "Opaque end-to-end encrypted payload, kept as is."),
    "attrs": f.WireField(
        f.Kind.OBJECT,
        "Merge-patch of attributes: scalar or one-level object values, null deletes a key.",
    ),
    "metadata": f.WireField(f.Kind.OBJECT, "Scalar values only; replaces the metadata."),
    "sealed": f.WireField(f.Kind.OBJECTS, sealing.SEALED_FIELD),
}
_EVENT_ID = {"event_id": f.WireField(f.Kind.STRING, "The event's id, as returned by create.")}
_STARTED = {"started_at": f.WireField(f.Kind.TIMESTAMP, "Start time; defaults to event_time.")}
_ENDED = {"ended_at": f.WireField(f.Kind.TIMESTAMP, "End time; defaults to event_time.")}

EVENT_SCHEMAS: dict[EventAction, f.Schema] = {
    EventAction.CREATE: CREDENTIAL_FIELDS | _PAYLOAD | _STARTED,
    EventAction.UPDATE: CREDENTIAL_FIELDS | _EVENT_ID | _PAYLOAD,
    EventAction.CLOSE: CREDENTIAL_FIELDS | _EVENT_ID | _PAYLOAD | _ENDED,
}


@dataclass(frozen=True, slots=True)
class EventIntent:
    """One validated create, update or close; None means "not given, keep as is"."""

    action: EventAction
    channel_id: str
    op_id: str | None
    event_id: str | None
    thing_id: str | None
    event_time: int
    title: str | None
    description: str | None
    status: str
    message: str
    severity: f.Severity
    tags: tuple[str, ...] | None
    images: tuple[str, ...] | None
    ciphertext: str | None
    started_at: int | None
    ended_at: int | None
    attrs: dict[str, Any] | None
    metadata: dict[str, Any] | None
    sealed: tuple[dict[str, Any], ...] | None = None

    def changes(self) -> dict[str, Any]:
        """The fields this request set, as recorded in the event's list of updates."""
        skip = {"action", "channel_id", "op_id", "event_id"}
        result = {"action": self.action.value, **f.given_fields(self, skip)}
        return result


EVENT_REQUIRED: dict[EventAction, tuple[str, ...]] = {
    EventAction.CREATE: ("channel_id", "title", "status", "message", "severity", "event_time"),
    EventAction.UPDATE: ("channel_id", "event_id", "status", "message", "severity", "event_time"),
    EventAction.CLOSE: ("channel_id", "event_id", "status", "message", "severity", "event_time"),
}
"""The fields each event request must carry (a sealed title or message stands for its field)."""


def parse_event(action: EventAction, body: object) -> tuple[ChannelAuth, EventIntent]:
    data = f.check_shape(body, EVENT_SCHEMAS[action])
    auth, op_id = parse_credentials(data)
    event_id = f.optional_text(data.get("event_id"))
    if action is not EventAction.CREATE:
        if event_id is None:
            raise PushgodError(ErrorCode.EVENT_ID_REQUIRED, "event_id is required")
        check_entity_id(event_id, "event_id", ErrorCode.INVALID_EVENT_ID)
    thing_id = f.optional_text(data.get("thing_id"))
    if thing_id is not None:
        check_entity_id(thing_id, "thing_id", ErrorCode.INVALID_THING_ID)
    event_time = parse_timestamp(data.get("event_time", ""), "event_time")
    if event_time is None:
        raise PushgodError(ErrorCode.EVENT_TIME_REQUIRED, "event_time is required")
    sealed = sealing.parse_sealed(data.get("sealed"), "event")
    title = f.optional_text(data.get("title"))
    if action is EventAction.CREATE and title is None:
        if not sealing.seals(sealed, "title"):
            raise PushgodError(ErrorCode.TITLE_REQUIRED, "title is required when creating an event")
        title = sealing.PLACEHOLDERS["event"]["title"]
    if sealing.seals(sealed, "message") and f.optional_text(data.get("message")) is None:
        data["message"] = sealing.PLACEHOLDERS["event"]["message"]
    intent = EventIntent(
        action=action,
        channel_id=auth.channel_id,
        op_id=op_id,
        event_id=event_id,
        thing_id=thing_id,
        event_time=event_time,
        title=title,
        description=f.optional_text(data.get("description")),
        status=_required_limited(data, "status", f.MAX_STATUS_CHARS, ErrorCode.INVALID_STATUS),
        message=_required_limited(
            data, "message", f.MAX_EVENT_MESSAGE_CHARS, ErrorCode.INVALID_MESSAGE
        ),
        severity=f.strict_severity(data.get("severity")),
        tags=f.tags(data["tags"]) if "tags" in data else None,
        images=f.images(data["images"]) if "images" in data else None,
        ciphertext=f.optional_text(data.get("ciphertext")),
        started_at=parse_timestamp(data.get("started_at", ""), "started_at"),
        ended_at=parse_timestamp(data.get("ended_at", ""), "ended_at"),
        attrs=f.attrs_patch(data.get("attrs")),
        metadata=f.metadata(data["metadata"]) if "metadata" in data else None,
        sealed=sealed,
    )
    return auth, intent


def _required_limited(data: dict[str, Any], name: str, max_chars: int, code: ErrorCode) -> str:
    text = f.required_text(data.get(name), name, code)
    if len(text) > max_chars:
        raise PushgodError(code, f"{name} must be at most {max_chars} characters")
    return text


@dataclass(frozen=True, slots=True)
class Event:
    """An event's merged current state."""

    event_id: str
    channel_id: str
    thing_id: str | None
    state: EventState
    title: str
    description: str | None
    status: str
    message: str
    severity: f.Severity
    tags: tuple[str, ...]
    images: tuple[str, ...]
    ciphertext: str | None
    attrs: dict[str, Any]
    metadata: dict[str, Any]
    started_at: int
    ended_at: int | None
    event_time: int
    created_at: int
    updated_at: int
    sealed: tuple[dict[str, Any], ...] = ()
    """Envelopes of the sealed fields, oldest first (sealing.accumulate)."""

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tags"], data["images"] = list(self.tags), list(self.images)
        if self.sealed:
            data["sealed"] = list(self.sealed)
        else:
            del data["sealed"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return cls(
            **data
            | {
                "state": EventState(data["state"]),
                "severity": f.Severity(data["severity"]),
                "tags": tuple(data["tags"]),
                "images": tuple(data["images"]),
                "sealed": tuple(data.get("sealed", ())),
            }
        )


def open_event(intent: EventIntent, event_id: str, now_ms: int) -> Event:
    assert intent.action is EventAction.CREATE and intent.title is not None
    return Event(
        event_id=event_id,
        channel_id=intent.channel_id,
        thing_id=intent.thing_id,
        state=EventState.ONGOING,
        title=intent.title,
        description=intent.description,
        status=intent.status,
        message=intent.message,
        severity=intent.severity,
        tags=intent.tags or (),
        images=intent.images or (),
        ciphertext=intent.ciphertext,
        attrs=merge_patch({}, intent.attrs or {}),
        metadata=intent.metadata or {},
        started_at=intent.started_at if intent.started_at is not None else intent.event_time,
        ended_at=None,
        event_time=intent.event_time,
        created_at=now_ms,
        updated_at=now_ms,
        sealed=intent.sealed or (),
    )


def advance_event(current: Event, intent: EventIntent, now_ms: int) -> Event:
    """The state after an update or close; refuses to change a closed event."""
    if current.state is EventState.CLOSED:
        raise PushgodError(
            ErrorCode.EVENT_CLOSED, f"event {current.event_id} is closed and cannot change"
        )
    closing = intent.action is EventAction.CLOSE
    return dataclasses.replace(
        current,
        thing_id=intent.thing_id if intent.thing_id is not None else current.thing_id,
        state=EventState.CLOSED if closing else EventState.ONGOING,
        title=intent.title if intent.title is not None else current.title,
        description=_keep(intent.description, current.description),
        status=intent.status,
        message=intent.message,
        severity=intent.severity,
        tags=intent.tags if intent.tags is not None else current.tags,
        images=intent.images if intent.images is not None else current.images,
        ciphertext=_keep(intent.ciphertext, current.ciphertext),
        attrs=merge_patch(current.attrs, intent.attrs) if intent.attrs else current.attrs,
        metadata=intent.metadata if intent.metadata is not None else current.metadata,
        ended_at=(intent.ended_at if intent.ended_at is not None else intent.event_time)
        if closing
        else None,
        event_time=intent.event_time,
        updated_at=now_ms,
        sealed=tuple(
            sealing.accumulate(
                current.sealed, intent.sealed or (), sealing.given_paths(intent, "event")
            )
        ),
    )


def _keep(new: str | None, old: str | None) -> str | None:
    return new if new is not None else old
