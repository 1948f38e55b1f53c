"""The demo clip: schedule rules, build and decode, sidecar, and visible injected motion."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from affectstream.errors import ModelError, SourceError
from affectstream.eval.democlip import (
    DemoClip,
    DemoScene,
    build_demo_clip,
    default_schedule,
    load_demo_truth,
    still_landmarks,
)
from affectstream.eval.inject import ACTIONS, InjectedExpression, classify_kind


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, landmarker_model: Path) -> DemoClip:
    path = tmp_path_factory.mktemp("demo") / "demo.mp4"
    return build_demo_clip(path, landmarker_model)


@pytest.fixture(scope="module")
def scene(clip: DemoClip, landmarker_model: Path) -> DemoScene:
    still = np.ascontiguousarray(data.astronaut())
    landmarks = still_landmarks(still, landmarker_model)
    return DemoScene(still, landmarks, clip.truth, frames=clip.frames, fps=clip.fps, seed=0)


@pytest.fixture(scope="module")
def decoded(clip: DemoClip) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(clip.path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def _check_schedule(events: tuple[InjectedExpression, ...], seconds: float, fps: float) -> None:
    n_frames = round(seconds * fps)
    for e in events:
        duration = (e.offset_frame - e.onset_frame) / fps
        assert e.kind == classify_kind(e.onset_frame, e.offset_frame, fps)
        if e.kind == "micro":
            assert 0.2 - 1 / fps <= duration <= 0.45 + 1 / fps
            assert 0.03 <= e.amplitude <= 0.08
        else:
            assert 0.8 - 1 / fps <= duration <= 2.0 + 1 / fps
            assert 0.10 <= e.amplitude <= 0.16
            assert ACTIONS[e.action].sigma >= 0.1
        assert e.onset_frame >= 1.5 * fps
        assert e.offset_frame < n_frames
    for a, b in itertools.pairwise(events):
        assert b.onset_frame - a.offset_frame >= 1.2 * fps


@pytest.mark.parametrize("seed", range(10))
def test_default_schedule_rules(seed: int) -> None:
    events = default_schedule(20.0, 30.0, seed)
    assert sum(e.kind == "micro" for e in events) == 5
    assert sum(e.kind == "macro" for e in events) == 3
    _check_schedule(events, 20.0, 30.0)
    assert len({e.action for e in events}) >= 5
    assert default_schedule(20.0, 30.0, seed) == events


@pytest.mark.parametrize(("seconds", "fps"), [(5.0, 30.0), (20.0, 10.0), (60.0, 25.0), (1.0, 30.0)])
def test_schedule_scales_with_clip(seconds: float, fps: float) -> None:
    events = default_schedule(seconds, fps, 3)
    _check_schedule(events, seconds, fps)
    assert len(events) <= math.ceil(8 * seconds / 20)
    if seconds >= 5:
        assert events


def test_seeds_differ() -> None:
    assert default_schedule(20.0, 30.0, 0) != default_schedule(20.0, 30.0, 1)


@pytest.mark.e2e
def test_clip_decodes(clip: DemoClip, decoded: list[np.ndarray]) -> None:
    assert (clip.frames, clip.fps, clip.width, clip.height) == (600, 30.0, 640, 360)
    cap = cv2.VideoCapture(str(clip.path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
    cap.release()
    assert len(decoded) == 600
    assert decoded[0].shape == (360, 640, 3)
    assert clip.truth == default_schedule(20.0, 30.0, 0)


@pytest.mark.e2e
def test_sidecar_round_trips(clip: DemoClip) -> None:
    assert load_demo_truth(clip.path) == clip
    doc = json.loads(clip.path.with_suffix(".json").read_text())
    assert doc["fps"] == 30.0 and len(doc["truth"]) == len(clip.truth)


def test_sidecar_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no ground truth"):
        load_demo_truth(tmp_path / "missing.mp4")
    (tmp_path / "bad.json").write_text('{"schema": "other"}')
    with pytest.raises(SourceError, match="sidecar"):
        load_demo_truth(tmp_path / "bad.mp4")


def test_missing_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="models fetch"):
        build_demo_clip(tmp_path / "x.mp4", tmp_path / "nope.task", seconds=1.0)


@pytest.mark.e2e
def test_face_is_webcam_sized_and_sways_gently(scene: DemoScene) -> None:
    first = scene.landmarks(0)
    assert 150 <= float(np.linalg.norm(first[152] - first[10])) <= 200
    nose = np.array([scene.landmarks(i)[1] for i in range(scene.frames)])
    sway = np.abs(nose - nose.mean(axis=0)).max(axis=0)
    assert np.all(sway > 2) and np.all(sway < 25)  # it moves, within ±10 px plus rotation/scale
    assert np.abs(np.diff(nose, axis=0)).max() < 1.0  # slow: under a pixel per frame
    inside = (first >= 0).all() and (first[:, 0] < 640).all() and (first[:, 1] < 360).all()
    assert inside


@pytest.mark.e2e
def test_frames_are_deterministic(scene: DemoScene) -> None:
    assert np.array_equal(scene.frame(123), scene.frame(123))
    noise = scene.frame(40).astype(int) - scene.frame(40, noise=False).astype(int)
    assert 1.0 < noise.std() < 3.0


def _face_flow(
    dis: cv2.DISOpticalFlow, a: np.ndarray, b: np.ndarray, landmarks: np.ndarray, points: list[int]
) -> float:
    """Mean flow magnitude near ``points`` after removing the face box's median (head) flow."""
    iod = float(np.linalg.norm(landmarks[263] - landmarks[33]))
    x0, y0 = np.floor(landmarks.min(axis=0) - 0.3 * iod).astype(int)
    x1, y1 = np.ceil(landmarks.max(axis=0) + 0.3 * iod).astype(int)
    gray = [cv2.cvtColor(f[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY) for f in (a, b)]
    flow = dis.calc(gray[0], gray[1], None)
    flow -= np.median(flow.reshape(-1, 2), axis=0)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    near = np.zeros(flow.shape[:2], bool)
    for x, y in landmarks[points]:
        near |= (xx - x) ** 2 + (yy - y) ** 2 <= (0.12 * iod) ** 2
    return float(np.linalg.norm(flow[near], axis=1).mean())


@pytest.mark.e2e
@pytest.mark.parametrize("source", ["clean", "decoded"])
def test_injected_events_are_visible_in_flow(
    source: str, clip: DemoClip, scene: DemoScene, decoded: list[np.ndarray]
) -> None:
    """Onset→apex flow around the moved landmarks clearly beats the same lag in calm periods."""

    def frame(i: int) -> np.ndarray:
        return scene.frame(i, noise=False) if source == "clean" else decoded[i]

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    busy = np.zeros(clip.frames, bool)
    for e in clip.truth:
        busy[e.onset_frame : e.offset_frame + 1] = True
    for e in clip.truth:
        points = list(ACTIONS[e.action].primary)
        lag = e.apex_frame - e.onset_frame
        event = _face_flow(
            dis, frame(e.onset_frame), frame(e.apex_frame), scene.landmarks(e.onset_frame), points
        )
        calm = [
            _face_flow(dis, frame(c), frame(c + lag), scene.landmarks(c), points)
            for c in range(0, clip.frames - lag, 11)
            if not busy[c : c + lag + 1].any()
        ]
        print(
            f"{source} {e.action:18s} {e.kind} amp={e.amplitude:.3f} lag={lag:2d}: "
            f"event {event:.2f} px, calm median {np.median(calm):.2f} max {max(calm):.2f}"
        )
        assert len(calm) >= 10
        assert event > 1.0 and event > 3.0 * max(calm), (e, event, max(calm))
