"""``eval dfer`` with the tiny random transformers VLM in scoring mode (tests/vlm/tiny_vlm.py):
the real backend scores every label of every condition's request; a rerun loads no model."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dfer_helpers import check_metrics_follow, read_jsonl, tiny_dataset

from affectstream.cli import main

pytest.importorskip("transformers")
pytest.importorskip("torch")

pytestmark = pytest.mark.e2e  # whole clips through perception and a real (tiny) model

CONDITIONS = ["uniform-2", "dense-5", "enriched-detectors", "enriched-vlm", "events",
              "events+cal"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield


def test_scoring_mode_every_condition_and_resume(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from affectstream.vlm.backends.transformers import TransformersBackend

    # tests/vlm is not a package: its tiny-model builder is imported from its folder
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "vlm"))
    model = importlib.import_module("tiny_vlm").build_tiny_vlm(tmp_path / "tiny", seed=0)
    data = tiny_dataset(tmp_path / "data", media_dir, broken=False)
    out = tmp_path / "out"
    scored: list[Any] = []
    score = TransformersBackend.score

    async def counting(self: TransformersBackend, ctx: Any) -> dict[str, float]:
        scored.append(ctx)  # passes through to the real model
        return await score(self, ctx)

    monkeypatch.setattr(TransformersBackend, "score", counting)
    args = ["eval", "dfer", "--dataset", str(data), "--vlm-backend", "transformers",
            "--vlm-model", str(model), "--decode", "score", "--conditions", *CONDITIONS,
            "--limit", "2", "--output", str(out)]
    assert main(args) == 0
    records = read_jsonl(out / "predictions.jsonl")
    assert {r["condition"] for r in records} == set(CONDITIONS) and len(records) == 2 * 6
    # 2 clips × 5 base conditions, plus the content-free prior of events+cal
    assert len(scored) == 2 * 5 + 1
    assert any(ctx.keyframes_s and len(ctx.images) > 2 for ctx in scored)  # dense-5
    check_metrics_follow(out)
    assert (out / "report.md").is_file()

    scored.clear()
    assert main(args) == 0
    assert scored == [] and len(read_jsonl(out / "predictions.jsonl")) == len(records)
