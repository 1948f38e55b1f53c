"""Home Assistant device-based MQTT discovery: payload schema, topics, removal, stale devices,
value templates rendered like Home Assistant does (Jinja2 with ``value_json``)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jinja2.sandbox as jinja2_sandbox
import jsonschema
import pytest

from affectstream.publish import homeassistant as ha
from affectstream.publish import messages
from affectstream.schemas.topics import topic_for

CFG = ha.DiscoveryConfig()

# Platforms accepted in a device discovery payload: SUPPORTED_COMPONENTS of Home Assistant core
# (homeassistant/components/mqtt/const.py).
PLATFORMS = [
    "alarm_control_panel", "binary_sensor", "button", "camera", "climate", "cover", "date",
    "datetime", "device_automation", "device_tracker", "event", "fan", "humidifier", "image",
    "lawn_mower", "light", "lock", "notify", "number", "scene", "siren", "select", "sensor",
    "switch", "tag", "text", "time", "update", "vacuum", "valve", "water_heater",
]
_ID = r"^[A-Za-z0-9_-]+$"
_TOPIC = {"type": "string", "minLength": 1, "pattern": r"^[^#+]+$"}  # publishable, no wildcard

# The documented device discovery payload (https://www.home-assistant.io/integrations/mqtt/
# #device-discovery-payload; core's DEVICE_DISCOVERY_SCHEMA in mqtt/schemas.py), in the form
# affectstream writes it: abbreviated dev/o/cmps/p, full names elsewhere. Unknown keys are
# rejected here (Home Assistant ignores them) so that a misspelt option fails the test.
SENSOR_COMPONENT = {
    "type": "object",
    "required": ["p", "unique_id", "name", "state_topic", "value_template"],
    "properties": {
        "p": {"enum": PLATFORMS},
        "unique_id": {"type": "string", "minLength": 1},
        "name": {"type": ["string", "null"]},
        "state_topic": _TOPIC,
        "value_template": {"type": "string", "pattern": r"value_json"},
        "unit_of_measurement": {"type": "string"},
        "state_class": {"enum": ["measurement", "measurement_angle", "total",
                                 "total_increasing"]},
        "device_class": {"type": "string"},
        "icon": {"type": "string", "pattern": r"^mdi:[a-z0-9-]+$"},
        "entity_category": {"enum": ["config", "diagnostic"]},
        "suggested_display_precision": {"type": "integer", "minimum": 0},
        "expire_after": {"type": "integer", "minimum": 0},
        "force_update": {"type": "boolean"},
        "enabled_by_default": {"type": "boolean"},
        "json_attributes_topic": _TOPIC,
        "json_attributes_template": {"type": "string"},
    },
    "additionalProperties": False,
}
DISCOVERY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["dev", "o", "cmps"],
    "properties": {
        "dev": {
            "type": "object",
            "required": ["identifiers", "name"],
            "properties": {
                "identifiers": {"type": "array", "minItems": 1,
                                "items": {"type": "string", "minLength": 1}},
                "name": {"type": "string", "minLength": 1},
                "manufacturer": {"type": "string"},
                "model": {"type": "string"},
                "sw_version": {"type": "string"},
                "hw_version": {"type": "string"},
                "serial_number": {"type": "string"},
                "suggested_area": {"type": "string"},
                "configuration_url": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "o": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "sw_version": {"type": "string"},
                "support_url": {"type": "string", "pattern": r"^https?://"},
            },
            "additionalProperties": False,
        },
        "cmps": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _ID},
            "additionalProperties": {
                "type": "object",
                "required": ["p"],
                "properties": {"p": {"enum": PLATFORMS}},
                "if": {"properties": {"p": {"const": "sensor"}}},
                "then": SENSOR_COMPONENT,
            },
        },
        "availability_topic": _TOPIC,
        "availability": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["topic"],
            "properties": {"topic": _TOPIC, "payload_available": {"type": "string"},
                           "payload_not_available": {"type": "string"}}}},
        "availability_mode": {"enum": ["all", "any", "latest"]},
        "payload_available": {"type": "string", "minLength": 1},
        "payload_not_available": {"type": "string", "minLength": 1},
        "state_topic": _TOPIC,
        "command_topic": _TOPIC,
        "qos": {"enum": [0, 1, 2]},
        "encoding": {"type": "string"},
    },
    "additionalProperties": False,
    # Home Assistant: availability_topic and availability are mutually exclusive.
    "not": {"required": ["availability_topic", "availability"]},
    "dependentRequired": {"payload_available": ["availability_topic"],
                          "payload_not_available": ["availability_topic"]},
}

# Home Assistant core's discovery topic matcher (homeassistant/components/mqtt/discovery.py),
# applied to the topic without "<discovery_prefix>/".
HA_TOPIC_MATCHER = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config")

# The real final stats message of a run (docs/outputs.md), plus the two fields the Home
# Assistant sensors read that the stats payload gains with the MQTT sink.
STATS = {
    "schema": "affectstream.stats/1", "camera": "cam0", "ts": 1795640825.89, "uptime_s": 4.342,
    "frames": 72, "dropped": 0, "fps": 17.08, "reconnects": 0, "stalls": 0, "tracks": 0,
    "bursts": 1,
    "stages_ms": {"detect": {"p50": 18.848, "p95": 37.0}, "track": {"p50": 0.07, "p95": 0.102},
                  "end_to_end": {"p50": 476.967, "p95": 1044.015}},
    "publish_ms": {"p50": 0.413, "p95": 0.413},
    "vlm": {"calls": 0, "failures": 0, "in_flight": 0, "latency_ms_p50": None,
            "latency_ms_p95": None, "prompt_tokens_mean": None},
    "sinks": {"jsonl:/tmp/out.jsonl": {"queued": 0, "dropped": 0, "connected": True}},
    "bursts_per_min": 13.818,
    "primary": {"track_id": 1, "label": "happiness", "valence": 0.55},
}


def _validate(payload: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(DISCOVERY_SCHEMA)
    jsonschema.Draft202012Validator(DISCOVERY_SCHEMA).validate(payload)
    uids = [c["unique_id"] for c in payload["cmps"].values() if "unique_id" in c]
    assert len(uids) == len(set(uids)), "unique_id must be unique across components"


@pytest.mark.parametrize(("prefix", "camera"), [
    ("affectstream", "cam0"), ("lab", "door_1"), ("site/affect", "cam-2"),
])
def test_payload_matches_the_documented_schema(prefix: str, camera: str) -> None:
    payload = ha.discovery_payload(prefix, camera, "0.1.0")
    _validate(payload)
    oid = ha.device_object_id(prefix, camera)
    assert payload["dev"]["identifiers"] == [oid]
    assert payload["dev"]["manufacturer"] == "affectstream"
    assert payload["dev"]["sw_version"] == "0.1.0"
    assert payload["o"]["name"] == "affectstream" and payload["o"]["sw_version"] == "0.1.0"
    assert set(payload["cmps"]) == {"emotion", "valence", "bursts_per_min", "fps"}
    assert all(c["p"] == "sensor" for c in payload["cmps"].values())
    assert all(c["unique_id"].startswith(oid + "_") for c in payload["cmps"].values())
    cmps = payload["cmps"]
    assert cmps["valence"]["state_class"] == "measurement"
    assert cmps["bursts_per_min"]["unit_of_measurement"] == "bursts/min"
    assert cmps["bursts_per_min"]["state_class"] == "measurement"
    assert cmps["fps"]["unit_of_measurement"] == "fps"
    assert cmps["fps"]["state_class"] == "measurement"
    assert "state_class" not in cmps["emotion"]  # a text sensor


def test_schema_rejects_broken_payloads() -> None:
    good = ha.discovery_payload("affectstream", "cam0", "0.1.0")
    broken: list[dict[str, Any]] = []
    for key in ("dev", "o", "cmps"):
        p = copy.deepcopy(good)
        del p[key]
        broken.append(p)
    p = copy.deepcopy(good)
    p["cmps"]["fps"]["p"] = "sensors"
    broken.append(p)
    p = copy.deepcopy(good)
    del p["cmps"]["valence"]["unique_id"]
    broken.append(p)
    p = copy.deepcopy(good)
    p["cmps"]["fps"]["unit_of_measurment"] = "fps"  # misspelt option
    broken.append(p)
    p = copy.deepcopy(good)
    p["availability"] = [{"topic": "x"}]  # both availability forms
    broken.append(p)
    p = copy.deepcopy(good)
    p["qos"] = 3
    broken.append(p)
    for p in broken:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(DISCOVERY_SCHEMA).validate(p)
    p = copy.deepcopy(good)
    p["cmps"]["fps"]["unique_id"] = p["cmps"]["valence"]["unique_id"]
    with pytest.raises(AssertionError):
        _validate(p)


def test_topics_follow_the_stream_topics() -> None:
    payload = ha.discovery_payload("affectstream", "cam0", "0.1.0")
    # the MQTT sink publishes f"{prefix}/{message.topic}"
    stats_topic = "affectstream/" + topic_for("stats", "cam0")
    avail = messages.availability("cam0", True)
    assert all(c["state_topic"] == stats_topic == "affectstream/cam0/stats"
               for c in payload["cmps"].values())
    assert payload["availability_topic"] == "affectstream/" + avail.topic
    assert payload["payload_available"] == avail.payload == "online"
    assert payload["payload_not_available"] == messages.availability("cam0", False).payload
    other = ha.discovery_payload("site/affect", "cam0", "0.1.0")
    assert other["availability_topic"] == "site/affect/cam0/availability"
    assert other["cmps"]["fps"]["state_topic"] == "site/affect/cam0/stats"


def test_discovery_topic_and_message() -> None:
    assert ha.device_object_id("affectstream", "cam0") == "affectstream_cam0"
    assert ha.discovery_topic(CFG, "affectstream", "cam0") == \
        "homeassistant/device/affectstream_cam0/config"
    topic, payload, qos, retain = ha.discovery_message(CFG, "affectstream", "cam0", "0.1.0")
    assert topic == "homeassistant/device/affectstream_cam0/config"
    assert (qos, retain) == (1, True)
    assert json.loads(payload) == ha.discovery_payload("affectstream", "cam0", "0.1.0")
    custom = ha.DiscoveryConfig(discovery_prefix="ha-disc")
    assert ha.discovery_message(custom, "lab", "cam0", "0.1.0")[0] == \
        "ha-disc/device/affectstream-3-lab_cam0/config"
    for prefix in ("affectstream", "lab", "a/b c", ""):
        for camera in ("cam0", "front_door", "x-1"):
            t = ha.discovery_topic(CFG, prefix, camera)
            m = HA_TOPIC_MATCHER.fullmatch(t.removeprefix("homeassistant/"))
            assert m is not None, t
            assert m["component"] == "device" and m["node_id"] is None
            assert m["object_id"] == ha.device_object_id(prefix, camera)


def test_removal_is_an_empty_retained_config() -> None:
    assert ha.removal_message(CFG, "affectstream", "cam0") == \
        ("homeassistant/device/affectstream_cam0/config", "", 1, True)
    assert ha.removal_message(CFG, "lab", "cam0")[0] == ha.discovery_topic(CFG, "lab", "cam0")


def test_bad_camera_ids_are_rejected() -> None:
    for camera in ("", "cam 0", "cam/0", "cam+", "kamera-ä"):
        with pytest.raises(ValueError, match="camera id"):
            ha.device_object_id("affectstream", camera)


PREFIXES = ["affectstream", "lab", "la", "lab_x", "3-lab", "a/b", "a_b", "", "affectstream_x",
            "x-1-y", "affectstream/cam"]
CAMERAS = ["cam0", "lab_cam0", "x_cam0", "-3-lab_cam0", "3-lab_cam0", "b_cam0", "_", "-",
           "affectstream_cam0", "x-cam0"]


def test_object_ids_are_unambiguous() -> None:
    ids = {(p, c): ha.device_object_id(p, c) for p in PREFIXES for c in CAMERAS}
    assert len(set(ids.values())) == len(ids)
    for (p, c), oid in ids.items():
        assert re.fullmatch(_ID, oid)
        for p2 in PREFIXES:
            assert ha.camera_of_object_id(oid, p2) == (c if p2 == p else None), (p, c, p2)


def _cfg_topic(oid: str, disc: str = "homeassistant") -> str:
    return f"{disc}/device/{oid}/config"


def test_stale_cameras_default_prefix() -> None:
    topics = [
        _cfg_topic("affectstream_cam0"),           # current camera
        _cfg_topic("affectstream_old_cam"),        # ours, camera gone
        _cfg_topic("affectstream_old_cam"),        # seen twice
        _cfg_topic("affectstream-3-lab_cam1"),     # another installation (prefix lab)
        _cfg_topic("affectstream-3-lab_gone"),
        _cfg_topic("0x00158d0001a2b3c4"),          # zigbee2mqtt device
        _cfg_topic("affectstreamcam"),             # not ours (no separator)
        "homeassistant/sensor/affectstream_x/config",         # single-component discovery
        "homeassistant/device/node/affectstream_x/config",    # with a node id
        "other-disc/device/affectstream_elsewhere/config",    # another discovery prefix
        "homeassistant/device/affectstream_y/state",          # not a config topic
    ]
    assert ha.stale_cameras(topics, CFG, "affectstream", ["cam0"]) == ["old_cam"]
    assert ha.stale_cameras(topics, CFG, "affectstream", ["cam0", "old_cam"]) == []
    assert ha.stale_cameras(topics, CFG, "affectstream", []) == ["cam0", "old_cam"]
    other = ha.DiscoveryConfig(discovery_prefix="other-disc")
    assert ha.stale_cameras(topics, other, "affectstream", ["cam0"]) == ["elsewhere"]


def test_stale_cameras_other_prefix_never_touches_the_default_one() -> None:
    topics = [
        _cfg_topic(ha.device_object_id("affectstream", "lab_cam0")),  # default prefix
        _cfg_topic(ha.device_object_id("affectstream", "cam9")),
        _cfg_topic(ha.device_object_id("lab", "cam0")),
        _cfg_topic(ha.device_object_id("lab", "gone")),
        _cfg_topic(ha.device_object_id("lab_x", "gone2")),
        _cfg_topic(ha.device_object_id("la", "b_gone3")),
        _cfg_topic("some_vendor_lab_cam7"),
    ]
    assert ha.stale_cameras(topics, CFG, "lab", ["cam0"]) == ["gone"]
    assert ha.stale_cameras(topics, CFG, "affectstream", []) == ["cam9", "lab_cam0"]
    assert ha.stale_cameras(topics, CFG, "la", []) == ["b_gone3"]
    for cam in ha.stale_cameras(topics, CFG, "lab", ["cam0"]):
        assert ha.removal_message(CFG, "lab", cam)[0] in topics


def test_is_ha_online() -> None:
    assert ha.is_ha_online("homeassistant/status", b"online", CFG)
    assert ha.is_ha_online("homeassistant/status", b"online\n", CFG)
    assert not ha.is_ha_online("homeassistant/status", b"offline", CFG)
    assert not ha.is_ha_online("homeassistant/status", b"", CFG)
    assert not ha.is_ha_online("affectstream/cam0/availability", b"online", CFG)
    custom = ha.DiscoveryConfig(status_topic="hass/status")
    assert ha.is_ha_online("hass/status", b"online", custom)
    assert not ha.is_ha_online("homeassistant/status", b"online", custom)


# -- value templates, rendered the way Home Assistant renders MQTT value templates --------------

def _render(template: str, stats: dict[str, Any]) -> str:
    """Home Assistant parses the payload as JSON into ``value_json`` and renders the template
    in a sandboxed Jinja2 environment; the result reaches the MQTT sensor as a string."""
    env = jinja2_sandbox.ImmutableSandboxedEnvironment()
    value = json.dumps(stats)
    return str(env.from_string(template).render(value=value, value_json=json.loads(value)))


def _sensor_state(rendered: str, numeric: bool) -> str | float | None:
    """Home Assistant's MQTT sensor: '' is ignored, 'None' is the unknown state for a numeric
    sensor (one with a unit or state class), which must otherwise parse as a number."""
    if numeric:
        return None if rendered == "None" else float(rendered)
    return rendered


def _states(stats: dict[str, Any]) -> dict[str, str | float | None]:
    cmps = ha.discovery_payload("affectstream", "cam0", "0.1.0")["cmps"]
    return {cid: _sensor_state(_render(c["value_template"], stats),
                               "state_class" in c or "unit_of_measurement" in c)
            for cid, c in cmps.items()}


def test_templates_render_a_real_stats_payload() -> None:
    states = _states(STATS)
    assert states == {"emotion": "happiness", "valence": 0.55, "bursts_per_min": 13.818,
                      "fps": 17.08}
    # and the exact text Home Assistant receives
    assert _render(ha.LABEL_TEMPLATE, STATS) == "happiness"
    assert _render(ha.VALENCE_TEMPLATE, STATS) == "0.55"


def test_templates_with_no_primary_face() -> None:
    for stats in ({**STATS, "primary": None},
                  {k: v for k, v in STATS.items() if k != "primary"}):
        states = _states(stats)
        assert states["emotion"] == "unknown"  # Home Assistant's unknown state
        assert states["valence"] is None       # rendered "None": unknown for a numeric sensor
        assert states["bursts_per_min"] == 13.818 and states["fps"] == 17.08
    negative = {**STATS, "primary": {"track_id": 3, "label": "anger", "valence": -0.4},
                "bursts_per_min": 0.0, "fps": 0.0}
    assert _states(negative) == {"emotion": "anger", "valence": -0.4, "bursts_per_min": 0.0,
                                 "fps": 0.0}
