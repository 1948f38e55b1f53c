"""JSON Schemas of the published message payloads (DESIGN §5), for the CLI tests.

Written from the design document (burst/1, emotion/1, stats/1) and from what ``publish/messages.py``
emits (track/1, log/1). Every listed field is required; types are checked; payload objects
reject unknown fields except at the top level of stats/1.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

NUM: dict[str, Any] = {"type": "number"}
NUM_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
STREAM_S: dict[str, Any] = {"type": "number", "minimum": 0}
FRAME: dict[str, Any] = {"type": "integer", "minimum": 0}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
TRACK_ID: dict[str, Any] = {"type": "integer", "minimum": 0}
CAMERA: dict[str, Any] = {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"}
TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
# Wall clock, epoch seconds: after 2020-01-01.
EPOCH: dict[str, Any] = {"type": "number", "minimum": 1_577_836_800}


def _obj(props: dict[str, Any], *, extra: bool = False) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": sorted(props),
            "additionalProperties": extra}


ACTION_UNIT = _obj({
    "au": {"type": "integer", "minimum": 1, "maximum": 99},
    "name": TEXT,
    "side": {"enum": ["L", "R", "both"]},
    "intensity": {"type": "number", "minimum": 0, "maximum": 1},
})

BURST = _obj({
    "schema": {"const": "affectstream.burst/1"},
    "id": TEXT,
    "camera": CAMERA,
    "track_id": TRACK_ID,
    "onset_s": STREAM_S,
    "apex_s": STREAM_S,
    "offset_s": STREAM_S,
    "duration_s": STREAM_S,
    "onset_frame": FRAME,
    "apex_frame": FRAME,
    "offset_frame": FRAME,
    "ts": EPOCH,
    "kind": {"enum": ["micro", "macro"]},
    "regions": {"type": "array", "items": TEXT},
    "action_units": {"type": "array", "items": ACTION_UNIT},
    "peak_motion": {"type": "number", "minimum": 0},
    "text": TEXT,
})

TRACK = _obj({
    "schema": {"const": "affectstream.track/1"},
    "type": {"enum": ["new", "end"]},
    "camera": CAMERA,
    "track_id": TRACK_ID,
    "frame": FRAME,
    "t_s": STREAM_S,
    "bbox": {"type": "array", "items": NUM, "minItems": 4, "maxItems": 4},
    "first_s": STREAM_S,
    "last_s": STREAM_S,
    "ts": EPOCH,
})

LOG = _obj({
    "schema": {"const": "affectstream.log/1"},
    "camera": CAMERA,
    "track_id": TRACK_ID,
    "ts": EPOCH,
    "start_s": STREAM_S,
    "end_s": STREAM_S,
    "kind": {"enum": ["burst", "change", "summary"]},
    "text": TEXT,
    "burst_id": {"type": ["string", "null"]},
})

UNIT: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}

EMOTION = _obj({
    "schema": {"const": "affectstream.emotion/1"},
    "camera": CAMERA,
    "track_id": TRACK_ID,
    "ts": EPOCH,
    "window": _obj({"start_s": STREAM_S, "end_s": STREAM_S}),
    "label": TEXT,
    "probs": {"type": "object", "minProperties": 2, "additionalProperties": UNIT},
    "valence": {"type": "number", "minimum": -1, "maximum": 1},
    "arousal": UNIT,
    "confidence": UNIT,
    "rationale": {"type": "string"},
    "source": {"enum": ["vlm", "specialist", "facs"]},
    "model": TEXT,
    "calibrated": {"type": "boolean"},
    "keyframes_s": {"type": "array", "items": STREAM_S},
    "bursts": {"type": "array", "items": TEXT},
    "latency_ms": {"type": "number", "minimum": 0},
    "prompt_tokens": COUNT,
})

PERCENTILES = _obj({"p50": NUM_OR_NULL, "p95": NUM_OR_NULL})

STATS = _obj({
    "schema": {"const": "affectstream.stats/1"},
    "camera": CAMERA,
    "ts": EPOCH,
    "uptime_s": {"type": "number", "minimum": 0},
    "frames": COUNT,
    "dropped": COUNT,
    "fps": {"type": "number", "minimum": 0},
    "reconnects": COUNT,
    "stalls": COUNT,
    "tracks": COUNT,
    "bursts": COUNT,
    "stages_ms": {"type": "object", "minProperties": 1,
                  "additionalProperties": PERCENTILES},
    "vlm": _obj({
        "calls": COUNT,
        "failures": COUNT,
        "in_flight": COUNT,
        "latency_ms_p50": NUM_OR_NULL,
        "latency_ms_p95": NUM_OR_NULL,
        "prompt_tokens_mean": NUM_OR_NULL,
    }),
    "sinks": {"type": "object", "minProperties": 1, "additionalProperties": _obj({
        "queued": COUNT,
        "dropped": COUNT,
        "connected": {"type": "boolean"},
    })},
}, extra=True)

AVAILABILITY: dict[str, Any] = {"enum": ["online", "offline"]}

LINE = _obj({"topic": TEXT, "payload": {"type": ["object", "string"]}})

SCHEMAS = {"burst": BURST, "track": TRACK, "log": LOG, "stats": STATS, "emotion": EMOTION,
           "availability": AVAILABILITY, "line": LINE}

for _schema in SCHEMAS.values():
    Draft202012Validator.check_schema(_schema)


def schema_errors(name: str, instance: Any) -> list[str]:
    """Every violation of schema ``name`` as 'path: message' strings (empty when valid)."""
    validator = Draft202012Validator(SCHEMAS[name])
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    return [f"{'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
            for err in errors]
