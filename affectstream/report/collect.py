"""What a run report keeps while the run goes on, per camera, with bounded memory.

Three feeds, each from where it is cheapest:

- :meth:`Collector.publish` (through :class:`ReportSink`, an in-process sink): the published
  messages, i.e. bursts, emotion updates, track events and the stats, exactly as subscribers
  got them;
- :meth:`Collector.tap` (a frame tap, in each camera's perception thread): a small face crop
  per tracked face into a short per-track ring, from which a burst's apex crop is picked as soon
  as perception reports the burst;
- :meth:`Collector.observer` (``spot`` only): the spotter's signal per track.

The tap and the observer run on perception's path and only copy small crops or numbers; all
encoding and drawing happens once, when the report is written. Everything is under one lock
because the three feeds run in different threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from affectstream.config import ReportConfig
from affectstream.publish.messages import Message
from affectstream.report.thumbs import CropRing, face_crop
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
        self._rings: dict[tuple[str, int], CropRing] = {}

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
                self._pick_thumb_late(record, payload)
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

    def tap(self, camera_id: str, frame: Frame, result: FrameResult) -> None:
        """A frame tap: crops into the rings, apex crops picked for new bursts."""
        if not self._cfg.thumbnails or self._cfg.max_thumbnails == 0:
            with self._lock:
                record = self._camera(camera_id)
                record.last_s = max(record.last_s, frame.pts_s)
            return
        crops = [(face.track_id, face_crop(frame.image, face)) for face in result.faces]
        with self._lock:
            record = self._camera(camera_id)
            record.last_s = max(record.last_s, frame.pts_s)
            for track_id, crop in crops:
                self._rings.setdefault((camera_id, track_id), CropRing()).add(frame.index, crop)
            for burst in result.bursts:
                found = self._rings.get((camera_id, burst.track_id))
                apex = found.at(burst.apex_frame) if found is not None else None
                if apex is not None:
                    self._add_thumb(record, burst.id, apex)
            for event in result.track_events:
                if event.type == "end":  # its bursts came with this frame or before
                    self._rings.pop((camera_id, event.track_id), None)

    def _pick_thumb_late(self, record: CameraRecord, payload: dict[str, Any]) -> None:
        """A burst that the tap never saw (flushed at the end of the run, when perception
        closes every track) still finds its apex crop in the track's ring."""
        if not self._cfg.thumbnails or payload["id"] in record.thumbs:
            return
        ring = self._rings.get((record.camera, int(payload["track_id"])))
        crop = ring.at(int(payload["apex_frame"])) if ring is not None else None
        if crop is not None:
            self._add_thumb(record, str(payload["id"]), crop)

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
