"""The VLM stage in a real run: the real CLI on real video against a real OpenAI-compatible
HTTP server (tests/openai_server.py), including garbage answers, errors and hangs (R3)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, read_jsonl
from openai_server import OpenAIServer, error, garbage, hang

from affectstream.labels import DFEW7

pytestmark = pytest.mark.e2e  # real CLI runs with the real test server


def _run(tmp_path: Path, media_dir: Path, server: OpenAIServer, *extra: str,
         seconds: str = "8") -> tuple[list[dict[str, Any]], str]:
    out = tmp_path / "out.jsonl"
    proc = cli("run", "--source", str(media_dir / "single_face.mp4"), "--loop",
               "--max-seconds", seconds, "--vlm-backend", "openai", "--vlm-url", server.url,
               "--sink", f"jsonl:{out}", *extra, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return read_jsonl(out), proc.stderr


def _images_and_texts(request_body: dict[str, Any]) -> list[str]:
    user = next(m for m in request_body["messages"] if m["role"] == "user")
    return [part["type"] for part in user["content"]]


def test_realtime_run_publishes_vlm_emotions_from_interleaved_requests(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    with OpenAIServer() as server:
        lines, _ = _run(tmp_path, media_dir, server)
        requests = [r.body for r in server.chat_requests]
    emotions = [ln["payload"] for ln in lines if ln["topic"].endswith("/emotion")]
    assert emotions and len(requests) >= len(emotions)
    for e in emotions:
        assert e["schema"] == "affectstream.emotion/1" and e["source"] == "vlm"
        assert set(e["probs"]) == set(DFEW7)
        assert math.isclose(sum(e["probs"].values()), 1.0, abs_tol=1e-3)
        assert e["model"] == "test-vlm" and e["prompt_tokens"] > 0 and e["keyframes_s"]
    for body in requests:
        kinds = _images_and_texts(body)
        assert 1 <= kinds.count("image_url") <= 8
        assert kinds[-1] == "text"  # the question comes last
        # interleaved: every image is followed by text, never two images in a row
        assert all(not (a == b == "image_url") for a, b in itertools.pairwise(kinds))
    bursts = [ln["payload"] for ln in lines if ln["topic"].endswith("/bursts")]
    assert bursts
    first = bursts[0]["text"]
    later = [json.dumps(b, ensure_ascii=False) for b in requests]
    assert any(first in text for text in later), "a burst's text never reached the VLM"
    stats = [ln["payload"] for ln in lines if ln["topic"].endswith("/stats")][-1]
    assert stats["vlm"]["calls"] >= len(emotions) and stats["vlm"]["failures"] == 0
    assert stats["vlm"]["prompt_tokens_mean"] > 0
    print("\nVLM stats:", stats["vlm"])


@pytest.mark.faults  # R3: also part of the fault suite (tests/faults)
def test_garbage_errors_and_hangs_never_stop_perception(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    with OpenAIServer() as server:
        server.script(garbage(), garbage(), error(500, "boom"), error(500, "boom"),
                      error(500, "boom"), hang(3.0), garbage("not json at all"))
        lines, stderr = _run(tmp_path, media_dir, server,
                             "--config", str(_cfg(tmp_path)), seconds="10")
    bursts = [ln for ln in lines if ln["topic"].endswith("/bursts")]
    tracks = [ln["payload"]["type"] for ln in lines if ln["topic"].endswith("/tracks")]
    stats = [ln["payload"] for ln in lines if ln["topic"].endswith("/stats")][-1]
    assert bursts and tracks[0] == "new" and tracks[-1] == "end"
    assert stats["frames"] >= 250  # 10 s at 30 fps, every frame processed
    assert stats["vlm"]["failures"] >= 2 and "VLM request" in stderr
    assert lines[-1]["payload"] == "offline"


def _cfg(tmp_path: Path) -> Path:
    cfg = tmp_path / "vlm.yaml"
    cfg.write_text("vlm:\n  timeout_s: 1.0\n  max_retries: 1\n")
    return cfg


def test_transformers_backend_end_to_end_with_scoring_and_calibration(
        tmp_path: Path, tmp_path_factory: Any, media_dir: Path,
        model_paths: dict[str, Path]) -> None:
    from tiny_vlm import build_tiny_vlm, run_tiny_vlm

    model = build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "model")
    proc, lines = run_tiny_vlm(
        model, "vlm:\n  decode: score\n  calibration: contextual\n  period_s: 1.0\n",
        media_dir / "single_face.mp4", tmp_path)
    assert proc.returncode == 0, proc.stderr
    emotions = [ln["payload"] for ln in lines if ln["topic"].endswith("/emotion")]
    assert emotions, proc.stderr
    for e in emotions:
        assert e["source"] == "vlm" and e["calibrated"] is True
        assert set(e["probs"]) == set(DFEW7)
        assert math.isclose(sum(e["probs"].values()), 1.0, abs_tol=1e-3)
    assert [ln for ln in lines if ln["topic"].endswith("/bursts")]


def test_specialist_probabilities_reach_the_vlm_next_to_their_keyframes(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    sent: dict[bool, str] = {}
    for to_vlm in (True, False):
        config = tmp_path / f"c{to_vlm}.yaml"
        config.write_text("specialist:\n  enabled: true\n"
                          f"  to_vlm: {str(to_vlm).lower()}\n", encoding="utf-8")
        with OpenAIServer() as server:
            lines, _ = _run(tmp_path, media_dir, server, "--config", str(config), seconds="5")
            sent[to_vlm] = json.dumps([r.body for r in server.chat_requests],
                                      ensure_ascii=False)
        emotions = [ln["payload"] for ln in lines if ln["topic"].endswith("/emotion")]
        assert emotions and all(e["source"] == "vlm" for e in emotions)  # the VLM still decides
    assert "(expression classifier on this frame: happiness" in sent[True]
    assert "neutral" in sent[True].split("expression classifier on this frame: ")[1][:40]
    assert "expression classifier" not in sent[False]


def test_bench_measures_the_pipeline_with_the_vlm_stage(
        media_dir: Path, model_paths: dict[str, Path]) -> None:
    with OpenAIServer() as server:
        proc = cli("bench", "--source", str(media_dir / "single_face.mp4"), "--frames", "150",
                   "--vlm-backend", "openai", "--vlm-url", server.url, "--json",
                   cwd=media_dir)
        served = len(server.chat_requests)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["pipeline"] == "full" and report["emotion_source"] == "vlm (openai)"
    assert report["frames"] == 150 and report["fps"] > 0
    assert report["vlm"]["calls"] >= 1 and report["vlm"]["failures"] == 0
    assert served >= report["vlm"]["calls"]
    assert report["vlm"]["prompt_tokens_mean"] > 0
