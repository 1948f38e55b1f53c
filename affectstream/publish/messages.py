"""Message payloads and topics (DESIGN §5). Topics here carry no prefix; sinks add theirs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def availability(camera: str, online: bool) -> Message:
    return Message(f"{camera}/availability", "online" if online else "offline", 1, True)


def burst(b: Burst) -> Message:
    payload = {
        "schema": "affectstream.burst/1", "id": b.id, "camera": b.camera, "track_id": b.track_id,
        "onset_s": _r(b.onset_s), "apex_s": _r(b.apex_s), "offset_s": _r(b.offset_s),
        "duration_s": _r(b.duration_s), "onset_frame": b.onset_frame,
        "apex_frame": b.apex_frame, "offset_frame": b.offset_frame, "ts": _r(b.ts, 3),
        "kind": b.kind, "regions": list(b.regions),
        "action_units": [u.to_dict() for u in b.action_units],
        "peak_motion": _r(b.peak_motion), "text": b.text,
    }
    return Message(f"{b.camera}/bursts", payload, 1, False)


def log_line(line: LogLine, ts: float) -> Message:
    payload = {
        "schema": "affectstream.log/1", "camera": line.camera, "track_id": line.track_id,
        "ts": _r(ts), "start_s": _r(line.start_s), "end_s": _r(line.end_s), "kind": line.kind,
        "text": line.text, "burst_id": line.burst_id,
    }
    return Message(f"{line.camera}/faces/{line.track_id}/log", payload, 0, False)


def track(event: TrackEvent) -> Message:
    payload = {
        "schema": "affectstream.track/1", "type": event.type, "camera": event.camera,
        "track_id": event.track_id, "frame": event.frame_index, "t_s": _r(event.pts_s),
        "bbox": [_r(v, 1) for v in event.bbox], "first_s": _r(event.first_s),
        "last_s": _r(event.last_s), "ts": _r(event.ts),
    }
    return Message(f"{event.camera}/tracks", payload, 1, False)


def emotion(u: EmotionUpdate) -> Message:
    payload = {
        "schema": "affectstream.emotion/1", "camera": u.camera, "track_id": u.track_id,
        "ts": _r(u.ts), "window": {"start_s": _r(u.window_start_s), "end_s": _r(u.window_end_s)},
        "label": u.label, "probs": {k: _r(v, 4) for k, v in u.probs.items()},
        "valence": _r(u.valence), "arousal": _r(u.arousal), "confidence": _r(u.confidence),
        "rationale": u.rationale, "source": u.source, "model": u.model,
        "calibrated": u.calibrated, "keyframes_s": [_r(t) for t in u.keyframes_s],
        "bursts": list(u.bursts), "latency_ms": _r(u.latency_ms, 1),
        "prompt_tokens": u.prompt_tokens,
    }
    return Message(f"{u.camera}/faces/{u.track_id}/emotion", payload, 1, True)


def emotion_cleared(camera: str, track_id: int) -> Message:
    """Deletes the track's retained emotion on the broker once the track has ended, so that
    a camera running for months does not leave one retained message per face it ever saw."""
    return Message(f"{camera}/faces/{track_id}/emotion", "", 1, True, broker_only=True)


def stats(camera: str, payload: dict[str, Any]) -> Message:
    return Message(f"{camera}/stats", {"schema": "affectstream.stats/1", "camera": camera,
                                       **payload}, 0, True)


SUMMED = ("frames", "fps", "dropped", "stale", "errors", "reconnects", "stalls",
          "open_failures", "tracks", "bursts", "bursts_per_min")
"""Counters of the cameras' stats that the process-level message adds up."""


def process_stats(cameras: dict[str, dict[str, Any]], ts: float) -> Message:
    """``{prefix}/stats``: a run of several cameras, summed (each camera's own stats stay on
    ``{prefix}/{camera}/stats``); ``running`` counts the cameras whose source is open."""
    payload: dict[str, Any] = {"schema": "affectstream.process_stats/1", "ts": _r(ts),
                               "cameras": len(cameras),
                               "running": sum(s.get("state") == "running"
                                              for s in cameras.values())}
    for key in SUMMED:
        payload[key] = _r(sum(float(s.get(key) or 0) for s in cameras.values()), 2)
        if key != "fps" and key != "bursts_per_min":
            payload[key] = int(payload[key])
    return Message("stats", payload, 0, True)
