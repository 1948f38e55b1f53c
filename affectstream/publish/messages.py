"""Message payloads and topics (DESIGN §5). Topics here carry no prefix; sinks add theirs.

Every payload is built by constructing its model from :mod:`affectstream.schemas` and dumping
it, and QoS and retain come from the topic table there: a payload cannot gain a field its schema
does not document (the models forbid extra fields), nor a topic its documented flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affectstream.schemas import models as m
from affectstream.schemas.topics import KINDS, route_of, topic_for
from affectstream.types import Burst, EmotionUpdate, LogLine, TrackEvent

Payload = dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: Payload
    qos: int
    retain: bool
    broker_only: bool = False
    """Broker state management, not a message (an empty retained payload that deletes a
    topic's retained message): MQTT sinks send it, line sinks (JSONL, stdout) skip it."""

    def to_json_obj(self) -> dict[str, Any]:
        return {"topic": self.topic, "payload": self.payload}


def _message(kind: str, topic: str, model: m.PayloadModel) -> Message:
    # exclude_unset: the optional stats fields a publisher did not fill in stay absent, as
    # the schema documents; every required field is always set.
    payload = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    route = KINDS[kind]
    return Message(topic, payload, route.qos, route.retain)


def from_topic(topic: str, payload: Payload) -> Message:
    """A message as a live run publishes it, from a recorded topic (no prefix) and payload:
    QoS and retain from the topic table, the payload checked against its model. Raises
    ValueError for a topic outside the table or a payload that does not match it."""
    match = route_of(topic)
    if match is None:
        raise ValueError(f"unknown topic {topic!r}")
    route = match.route
    if route.kind == "availability":
        m.Availability.model_validate(payload)
        return Message(topic, payload, route.qos, route.retain)
    parsed = m.parse(payload)  # KeyError (unknown schema) or pydantic's ValidationError
    if route.schema != parsed.SCHEMA:
        raise ValueError(f"topic {topic!r} carries {route.schema}, not {parsed.SCHEMA}")
    return Message(topic, payload, route.qos, route.retain)  # as recorded, byte for byte


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def availability(camera: str, online: bool) -> Message:
    route = KINDS["availability"]
    payload = m.Availability("online" if online else "offline").root
    return Message(topic_for("availability", camera), payload, route.qos, route.retain)


def burst(b: Burst) -> Message:
    model = m.Burst(
        id=b.id, camera=b.camera, track_id=b.track_id, onset_s=_r(b.onset_s),
        apex_s=_r(b.apex_s), offset_s=_r(b.offset_s), duration_s=_r(b.duration_s),
        onset_frame=b.onset_frame, apex_frame=b.apex_frame, offset_frame=b.offset_frame,
        ts=_r(b.ts, 3), kind=b.kind, regions=list(b.regions),
        action_units=[m.ActionUnit(au=u.au, name=u.name, side=u.side,
                                   intensity=_r(u.intensity)) for u in b.action_units],
        peak_motion=_r(b.peak_motion), text=b.text, speaking=b.speaking)
    return _message("burst", topic_for("burst", b.camera), model)


def log_line(line: LogLine, ts: float) -> Message:
    model = m.LogLine(camera=line.camera, track_id=line.track_id, ts=_r(ts),
                      start_s=_r(line.start_s), end_s=_r(line.end_s), kind=line.kind,
                      text=line.text, burst_id=line.burst_id)
    return _message("log", topic_for("log", line.camera, line.track_id), model)


def track(event: TrackEvent) -> Message:
    x1, y1, x2, y2 = (_r(v, 1) for v in event.bbox)
    model = m.Track(type=event.type, camera=event.camera, track_id=event.track_id,
                    frame=event.frame_index, t_s=_r(event.pts_s), bbox=(x1, y1, x2, y2),
                    first_s=_r(event.first_s), last_s=_r(event.last_s), ts=_r(event.ts))
    return _message("track", topic_for("track", event.camera), model)


def emotion(u: EmotionUpdate) -> Message:
    model = m.Emotion(
        camera=u.camera, track_id=u.track_id, ts=_r(u.ts),
        window=m.EmotionWindow(start_s=_r(u.window_start_s), end_s=_r(u.window_end_s)),
        label=u.label, probs={k: _r(v, 4) for k, v in u.probs.items()},
        valence=_r(u.valence), arousal=_r(u.arousal), confidence=_r(u.confidence),
        rationale=u.rationale, source=u.source, model=u.model, calibrated=u.calibrated,
        keyframes_s=[_r(t) for t in u.keyframes_s], bursts=list(u.bursts),
        latency_ms=_r(u.latency_ms, 1), prompt_tokens=u.prompt_tokens)
    return _message("emotion", topic_for("emotion", u.camera, u.track_id), model)


def emotion_cleared(camera: str, track_id: int) -> Message:
    """Deletes the track's retained emotion on the broker once the track has ended, so that
    a camera running for months does not leave one retained message per face it ever saw."""
    route = KINDS["emotion"]
    return Message(topic_for("emotion", camera, track_id), "", route.qos, route.retain,
                   broker_only=True)


def stats(camera: str, payload: dict[str, Any]) -> Message:
    """A camera's stats; ``payload`` (from :class:`~affectstream.stats.RunStats` and the
    estimators' sections) is checked against the model: an undocumented counter fails here."""
    model = m.Stats.model_validate({"camera": camera, **payload})
    return _message("stats", topic_for("stats", camera), model)


SUMMED = ("frames", "fps", "dropped", "stale", "errors", "reconnects", "stalls",
          "open_failures", "tracks", "bursts", "bursts_per_min")
"""Counters of the cameras' stats that the process-level message adds up."""
_RATES = ("fps", "bursts_per_min")


def process_stats(cameras: dict[str, dict[str, Any]], ts: float) -> Message:
    """``{prefix}/stats``: a run of several cameras, summed (each camera's own stats stay on
    ``{prefix}/{camera}/stats``); ``running`` counts the cameras whose source is open."""
    sums = {key: sum(float(s.get(key) or 0) for s in cameras.values()) for key in SUMMED}
    model = m.ProcessStats.model_validate({
        "ts": _r(ts), "cameras": len(cameras),
        "running": sum(s.get("state") == "running" for s in cameras.values()),
        **{k: _r(v, 2) if k in _RATES else int(v) for k, v in sums.items()}})
    return _message("process_stats", KINDS["process_stats"].template, model)
