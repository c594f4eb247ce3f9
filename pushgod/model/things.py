"""Things: persistent objects with state (a NAS, a sensor, a backup job) and their rules."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pushgod.model import fields as f
from pushgod.model import sealing
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import check_entity_id
from pushgod.model.merge_patch import compose, merge_patch
from pushgod.model.messages import CREDENTIAL_FIELDS, ChannelAuth, parse_credentials
from pushgod.model.times import parse_timestamp


class ThingAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ARCHIVE = "archive"
    DELETE = "delete"


class ThingState(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


_PAYLOAD: f.Schema = {
    "title": f.WireField(f.Kind.STRING, "Title."),
    "description": f.WireField(f.Kind.STRING, "Description."),
    "tags": f.WireField(f.Kind.STRINGS, "Up to 32 tags of at most 64 bytes; replaces the tags."),
    "external_ids": f.WireField(
        f.Kind.OBJECT,
        "Merge-patch of ids in other systems: keys 1-64 of [A-Za-z0-9_.:-], values strings "
        "of at most 256 characters, null deletes.",
    ),
    "location_type": f.WireField(
        f.Kind.STRING, "physical, geo, cloud, datacenter or logical; needs location_value."
    ),
    "location_value": f.WireField(
        f.Kind.STRING,
        "physical: free text; geo: 'lat,lng'; cloud: provider:region[:zone]; "
        "datacenter: site[:room[:rack]]; logical: a/b/c.",
    ),
    "primary_image": f.WireField(f.Kind.STRING, "Image URL of at most 2048 bytes."),
    "images": f.WireField(f.Kind.STRINGS, "Up to 32 image URLs; replaces the images."),
    "ciphertext": f.WireField(f.Kind.STRING, "Opaque end-to-end encrypted payload, kept as is."),
    "observed_at": f.WireField(f.Kind.TIMESTAMP, "When this state was observed (unix s or ms)."),
    "attrs": f.WireField(
        f.Kind.OBJECT,
        "Merge-patch of attributes: scalar or one-level object values, null deletes a key.",
    ),
    "metadata": f.WireField(f.Kind.OBJECT, "Scalar values only; replaces the metadata."),
    "sealed": f.WireField(f.Kind.OBJECTS, sealing.SEALED_FIELD),
}
_THING_ID = {"thing_id": f.WireField(f.Kind.STRING, "The thing's id, as returned by create.")}

THING_SCHEMAS: dict[ThingAction, f.Schema] = {
    ThingAction.CREATE: CREDENTIAL_FIELDS
    | _PAYLOAD
    | {"created_at": f.WireField(f.Kind.TIMESTAMP, "Creation time; defaults to observed_at.")},
    ThingAction.UPDATE: CREDENTIAL_FIELDS | _THING_ID | _PAYLOAD,
    ThingAction.ARCHIVE: CREDENTIAL_FIELDS | _THING_ID | _PAYLOAD,
    ThingAction.DELETE: CREDENTIAL_FIELDS
    | _THING_ID
    | _PAYLOAD
    | {"deleted_at": f.WireField(f.Kind.TIMESTAMP, "Deletion time; defaults to observed_at.")},
}

LOCATION_TYPES = ("physical", "geo", "cloud", "datacenter", "logical")
_LOCATION_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MAX_PHYSICAL_CHARS = 256


@dataclass(frozen=True, slots=True)
class ThingIntent:
    """One validated create, update, archive or delete; None means "keep as is"."""

    action: ThingAction
    channel_id: str
    op_id: str | None
    thing_id: str | None
    title: str | None
    description: str | None
    tags: tuple[str, ...] | None
    external_ids: dict[str, Any] | None
    location: tuple[str, str] | None
    primary_image: str | None
    images: tuple[str, ...] | None
    ciphertext: str | None
    observed_at: int
    created_at: int | None
    deleted_at: int | None
    attrs: dict[str, Any] | None
    metadata: dict[str, Any] | None
    sealed: tuple[dict[str, Any], ...] | None = None
    # Set by devices over MQTT only (model/devices.py), never by the HTTP schema.
    availability: str | None = None
    seen_at: int | None = None
    attr_meta: dict[str, dict[str, str]] | None = None

    def changes(self) -> dict[str, Any]:
        """The fields this request set, as recorded in the thing's history."""
        skip = {"action", "channel_id", "op_id", "thing_id", "location", "seen_at"}
        result = {"action": self.action.value, **f.given_fields(self, skip)}
        if self.location is not None:
            result["location_type"], result["location_value"] = self.location
        return result


def combine_changes(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """What two consecutive updates set together (each as ThingIntent.changes records it):
    the later value of each field but observed_at, which only moves forward; attrs and
    external_ids, merge-patches, composed."""
    combined = earlier | later
    if "observed_at" in earlier and "observed_at" in later:  # as _merge keeps it
        combined["observed_at"] = max(earlier["observed_at"], later["observed_at"])
    for name in ("attrs", "external_ids"):
        if name in earlier and name in later:
            combined[name] = compose(earlier[name], later[name])
    return combined


def parse_thing(
    action: ThingAction,
    body: object,
    *,
    availability: str | None = None,
    seen_at: int | None = None,
    attr_meta: dict[str, dict[str, str]] | None = None,
) -> tuple[ChannelAuth, ThingIntent]:
    """A request body checked as PushGo's API does; the keywords are what a device's MQTT
    message adds (model/devices.py), which no body may set."""
    data = f.check_shape(body, THING_SCHEMAS[action])
    auth, op_id = parse_credentials(data)
    thing_id = f.optional_text(data.get("thing_id"))
    if action is not ThingAction.CREATE:
        if thing_id is None:
            raise PushgodError(ErrorCode.THING_ID_REQUIRED, "thing_id is required")
        check_entity_id(thing_id, "thing_id", ErrorCode.INVALID_THING_ID)
    observed_at = parse_timestamp(data.get("observed_at", ""), "observed_at")
    if observed_at is None:
        raise PushgodError(ErrorCode.OBSERVED_AT_REQUIRED, "observed_at is required")
    attrs = f.attrs_patch(data.get("attrs"))
    if attrs is not None and "manufacturer" in attrs:
        _check_manufacturer(attrs["manufacturer"])
    intent = ThingIntent(
        action=action,
        channel_id=auth.channel_id,
        op_id=op_id,
        thing_id=thing_id,
        title=f.optional_text(data.get("title")),
        description=f.optional_text(data.get("description")),
        tags=f.tags(data["tags"]) if "tags" in data else None,
        external_ids=f.external_ids_patch(data.get("external_ids")),
        location=parse_location(data.get("location_type"), data.get("location_value")),
        primary_image=f.image_url(data.get("primary_image"), "primary_image"),
        images=f.images(data["images"]) if "images" in data else None,
        ciphertext=f.optional_text(data.get("ciphertext")),
        observed_at=observed_at,
        created_at=parse_timestamp(data.get("created_at", ""), "created_at"),
        deleted_at=parse_timestamp(data.get("deleted_at", ""), "deleted_at"),
        attrs=attrs,
        metadata=f.metadata(data["metadata"]) if "metadata" in data else None,
        sealed=sealing.parse_sealed(data.get("sealed"), "thing"),
        availability=availability,
        seen_at=seen_at,
        attr_meta=attr_meta,
    )
    return auth, intent


def _check_manufacturer(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or any(len(key) > 64 for key in value):
        raise PushgodError(
            ErrorCode.INVALID_ATTRS,
            "attrs['manufacturer'] must be an object with keys of at most 64 characters, or null",
        )


def parse_location(kind: str | None, value: str | None) -> tuple[str, str] | None:
    """A (type, normalised value) pair; type and value must come together."""
    kind, value = f.optional_text(kind), f.optional_text(value)
    if kind is None and value is None:
        return None
    if kind is None or value is None:
        raise PushgodError(
            ErrorCode.INVALID_LOCATION, "location_type and location_value must be given together"
        )
    kind = kind.lower()
    if kind == "physical":
        if len(value) > _MAX_PHYSICAL_CHARS:
            raise PushgodError(
                ErrorCode.INVALID_LOCATION,
                f"a physical location_value must be at most {_MAX_PHYSICAL_CHARS} characters",
            )
        return kind, value
    if kind == "geo":
        return kind, _geo(value)
    shapes = {"cloud": (":", 2, 3), "datacenter": (":", 1, 3), "logical": ("/", 1, 32)}
    if kind not in shapes:
        raise PushgodError(
            ErrorCode.INVALID_LOCATION, f"location_type must be one of {', '.join(LOCATION_TYPES)}"
        )
    separator, least, most = shapes[kind]
    parts = value.split(separator)
    if not least <= len(parts) <= most or not all(_LOCATION_TOKEN.fullmatch(p) for p in parts):
        raise PushgodError(
            ErrorCode.INVALID_LOCATION,
            f"a {kind} location_value must be {least}-{most} parts of [A-Za-z0-9_.-] "
            f"(at most 64 each) separated by {separator!r}",
        )
    return kind, separator.join(part.lower() for part in parts)


def _geo(value: str) -> str:
    try:
        lat_text, lng_text = value.split(",")
        lat, lng = float(lat_text), float(lng_text)
    except ValueError:
        raise PushgodError(
            ErrorCode.INVALID_LOCATION, "a geo location_value must be 'latitude,longitude'"
        ) from None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise PushgodError(
            ErrorCode.INVALID_LOCATION,
            "latitude must be within -90..90 and longitude within -180..180",
        )
    return f"{lat:.6f},{lng:.6f}"


@dataclass(frozen=True, slots=True)
class Thing:
    """A thing's merged current state."""

    thing_id: str
    channel_id: str
    state: ThingState
    title: str | None
    description: str | None
    tags: tuple[str, ...]
    external_ids: dict[str, Any]
    location_type: str | None
    location_value: str | None
    primary_image: str | None
    images: tuple[str, ...]
    ciphertext: str | None
    attrs: dict[str, Any]
    metadata: dict[str, Any]
    created_at: int
    updated_at: int
    observed_at: int
    archived_at: int | None
    deleted_at: int | None
    sealed: tuple[dict[str, Any], ...] = ()
    """Envelopes of the sealed attrs, oldest first (sealing.accumulate)."""
    availability: str | None = None
    """online or offline, as the Thing's device last reported it over MQTT; None: never."""
    last_seen_at: int | None = None
    """When the Thing's device last sent anything over MQTT."""
    attr_meta: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    """Per-attribute hints from the device's self-description: name, unit, device_class…"""

    def to_json(self) -> dict[str, Any]:
        """The state as JSON; nested objects are shared, not copied: states never mutate
        them (merge_patch builds new ones). Spelled out: dataclasses.asdict deep-copies,
        65 us a call on the development VM, a quarter of an MQTT update's budget."""
        data: dict[str, Any] = {
            "thing_id": self.thing_id,
            "channel_id": self.channel_id,
            "state": self.state.value,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "external_ids": self.external_ids,
            "location_type": self.location_type,
            "location_value": self.location_value,
            "primary_image": self.primary_image,
            "images": list(self.images),
            "ciphertext": self.ciphertext,
            "attrs": self.attrs,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "observed_at": self.observed_at,
            "archived_at": self.archived_at,
            "deleted_at": self.deleted_at,
        }
        if self.sealed:
            data["sealed"] = list(self.sealed)
        data["availability"] = self.availability
        data["last_seen_at"] = self.last_seen_at
        data["attr_meta"] = self.attr_meta
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Thing:
        return cls(
            **data
            | {
                "state": ThingState(data["state"]),
                "tags": tuple(data["tags"]),
                "images": tuple(data["images"]),
                "sealed": tuple(data.get("sealed", ())),
            }
        )


def create_thing(intent: ThingIntent, thing_id: str, now_ms: int) -> Thing:
    blank = Thing(
        thing_id=thing_id,
        channel_id=intent.channel_id,
        state=ThingState.ACTIVE,
        title=None,
        description=None,
        tags=(),
        external_ids={},
        location_type=None,
        location_value=None,
        primary_image=None,
        images=(),
        ciphertext=None,
        attrs={},
        metadata={},
        created_at=intent.created_at if intent.created_at is not None else intent.observed_at,
        updated_at=now_ms,
        observed_at=intent.observed_at,
        archived_at=None,
        deleted_at=None,
    )
    return _merge(blank, intent, now_ms)


def change_thing(current: Thing, intent: ThingIntent, now_ms: int) -> Thing:
    """The state after an update, archive or delete; a deleted thing no longer changes."""
    if current.state is ThingState.DELETED:
        raise PushgodError(
            ErrorCode.THING_DELETED, f"thing {current.thing_id} is deleted and cannot change"
        )
    return _merge(current, intent, now_ms)


def _merge(current: Thing, intent: ThingIntent, now_ms: int) -> Thing:
    state = {
        ThingAction.CREATE: ThingState.ACTIVE,
        ThingAction.UPDATE: ThingState.ACTIVE,
        ThingAction.ARCHIVE: ThingState.ARCHIVED,
        ThingAction.DELETE: ThingState.DELETED,
    }[intent.action]
    location_type, location_value = intent.location or (
        current.location_type,
        current.location_value,
    )
    # Spelled out rather than dataclasses.replace, which costs twice as much: this runs
    # once per device message.
    return Thing(
        thing_id=current.thing_id,
        channel_id=current.channel_id,
        state=state,
        title=_keep(intent.title, current.title),
        description=_keep(intent.description, current.description),
        tags=intent.tags if intent.tags is not None else current.tags,
        external_ids=merge_patch(current.external_ids, intent.external_ids)
        if intent.external_ids
        else current.external_ids,
        location_type=location_type,
        location_value=location_value,
        primary_image=_keep(intent.primary_image, current.primary_image),
        images=intent.images if intent.images is not None else current.images,
        ciphertext=_keep(intent.ciphertext, current.ciphertext),
        attrs=merge_patch(current.attrs, intent.attrs) if intent.attrs else current.attrs,
        metadata=intent.metadata if intent.metadata is not None else current.metadata,
        created_at=current.created_at,
        updated_at=now_ms,
        observed_at=max(current.observed_at, intent.observed_at),
        archived_at=(intent.observed_at if state is ThingState.ARCHIVED else None),
        deleted_at=(
            (intent.deleted_at if intent.deleted_at is not None else intent.observed_at)
            if state is ThingState.DELETED
            else None
        ),
        sealed=tuple(
            sealing.accumulate(
                current.sealed, intent.sealed or (), sealing.given_paths(intent, "thing")
            )
        )
        if current.sealed or intent.sealed
        else (),
        availability=_keep(intent.availability, current.availability),
        last_seen_at=intent.seen_at if intent.seen_at is not None else current.last_seen_at,
        attr_meta=intent.attr_meta if intent.attr_meta is not None else current.attr_meta,
    )


def _keep(new: str | None, old: str | None) -> str | None:
    return new if new is not None else old
