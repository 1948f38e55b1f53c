"""IoU face tracker on synthetic Detections sequences (the tracker's real input type)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from affectstream.config import TrackerConfig
from affectstream.detectors.tracker import FaceTracker, iou_matrix
from affectstream.types import Detections

FPS = 30.0
CFG = TrackerConfig(iou_threshold=0.3, min_hits=2, max_missing_s=0.5)


def dets(*boxes: Sequence[float]) -> Detections:
    if not boxes:
        return Detections.empty()
    xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
    kps = np.zeros((len(xyxy), 5, 2), np.float32)
    kps[:, :, 0] = ((xyxy[:, 0] + xyxy[:, 2]) / 2)[:, None]
    kps[:, :, 1] = ((xyxy[:, 1] + xyxy[:, 3]) / 2)[:, None]
    return Detections(xyxy, np.full(len(xyxy), 0.9, np.float32), kps)


def box(x: float, y: float, size: float = 100.0) -> tuple[float, float, float, float]:
    return (x, y, x + size, y + size)


def test_iou_matrix() -> None:
    a = np.asarray([box(0, 0), box(50, 0)], np.float32)
    b = np.asarray([box(0, 0), box(200, 200)], np.float32)
    m = iou_matrix(a, b)
    assert m.shape == (2, 2)
    np.testing.assert_allclose(m, [[1.0, 0.0], [1 / 3, 0.0]], atol=1e-6)
    assert iou_matrix(a, np.zeros((0, 4), np.float32)).shape == (2, 0)


def test_stable_id_across_moving_box() -> None:
    tracker = FaceTracker(CFG)
    ids, started = set(), []
    for i in range(60):
        up = tracker.update(dets(box(100 + 4 * i, 50 + 2 * i)), i, i / FPS)
        started += [t.track_id for t in up.started]
        assert up.ended == []
        if i == 0:
            assert up.active == []  # not confirmed yet
        else:
            assert len(up.active) == 1
            ids.add(up.active[0].track_id)
            assert up.active[0].bbox == box(100 + 4 * i, 50 + 2 * i)
            assert up.active[0].last_frame == i
    assert len(ids) == 1
    assert started == list(ids)  # announced exactly once
    (track,) = tracker.tracks
    assert track.hits == 60 and track.first_s == 0.0


def test_one_frame_false_detection_never_becomes_a_track() -> None:
    tracker = FaceTracker(CFG)
    up = tracker.update(dets(box(300, 300)), 0, 0.0)
    assert up.active == [] and up.started == []
    for i in range(1, 40):
        up = tracker.update(dets(), i, i / FPS)
        assert up.active == [] and up.started == []
        assert up.ended == []  # unconfirmed tracks end silently
    assert tracker.tracks == []
    assert tracker.finish() == []


def test_min_hits_confirmation_count() -> None:
    tracker = FaceTracker(TrackerConfig(min_hits=3))
    confirmed_at = None
    for i in range(5):
        up = tracker.update(dets(box(10, 10)), i, i / FPS)
        if up.started:
            confirmed_at = i
    assert confirmed_at == 2
    tracker = FaceTracker(TrackerConfig(min_hits=1))
    up = tracker.update(dets(box(10, 10)), 0, 0.0)
    assert len(up.started) == 1 and len(up.active) == 1


def test_track_ends_after_max_missing() -> None:
    tracker = FaceTracker(CFG)
    for i in range(10):
        tracker.update(dets(box(100, 100)), i, i / FPS)
    (track,) = tracker.tracks
    last_s = 9 / FPS
    ended_at = None
    for i in range(10, 60):
        up = tracker.update(dets(), i, i / FPS)
        assert up.active == []
        if up.ended:
            assert up.ended == [track]
            ended_at = i
            break
        assert i / FPS - last_s <= CFG.max_missing_s + 1e-9
    assert ended_at is not None
    assert ended_at / FPS - last_s > CFG.max_missing_s
    assert ended_at / FPS - last_s <= CFG.max_missing_s + 1.5 / FPS
    assert tracker.tracks == []
    # The same place later is a new face with a new id.
    tracker.update(dets(box(100, 100)), 100, 100 / FPS)
    up = tracker.update(dets(box(100, 100)), 101, 101 / FPS)
    assert [t.track_id for t in up.started] == [track.track_id + 1]


def test_short_gap_keeps_the_track() -> None:
    tracker = FaceTracker(CFG)
    for i in range(5):
        tracker.update(dets(box(100, 100)), i, i / FPS)
    for i in range(5, 12):  # 7 frames ≈ 0.23 s missing
        assert tracker.update(dets(), i, i / FPS).ended == []
    up = tracker.update(dets(box(102, 101)), 12, 12 / FPS)
    assert [t.track_id for t in up.active] == [1] and up.started == []


def test_two_faces_keep_distinct_ids() -> None:
    tracker = FaceTracker(CFG)
    per_side: dict[str, set[int]] = {"left": set(), "right": set()}
    for i in range(30):
        left, right = box(50 + 2 * i, 100), box(400 - 2 * i, 120)
        order = (left, right) if i % 2 else (right, left)  # detection order must not matter
        up = tracker.update(dets(*order), i, i / FPS)
        for t in up.active:
            per_side["left" if t.bbox == left else "right"].add(t.track_id)
    assert len(per_side["left"]) == 1 and len(per_side["right"]) == 1
    assert per_side["left"] != per_side["right"]


def test_jump_beyond_iou_threshold_starts_new_track() -> None:
    tracker = FaceTracker(CFG)
    for i in range(3):
        tracker.update(dets(box(0, 0)), i, i / FPS)
    tracker.update(dets(box(300, 0)), 3, 3 / FPS)
    up = tracker.update(dets(box(300, 0)), 4, 4 / FPS)
    assert [t.track_id for t in up.active] == [2]


def test_finish_ends_confirmed_tracks_only() -> None:
    tracker = FaceTracker(CFG)
    for i in range(5):
        tracker.update(dets(box(0, 0), box(300, 0)), i, i / FPS)
    tracker.update(dets(box(0, 0), box(300, 0), box(0, 250)), 5, 5 / FPS)  # third: one hit
    ended = tracker.finish()
    assert sorted(t.track_id for t in ended) == [1, 2]
    assert all(t.confirmed for t in ended)
    assert tracker.tracks == []
    assert tracker.finish() == []
