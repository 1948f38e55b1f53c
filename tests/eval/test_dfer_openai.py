"""``affectstream eval dfer`` end to end: the real CLI on a tiny folder dataset cut from a real
clip, against the real OpenAI-compatible test server (tests/openai_server.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli
from dfer_helpers import check_metrics_follow, read_jsonl, tiny_dataset
from openai_server import CAPTION, OpenAIServer, content

from affectstream.labels import DFEW7
from affectstream.vlm.calibration import ContextualCalibration

pytestmark = pytest.mark.e2e  # whole clips through perception and a real HTTP server

BASES = ["uniform-2", "dense-1", "dense-5", "dense-10", "enriched-detectors", "enriched-vlm",
         "events"]
CONDITIONS = [*BASES, "uniform-2+cal", "events+cal"]
CLIPS = 3  # the broken fourth one is skipped


def _answer(label: str) -> str:
    probs = {x: (0.64 if x == label else 0.06) for x in DFEW7}
    return json.dumps({"label": label, "probs": probs, "valence": 0.0, "arousal": 0.5,
                       "confidence": 0.64, "rationale": "scripted"})


def _user_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def _texts(body: dict[str, Any]) -> str:
    return "\n".join(p["text"] for p in _user_parts(body) if p["type"] == "text")


def _images(body: dict[str, Any]) -> int:
    return sum(p["type"] == "image_url" for p in _user_parts(body))


def _interleaved(body: dict[str, Any]) -> bool:
    kinds = [p["type"] for p in _user_parts(body)]
    return kinds.count("image_url") >= 2 and all(
        kinds[i + 1] == "text" for i, k in enumerate(kinds) if k == "image_url")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("dfer") / "data", media_dir)


def _eval(dataset: Path, out: Path, server: OpenAIServer, *extra: str) -> Any:
    return cli("eval", "dfer", "--dataset", str(dataset), "--vlm-backend", "openai",
               "--vlm-url", server.url, "--conditions", *CONDITIONS, "--skip-bad",
               "--output", str(out), *extra, cwd=out.parent)


def test_every_condition_against_the_server_then_resumes(
        dataset: Path, tmp_path: Path, model_paths: dict[str, Path]) -> None:
    out = tmp_path / "out"
    prior = {x: (0.4 if x == "neutral" else 0.1) for x in DFEW7}
    labels = [DFEW7[i % len(DFEW7)] for i in range(CLIPS * len(BASES))]
    with OpenAIServer() as server:
        server.script(content(json.dumps({"label": "neutral", "probs": prior})),
                      *(content(_answer(x)) for x in labels))
        proc = _eval(dataset, out, server)
        main = [r.body for r in server.main_requests]
        captions = server.caption_requests
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(out / "predictions.jsonl")
    base = [r for r in records if "+cal" not in r["condition"]]
    # the predictions are the server's answers: one scripted label per request, all used
    assert len(main) == 1 + len(labels) and len(base) == len(labels)
    assert Counter(r["pred"] for r in base) == Counter(labels)
    assert Counter(r["condition"] for r in records) == dict.fromkeys(CONDITIONS, CLIPS)
    # the calibrated twins are the same answers divided by the content-free prior
    cal = ContextualCalibration(prior)
    by_key = {(r["clip"], r["condition"]): r for r in records}
    for r in records:
        if r["condition"].endswith("+cal"):
            plain = by_key[(r["clip"], r["condition"].removesuffix("+cal"))]
            assert r["probs"] == pytest.approx(cal(plain["probs"]))
    metrics = check_metrics_follow(out)
    assert set(metrics) == set(CONDITIONS)
    # frame-only requests carry no motion text; enriched ones interleave images and text
    frame_only = [b for b in main[1:] if "Motion until" not in _texts(b)
                  and "nothing new logged" not in _texts(b) and "VLM caption" not in _texts(b)]
    assert len(frame_only) == CLIPS * 4  # uniform-2 and the three dense conditions
    captioned = [b for b in main if CAPTION in _texts(b)]
    assert len(captioned) == CLIPS and all(_interleaved(b) for b in captioned) and captions
    detector = [b for b in main[1:] if b not in frame_only and b not in captioned]
    assert len(detector) == 2 * CLIPS and all(_interleaved(b) for b in detector)
    counts = sorted(_images(b) for b in frame_only)
    assert counts[0] <= 2 and counts[-1] >= 6  # dense-10 sends more images than uniform-2
    assert metrics["dense-10"]["images_mean"] > metrics["uniform-2"]["images_mean"]
    report = (out / "report.md").read_text()
    assert "| dense-10 |" in report and "skipped: 1" in report
    assert (out / "plots" / "per_class_f1.png").stat().st_size > 0
    assert (out / "plots" / "confusion_events_cal.png").is_file()

    before = (out / "predictions.jsonl").read_text()
    with OpenAIServer() as again:  # a rerun: everything is cached, nothing is asked
        proc = _eval(dataset, out, again)
        assert again.chat_requests == []
    assert proc.returncode == 0, proc.stderr
    assert (out / "predictions.jsonl").read_text() == before


def test_bad_clip_without_skip_bad_is_one_line(dataset: Path, tmp_path: Path,
                                               model_paths: dict[str, Path]) -> None:
    with OpenAIServer() as server:
        proc = cli("eval", "dfer", "--dataset", str(dataset), "--vlm-backend", "openai",
                   "--vlm-url", server.url, "--conditions", "uniform-2", "--output",
                   str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "broken" in proc.stderr and "Traceback" not in proc.stderr
