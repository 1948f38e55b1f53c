"""Per-clip timeline PNGs: written atomically, the right size, lanes drawn where they belong."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from affectstream.errors import SinkError
from affectstream.eval import plots
from affectstream.eval.plots import HEIGHT, LANES, WIDTH, frame_x, plot_clip, render_clip
from affectstream.eval.scoring import ClipRun, PredEvent, TruthEvent

BG = np.array(plots.BG, np.uint8)
GRID = np.array(plots.GRID, np.uint8)


@pytest.fixture
def run() -> ClipRun:
    return ClipRun(
        "talk_01", 30.0, 300, "talking", False,
        (TruthEvent(30, 35, 40, "micro", "smile"),
         TruthEvent(150, 170, 200, "macro", "brow_raise")),
        (PredEvent(30, 35, 40, "micro"), PredEvent(240, 245, 250, "micro")),
    )  # fmt: skip


def _signal(n: int = 300) -> list[float]:
    return [math.exp(-(((i - 35) / 4) ** 2)) + (math.nan if 100 <= i < 110 else 0.0)
            for i in range(n)]  # fmt: skip


def _mid(lane: str) -> int:
    y0, y1 = LANES[lane]
    return (y0 + y1) // 2


def _cx(onset: int, offset: int, frames: int = 300) -> int:
    return (frame_x(onset, frames) + frame_x(offset + 1, frames)) // 2


def _interior(img: np.ndarray, lane: str) -> np.ndarray:
    y0, y1 = LANES[lane]
    return img[y0 + 2 : y1 - 1, plots.X0 + 2 : plots.X1 - 1]


def test_png_is_written_with_the_expected_size(tmp_path: Path, run: ClipRun) -> None:
    out = tmp_path / "deep" / "er" / "talk_01.png"
    plot_clip(out, run, _signal(), baseline=[(28, 45)], baseline_signal=_signal())
    img = cv2.imread(str(out))
    assert img is not None and img.shape == (HEIGHT, WIDTH, 3)
    assert [p.name for p in out.parent.iterdir()] == ["talk_01.png"]  # no temp file left
    plot_clip(out, run, None)  # overwriting an existing plot works too
    assert [p.name for p in out.parent.iterdir()] == ["talk_01.png"]


def test_lanes_carry_truth_predictions_and_baseline(tmp_path: Path, run: ClipRun) -> None:
    out = tmp_path / "p.png"
    plot_clip(out, run, _signal(), baseline=[(140, 210)])
    img = cv2.imread(str(out))
    assert img is not None
    truth_lane = _interior(img, "truth")
    assert ((truth_lane != BG) & (truth_lane != GRID)).any(axis=2).sum() > 100
    assert tuple(img[_mid("truth"), _cx(30, 40)]) == plots.MICRO
    assert tuple(img[_mid("truth"), _cx(150, 200)]) == plots.MACRO
    assert (img[_mid("truth"), _cx(100, 120)] == BG).all()  # no truth there
    assert tuple(img[_mid("live"), _cx(30, 40)]) == plots.MATCHED
    assert tuple(img[_mid("live"), _cx(240, 250)]) == plots.UNMATCHED
    assert (img[_mid("live"), _cx(150, 200)] == BG).all()  # missed event: empty live lane
    assert tuple(img[_mid("baseline"), _cx(140, 210)]) == plots.BASELINE


def test_a_control_has_an_empty_truth_lane() -> None:
    control = ClipRun("still_01", 25.0, 250, "still", True, (), (PredEvent(10, 12, 14, "micro"),))
    img = render_clip(control, None)
    lane = _interior(img, "truth")
    assert ((lane == BG).all(axis=2) | (lane == GRID).all(axis=2)).all()  # only time grid lines
    assert tuple(img[_mid("live"), _cx(10, 14, 250)]) == plots.UNMATCHED


def test_signal_is_drawn_in_its_lane(run: ClipRun) -> None:
    without = render_clip(run, None)
    with_signal = render_clip(run, _signal())
    changed = (_interior(without, "signal") != _interior(with_signal, "signal")).any(axis=2)
    assert changed.sum() > 200
    # The peak (value 1 at frame 35) is drawn near the lane top, the flat tail near its bottom.
    top = _interior(with_signal, "signal")[:20]
    assert (top[:, _cx(35, 35) - plots.X0 - 2] != BG).any()
    all_nan = render_clip(run, [math.nan] * 300)  # nothing to draw, no crash
    assert (_interior(all_nan, "signal") == _interior(without, "signal")).all()


def test_unwritable_path_raises_sink_error(tmp_path: Path, run: ClipRun) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SinkError, match="cannot write plot"):
        plot_clip(blocker / "x.png", run, None)
    with pytest.raises(SinkError, match="cannot write plot"):
        plot_clip(tmp_path / "x.notanimage", run, None)  # no encoder for the suffix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
