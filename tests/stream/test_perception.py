"""Perception end to end on real media and on a short demo clip with known injected expressions:
tracks, bursts, text, keyframes, spotting F1, and clean shutdown of the MediaPipe landmarkers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from affectstream.config import Config
from affectstream.eval.democlip import DemoClip, build_demo_clip
from affectstream.eval.metrics import interval_iou, score_spotting
from affectstream.stream.offline import perceive_file
from affectstream.types import Burst, Face, Keyframe, LogLine, TrackEvent

DEMO_SECONDS = 10.0
DEMO_SEED = 0
DEMO_MIN_F1 = 0.5
"""Measured 0.80 on this 10 s clip (4 injected events: 4 hits, 2 false bursts); the default
20 s clip scores ≈ 0.88. MEGC state of the art on real long videos is ≈ 0.35–0.39."""


@dataclass
class Run:
    frames: int = 0
    last_index: int = -1
    faces: dict[int, list[Face]] = field(default_factory=dict)
    bursts: list[Burst] = field(default_factory=list)
    events: list[tuple[bool, TrackEvent]] = field(default_factory=list)
    """(emitted by the final flush, event)."""
    keyframes: list[Keyframe] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)


def perceive(path: Path, model_paths: dict[str, Path]) -> Run:
    run = Run()
    for item in perceive_file(Config(), model_paths, path):
        frame, out = item.frame, item.result
        if frame is not None:
            run.frames += 1
            run.last_index = frame.index
            assert out.frame_index == frame.index
        run.faces[out.frame_index] = run.faces.get(out.frame_index, []) + list(out.faces)
        run.bursts += out.bursts
        run.events += [(frame is None, e) for e in out.track_events]
        run.keyframes += out.keyframes
        run.lines += out.log_lines
    return run


@pytest.fixture(scope="module")
def single(media_dir: Path, model_paths: dict[str, Path]) -> Run:
    return perceive(media_dir / "single_face.mp4", model_paths)


@pytest.fixture(scope="module")
def face_then_noface(media_dir: Path, model_paths: dict[str, Path]) -> Run:
    return perceive(media_dir / "face_then_noface.mov", model_paths)


@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory: pytest.TempPathFactory,
              model_paths: dict[str, Path]) -> DemoClip:
    path = tmp_path_factory.mktemp("perception-demo") / "demo.mp4"
    return build_demo_clip(path, model_paths["face-landmarker"], seconds=DEMO_SECONDS, fps=30,
                           seed=DEMO_SEED)


@pytest.fixture(scope="module")
def demo(demo_clip: DemoClip, model_paths: dict[str, Path]) -> Run:
    return perceive(demo_clip.path, model_paths)


# -- single_face.mp4: neutral → smile ------------------------------------------------------

@pytest.mark.e2e
def test_single_face_one_track_covers_the_clip(single: Run) -> None:
    assert single.frames == 72
    ids = {f.track_id for faces in single.faces.values() for f in faces}
    assert len(ids) == 1
    (tid,) = ids
    with_face = [i for i in range(single.frames)
                 if any(f.track_id == tid for f in single.faces.get(i, []))]
    assert len(with_face) >= 0.95 * single.frames
    news = [e for _, e in single.events if e.type == "new"]
    assert [(e.track_id, e.frame_index) for e in news] == [(tid, 1)]  # min_hits = 2
    # Every face of the track carries landmarks, blendshapes and a head pose.
    for i in with_face:
        (face,) = single.faces[i]
        assert face.landmarks is not None and face.landmarks.shape == (478, 3)
        assert len(face.blendshapes) == 52 and face.head_pose is not None
        x1, y1, x2, y2 = face.bbox
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360


@pytest.mark.e2e
def test_single_face_smile_burst(single: Run) -> None:
    smiles = [b for b in single.bursts
              if interval_iou((b.onset_frame, b.offset_frame), (12, 35)) > 0
              and 12 in [u.au for u in b.action_units]]
    assert smiles, [(b.onset_frame, b.offset_frame, b.text) for b in single.bursts]
    burst = smiles[0]
    assert burst.onset_frame <= 35 and burst.offset_frame >= 12
    assert burst.onset_frame <= burst.apex_frame <= burst.offset_frame
    assert "lip corner" in burst.text and "AU12" in burst.text
    au12 = next(u for u in burst.action_units if u.au == 12)
    assert au12.side == "both" and au12.intensity >= 0.3  # a full, symmetric smile
    assert any(line.kind == "burst" and line.burst_id == burst.id for line in single.lines)


@pytest.mark.e2e
def test_single_face_keyframes(single: Run) -> None:
    periodic = [k for k in single.keyframes if k.reason == "periodic"]
    assert 4 <= len(periodic) <= 6  # 2.4 s at 2 Hz
    for kf in single.keyframes:
        assert kf.image.shape == (224, 224, 3) and kf.image.dtype == np.uint8
        assert kf.image.std() > 10  # a real face crop, not a blank


# -- face_then_noface.mov --------------------------------------------------------------------

@pytest.mark.e2e
def test_face_then_noface_track_ends_before_last_frame(face_then_noface: Run) -> None:
    run = face_then_noface
    ends = [(flushed, e) for flushed, e in run.events if e.type == "end"]
    news = [e for _, e in run.events if e.type == "new"]
    assert len(news) == 1 and len(ends) == 1
    flushed, end = ends[0]
    assert not flushed  # ended by the tracker while frames were still coming
    assert end.track_id == news[0].track_id
    assert end.frame_index < run.last_index
    last_face = max(i for i, faces in run.faces.items() if faces)
    assert last_face < end.frame_index
    assert 0.4 <= end.pts_s - end.last_s <= 0.6  # max_missing_s = 0.5
    assert end.first_s <= end.last_s
    assert not any(run.faces.get(i) for i in range(end.frame_index, run.last_index + 1))


# -- demo clip with injected expressions -------------------------------------------------

@pytest.mark.e2e
def test_demo_spotting_f1(demo_clip: DemoClip, demo: Run) -> None:
    assert demo.frames == demo_clip.frames
    pred = [(b.onset_frame, b.offset_frame) for b in demo.bursts]
    truth = [e.interval() for e in demo_clip.truth]
    score = score_spotting(pred, truth, 0.5)
    print(f"\ndemo {DEMO_SECONDS:.0f} s seed {DEMO_SEED}: F1 {score.f1:.3f} "
          f"(tp {score.tp}, fp {score.fp}, fn {score.fn}); truth {truth}; pred {pred}")
    assert score.f1 >= DEMO_MIN_F1
    assert score.tp >= 2


@pytest.mark.e2e
def test_demo_bursts_are_consistent(demo: Run) -> None:
    cfg = Config()
    assert demo.bursts
    apex = {k.burst_id: k for k in demo.keyframes if k.reason == "apex"}
    burst_lines = {line.burst_id: line for line in demo.lines if line.kind == "burst"}
    for b in demo.bursts:
        assert b.onset_frame <= b.apex_frame <= b.offset_frame
        assert b.onset_s <= b.apex_s <= b.offset_s
        assert b.kind == ("micro" if b.duration_s <= cfg.spotter.micro_max_s else "macro")
        assert b.duration_s >= cfg.spotter.min_duration_s
        prefix = f"{b.onset_s:.2f}–{b.offset_s:.2f} s, {b.duration_s:.2f} s {b.kind}: "
        assert b.text.startswith(prefix) and len(b.text) > len(prefix)
        assert b.regions and b.camera == cfg.camera_id
        assert b.id.startswith(f"{cfg.camera_id}-") and b.id.endswith(f"-f{b.onset_frame}")
        kf = apex[b.id]
        assert kf.frame_index == b.apex_frame and kf.pts_s == b.apex_s
        assert kf.track_id == b.track_id and kf.image.shape == (224, 224, 3)
        assert burst_lines[b.id].text == b.text
    assert len({b.id for b in demo.bursts}) == len(demo.bursts)


# -- shutdown ------------------------------------------------------------------------------

def test_close_releases_landmarkers_cleanly(media_dir: Path,
                                            model_paths: dict[str, Path]) -> None:
    """MediaPipe's landmarker destructor fails at interpreter exit unless closed explicitly."""
    script = textwrap.dedent(f"""
        from pathlib import Path
        import cv2
        from affectstream.config import Config
        from affectstream.stream.perception import Perception
        from affectstream.types import Frame

        paths = {{k: Path(v) for k, v in {({k: str(v) for k, v in model_paths.items()})!r}.items()}}
        perception = Perception(Config(), paths, 30.0, "closetest")
        cap = cv2.VideoCapture({str(media_dir / "single_face.mp4")!r})
        for i in range(6):
            ok, image = cap.read()
            assert ok
            out = perception.process(Frame(i, i / 30, 0.0, image))
        cap.release()
        assert len(perception.tracks) == 1
        assert all(s.landmarker is not None for s in perception.tracks.values())
        assert out.faces and out.faces[0].landmarks is not None
        perception.close()
        assert perception.tracks == {{}}
        perception.close()  # idempotent
        print("closed")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("closed")
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "Error" not in done.stderr, done.stderr[-2000:]
