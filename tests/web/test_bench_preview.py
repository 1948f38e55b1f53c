"""``bench --pipeline full --preview``: the whole pipeline measured with its preview server on
(docs/preview.md compares it with no preview)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import main_json
from web_helpers import free_port

pytestmark = pytest.mark.e2e


def test_bench_full_pipeline_serves_the_preview(media_dir: Path, model_paths: dict[str, Path],
                                                capfd: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    report = main_json("bench", "--source", str(media_dir / "single_face.mp4"), "--pipeline",
                       "full", "--frames", "30", "--json", "--preview", f":{port}")
    assert report["frames"] == 30 and report["pipeline"] == "full" and report["fps"] > 0
    assert f"preview on http://127.0.0.1:{port}/" in capfd.readouterr().err
