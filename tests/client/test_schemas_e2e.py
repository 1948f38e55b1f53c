"""Every message of a real-time run against the local OpenAI-compatible server validates
against the shipped schema its ``schema`` field names (the plain ``run`` on single_face.mp4 is
checked the same way in tests/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli, read_jsonl
from message_schemas import line_errors
from openai_server import OpenAIServer

pytestmark = pytest.mark.e2e


def test_realtime_vlm_run_matches_the_shipped_schemas(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    out = tmp_path / "out.jsonl"
    with OpenAIServer() as server:
        proc = cli("run", "--source", str(media_dir / "single_face.mp4"), "--loop",
                   "--max-seconds", "6", "--vlm-backend", "openai", "--vlm-url", server.url,
                   "--sink", f"jsonl:{out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(out)
    errors = [f"line {i + 1}: {e}" for i, ln in enumerate(lines) for e in line_errors(ln)]
    assert not errors, "\n".join(errors)
    emotions = [ln["payload"] for ln in lines if ln["topic"].endswith("/emotion")]
    assert emotions and all(e["source"] == "vlm" for e in emotions)
    vlm = [ln["payload"] for ln in lines if ln["topic"].endswith("/stats")][-1]["vlm"]
    assert vlm["calls"] >= 1 and "token_ratio_mean" in vlm  # the VLM's extra counters
