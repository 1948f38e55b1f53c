"""The emotion stage's registry and update clock, and a toy estimator that joins a real run
the way the built-in ones do: registered, not wired into app.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import read_jsonl

from affectstream.app import Runner
from affectstream.config import Config
from affectstream.emotion import (
    EmotionEstimator,
    EstimatorRegistry,
    EstimatorSetup,
    UpdateClock,
    default_registry,
)
from affectstream.emotion.facs import FacsEmotionEstimator
from affectstream.emotion.specialist import SpecialistEmotionEstimator
from affectstream.emotion.vlm import VlmEstimator
from affectstream.labels import DFEW7
from affectstream.types import EmotionUpdate, FrameResult


async def _drop(update: EmotionUpdate) -> None:
    pass


def _setup(raw: dict[str, Any], specialist: str | None = None) -> EstimatorSetup:
    return EstimatorSetup(Config.model_validate(raw), DFEW7, _drop, specialist)


def test_update_clock_period_early_bursts_and_forgetting() -> None:
    clock = UpdateClock(period_s=2.0, min_interval_s=0.5)
    assert not clock.due(1, 5.0)  # not started
    clock.start(1, 0.0)
    clock.start(1, 1.0)  # a started track keeps its start
    assert not clock.due(1, 1.9) and clock.due(1, 2.0)
    clock.fired(1, 2.0)
    clock.burst(1)
    assert not clock.due(1, 2.4) and clock.due(1, 2.5)  # early, but min_interval after
    clock.fired(1, 2.5)
    assert not clock.due(1, 3.0)  # the burst was used up
    clock.burst(2)  # a burst of a track never started is ignored
    assert 2 not in clock
    clock.forget(1)
    assert 1 not in clock and not clock.due(1, 100.0)


@pytest.mark.parametrize(("raw", "specialist", "kind"), [
    ({}, None, FacsEmotionEstimator),
    ({"specialist": {"enabled": True}}, "fer-minixception", SpecialistEmotionEstimator),
    ({"vlm": {"type": "openai", "url": "http://127.0.0.1:9/v1"}}, None, VlmEstimator),
    ({"vlm": {"type": "openai", "url": "http://127.0.0.1:9/v1"}, "specialist": {"enabled": True}},
     "fer-minixception", VlmEstimator),
])
def test_the_default_registry_picks_one_source_from_the_config(
        raw: dict[str, Any], specialist: str | None, kind: type) -> None:
    (estimator,) = default_registry().create(_setup(raw, specialist))
    assert isinstance(estimator, kind)


def test_registering_a_name_twice_is_refused() -> None:
    registry = EstimatorRegistry()
    registry.register("toy", lambda setup: None)
    with pytest.raises(ValueError, match="'toy' is already registered"):
        registry.register("toy", lambda setup: None)
    assert registry.names() == ["toy"] and registry.create(_setup({})) == []


class ToyEstimator(EmotionEstimator):
    """Calls every face happy the first time it sees it; counts what it saw."""

    def __init__(self, setup: EstimatorSetup) -> None:
        self._setup = setup
        self._seen: set[int] = set()
        self.frames = 0
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def observe(self, result: FrameResult) -> None:
        self.frames += 1
        for face in result.faces:
            if face.track_id not in self._seen:
                self._seen.add(face.track_id)
                probs = {label: 1.0 if label == "happiness" else 0.0 for label in DFEW7}
                await self._setup.emit(EmotionUpdate(
                    camera=self._setup.cfg.camera_id, track_id=face.track_id, ts=0.0,
                    window_start_s=face.pts_s, window_end_s=face.pts_s, label="happiness",
                    probs=probs, valence=0.8, arousal=0.5, confidence=1.0,
                    rationale="a toy", source="toy", model="toy/1", calibrated=False,
                    keyframes_s=(), bursts=(), latency_ms=0.0, prompt_tokens=0))

    def stats(self) -> dict[str, Any]:
        return {"toy": {"frames": self.frames}}

    async def close(self) -> None:
        self.closed = True


@pytest.mark.e2e  # a whole run on video
def test_a_registered_toy_estimator_joins_a_real_run(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    made: list[ToyEstimator] = []

    def toy(setup: EstimatorSetup) -> ToyEstimator:
        made.append(ToyEstimator(setup))
        return made[-1]

    registry = default_registry()
    registry.register("toy", toy)
    out = tmp_path / "run.jsonl"
    cfg = Config.model_validate({
        "source": {"url": str(media_dir / "single_face.mp4"), "realtime": False},
        "sinks": [f"jsonl:{out}"]})
    summary = Runner(cfg, estimators=registry).run_sync()

    (estimator,) = made
    assert estimator.started and estimator.closed
    assert estimator.frames == summary.frames + 1  # every frame, and the final flush
    emotions = [m["payload"] for m in read_jsonl(out) if m["topic"].endswith("/emotion")
                and m["payload"]]
    sources = {e["source"] for e in emotions}
    assert sources == {"toy", "facs"}, sources  # the built-in fallback still runs beside it
    toy_updates = [e for e in emotions if e["source"] == "toy"]
    assert [e["label"] for e in toy_updates] == ["happiness"] * summary.tracks
    # a section of its own, under estimators (documented in the stats message's schema)
    assert summary.stats["estimators"] == {"toy": {"frames": estimator.frames}}
