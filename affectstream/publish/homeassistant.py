"""Home Assistant MQTT discovery, device-based (Home Assistant 2024.11+). Pure functions, no I/O.

Each camera is announced as one Home Assistant device with ONE retained config message on
``<discovery_prefix>/device/<object_id>/config``. Its payload carries the device (``dev``), the
origin (``o``), the shared availability (the camera's retained ``availability`` topic) and the
components (``cmps``): four sensors that read the camera's retained ``stats`` topic through
value templates (emotion and valence of the primary face, bursts per minute, fps). An empty
retained payload on the same topic removes the device and its entities.

Object ids (``<object_id>`` above, also the device identifier) encode the topic prefix so that
two installations with different prefixes on one broker never collide, and so that
:func:`stale_cameras` can tell this installation's devices from any other device:

* default prefix ``affectstream``: ``affectstream_<camera>`` (e.g. ``affectstream_cam0``);
* any other prefix: ``affectstream-<n>-<p>_<camera>``, where ``<p>`` is the prefix with every
  character outside ``[A-Za-z0-9_-]`` replaced by ``_`` (followed by ``-`` and 6 hex digits of
  the prefix's SHA-1 when that replacement changed it, so ``a/b`` and ``a_b`` differ) and
  ``<n>`` is the length of ``<p>`` in decimal (e.g. prefix ``lab`` -> ``affectstream-3-lab_cam0``).

Camera ids match ``^[A-Za-z0-9_-]+$`` and may themselves contain ``_`` and ``-``. The two forms
differ at the 13th character (``_`` vs ``-``), and the length field makes the prefix part of the
second form end at a known position, so one object id belongs to at most one (prefix, camera).

Sources for the format: https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload
and Home Assistant core ``homeassistant/components/mqtt/schemas.py`` (``DEVICE_DISCOVERY_SCHEMA``:
``device``/``dev``, ``origin``/``o`` and ``components``/``cmps`` required; each component needs a
``platform``/``p``; shared ``availability_topic``, ``payload_available``, ``state_topic``, ``qos``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DEFAULT_PREFIX = "affectstream"
MANUFACTURER = "affectstream"
MODEL = "affectstream camera"
# The origin's ``support_url``; the project has no public URL yet, so it is left out until set.
SUPPORT_URL: str | None = None
ONLINE = "online"
OFFLINE = "offline"
DISCOVERY_QOS = 1

_CAMERA_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_-]")

# Value templates, rendered by Home Assistant with ``value_json`` = the parsed stats payload.
# ``primary`` is null when no face is tracked (or absent in an older stats payload): the label
# then reads ``unknown`` (Home Assistant's own unknown state) and the valence renders ``None``,
# which Home Assistant's MQTT sensor turns into the unknown state for a numeric sensor.
LABEL_TEMPLATE = "{{ value_json.primary.label if value_json.primary else 'unknown' }}"
VALENCE_TEMPLATE = "{{ value_json.primary.valence if value_json.primary else None }}"
BURSTS_PER_MIN_TEMPLATE = "{{ value_json.bursts_per_min }}"
FPS_TEMPLATE = "{{ value_json.fps }}"


@dataclass(frozen=True)
class DiscoveryConfig:
    """Where Home Assistant listens: its discovery prefix and its birth/will status topic."""

    discovery_prefix: str = "homeassistant"
    status_topic: str = "homeassistant/status"


def _check_camera(camera: str) -> None:
    if not _CAMERA_RE.fullmatch(camera):
        raise ValueError(f"camera id {camera!r} must match ^[A-Za-z0-9_-]+$")


def _prefix_part(prefix: str) -> str:
    """The prefix as ``[A-Za-z0-9_-]*``; a short hash keeps sanitised prefixes distinct."""
    safe = _UNSAFE_RE.sub("_", prefix)
    if safe != prefix:
        safe += "-" + hashlib.sha1(prefix.encode("utf-8")).hexdigest()[:6]
    return safe


def _object_id_stem(prefix: str) -> str:
    """Everything of an object id before the camera id, for this prefix."""
    if prefix == DEFAULT_PREFIX:
        return f"{DEFAULT_PREFIX}_"
    part = _prefix_part(prefix)
    return f"{DEFAULT_PREFIX}-{len(part)}-{part}_"


def device_object_id(prefix: str, camera: str) -> str:
    """The discovery object id (and device identifier) of ``camera`` under topic ``prefix``."""
    _check_camera(camera)
    return _object_id_stem(prefix) + camera


def discovery_topic(cfg: DiscoveryConfig, prefix: str, camera: str) -> str:
    """``<discovery_prefix>/device/<object_id>/config`` (a full topic, not under ``prefix``)."""
    return f"{cfg.discovery_prefix}/device/{device_object_id(prefix, camera)}/config"


def _camera_topic(prefix: str, camera: str, leaf: str) -> str:
    return f"{prefix}/{camera}/{leaf}" if prefix else f"{camera}/{leaf}"


def _sensor(uid: str, name: str, state_topic: str, template: str, icon: str,
            **extra: Any) -> dict[str, Any]:
    return {"p": "sensor", "unique_id": uid, "name": name, "state_topic": state_topic,
            "value_template": template, "icon": icon, **extra}


def _origin(version: str) -> dict[str, str]:
    origin = {"name": "affectstream", "sw_version": version}
    if SUPPORT_URL:
        origin["support_url"] = SUPPORT_URL
    return origin


def discovery_payload(prefix: str, camera: str, version: str) -> dict[str, Any]:
    """The device-based discovery payload of one camera (a JSON object)."""
    oid = device_object_id(prefix, camera)
    stats = _camera_topic(prefix, camera, "stats")
    name = f"affectstream {camera}" if prefix == DEFAULT_PREFIX \
        else f"affectstream {camera} ({prefix})"
    return {
        "dev": {
            "identifiers": [oid],
            "name": name,
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": version,
        },
        "o": _origin(version),
        "cmps": {
            "emotion": _sensor(f"{oid}_emotion", "Emotion", stats, LABEL_TEMPLATE,
                               "mdi:emoticon-outline"),
            "valence": _sensor(f"{oid}_valence", "Valence", stats, VALENCE_TEMPLATE,
                               "mdi:plus-minus-variant", state_class="measurement",
                               suggested_display_precision=2),
            "bursts_per_min": _sensor(f"{oid}_bursts_per_min", "Bursts per minute", stats,
                                      BURSTS_PER_MIN_TEMPLATE, "mdi:lightning-bolt",
                                      unit_of_measurement="bursts/min",
                                      state_class="measurement",
                                      suggested_display_precision=1),
            "fps": _sensor(f"{oid}_fps", "FPS", stats, FPS_TEMPLATE, "mdi:speedometer",
                           unit_of_measurement="fps", state_class="measurement",
                           suggested_display_precision=1, entity_category="diagnostic"),
        },
        "availability_topic": _camera_topic(prefix, camera, "availability"),
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "qos": DISCOVERY_QOS,
    }


def discovery_message(cfg: DiscoveryConfig, prefix: str, camera: str,
                      version: str) -> tuple[str, str, int, bool]:
    """(full topic, JSON payload, QoS 1, retained): publish as is, without the topic prefix."""
    payload = json.dumps(discovery_payload(prefix, camera, version), ensure_ascii=False,
                         separators=(",", ":"))
    return discovery_topic(cfg, prefix, camera), payload, DISCOVERY_QOS, True


def removal_message(cfg: DiscoveryConfig, prefix: str,
                    camera: str) -> tuple[str, str, int, bool]:
    """(full topic, empty payload, QoS 1, retained): removes the device and clears the config."""
    return discovery_topic(cfg, prefix, camera), "", DISCOVERY_QOS, True


def camera_of_object_id(object_id: str, prefix: str) -> str | None:
    """The camera of ``object_id`` if it is an affectstream device of ``prefix``, else None."""
    stem = _object_id_stem(prefix)
    if not object_id.startswith(stem):
        return None
    camera = object_id[len(stem):]
    return camera if _CAMERA_RE.fullmatch(camera) else None


def stale_cameras(retained_config_topics: Iterable[str], cfg: DiscoveryConfig, prefix: str,
                  cameras: Iterable[str]) -> list[str]:
    """Cameras announced by this prefix's affectstream devices but not in ``cameras``.

    ``retained_config_topics`` are topics seen on ``<discovery_prefix>/device/+/config`` (with
    a non-empty retained payload). Only topics ``<cfg.discovery_prefix>/device/<id>/config``
    whose ``<id>`` this prefix would produce count: other prefixes' affectstream devices,
    other software's devices and node-id topics are never returned. ``cameras`` are the
    cameras to keep: this process's camera and, when several processes share one prefix (one
    per camera), every camera whose retained availability is ``online``. Send
    :func:`removal_message` for each camera returned (sorted, without duplicates).
    """
    head = f"{cfg.discovery_prefix}/device/"
    keep = set(cameras)
    stale: set[str] = set()
    for topic in retained_config_topics:
        if not (topic.startswith(head) and topic.endswith("/config")):
            continue
        object_id = topic[len(head):-len("/config")]
        if "/" in object_id:
            continue
        camera = camera_of_object_id(object_id, prefix)
        if camera is not None and camera not in keep:
            stale.add(camera)
    return sorted(stale)


def is_ha_online(topic: str, payload: bytes, cfg: DiscoveryConfig) -> bool:
    """True for Home Assistant's birth message (``online`` on its status topic): republish
    the discovery then, since a restarted Home Assistant may have lost it."""
    return topic == cfg.status_topic and payload.strip() == ONLINE.encode()
