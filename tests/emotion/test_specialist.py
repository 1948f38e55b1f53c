"""Window averaging and timing of the specialist's emotion updates."""

from __future__ import annotations

import pytest

from affectstream.emotion.specialist import SpecialistEmotionEstimator
from affectstream.labels import LABEL_SETS
from affectstream.types import Burst, Face

LABELS = LABEL_SETS["dfew7"]


def face(track: int, t: float, probs: dict[str, float] | None) -> Face:
    full = None if probs is None else {label: probs.get(label, 0.0) for label in LABELS}
    return Face(track, round(t * 30), t, (0, 0, 10, 10), 0.9, expression=full)


def burst(track: int, t: float) -> Burst:
    return Burst(f"b{t}", "cam", track, 0, 0, 0, t, t, t, "micro", (), (), 1.0, "", 0.0)


def test_an_update_averages_the_classified_frames_of_its_window() -> None:
    est = SpecialistEmotionEstimator("cam", LABELS, "probe", period_s=2.0, min_interval_s=0.5)
    updates = []
    for i in range(61):  # 2 s at 30 fps; the specialist ran on every third frame
        t = i / 30
        probs = None if i % 3 else ({"happiness": 0.9, "neutral": 0.1} if i < 30
                                    else {"happiness": 0.3, "neutral": 0.7})
        updates += est.updates(t, [face(1, t, probs)], [])
    assert len(updates) == 1
    up = updates[0]
    assert up.source == "specialist" and up.model == "probe" and up.track_id == 1
    assert (up.window_start_s, up.window_end_s) == (0.0, 2.0)
    # frames 0, 3, …, 27 (10 happy) and 30, …, 60 (11 calmer)
    assert up.probs["happiness"] == pytest.approx((10 * 0.9 + 11 * 0.3) / 21)
    assert sum(up.probs.values()) == pytest.approx(1.0)
    assert up.label == "happiness" and up.confidence == up.probs["happiness"]
    assert "21 face crops" in up.rationale and up.valence > 0


def test_a_burst_brings_the_update_forward_and_is_listed() -> None:
    est = SpecialistEmotionEstimator("cam", LABELS, "probe", period_s=2.0, min_interval_s=0.5)
    assert est.updates(0.0, [face(1, 0.0, {"fear": 1.0})], []) == []
    assert est.updates(0.3, [face(1, 0.3, {"fear": 1.0})], [burst(1, 0.3)]) == []
    (up,) = est.updates(0.6, [face(1, 0.6, {"fear": 1.0})], [])
    assert up.label == "fear" and up.bursts == ("b0.3",) and up.window_end_s == 0.6
    # the next window starts where this one ended and has no bursts yet
    assert est.updates(1.2, [face(1, 1.2, {"fear": 1.0})], []) == []


def test_tracks_without_classified_frames_or_ended_give_nothing() -> None:
    est = SpecialistEmotionEstimator("cam", LABELS, "probe", period_s=1.0, min_interval_s=0.5)
    assert est.updates(0.0, [face(2, 0.0, None)], []) == []
    assert est.updates(1.5, [face(2, 1.5, None)], []) == []
    est.updates(1.6, [face(3, 1.6, {"anger": 1.0})], [], ended=[3])
    assert est.updates(3.0, [], []) == []
