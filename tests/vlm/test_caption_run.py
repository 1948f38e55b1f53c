"""The caption variant (``vlm.context.motion_text: vlm | both``) in real runs: the real CLI on
real video against the real OpenAI-compatible HTTP server (tests/openai_server.py), a
failing separate captioner, the tiny transformers model, and the start-up check."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, read_jsonl
from openai_server import CAPTION, OpenAIServer

from affectstream.labels import DFEW7

pytestmark = pytest.mark.e2e  # real CLI runs with the real test server

CAPTION_FRAMES = 3
_INTRO = re.compile(r"^(\d+) frames? at ([\d., ]+) s, between keyframes at ([\d.]+) s and "
                    r"([\d.]+) s:")
_MARK = re.compile(r"^↑ ([\d.]+) s")
_CAPTIONED = re.compile(r"VLM caption of (\d+) frames? until ([\d.]+) s: (.*)")


def _run(tmp_path: Path, media_dir: Path, server: OpenAIServer, yaml_text: str,
         seconds: str = "8") -> tuple[list[dict[str, Any]], str]:
    cfg = tmp_path / "vlm.yaml"
    cfg.write_text(yaml_text, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    proc = cli("run", "--config", str(cfg), "--source", str(media_dir / "single_face.mp4"),
               "--loop", "--max-seconds", seconds, "--vlm-backend", "openai", "--vlm-url",
               server.url, "--sink", f"jsonl:{out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return read_jsonl(out), proc.stderr


def _payloads(lines: list[dict[str, Any]], name: str) -> list[Any]:
    return [ln["payload"] for ln in lines if ln["topic"].endswith(f"/{name}")]


def _user(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(next(m for m in body["messages"] if m["role"] == "user")["content"])


def _segments(body: dict[str, Any]) -> list[str]:
    """The text after each image of a main request, in order."""
    user = _user(body)
    return [nxt["text"] for part, nxt in itertools.pairwise(user)
            if part["type"] == "image_url" and nxt["type"] == "text"]


def test_vlm_captions_replace_the_detector_lines_between_keyframes(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    with OpenAIServer() as server:
        lines, _ = _run(tmp_path, media_dir, server, (
            f"vlm:\n  context:\n    motion_text: vlm\n    caption_frames: {CAPTION_FRAMES}\n"))
        captions = [r.body for r in server.caption_requests]
        mains = [r.body for r in server.main_requests]
    emotions = _payloads(lines, "emotion")
    assert emotions and all(e["source"] == "vlm" and set(e["probs"]) == set(DFEW7)
                            for e in emotions)
    assert captions and mains

    gaps: set[tuple[str, str]] = set()
    spacing: list[float] = []
    for body in captions:  # 1 … caption_frames in-between frames, at most 5 fps dense
        kinds = [p["type"] for p in _user(body)]
        intro = _INTRO.match(_user(body)[0]["text"])
        assert intro is not None, _user(body)[0]["text"]
        times = [float(t) for t in intro.group(2).split(", ")]
        assert 1 <= kinds.count("image_url") == int(intro.group(1)) == len(times) \
            <= CAPTION_FRAMES
        assert all(float(intro.group(3)) < t < float(intro.group(4)) for t in times)
        spacing += [b - a for a, b in itertools.pairwise(times)]
        gaps.add((intro.group(3), intro.group(4)))
    assert spacing and min(spacing) >= 0.19
    # below 2 Hz's 0.5 s: perception kept periodic keyframes at caption_fps
    assert min(spacing) < 0.45, spacing

    bursts = [b["text"] for b in _payloads(lines, "bursts")]
    assert bursts
    captioned = 0
    for body in mains:
        segs = _segments(body)
        marks = [m.group(1) for m in map(_MARK.match, segs) if m is not None]
        assert len(marks) == len(segs)
        for i, seg in enumerate(segs):
            found = _CAPTIONED.search(seg)
            if found is None:
                continue
            captioned += 1
            # the caption sits after the keyframe that starts its gap, up to the next one
            assert found.group(3) == CAPTION and i + 1 < len(segs)
            assert found.group(2) == marks[i + 1]
            assert (marks[i], marks[i + 1]) in gaps
            assert 1 <= int(found.group(1)) <= CAPTION_FRAMES
            assert not any(text in seg for text in bursts)  # lines replaced by the caption
    assert captioned > 0

    stats = _payloads(lines, "stats")[-1]["vlm"]
    print("\nVLM stats with captions:", stats)
    assert stats["failures"] == 0 and stats["caption_failures"] == 0
    assert stats["caption_calls"] == len(captions) > 0
    assert stats["caption_tokens_mean"] > 0
    assert stats["total_token_ratio_mean"] > stats["token_ratio_mean"]


def test_failing_separate_captioner_leaves_updates_flowing(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    with OpenAIServer() as server, OpenAIServer(["tiny-captioner"],
                                                caption_status=500) as down:
        lines, stderr = _run(tmp_path, media_dir, server, (
            "vlm:\n  max_retries: 0\n  timeout_s: 5\n  context:\n    motion_text: vlm\n"
            f"    captioner: openai\n    captioner_url: {down.url}\n"
            "    captioner_model: tiny-captioner\n"))
        mains = [r.body for r in server.main_requests]
        assert not server.caption_requests  # captions went to the separate captioner
        assert down.caption_requests and not down.main_requests
        assert all(r.body["model"] == "tiny-captioner" for r in down.caption_requests)
    emotions = _payloads(lines, "emotion")
    assert emotions and all(e["source"] == "vlm" for e in emotions)
    stats = _payloads(lines, "stats")[-1]["vlm"]
    assert stats["failures"] == 0
    assert stats["caption_failures"] == stats["caption_calls"] > 0
    assert stderr.count("VLM caption for track") == 1  # logged once per run of failures
    joined = "\n".join(json.dumps(b, ensure_ascii=False) for b in mains)
    assert "VLM caption" not in joined
    bursts = [b["text"] for b in _payloads(lines, "bursts")]
    assert bursts and any(text in joined for text in bursts)  # the detector text was used


def test_captions_without_a_vlm_exit_2_with_one_line(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("vlm:\n  context:\n    motion_text: vlm\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    proc = cli("run", "--config", str(cfg), "--source", str(media_dir / "single_face.mp4"),
               "--no-realtime", "--sink", f"jsonl:{out}", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("affectstream: error:") and "Traceback" not in proc.stderr
    assert "motion_text" in lines[0] and "--vlm-backend" in lines[0]
    assert proc.stdout.strip() == ""
    assert not out.exists() or out.read_text(encoding="utf-8") == ""


def test_transformers_run_with_captions_and_detector_lines(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, media_dir: Path,
        model_paths: dict[str, Path]) -> None:
    pytest.importorskip("torch", reason="needs the vlm extra (torch)")
    pytest.importorskip("transformers", reason="needs the vlm extra (transformers)")
    from tiny_vlm import build_tiny_vlm, run_tiny_vlm

    model = build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm-captions") / "model")
    proc, lines = run_tiny_vlm(
        model, "vlm:\n  decode: score\n  period_s: 1.0\n  context:\n    motion_text: both\n"
        "    caption_max_tokens: 8\n", media_dir / "single_face.mp4", tmp_path)
    assert proc.returncode == 0, proc.stderr
    emotions = _payloads(lines, "emotion")
    assert emotions, proc.stderr
    assert all(e["source"] == "vlm" and set(e["probs"]) == set(DFEW7) for e in emotions)
    stats = _payloads(lines, "stats")[-1]["vlm"]
    assert stats["failures"] == 0 and stats["caption_calls"] > 0
    assert stats["caption_tokens_mean"] > 0
