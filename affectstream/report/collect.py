"""What a run report keeps while the run goes on, per camera, with bounded memory.

Three feeds, each from where it is cheapest:

- :meth:`Collector.publish` (through :class:`ReportSink`, an in-process sink): the published
  messages, i.e. bursts, emotion updates, track events and the stats, exactly as subscribers
  got them;
- :meth:`Collector.tap` (a frame tap, in each camera's perception thread): each burst's apex
  crop, which perception made for the VLM (the apex keyframe), shrunk to a thumbnail;
- :meth:`Collector.observer` (``spot`` only): the spotter's signal per track.

The tap and the observer run on perception's path and only shrink a crop per burst or copy
numbers; all encoding and drawing happens once, when the report is written. Everything is
under one lock because the three feeds run in different threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from affectstream.config import ReportConfig
from affectstream.publish.messages import Message
from affectstream.report.thumbs import thumbnail
from affectstream.types import Frame, FrameResult, Image

MAX_SIGNAL_POINTS = 200_000
"""Spotting-signal samples kept per track (about 1.8 h at 30 fps); later ones are not kept."""


@dataclass
class CameraRecord:
    """One camera's part of the report."""

    camera: str
    max_events: int
    bursts: deque[dict[str, Any]] = field(init=False)
    emotions: deque[dict[str, Any]] = field(init=False)
    bursts_left_out: int = 0
    emotions_left_out: int = 0
    tracks: dict[int, dict[str, float]] = field(default_factory=dict)
    """track id → {first_s, last_s}."""
    stats: dict[str, Any] | None = None
    """The latest stats payload: the final one once the run has ended."""
    thumbs: OrderedDict[str, Image] = field(default_factory=OrderedDict)
    """burst id → apex crop, oldest first."""
    thumbs_left_out: int = 0
    signals: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    """track id → [(frame index, spotter score)] (``spot``)."""
    fps: float | None = None
    last_s: float = 0.0
    """Stream time of the newest frame or message seen: the timeline's right end."""

    def __post_init__(self) -> None:
        self.bursts = deque(maxlen=self.max_events)
        self.emotions = deque(maxlen=self.max_events)


class Collector:
    """The report's memory for every camera of a run (see the module docstring)."""

    def __init__(self, cfg: ReportConfig) -> None:
        self._cfg = cfg
        self._lock = threading.Lock()
        self._cameras: dict[str, CameraRecord] = {}

    # -- reading (once the run has ended) --------------------------------------------------

    def cameras(self) -> list[CameraRecord]:
        with self._lock:
            return list(self._cameras.values())

    def has_content(self) -> bool:
        with self._lock:
            return any(c.stats is not None or c.bursts or c.tracks or c.signals
                       for c in self._cameras.values())

    def _camera(self, camera: str) -> CameraRecord:
        record = self._cameras.get(camera)
        if record is None:
            record = self._cameras[camera] = CameraRecord(camera, self._cfg.max_events)
        return record

    def camera(self, camera: str, fps: float | None = None) -> None:
        """Make sure ``camera`` has a section (even an empty one), with its frame rate."""
        with self._lock:
            record = self._camera(camera)
            if fps:
                record.fps = fps

    # -- messages ----------------------------------------------------------------------------

    def publish(self, message: Message) -> None:
        payload = message.payload
        if message.broker_only or not isinstance(payload, dict) or "camera" not in payload:
            return  # availability, deletions and the process-wide stats are not reported
        schema = str(payload.get("schema", ""))
        with self._lock:
            record = self._camera(str(payload["camera"]))
            if schema == "affectstream.burst/1":
                self._keep(record.bursts, payload, "bursts_left_out", record)
                record.last_s = max(record.last_s, float(payload["offset_s"]))
            elif schema == "affectstream.emotion/1":
                self._keep(record.emotions, payload, "emotions_left_out", record)
                record.last_s = max(record.last_s, float(payload["window"]["end_s"]))
            elif schema == "affectstream.track/1":
                span = record.tracks.setdefault(int(payload["track_id"]),
                                                {"first_s": float(payload["first_s"])})
                span["last_s"] = float(payload["last_s"])
                record.last_s = max(record.last_s, span["last_s"])
            elif schema == "affectstream.stats/1":
                record.stats = payload

    @staticmethod
    def _keep(store: deque[dict[str, Any]], payload: dict[str, Any], counter: str,
              record: CameraRecord) -> None:
        if store.maxlen is not None and len(store) == store.maxlen:
            setattr(record, counter, getattr(record, counter) + 1)
        store.append(payload)

    # -- frames (perception thread) ---------------------------------------------------------

    def tap(self, camera_id: str, frame: Frame | None, result: FrameResult) -> None:
        """A frame tap: the apex crop of each burst perception reported with this frame (or
        with the end's flush) is kept as its thumbnail. Perception already made it, the same
        aligned face crop the VLM sees (the apex keyframe), so this only shrinks it."""
        apexes = [(kf.burst_id, kf.image) for kf in result.keyframes if kf.burst_id]
        thumbs = [(b, thumbnail(image)) for b, image in apexes] if self._keeps_thumbs() else []
        with self._lock:
            record = self._camera(camera_id)
            record.last_s = max(record.last_s, result.pts_s)
            for burst_id, crop in thumbs:
                self._add_thumb(record, burst_id, crop)

    def _keeps_thumbs(self) -> bool:
        return self._cfg.thumbnails and self._cfg.max_thumbnails > 0

    def _add_thumb(self, record: CameraRecord, burst_id: str, crop: Image) -> None:
        record.thumbs[burst_id] = crop
        while len(record.thumbs) > self._cfg.max_thumbnails:
            record.thumbs.popitem(last=False)
            record.thumbs_left_out += 1

    def signal(self, camera_id: str, track_id: int, frame_index: int, score: float) -> None:
        """One spotter score (``spot``'s observer calls it)."""
        if frame_index < 0:
            return  # the spotter has no score yet (warm-up, look-ahead)
        with self._lock:
            points = self._camera(camera_id).signals.setdefault(track_id, [])
            if len(points) < MAX_SIGNAL_POINTS:
                points.append((frame_index, float(score)))


class ReportSink:
    """The report as an in-process sink (:class:`affectstream.publish.sinks.Sink`)."""

    name = "report"

    def __init__(self, collector: Collector) -> None:
        self._collector = collector
        self._seen = 0

    async def start(self) -> None:
        return None

    async def publish(self, message: Message) -> None:
        self._seen += 1
        self._collector.publish(message)

    async def close(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"queued": 0, "dropped": 0, "connected": True}
