"""Home Assistant MQTT discovery for Things: one device-based config per Thing (HA 2024.11+).

Each plain attr becomes one component reading the Thing's canonical state topic; see
https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pushgod.model import sealing
from pushgod.model.things import Thing, ThingState

HINTS = {
    "name": "The entity's name in Home Assistant (default: the attr's key).",
    "unit": "Unit of measurement, e.g. °C, %, GB; sensors only.",
    "device_class": "A Home Assistant sensor or binary_sensor device class, e.g. temperature "
    "or door; a binary_sensor class (door, motion, problem…) makes the attr a binary sensor.",
    "state_class": "measurement, total or total_increasing; sensors only. Numbers default "
    "to measurement.",
    "icon": "An icon such as mdi:harddisk.",
}
"""The per-attribute hints (a device's `in/meta` attrs) that discovery understands."""

SUPPORT_URL = "https://github.com/pushgod/pushgod"
_BINARY_WORDS = (
    "battery battery_charging carbon_monoxide cold connectivity door garage_door gas heat "
    "light lock moisture motion moving occupancy opening plug power presence problem running "
    "safety smoke sound tamper update vibration window"
)
BINARY_CLASSES = frozenset(_BINARY_WORDS.split())
"""Home Assistant's binary_sensor device classes (integrations/binary_sensor/)."""
SHARED_CLASSES = frozenset({"battery", "carbon_monoxide", "gas", "moisture", "power"})
"""Device classes of both platforms: a number stays a sensor (battery %, power W…)."""
NOT_MEASUREMENT = frozenset(
    {"date", "enum", "timestamp", "energy", "gas", "monetary", "precipitation", "volume", "water"}
)
"""Sensor device classes that HA does not accept with state_class measurement."""
_ON = ("true", "on", "1", "yes", "open")
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
_MAX_STATE_CHARS = 255  # HA refuses longer sensor states


def discovery_topic(thing_id: str, prefix: str) -> str:
    return f"{prefix}/device/pushgod_{thing_id}/config"


def discovery(thing: Thing, *, root: str, prefix: str, origin_version: str) -> tuple[str, bytes]:
    """The retained discovery message for `thing`; an empty payload (a deleted thing)
    removes the device and its entities from Home Assistant."""
    topic = discovery_topic(thing.thing_id, prefix)
    if thing.state is ThingState.DELETED:
        return topic, b""
    base = f"{root}/things/{thing.thing_id}"
    availability: list[dict[str, str]] = [
        {"topic": f"{root}/status"},
        {
            "topic": f"{base}/state",
            "value_template": "{{ 'online' if value_json.state == 'active' and "
            "value_json.availability != 'offline' else 'offline' }}",
        },
    ]
    if thing.availability is not None:  # else a device that never reports would stay offline
        availability.append(
            {"topic": f"{base}/availability", "value_template": "{{ value | lower }}"}
        )
    payload = {
        "device": _device(thing),
        "origin": {"name": "pushgod", "sw_version": origin_version, "support_url": SUPPORT_URL},
        "state_topic": f"{base}/state",
        "availability": availability,
        "availability_mode": "all",
        "components": _components(thing),
    }
    return topic, _encode(payload)


def retired(previous: bytes, current: bytes) -> bytes | None:
    """The interim payload to publish before `current` when it drops components of
    `previous` or moves them to another platform: HA removes a component given only its
    old platform, and would otherwise keep the old entity. None when nothing is retired."""
    if not previous or not current:
        return None
    old, new = json.loads(previous)["components"], json.loads(current)
    gone = {
        cid: {"platform": config["platform"]}
        for cid, config in old.items()
        if new["components"].get(cid, {}).get("platform") != config["platform"]
    }
    return _encode(new | {"components": new["components"] | gone}) if gone else None


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _device(thing: Thing) -> dict[str, Any]:
    device: dict[str, Any] = {
        "identifiers": [f"pushgod_{thing.thing_id}"],
        "name": thing.title or thing.thing_id,
    }
    maker = thing.attrs.get("manufacturer")
    if isinstance(maker, dict):  # the validated shape: {"name": …, …}
        maker = maker.get("name")
    if isinstance(maker, str) and maker:
        device["manufacturer"] = maker
    model = thing.attrs.get("model")
    if isinstance(model, str) and model:
        device["model"] = model
    return device


def component_id(key: str) -> str:
    """`key` if it is already of [a-zA-Z0-9_-], else a stable safe id derived from it."""
    safe = _ID_UNSAFE.sub("_", key[:64])
    if safe == key:
        return key
    return f"{safe}_{hashlib.sha256(key.encode(errors='surrogatepass')).hexdigest()[:8]}"


def _components(thing: Thing) -> dict[str, dict[str, Any]]:
    components: dict[str, dict[str, Any]] = {}
    for key in sorted(thing.attrs):
        value = thing.attrs[key]
        if value is None or isinstance(value, dict):
            continue
        if sealing.seals(thing.sealed, f"attrs.{key}"):
            continue
        cid, n = component_id(key), 1
        while cid in components:  # only a valid key that looks like a derived id
            n += 1
            cid = f"{component_id(key)}_{n}"
        components[cid] = _component(thing, key, value, cid)
    return components


def _component(thing: Thing, key: str, value: object, cid: str) -> dict[str, Any]:
    hints = {name: hint for name, hint in thing.attr_meta.get(key, {}).items() if hint}
    device_class = hints.get("device_class")
    binary = isinstance(value, bool) or (
        device_class in BINARY_CLASSES
        and (device_class not in SHARED_CLASSES or not isinstance(value, int | float))
    )
    literal = json.dumps(key, ensure_ascii=False)  # also a valid Jinja string literal
    config: dict[str, Any] = {
        "platform": "binary_sensor" if binary else "sensor",
        "unique_id": f"pushgod_{thing.thing_id}_{cid}",
        "name": hints.get("name", key),
    }
    if binary:
        config["value_template"] = (
            f"{{% set v = value_json.attrs.get({literal}) %}}"
            f"{{{{ 'None' if v is none else 'ON' if v | string | lower in {_ON} else 'OFF' }}}}"
        )
        config |= {"payload_on": "ON", "payload_off": "OFF"}
        if device_class in BINARY_CLASSES:
            config["device_class"] = device_class
    else:
        config["value_template"] = (
            f"{{{{ (value_json.attrs.get({literal}) | string)[:{_MAX_STATE_CHARS}] }}}}"
        )
        numeric = isinstance(value, int | float)
        if numeric and device_class not in NOT_MEASUREMENT:
            config["state_class"] = "measurement"
        config |= {
            ha: hints[ours]
            for ours, ha in (
                ("device_class", "device_class"),
                ("state_class", "state_class"),
                ("unit", "unit_of_measurement"),
            )
            if ours in hints
        }
    if ":" in hints.get("icon", ""):
        config["icon"] = hints["icon"]
    return config
