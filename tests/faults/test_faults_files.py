"""File faults (R4): corrupt bytes mid-file, grey and odd-sized frames, an empty file and a
nearly black clip, each made with ffmpeg (or by overwriting bytes) from the real face clip and
run through the real CLI as fast as possible (``--no-realtime``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import track_events
from fault_run import Run, assert_ended_cleanly, ffmpeg, write_config
from media import corrupt_copy
from message_schemas import line_errors

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

CLIP_FRAMES = 72
CLIP_END_S = 71 / 30


def _run_file(tmp_path: Path, clip: Path) -> tuple[int, Run]:
    run = Run(tmp_path, "--source", str(clip), "--no-realtime",
              "--config", str(write_config(tmp_path)))
    return run.wait(), run


def _schema_problems(lines: list[dict[str, Any]]) -> list[str]:
    """Each line against the shipped schema its payload names."""
    return [f"line {i + 1}: {e}" for i, line in enumerate(lines) for e in line_errors(line)]


def test_corrupt_bytes_mid_file(media_dir: Path, tmp_path: Path,
                                model_paths: dict[str, Path]) -> None:
    """The middle fifth of the file is garbage: the frames after it are still processed."""
    clip = corrupt_copy(media_dir / "single_face.mp4", tmp_path / "corrupt.mp4")
    rc, run = _run_file(tmp_path, clip)
    assert rc == 0, run.stderr()[-3000:]
    lines = run.lines()
    final = assert_ended_cleanly(lines)
    assert final["errors"] >= 1, final  # the lost frames are counted
    assert 0 < final["frames"] < CLIP_FRAMES, final
    # The face's track lasted to the clip's last frame, past the garbage.
    ends = track_events(lines, "end")
    assert ends and max(p["last_s"] for p in ends) == pytest.approx(CLIP_END_S, abs=0.05), ends
    assert not _schema_problems(lines)


@pytest.mark.parametrize("kind", ["grey", "odd-size"])
def test_grey_and_odd_sized_frames(kind: str, media_dir: Path, tmp_path: Path,
                                   model_paths: dict[str, Path]) -> None:
    """Single-channel video (FFV1 gray) and 641×359 frames (MJPEG, odd on both axes)."""
    src = str(media_dir / "single_face.mp4")
    if kind == "grey":
        clip, size = tmp_path / "grey.mkv", (640, 360)
        ffmpeg("-i", src, "-an", "-pix_fmt", "gray", "-c:v", "ffv1", str(clip))
    else:
        clip, size = tmp_path / "odd.avi", (641, 359)
        ffmpeg("-i", src, "-an", "-vf", "scale=641:359", "-pix_fmt", "yuvj444p",
               "-c:v", "mjpeg", "-q:v", "3", str(clip))
    rc, run = _run_file(tmp_path, clip)
    assert rc == 0, run.stderr()[-3000:]
    lines = run.lines()
    final = assert_ended_cleanly(lines)
    assert final["frames"] == CLIP_FRAMES and final["errors"] == 0, final
    new = track_events(lines, "new")
    assert new, "no face found"
    w, h = size
    assert all(0 <= p["bbox"][0] < p["bbox"][2] <= w and 0 <= p["bbox"][1] < p["bbox"][3] <= h
               for p in new), new
    # The face is in every frame: tracked from the start to the last frame.
    ends = track_events(lines, "end")
    assert min(p["first_s"] for p in new) <= 0.2, new
    assert max(p["last_s"] for p in ends) == pytest.approx(CLIP_END_S, abs=0.05), ends
    assert not _schema_problems(lines)


def test_empty_file_exits_2_with_one_line(tmp_path: Path, model_paths: dict[str, Path]) -> None:
    clip = tmp_path / "empty.mp4"
    clip.write_bytes(b"")
    rc, run = _run_file(tmp_path, clip)
    err = [ln for ln in run.stderr().splitlines() if ln.strip()]
    assert rc == 2, run.stderr()[-3000:]
    assert len(err) == 1 and err[0].startswith("affectstream: error:"), err
    assert str(clip) in err[0] and "empty" in err[0], err[0]
    assert run.stdout() == ""
    assert not run.out.exists() or run.out.read_text(encoding="utf-8") == ""


def test_very_dark_clip(media_dir: Path, tmp_path: Path, model_paths: dict[str, Path]) -> None:
    """Brightness cut to 3 %: no crash, every frame processed, well-formed output."""
    clip = tmp_path / "dark.mp4"
    ffmpeg("-i", str(media_dir / "single_face.mp4"), "-an", "-vf",
           "format=yuv444p,lutyuv=y=val*0.03,format=yuv420p", "-c:v", "libx264", str(clip))
    rc, run = _run_file(tmp_path, clip)
    assert rc == 0, run.stderr()[-3000:]
    assert "Traceback" not in run.stderr()
    lines = run.lines()
    final = assert_ended_cleanly(lines)
    assert final["frames"] == CLIP_FRAMES and final["errors"] == 0, final
    new = [p["track_id"] for p in track_events(lines, "new")]
    end = [p["track_id"] for p in track_events(lines, "end")]
    assert sorted(new) == sorted(end), (new, end)
    assert not _schema_problems(lines)
