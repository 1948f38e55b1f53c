"""Prometheus metrics from real messages and frame results, parsed back with
``prometheus_client.parser``; the Grafana panel of docs/metrics.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from message_schemas import stats_payload
from prometheus_client.parser import text_string_to_metric_families

from affectstream.publish import messages
from affectstream.types import ActionUnit, Burst, EmotionUpdate, Frame, FrameResult
from affectstream.web.metrics import Metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def _families(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _burst(kind: str) -> Burst:
    return Burst(id=f"b-{kind}", camera="door", track_id=1, onset_frame=1, apex_frame=3,
                 offset_frame=6, onset_s=0.03, apex_s=0.1, offset_s=0.2, kind=kind,  # type: ignore[arg-type]
                 regions=("mouth_corner_l",), action_units=(ActionUnit(12, "lip corner puller",
                                                                       "L", 0.5),),
                 peak_motion=1.0, text="left lip corner pulled up", ts=1.0)


def _emotion(source: str) -> EmotionUpdate:
    return EmotionUpdate(camera="door", track_id=1, ts=2.0, window_start_s=0, window_end_s=2,
                         label="happiness", probs={"happiness": 0.9, "neutral": 0.1},
                         valence=0.7, arousal=0.4, confidence=0.9, rationale="", source=source,
                         model="m", calibrated=False, keyframes_s=(), bursts=(),
                         latency_ms=1500.0, prompt_tokens=700)


def test_stats_bursts_emotions_and_stages_become_metrics() -> None:
    metrics = Metrics()
    stats = stats_payload(
        frames=120, dropped=3, stale=1, fps=29.5, reconnects=2, state="running",
        vlm={"calls": 4, "failures": 1, "in_flight": 1},
        sinks={"mqtt://u:***@broker:1883": {"queued": 7, "dropped": 0, "connected": True,
                                            "burst_to_broker_ms": {"p50": 12.0, "p95": 40.0}}})
    for message in (messages.stats("door", stats), messages.burst(_burst("micro")),
                    messages.burst(_burst("macro")), messages.burst(_burst("micro")),
                    messages.emotion(_emotion("vlm")), messages.emotion(_emotion("facs")),
                    messages.availability("door", True)):
        metrics.observe(message)
    frame = Frame(0, 0.0, 0.0, np.zeros((2, 2, 3), np.uint8))
    metrics.tap("door", frame, FrameResult(0, 0.0, 0.0, stages_ms={"detect": 12.0}))
    got = _families(metrics)
    door = {"camera": "door"}
    assert got["affectstream_frames_total"] == [(door, 120.0)]
    assert got["affectstream_dropped_frames_total"] == [(door, 3.0)]
    assert got["affectstream_fps"] == [(door, 29.5)]
    assert got["affectstream_source_up"] == [(door, 1.0)]
    assert got["affectstream_vlm_calls_total"] == [(door, 4.0)]
    assert sorted((lbl["kind"], v) for lbl, v in got["affectstream_bursts_total"]) == \
        [("macro", 1.0), ("micro", 2.0)]
    assert got["affectstream_vlm_latency_seconds_sum"] == [(door, 1.5)]
    assert got["affectstream_vlm_prompt_tokens_count"] == [(door, 1.0)]
    sink = {"camera": "door", "sink": "mqtt://u:***@broker:1883"}
    assert got["affectstream_sink_queued"] == [(sink, 7.0)]
    assert (sink | {"quantile": "0.95"}, 0.04) in got["affectstream_mqtt_publish_latency_seconds"]
    stages = {lbl["stage"] for lbl, _ in got["affectstream_stage_latency_seconds_count"]}
    assert stages == {"detect", "end_to_end"}


def test_registries_are_private() -> None:
    one, two = Metrics(), Metrics()
    one.bursts.labels("a", "micro").inc()
    assert "affectstream_bursts_total" not in _families(two)


def test_every_documented_metric_is_served_and_the_grafana_panel_is_json() -> None:
    text = DOC.read_text(encoding="utf-8")
    metrics = Metrics()
    metrics.observe(messages.stats("cam0", stats_payload(
        sinks={"stdout": {"queued": 0, "dropped": 0, "connected": True}})))
    metrics.observe(messages.burst(_burst("micro")))
    metrics.observe(messages.emotion(_emotion("vlm")))
    metrics.tap("cam0", Frame(0, 0.0, 0.0, np.zeros((2, 2, 3), np.uint8)),
                FrameResult(0, 0.0, 0.0, stages_ms={"detect": 1.0}))
    metrics.preview_frame("cam0", 2)
    metrics.events_dropped.inc()
    # (prometheus_client's *_created series come with every counter and histogram)
    served = {f.name for f in text_string_to_metric_families(metrics.render().decode())
              if not f.name.endswith("_created")}
    documented = set(re.findall(r"^\| `(affectstream_\w+)`", text, re.MULTILINE))
    base = {re.sub(r"_total$", "", name) for name in documented}
    assert base == served, f"documented but not served: {base - served}; " \
                           f"served but not documented: {served - base}"
    panel = json.loads(re.search(r"```json\n(.*?)```", text, re.DOTALL).group(1))  # type: ignore[union-attr]
    exprs = " ".join(t["expr"] for t in panel["targets"])
    used = set(re.findall(r"affectstream_\w+", exprs))
    names = {n for n in documented} | {f"{n}_bucket" for n in documented}
    assert used and used <= names, used - names
