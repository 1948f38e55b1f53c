"""FACS prototype rules (the `--vlm-backend none` fallback): rules, update timing, real video."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from cli_helpers import cli, read_jsonl

from affectstream.detectors import facs
from affectstream.emotion.facs import PROTOTYPES, FacsEmotionEstimator, rule_probs
from affectstream.labels import DFEW7, MAFW11
from affectstream.types import ActionUnit, Burst, Face

# Blendshape values that produce each AU (see affectstream.detectors.facs.BLENDSHAPE_AU).
SMILE = {"cheekSquintLeft": 0.5, "cheekSquintRight": 0.5,
         "mouthSmileLeft": 0.8, "mouthSmileRight": 0.8}
# MediaPipe always reports every blendshape; a relaxed face has them near zero.
RELAXED = dict.fromkeys(SMILE, 0.0)


def _face(track: int, t: float, blend: dict[str, float]) -> Face:
    return Face(track, round(t * 30), t, (0.0, 0.0, 100.0, 100.0), 0.9, None, blend, None,
                tuple(facs.action_units(blend, 0.0)))


def _burst(track: int, t: float) -> Burst:
    return Burst(f"b{t}", "cam0", track, 0, 1, 2, t - 0.2, t - 0.1, t, "micro", ("chin",),
                 (ActionUnit(12, "lip corner puller", "both", 0.5),), 1.0, "x", 0.0)


@pytest.mark.parametrize(("evidence", "expected"), [
    ({}, "neutral"),
    ({6: 0.5, 12: 0.6}, "happiness"),
    ({12: 0.5}, "happiness"),
    ({1: 0.4, 4: 0.4, 15: 0.5}, "sadness"),
    ({1: 0.5, 2: 0.5, 5: 0.4, 26: 0.6}, "surprise"),
    ({4: 0.5, 7: 0.5, 24: 0.4}, "anger"),
    ({9: 0.6, 10: 0.5}, "disgust"),
    ({1: 0.5, 2: 0.5, 4: 0.5, 5: 0.5, 20: 0.5, 26: 0.1}, "fear"),
    ({6: 0.05, 12: 0.05}, "neutral"),  # below the neutral score: not enough evidence
])
def test_rules_pick_the_prototype(evidence: dict[int, float], expected: str) -> None:
    probs, rationale = rule_probs(evidence, DFEW7)
    assert set(probs) == set(DFEW7) and math.isclose(sum(probs.values()), 1.0)
    assert max(probs, key=lambda k: probs[k]) == expected, probs
    assert (expected in rationale) if expected != "neutral" else ("resting" in rationale)


def test_mafw_labels_without_prototype_get_no_mass() -> None:
    probs, _ = rule_probs({12: 0.5, 14: 0.5}, MAFW11)
    assert set(probs) == set(MAFW11) and math.isclose(sum(probs.values()), 1.0)
    assert probs["anxiety"] == probs["helplessness"] == probs["disappointment"] == 0.0
    assert "contempt" in PROTOTYPES and probs["contempt"] > 0.1


def test_updates_every_period_and_early_after_a_burst() -> None:
    est = FacsEmotionEstimator("cam0", DFEW7, period_s=2.0, min_interval_s=0.5)
    updates = []
    for i in range(120):  # 4 s at 30 fps: neutral for 1 s, then a smile
        t = i / 30
        blend = RELAXED if t < 1.0 else SMILE
        bursts = [_burst(1, t)] if i == 45 else []
        updates += est.updates(t, [_face(1, t, blend)], bursts)
    times = [u.window_end_s for u in updates]
    # a burst at 1.5 s brings an update forward; then every 2 s of stream time
    assert times[0] == pytest.approx(1.5) and times[1] == pytest.approx(3.5)
    assert updates[0].bursts == ("b1.5",) and updates[1].bursts == ()
    assert updates[0].label == "happiness" and updates[1].label == "happiness"
    assert all(u.source == "facs" and u.model.startswith("facs") for u in updates)
    assert all(-1 <= u.valence <= 1 and 0 <= u.arousal <= 1 for u in updates)
    assert updates[0].valence > 0.3


def test_resting_level_is_the_faces_own() -> None:
    est = FacsEmotionEstimator("cam0", DFEW7, period_s=2.0, min_interval_s=0.5)
    resting = {"browInnerUp": 0.45}  # a face that rests with raised inner brows
    updates = []
    for i in range(61):
        updates += est.updates(i / 30, [_face(1, i / 30, resting)], [])
    assert [u.label for u in updates] == ["neutral"]


def test_tracks_are_independent_and_forgotten_when_ended() -> None:
    est = FacsEmotionEstimator("cam0", DFEW7, period_s=1.0, min_interval_s=0.5)
    out = []
    for i in range(40):
        t = i / 30
        faces = [_face(2, t, SMILE if t > 0.1 else RELAXED)]
        if i < 36:
            faces.append(_face(1, t, RELAXED))
        out += est.updates(t, faces, [], ended=[1] if i == 36 else [])
    labels = {u.track_id: u.label for u in out}
    assert labels == {1: "neutral", 2: "happiness"}
    # track 1 is forgotten: later updates only ever concern track 2
    assert [u.track_id for u in est.updates(2.5, [], [])] == [2]


@pytest.mark.e2e  # a whole CLI run on video
def test_run_publishes_facs_emotion_updates(tmp_path: Path, media_dir: Path,
                                            model_paths: dict[str, Path]) -> None:
    out = tmp_path / "o.jsonl"
    proc = cli("run", "--source", str(media_dir / "single_face.mp4"), "--no-realtime",
               "--vlm-backend", "none", "--sink", f"jsonl:{out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(out)
    emotions = [ln["payload"] for ln in lines if ln["topic"] == "cam0/faces/1/emotion"]
    assert emotions, [ln["topic"] for ln in lines]
    for e in emotions:
        assert e["schema"] == "affectstream.emotion/1" and e["source"] == "facs"
        assert set(e["probs"]) == set(DFEW7)
        assert math.isclose(sum(e["probs"].values()), 1.0, abs_tol=1e-3)
        assert e["label"] == max(e["probs"], key=e["probs"].get)
    # the clip smiles from about 0.5 s (AU6 + AU12): the smile's update says happiness
    assert emotions[-1]["label"] == "happiness", json.dumps(emotions)
    stats = [ln["payload"] for ln in lines if ln["topic"] == "cam0/stats"][-1]
    assert stats["primary"] is None or stats["primary"]["label"] in DFEW7


def test_a_face_that_appears_smiling_is_counted_once_it_relaxes() -> None:
    est = FacsEmotionEstimator("cam0", DFEW7, period_s=2.0, min_interval_s=0.5)
    updates = []
    for i in range(242):  # smiling for 1 s, relaxed until 6 s, smiling again until 8 s
        t = i / 30
        blend = SMILE if t < 1.0 or t >= 6.0 else RELAXED
        updates += est.updates(t, [_face(1, t, blend)], [])
    assert [u.label for u in updates][-1] == "happiness"
