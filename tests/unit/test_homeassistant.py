"""Home Assistant discovery: every key documented, safe ids and templates, removal."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import jinja2.sandbox
from hypothesis import given
from hypothesis import strategies as st

from pushgod.model.homeassistant import discovery, discovery_topic, retired
from pushgod.model.things import Thing, ThingState

# The keys Home Assistant documents for device-based discovery (integrations/mqtt/) and for
# the sensor.mqtt and binary_sensor.mqtt platforms; unknown keys are silently ignored by HA.
AVAILABILITY = {"availability", "availability_mode", "availability_template", "availability_topic"}
AVAILABILITY |= {"payload_available", "payload_not_available"}
TOP_LEVEL = {"device", "origin", "components", "state_topic", "command_topic", "qos", "encoding"}
TOP_LEVEL |= AVAILABILITY
DEVICE = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer"}
DEVICE |= {"model", "model_id", "name", "serial_number", "suggested_area", "sw_version"}
DEVICE |= {"via_device"}
ORIGIN = {"name", "sw_version", "support_url"}
AVAILABILITY_ENTRY = {"topic", "payload_available", "payload_not_available", "value_template"}
ENTITY = {"platform", "unique_id", "name", "value_template", "state_topic", "device_class"}
ENTITY |= {"enabled_by_default", "encoding", "entity_category", "entity_picture", "icon"}
ENTITY |= {"expire_after", "force_update", "json_attributes_template", "json_attributes_topic"}
ENTITY |= {"object_id", "default_entity_id", "qos"} | AVAILABILITY
SENSOR = ENTITY | {"last_reset_value_template", "options", "state_class"}
SENSOR |= {"suggested_display_precision", "unit_of_measurement"}
BINARY_SENSOR = ENTITY | {"off_delay", "payload_on", "payload_off"}
PLATFORM_KEYS = {"sensor": SENSOR, "binary_sensor": BINARY_SENSOR}
_BINARY_WORDS = (
    "battery battery_charging carbon_monoxide cold connectivity door garage_door gas heat light "
    "lock moisture motion moving occupancy opening plug power presence problem running safety "
    "smoke sound tamper update vibration window"
)
BINARY_CLASSES = set(_BINARY_WORDS.split())
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}

ODD_KEYS = ["disk.free", "temp °C", "a'b\"c", "disk_free", "}} {% x", "é😀", " ", "k" * 80]
# Jinja's lexer: a double-quoted literal, then Python unicode escapes (jinja2/lexer.py).
JINJA_STRING = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.S)
SENSOR_TEMPLATE = "{{ (value_json.attrs.get(K) | string)[:255] }}"
BINARY_TEMPLATE = (
    "{% set v = value_json.attrs.get(K) %}{{ 'None' if v is none else 'ON' if v | string "
    "| lower in ('true', 'on', '1', 'yes', 'open') else 'OFF' }}"
)


def thing(**changes: Any) -> Thing:
    base = Thing(
        thing_id="nas",
        channel_id="0123456789ABCDEFGHJKMNPQR0",
        state=ThingState.ACTIVE,
        title="Attic NAS",
        description=None,
        tags=(),
        external_ids={},
        location_type=None,
        location_value=None,
        primary_image=None,
        images=(),
        ciphertext=None,
        attrs={"disk_free_gb": 412, "door": True, "status": "ok"},
        metadata={},
        created_at=0,
        updated_at=0,
        observed_at=0,
        archived_at=None,
        deleted_at=None,
    )
    return dataclasses.replace(base, **changes)


def payload(item: Thing) -> dict[str, Any]:
    topic, data = discovery(item, root="pushgod", prefix="homeassistant", origin_version="1.2")
    assert topic == discovery_topic(item.thing_id, "homeassistant")
    result = json.loads(data)
    assert data == json.dumps(result, separators=(",", ":"), sort_keys=True).encode()
    assert isinstance(result, dict)
    return result


def check_documented(config: dict[str, Any]) -> None:
    assert set(config) <= TOP_LEVEL
    assert {"device", "origin", "components", "state_topic"} <= set(config)
    assert set(config["device"]) <= DEVICE and config["device"]["identifiers"]
    assert set(config["origin"]) <= ORIGIN and config["origin"]["name"]
    assert config["availability_mode"] in ("all", "any", "latest")
    for entry in config["availability"]:
        assert set(entry) <= AVAILABILITY_ENTRY and entry["topic"]
    unique_ids = [c["unique_id"] for c in config["components"].values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for cid, component in config["components"].items():
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", cid)
        assert set(component) <= PLATFORM_KEYS[component["platform"]]
        assert component["unique_id"] == f"pushgod_nas_{cid}"
        assert component.get("state_topic", config["state_topic"])
        if component["platform"] == "binary_sensor":
            assert component.get("device_class", "door") in BINARY_CLASSES
        else:
            assert component.get("state_class", "total") in STATE_CLASSES


def check_template(template: str, key: str) -> None:
    literal = json.dumps(key, ensure_ascii=False)
    assert JINJA_STRING.fullmatch(literal)
    text = literal[1:-1].encode("ascii", "backslashreplace").decode("unicode-escape")
    assert text == key
    assert template.replace(literal, "K", 1) in (SENSOR_TEMPLATE, BINARY_TEMPLATE)


def test_a_device_with_its_origin_shared_topic_and_components() -> None:
    maker = {"manufacturer": {"name": "Acme"}, "model": "DS920"}
    config = payload(thing(attrs=thing().attrs | maker))
    check_documented(config)
    assert config["device"] == {
        "identifiers": ["pushgod_nas"],
        "name": "Attic NAS",
        "manufacturer": "Acme",
        "model": "DS920",
    }
    assert config["origin"] == {
        "name": "pushgod",
        "sw_version": "1.2",
        "support_url": "https://github.com/pushgod/pushgod",
    }
    assert config["state_topic"] == "pushgod/things/nas/state"
    assert set(config["components"]) == {"disk_free_gb", "door", "status", "model"}
    disk, door = config["components"]["disk_free_gb"], config["components"]["door"]
    assert disk["platform"] == "sensor" and disk["state_class"] == "measurement"
    assert disk["name"] == "disk_free_gb"
    assert door["platform"] == "binary_sensor" and door["payload_on"] == "ON"
    assert "state_class" not in config["components"]["status"]
    assert payload(thing(title=None))["device"]["name"] == "nas"


def test_hints_set_name_unit_classes_and_icon() -> None:
    meta = {
        "disk_free_gb": {"name": "Free", "unit": "GB", "state_class": "total", "icon": "mdi:disk"},
        "leak": {"device_class": "moisture"},
        "battery": {"device_class": "battery", "unit": "%"},
        "door": {"device_class": "temperature", "icon": "no-prefix"},
    }
    attrs = thing().attrs | {"leak": "on", "battery": 80}
    components = payload(thing(attrs=attrs, attr_meta=meta))["components"]
    disk = components["disk_free_gb"]
    assert (disk["name"], disk["unit_of_measurement"]) == ("Free", "GB")
    assert (disk["state_class"], disk["icon"]) == ("total", "mdi:disk")
    assert components["leak"]["platform"] == "binary_sensor"
    assert components["leak"]["device_class"] == "moisture"
    battery = components["battery"]  # a class of both platforms: a number stays a sensor
    assert (battery["platform"], battery["device_class"]) == ("sensor", "battery")
    assert "device_class" not in components["door"] and "icon" not in components["door"]
    for component in components.values():
        assert set(component) <= PLATFORM_KEYS[component["platform"]]


def test_deleted_thing_removes_the_device() -> None:
    topic, data = discovery(
        thing(state=ThingState.DELETED), root="pushgod", prefix="ha", origin_version="1"
    )
    assert (topic, data) == ("ha/device/pushgod_nas/config", b"")


def test_sealed_and_object_attrs_are_skipped() -> None:
    envelope = {"v": 1, "fields": ["attrs.secret"], "nonce": "", "ciphertext": "", "keys": {}}
    attrs = {"secret": 1, "room": {"x": 1}, "plain": 2}
    components = payload(thing(attrs=attrs, sealed=(envelope,)))["components"]
    assert set(components) == {"plain"}


def test_availability_follows_the_state_and_a_reporting_device() -> None:
    config = payload(thing())
    assert config["availability_mode"] == "all"
    assert config["availability"] == [
        {"topic": "pushgod/status"},
        {
            "topic": "pushgod/things/nas/state",
            "value_template": "{{ 'online' if value_json.state == 'active' and "
            "value_json.availability != 'offline' else 'offline' }}",
        },
    ]
    archived = payload(thing(state=ThingState.ARCHIVED))
    assert archived["availability"] == config["availability"] and archived["components"]
    reporting = payload(thing(availability="offline"))["availability"]
    assert reporting[2] == {
        "topic": "pushgod/things/nas/availability",
        "value_template": "{{ value | lower }}",
    }


def test_odd_keys_get_safe_unique_ids_and_exact_templates() -> None:
    attrs = {key: 1 for key in ODD_KEYS} | {"flag": False}
    config = payload(thing(attrs=attrs))
    check_documented(config)
    components = config["components"]
    assert len(components) == len(attrs) and "disk_free" in components
    for component in components.values():
        check_template(component["value_template"], component["name"])
    assert {c["name"] for c in components.values()} == set(attrs)
    again = payload(thing(attrs={"disk.free": 1}))["components"]  # stable whatever else is there
    assert again.keys() <= components.keys()


def test_templates_render_in_a_jinja_sandbox() -> None:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment()  # how HA renders templates
    attrs = {"a'b\"c": 1.5, "}} {% x": "x" * 300, "door": "Open", "flag": False}
    item = thing(attrs=attrs, attr_meta={"door": {"device_class": "door"}})
    components = payload(item)["components"].values()
    state = json.loads(json.dumps(item.to_json()))
    got = {
        c["name"]: env.from_string(c["value_template"]).render(value_json=state) for c in components
    }
    assert got == {"a'b\"c": "1.5", "}} {% x": "x" * 255, "door": "ON", "flag": "OFF"}
    available = payload(item)["availability"][1]["value_template"]
    for changes, expected in (
        ({}, "online"),
        ({"state": "archived"}, "offline"),
        ({"availability": "offline"}, "offline"),
    ):
        assert env.from_string(available).render(value_json=state | changes) == expected
    state["attrs"] = {}
    assert {env.from_string(c["value_template"]).render(value_json=state) for c in components} == {
        "None"
    }


def test_retired_components_are_removed_before_the_update() -> None:
    _, before = discovery(thing(), root="r", prefix="p", origin_version="1")
    moved = thing(attrs={"disk_free_gb": 1, "door": "closed"})
    _, after = discovery(moved, root="r", prefix="p", origin_version="1")
    interim = retired(before, after)
    assert interim is not None
    components = json.loads(interim)["components"]
    assert components["status"] == {"platform": "sensor"}
    assert components["door"] == {"platform": "binary_sensor"}
    assert components["disk_free_gb"] == json.loads(after)["components"]["disk_free_gb"]
    assert retired(after, after) is None and retired(b"", after) is None
    assert retired(before, b"") is None


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
KEYS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=70)


@given(st.dictionaries(KEYS, SCALARS | st.dictionaries(KEYS, SCALARS, max_size=2), max_size=12))
def test_any_attrs_give_valid_json_with_unique_safe_ids(attrs: dict[str, Any]) -> None:
    config = payload(thing(attrs=attrs))
    check_documented(config)
    plain = {k for k, v in attrs.items() if v is not None and not isinstance(v, dict)}
    assert sorted(c["name"] for c in config["components"].values()) == sorted(plain)
    for component in config["components"].values():
        check_template(component["value_template"], component["name"])
