"""IoU face tracker with stable ids and ``new``/``end`` events.

Greedy matching by IoU is enough here: faces rarely cross, and every frame is processed so boxes
move little between updates. A track is announced once it has ``min_hits`` detections (a single
false detection never becomes a track) and ends after ``max_missing_s`` without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectstream.config import TrackerConfig
from affectstream.types import Detections, FloatArray

Box = tuple[float, float, float, float]


@dataclass(slots=True, eq=False)  # identity semantics: tracks are compared with `in`
class Track:
    track_id: int
    bbox: Box
    score: float
    keypoints: FloatArray
    first_s: float
    last_s: float
    last_frame: int
    hits: int = 1
    confirmed: bool = False
    matched: bool = True
    """Whether the track got a detection in the latest update."""


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    active: list[Track]
    """Confirmed tracks matched in this frame."""
    started: list[Track]
    ended: list[Track]


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    iou: FloatArray = (inter / np.maximum(union, 1e-6)).astype(np.float32)
    return iou


class FaceTracker:
    def __init__(self, cfg: TrackerConfig) -> None:
        self._cfg = cfg
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        return list(self._tracks)

    def update(self, dets: Detections, frame_index: int, pts_s: float) -> TrackUpdate:
        started: list[Track] = []
        boxes = np.array([t.bbox for t in self._tracks], np.float32).reshape(-1, 4)
        ious = iou_matrix(boxes, dets.xyxy)
        matched_dets: set[int] = set()
        for track in self._tracks:
            track.matched = False
        # Greedy: highest IoU pairs first.
        for flat in np.argsort(-ious, axis=None):
            ti, di = (int(v) for v in np.unravel_index(int(flat), ious.shape))
            if ious[ti, di] < self._cfg.iou_threshold:
                break
            track = self._tracks[ti]
            if track.matched or di in matched_dets:
                continue
            self._hit(track, dets, di, frame_index, pts_s)
            matched_dets.add(di)
            if not track.confirmed and track.hits >= self._cfg.min_hits:
                track.confirmed = True
                started.append(track)
        for di in range(len(dets)):
            if di not in matched_dets:
                self._tracks.append(self._new_track(dets, di, frame_index, pts_s))
                if self._cfg.min_hits <= 1:
                    self._tracks[-1].confirmed = True
                    started.append(self._tracks[-1])
        ended = [t for t in self._tracks
                 if not t.matched and pts_s - t.last_s > self._cfg.max_missing_s]
        self._tracks = [t for t in self._tracks if t not in ended]
        active = [t for t in self._tracks if t.matched and t.confirmed]
        return TrackUpdate(active, started, [t for t in ended if t.confirmed])

    def finish(self) -> list[Track]:
        """End every confirmed track (the stream ended)."""
        ended = [t for t in self._tracks if t.confirmed]
        self._tracks = []
        return ended

    def _hit(self, track: Track, dets: Detections, di: int, frame_index: int, pts_s: float) -> None:
        track.bbox = _box(dets.xyxy[di])
        track.score = float(dets.scores[di])
        track.keypoints = dets.keypoints[di]
        track.last_s = pts_s
        track.last_frame = frame_index
        track.hits += 1
        track.matched = True

    def _new_track(self, dets: Detections, di: int, frame_index: int, pts_s: float) -> Track:
        track = Track(self._next_id, _box(dets.xyxy[di]), float(dets.scores[di]),
                      dets.keypoints[di], pts_s, pts_s, frame_index)
        self._next_id += 1
        return track


def _box(row: FloatArray) -> Box:
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
