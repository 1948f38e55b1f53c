"""The message models are the single source of truth (issue 13): messages are built through
them, the JSON Schemas shipped in the package are generated from them and up to date, every
field is described, and an undocumented field fails."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from message_schemas import message_errors, schema_errors
from pydantic import ValidationError

import affectstream.schemas
from affectstream.cli import main
from affectstream.publish import messages
from affectstream.schemas import models as m
from affectstream.schemas.export import all_schemas, file_name, shipped
from affectstream.types import ActionUnit, Burst, EmotionUpdate, LogLine, TrackEvent

SHIPPED = Path(affectstream.schemas.__file__).parent / "json"
TS = 1_795_000_000.123


def _burst() -> Burst:
    return Burst(id="cam0-abc-t1-f3", camera="cam0", track_id=1, onset_frame=3, apex_frame=5,
                 offset_frame=8, onset_s=0.1, apex_s=0.1667, offset_s=0.2667, kind="micro",
                 regions=("mouth_corner_L",), peak_motion=2.5, text="0.10–0.27 s: smile",
                 action_units=(ActionUnit(12, "lip corner puller", "L", 0.4),), ts=TS)


def _built() -> list[messages.Message]:
    """One message of every kind, built from the pipeline's dataclasses."""
    burst = _burst()
    update = EmotionUpdate(camera="cam0", track_id=1, ts=TS, window_start_s=0.0,
                           window_end_s=2.0, label="happiness",
                           probs={"happiness": 0.9, "neutral": 0.1}, valence=0.8, arousal=0.5,
                           confidence=0.9, rationale="AU12", source="facs",
                           model="facs-rules/1", calibrated=False, keyframes_s=(),
                           bursts=("cam0-abc-t1-f3",), latency_ms=0.3, prompt_tokens=0)
    event = TrackEvent(type="new", camera="cam0", track_id=1, frame_index=1, pts_s=0.033,
                       bbox=(1.0, 2.0, 30.0, 40.0), ts=TS, first_s=0.0, last_s=0.033)
    line = LogLine(camera="cam0", track_id=1, start_s=0.1, end_s=0.27, kind="burst",
                   text="0.10–0.27 s: smile", burst_id=burst.id)
    stats = {"ts": TS, "uptime_s": 1.0, "frames": 30, "dropped": 0, "stale": 0, "errors": 0,
             "fps": 30.0, "reconnects": 0, "stalls": 0, "tracks": 1, "state": "running",
             "open_failures": 0, "bursts": 1, "bursts_per_min": 60.0,
             "primary": {"track_id": 1, "label": "happiness", "valence": 0.8},
             "stages_ms": {"detect": {"p50": 1.0, "p95": 2.0}},
             "publish_ms": {"p50": None, "p95": None},
             "vlm": {"calls": 0, "failures": 0, "in_flight": 0, "latency_ms_p50": None,
                     "latency_ms_p95": None, "prompt_tokens_mean": None},
             "sinks": {"stdout": {"queued": 0, "dropped": 0, "connected": True}}}
    return [messages.availability("cam0", True), messages.burst(burst),
            messages.emotion(update), messages.track(event), messages.log_line(line, TS),
            messages.stats("cam0", stats), messages.process_stats({"cam0": stats}, TS)]


def test_shipped_schemas_are_generated_from_the_models_and_up_to_date() -> None:
    on_disk = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SHIPPED.glob("*.json")}
    assert on_disk == all_schemas(), ("stale: run python -m affectstream schema messages "
                                      "--out affectstream/schemas/json")
    for name, model in m.MODELS.items():
        assert shipped(name)["$id"].startswith("urn:affectstream:"), name
        assert shipped(name)["title"] and shipped(name)["description"], name
        assert file_name(model.SCHEMA) in on_disk


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = list(schema.get("properties", {}).items())
    for sub in schema.get("$defs", {}).values():
        found += [(f"{sub['title']}.{k}", v) for k, v in sub.get("properties", {}).items()]
    return found


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_every_field_is_described_and_extra_fields_are_refused(name: str) -> None:
    schema = all_schemas()[name]
    Draft202012Validator.check_schema(schema)
    undescribed = [k for k, v in _properties(schema) if not v.get("description")]
    assert not undescribed, f"{name}: fields without a description: {undescribed}"
    objects = [schema, *schema.get("$defs", {}).values()]
    assert all(o.get("additionalProperties") is False for o in objects if "properties" in o)


def test_built_messages_validate_and_carry_the_documented_flags() -> None:
    built = _built()
    for msg in built:
        assert message_errors(msg.topic, msg.payload) == [], msg
        again = messages.from_topic(msg.topic, msg.payload)
        assert (again.qos, again.retain, again.payload) == (msg.qos, msg.retain, msg.payload)
    flags = {msg.topic: (msg.qos, msg.retain) for msg in built}
    assert flags == {"cam0/availability": (1, True), "cam0/bursts": (1, False),
                     "cam0/faces/1/emotion": (1, True), "cam0/tracks": (1, False),
                     "cam0/faces/1/log": (0, False), "cam0/stats": (0, True),
                     "stats": (0, True)}


def test_an_undocumented_field_fails_in_the_model_and_in_the_shipped_schema() -> None:
    for msg in _built()[1:]:
        assert isinstance(msg.payload, dict)
        extra = {**msg.payload, "surprise_field": 1}
        assert any("surprise_field" in e for e in message_errors(msg.topic, extra)), msg.topic
        with pytest.raises(ValidationError, match="surprise_field"):
            m.parse(extra)
    burst = _built()[1].payload
    assert isinstance(burst, dict)
    nested = {**burst, "action_units": [{**burst["action_units"][0], "extra": 1}]}
    assert schema_errors("affectstream.burst/1", nested)
    with pytest.raises(ValidationError):  # the stats path: a new counter must be documented
        messages.stats("cam0", {"new_counter": 1})


def test_subscribers_parse_leniently_so_additive_changes_keep_version_1() -> None:
    emotion = _built()[2].payload
    assert isinstance(emotion, dict)
    newer = {**emotion, "added_in_a_later_release": True,
             "window": {**emotion["window"], "fps": 5}}
    parsed = m.parse(newer, lenient=True)
    assert isinstance(parsed, m.Emotion) and parsed.label == "happiness"
    assert parsed.window.end_s == 2.0
    with pytest.raises(ValidationError):  # a removed or retyped field is a breaking change
        m.parse({**emotion, "valence": "high"}, lenient=True)


def test_optional_stats_fields_stay_absent_unless_given() -> None:
    stats = _built()[5].payload
    assert isinstance(stats, dict)
    assert set(stats["vlm"]) == {"calls", "failures", "in_flight", "latency_ms_p50",
                                 "latency_ms_p95", "prompt_tokens_mean"}
    assert set(stats["sinks"]["stdout"]) == {"queued", "dropped", "connected"}
    assert stats["primary"] == {"track_id": 1, "label": "happiness", "valence": 0.8}


def test_cli_schema_messages_writes_the_shipped_files(tmp_path: Path) -> None:
    assert main(["schema", "messages", "--out", str(tmp_path / "s")]) == 0
    written = {p.name: json.loads(p.read_text()) for p in (tmp_path / "s").iterdir()}
    assert written == all_schemas()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["schema", "messages"]) == 0
    assert json.loads(buf.getvalue()) == all_schemas()


def test_docs_messages_md_lists_every_field_as_the_models_say() -> None:
    from affectstream.schemas.doc import END, START, field_tables

    text = (Path(__file__).parents[2] / "docs" / "messages.md").read_text(encoding="utf-8")
    section = text[text.index(START):text.index(END) + len(END)]
    assert section == field_tables(), ("docs/messages.md is stale: paste the output of "
                                       "python -m affectstream.schemas.doc")


def test_a_burst_says_whether_the_face_was_speaking_and_old_ones_still_read() -> None:
    payload = messages.burst(_burst()).payload
    assert isinstance(payload, dict) and payload["speaking"] is False
    talking = messages.burst(dataclasses.replace(_burst(), speaking=True)).payload
    assert isinstance(talking, dict) and talking["speaking"] is True
    older = {k: v for k, v in payload.items() if k != "speaking"}  # a recording before 0.1
    assert m.Burst.model_validate(older).speaking is False
    schema = json.loads((SHIPPED / "burst-1.schema.json").read_text(encoding="utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(older)) == []
