"""Prometheus metrics (``/metrics``), named ``affectstream_*`` after the ``stats`` fields, each
with a ``camera`` label. See docs/metrics.md.

Counters and gauges that ``stats`` already keeps (frames, drops, reconnects, VLM calls, sink
queues) are read from each camera's latest stats payload when scraped, so both always agree.
Histograms need every observation: stage latencies come from the frame tap (a few
``observe`` calls per frame, no allocation), VLM latency and prompt tokens from the emotion
messages, bursts by kind from the burst messages. Everything lives in a private registry.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from affectstream.publish.messages import Message
from affectstream.types import Frame, FrameResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)
VLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
TOKEN_BUCKETS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)

# (stats field, metric name, help): counters are cumulative in stats
_COUNTERS = (
    ("frames", "affectstream_frames", "Frames processed since start."),
    ("dropped", "affectstream_dropped_frames", "Frames the capture queue dropped (stale ones included)."),
    ("stale", "affectstream_stale_frames", "Frames discarded as older than source.max_staleness_s."),
    ("errors", "affectstream_source_errors", "Undecodable frames, failed reads and reconnect attempts."),
    ("reconnects", "affectstream_reconnects", "Reconnections of the source."),
    ("stalls", "affectstream_stalls", "Times the source delivered no frame for read_timeout_s."),
    ("open_failures", "affectstream_open_failures", "Failed attempts to open the source."),
)
_GAUGES = (
    ("fps", "affectstream_fps", "Frames processed per second (recent)."),
    ("tracks", "affectstream_tracks", "Faces tracked now."),
    ("uptime_s", "affectstream_uptime_seconds", "Seconds since the camera started."),
    ("bursts_per_min", "affectstream_bursts_per_minute", "Bursts in the last minute."),
)
_VLM_COUNTERS = (("calls", "affectstream_vlm_calls", "VLM requests made."),
                 ("failures", "affectstream_vlm_failures", "VLM requests that failed."))


class _StatsCollector(Collector):
    """Reads every camera's latest stats payload at scrape time."""

    def __init__(self, stats: dict[str, dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        cams = sorted(self._stats.items())
        for key, name, doc in _COUNTERS:
            counter = CounterMetricFamily(name, doc, labels=["camera"])
            for cam, s in cams:
                counter.add_metric([cam], float(s.get(key) or 0))
            yield counter
        for key, name, doc in _GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["camera"])
            for cam, s in cams:
                gauge.add_metric([cam], float(s.get(key) or 0))
            yield gauge
        yield from _vlm(cams)
        yield from _sinks(cams)
        up = GaugeMetricFamily("affectstream_source_up", "1 while the camera's source is open "
                               "and running, else 0.", labels=["camera"])
        for cam, s in cams:
            up.add_metric([cam], 1.0 if s.get("state") == "running" else 0.0)
        yield up


def _vlm(cams: list[tuple[str, dict[str, Any]]]) -> Iterator[Metric]:
    for key, name, doc in _VLM_COUNTERS:
        counter = CounterMetricFamily(name, doc, labels=["camera"])
        for cam, s in cams:
            counter.add_metric([cam], float((s.get("vlm") or {}).get(key) or 0))
        yield counter
    flight = GaugeMetricFamily("affectstream_vlm_in_flight", "VLM requests in flight.",
                               labels=["camera"])
    for cam, s in cams:
        flight.add_metric([cam], float((s.get("vlm") or {}).get("in_flight") or 0))
    yield flight


def _sinks(cams: list[tuple[str, dict[str, Any]]]) -> Iterator[Metric]:
    labels = ["camera", "sink"]
    queued = GaugeMetricFamily("affectstream_sink_queued", "Messages queued in a sink (MQTT: "
                               "waiting for the broker).", labels=labels)
    dropped = CounterMetricFamily("affectstream_sink_dropped", "Messages a sink dropped.",
                                  labels=labels)
    connected = GaugeMetricFamily("affectstream_sink_connected", "1 while a sink is connected.",
                                  labels=labels)
    latency = GaugeMetricFamily("affectstream_mqtt_publish_latency_seconds", "Burst to broker "
                                "acknowledgement, recent percentiles.",
                                labels=[*labels, "quantile"])
    for cam, s in cams:
        for sink, st in sorted((s.get("sinks") or {}).items()):
            queued.add_metric([cam, sink], float(st.get("queued") or 0))
            dropped.add_metric([cam, sink], float(st.get("dropped") or 0))
            connected.add_metric([cam, sink], 1.0 if st.get("connected") else 0.0)
            for q, key in (("0.5", "p50"), ("0.95", "p95")):
                ms = (st.get("burst_to_broker_ms") or {}).get(key)
                if ms is not None:
                    latency.add_metric([cam, sink, q], float(ms) / 1000)
    yield from (queued, dropped, connected, latency)


class Metrics:
    """The run's metrics in a private registry; :meth:`tap` is a frame tap, :meth:`observe`
    gets every published message."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._stats: dict[str, dict[str, Any]] = {}
        self.registry.register(_StatsCollector(self._stats))
        reg = self.registry
        self.stage = Histogram("affectstream_stage_latency_seconds", "Per-frame latency of each "
                               "perception stage; end_to_end is capture to result.",
                               ["camera", "stage"], buckets=STAGE_BUCKETS, registry=reg)
        self.bursts = Counter("affectstream_bursts", "Bursts published, by kind.",
                              ["camera", "kind"], registry=reg)
        self.emotions = Counter("affectstream_emotion_updates", "Emotion updates, by source.",
                                ["camera", "source"], registry=reg)
        self.vlm_latency = Histogram("affectstream_vlm_latency_seconds", "Latency of the VLM "
                                     "requests that produced an emotion update.", ["camera"],
                                     buckets=VLM_BUCKETS, registry=reg)
        self.vlm_tokens = Histogram("affectstream_vlm_prompt_tokens", "Prompt tokens of the "
                                    "VLM requests that produced an emotion update.", ["camera"],
                                    buckets=TOKEN_BUCKETS, registry=reg)
        self.sent = Counter("affectstream_preview_frames_sent", "Annotated frames sent to "
                            "preview viewers.", ["camera"], registry=reg)
        self.skipped = Counter("affectstream_preview_frames_skipped", "Frames a preview viewer "
                               "never got (above preview.max_fps or encoding behind).",
                               ["camera"], registry=reg)
        self.events_dropped = Counter("affectstream_preview_events_dropped", "Messages dropped "
                                      "from slow /events clients' queues.", registry=reg)

    def tap(self, camera_id: str, frame: Frame | None, result: FrameResult) -> None:
        if frame is None:
            return  # the end's flush: no frame, no stage timings
        for stage, ms in result.stages_ms.items():
            self.stage.labels(camera_id, stage).observe(ms / 1000)
        self.stage.labels(camera_id, "end_to_end").observe(max(0.0, time.time() - frame.ts))

    def observe(self, message: Message) -> None:
        payload = message.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("camera"), str):
            return  # availability, and the process-level stats (summed, no camera)
        camera = payload["camera"]
        schema = payload.get("schema")
        if schema == "affectstream.stats/1":
            self._stats[camera] = payload
        elif schema == "affectstream.burst/1":
            self.bursts.labels(camera, str(payload.get("kind"))).inc()
        elif schema == "affectstream.emotion/1":
            source = str(payload.get("source"))
            self.emotions.labels(camera, source).inc()
            if source == "vlm":
                self.vlm_latency.labels(camera).observe(float(payload["latency_ms"]) / 1000)
                self.vlm_tokens.labels(camera).observe(float(payload["prompt_tokens"]))

    def preview_frame(self, camera: str, skipped: int) -> None:
        self.sent.labels(camera).inc()
        if skipped:
            self.skipped.labels(camera).inc(skipped)

    def render(self) -> bytes:
        return generate_latest(self.registry)
