"""The online burst spotter driven by synthetic aligned crops (its real input type): a textured
face-sized grey crop with sensor noise, in which one region moves with a raised-cosine
onset–apex–offset profile. Region masks come from a real face template."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from detector_helpers import CROP, raised_cosine, region_block, shift_block, texture

from affectstream.config import SpotterConfig
from affectstream.detectors.motion import RegionMotion
from affectstream.detectors.spotter import BurstSpotter, RawBurst, Sample
from affectstream.eval.metrics import interval_iou
from affectstream.types import FloatArray

Event = tuple[int, int, int]  # onset, apex, offset frames


def run_spotter(template: FloatArray, events: Sequence[Event], *, frames: int = 150,
                fps: float = 30.0, amp: float = 3.0, noise: float = 2.0, seed: int = 0,
                region: str = "mouth_corner_L", direction: tuple[float, float] = (0.0, -1.0),
                hold_from: int | None = None, flush: bool = True,
                cfg: SpotterConfig | None = None) -> list[RawBurst]:
    """Feed ``frames`` crops; ``region`` is displaced by amp·profile along ``direction``."""
    rng = np.random.default_rng(seed + 100)
    base = texture(seed)
    block = region_block(template, region, 8)
    spotter = BurstSpotter(cfg or SpotterConfig(), RegionMotion(template, CROP), fps, 0.1)
    out: list[RawBurst] = []
    for i in range(frames):
        level = sum(raised_cosine(i, *e) for e in events)
        if hold_from is not None and i >= hold_from:
            level = 1.0
        img = shift_block(base, block, amp * level * direction[0], amp * level * direction[1])
        noisy = np.clip(img.astype(np.float32) + rng.normal(0, noise, img.shape), 0, 255)
        gray = noisy.astype(np.uint8)
        raw = spotter.update(Sample(i, i / fps, gray, gray, {}))
        if raw is not None:
            out.append(raw)
    if flush:
        raw = spotter.flush()
        if raw is not None:
            out.append(raw)
    return out


def _check_burst(raw: RawBurst, event: Event, region: str) -> None:
    onset, apex, offset = event
    assert raw.onset.index <= raw.apex.index <= raw.offset.index
    assert onset <= raw.onset.index < apex  # onset on the rise
    assert abs(raw.apex.index - apex) <= 2
    assert apex < raw.offset.index <= offset + 2  # offset on the fall
    assert interval_iou((raw.onset.index, raw.offset.index), (onset, offset)) >= 0.5
    assert raw.reference.index < raw.onset.index  # displacement measured from before the onset
    assert raw.regions[0] == region
    assert raw.peak_motion >= SpotterConfig().min_motion_px
    assert not raw.held


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_micro_event_gives_one_burst(template: FloatArray, seed: int) -> None:
    event = (60, 66, 75)
    bursts = run_spotter(template, [event], seed=seed)
    assert len(bursts) == 1
    raw = bursts[0]
    _check_burst(raw, event, "mouth_corner_L")
    dx, dy = raw.apex_vectors["mouth_corner_L"]
    assert dy < 0 and abs(dy) > 2 * abs(dx)  # moved up on the crop
    assert raw.onset.pts_s == pytest.approx(raw.onset.index / 30)


def test_macro_event_on_another_region(template: FloatArray) -> None:
    event = (50, 65, 90)
    bursts = run_spotter(template, [event], region="outer_brow_R", direction=(0.0, 1.0))
    assert len(bursts) == 1
    _check_burst(bursts[0], event, "outer_brow_R")
    assert bursts[0].apex_vectors["outer_brow_R"][1] > 0  # moved down


def test_two_separate_events_give_two_bursts(template: FloatArray) -> None:
    events = [(40, 46, 55), (100, 106, 115)]
    bursts = run_spotter(template, events, frames=150)
    assert len(bursts) == 2
    for raw, event in zip(bursts, events, strict=True):
        _check_burst(raw, event, "mouth_corner_L")


@pytest.mark.parametrize(("seed", "noise"), [(0, 2.0), (1, 2.0), (2, 4.0), (3, 6.0)])
def test_static_noisy_sequence_gives_no_burst(template: FloatArray, seed: int,
                                              noise: float) -> None:
    assert run_spotter(template, [], frames=150, noise=noise, seed=seed) == []


def test_scales_with_frame_rate(template: FloatArray) -> None:
    """The same event at 60 fps is found at twice the frame numbers (durations scale with fps)."""
    event30 = (60, 66, 75)
    event60 = (120, 132, 150)
    (b30,) = run_spotter(template, [event30], fps=30.0)
    (b60,) = run_spotter(template, [event60], fps=60.0, frames=300, amp=3.0)
    _check_burst(b60, event60, "mouth_corner_L")
    assert b60.onset.pts_s == pytest.approx(b30.onset.pts_s, abs=0.07)
    assert b60.offset.pts_s == pytest.approx(b30.offset.pts_s, abs=0.07)


def test_held_expression_stays_one_burst(template: FloatArray) -> None:
    """A raised expression that is held is one burst (measured from the onset reference, not a
    rise bump and a fall bump), closed at max_duration_s and marked held."""
    cfg = SpotterConfig(max_duration_s=2.0)
    bursts = run_spotter(template, [(60, 70, 10_000)], frames=200, hold_from=70, cfg=cfg,
                         flush=False)
    assert len(bursts) == 1
    raw = bursts[0]
    assert raw.held
    assert 60 <= raw.onset.index < 70
    assert raw.offset.index - raw.reference.index in range(59, 62)  # 2 s of frames at 30 fps


def test_flush_closes_an_open_burst(template: FloatArray) -> None:
    bursts = run_spotter(template, [(60, 70, 10_000)], frames=90, hold_from=70)
    assert len(bursts) == 1
    assert bursts[0].held and bursts[0].offset.index == 89
    empty = BurstSpotter(SpotterConfig(), RegionMotion(template, CROP), 30.0, 0.1)
    assert empty.flush() is None and not empty.active
