"""`affectstream eval spotting` on clips given on the command line: a short real clip built by
the benchmark's own injector (the astronaut photo moved like a head), scored end to end."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from cli_helpers import cli

from affectstream.eval import benchset
from affectstream.eval.benchclips import STILL, ClipSpec


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory,
               model_paths: dict[str, Path]) -> tuple[Path, Path, dict[str, object]]:
    folder = tmp_path_factory.mktemp("spotbench")
    video = folder / "short.mp4"
    entry = benchset.render_still(ClipSpec("short", STILL, "still", False, 5, seconds=8.0),
                                  video, model_paths["face-landmarker"])
    truth = folder / "short.json"
    truth.write_text(json.dumps(entry), encoding="utf-8")
    return video, truth, entry


@pytest.mark.e2e
def test_scores_a_clip_with_its_truth_and_plots_it(
        short_clip: tuple[Path, Path, dict[str, object]], tmp_path: Path) -> None:
    video, truth, entry = short_clip
    events = entry["truth"]
    assert isinstance(events, list) and len(events) >= 3
    plots = tmp_path / "plots"
    proc = cli("eval", "spotting", "--videos", str(video), "--truth", str(truth), "--json",
               "--plots", str(plots), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["clips"] == 1 and doc["events"] == len(events)
    assert set(doc["spotters"]) == {"live", "live-speech-filtered", "baseline"}
    for report in doc["spotters"].values():
        assert {"overall", "micro", "macro", "controls_fpm", "attribution",
                "latency_ms", "intervals"} <= set(report)
    diff = doc["live_vs_baseline"]
    assert diff["f1_difference"] == pytest.approx(
        doc["spotters"]["live"]["overall"]["f1"] - doc["spotters"]["baseline"]["overall"]["f1"],
        abs=1e-4)
    low, high = diff["interval"]  # one clip: every resample is that clip
    assert low == high == pytest.approx(diff["f1_difference"], abs=1e-4)
    assert doc["visibility"] is None  # a clip from the command line has no control footage
    live = doc["spotters"]["live"]
    # The still photo moved like a head is the easy case: most events are found, and exactly.
    assert live["overall"]["recall"] >= 0.6, live
    assert live["attribution"]["matched"] == live["overall"]["tp"]
    assert live["latency_ms"]["p50"] is not None
    assert doc["spotters"]["baseline"]["latency_ms"]["p50"] is None  # offline
    image = cv2.imread(str(plots / "short.png"))
    assert image is not None and image.shape[1] == 1200


@pytest.mark.parametrize(("args", "message"), [
    (["--videos", "nowhere.mp4"], "--truth"),
    (["--videos", "nowhere.mp4", "--truth", "t.json"], "video nowhere.mp4 not found"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str],
                                            message: str) -> None:
    proc = cli("eval", "spotting", *args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_bad_truth_file_exits_2(short_clip: tuple[Path, Path, dict[str, object]],
                                tmp_path: Path) -> None:
    video, _, _ = short_clip
    bad = tmp_path / "bad.json"
    bad.write_text('{"truth": [{"onset_frame": 1}]}', encoding="utf-8")
    proc = cli("eval", "spotting", "--videos", str(video), "--truth", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert "is not valid" in proc.stderr and "Traceback" not in proc.stderr
