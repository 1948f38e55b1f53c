"""The online burst spotter driven by synthetic aligned crops (its real input type): a textured
face-sized grey crop with sensor noise, in which regions move with raised-cosine
onset–apex–offset profiles. Region masks come from a real face template."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from detector_helpers import CROP, raised_cosine, region_block, shift_block, texture

from affectstream.config import SpotterConfig
from affectstream.detectors.motion import RegionMotion
from affectstream.detectors.samples import RawBurst, Sample
from affectstream.detectors.spotter import BurstSpotter, scale_frames
from affectstream.eval.metrics import interval_iou
from affectstream.types import FloatArray

Event = tuple[int, int, int]  # onset, apex, offset frames


Motion = tuple[str, tuple[float, float], float]  # region, direction, amplitude


def run_spotter(template: FloatArray, events: Sequence[Event], *, frames: int = 150,
                fps: float = 30.0, amp: float = 3.0, noise: float = 2.0, seed: int = 0,
                region: str = "mouth_corner_L", direction: tuple[float, float] = (0.0, -1.0),
                hold_from: int | None = None, flush: bool = True,
                cfg: SpotterConfig | None = None,
                background: Callable[[int], list[Motion]] | None = None,
                emitted: list[int] | None = None,
                shapes: Callable[[int], dict[str, float]] | None = None) -> list[RawBurst]:
    """Feed ``frames`` crops; ``region`` is displaced by amp·profile along ``direction``, and
    ``background(i)`` adds other region displacements at frame i (e.g. speech)."""
    rng = np.random.default_rng(seed + 100)
    base = texture(seed)
    blocks: dict[str, tuple[int, int, int, int]] = {}
    spotter = BurstSpotter(cfg or SpotterConfig(), RegionMotion(template, CROP), fps)
    out: list[RawBurst] = []
    for i in range(frames):
        level = sum(raised_cosine(i, *e) for e in events)
        if hold_from is not None and i >= hold_from:
            level = 1.0
        moves = [(region, direction, amp * level), *(background(i) if background else [])]
        img = base
        for name, (dx, dy), a in moves:
            block = blocks.setdefault(name, region_block(template, name, 8))
            img = shift_block(img, block, a * dx, a * dy)
        noisy = np.clip(img.astype(np.float32) + rng.normal(0, noise, img.shape), 0, 255)
        gray = noisy.astype(np.uint8)
        found = spotter.update(Sample(i, i / fps, gray, gray, shapes(i) if shapes else {}))
        out.extend(found)
        if emitted is not None:
            emitted.extend(i for _ in found)
    if flush:
        out.extend(spotter.flush())
    return out


def _check_burst(raw: RawBurst, event: Event, region: str) -> None:
    onset, apex, offset = event
    assert raw.onset.index <= raw.apex.index <= raw.offset.index
    assert abs(raw.apex.index - apex) <= 2
    assert interval_iou((raw.onset.index, raw.offset.index), (onset, offset)) >= 0.5
    assert raw.reference.index <= raw.onset.index  # displacement measured from before the onset
    assert raw.regions[0] == region
    assert raw.peak_motion >= SpotterConfig().min_motion_px


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
    event = (50, 62, 80)
    bursts = run_spotter(template, [event], region="outer_brow_R", direction=(0.0, 1.0),
                         amp=4.0)
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


def test_held_expression_is_one_held_burst(template: FloatArray) -> None:
    """A movement that goes and stays has no there-and-back pulse: it is reported once, as a
    held burst from its rise to the newest frame, and its release within ``hold_s`` is not a
    second one."""
    events = [(60, 70, 10_000)]
    bursts = run_spotter(template, events, frames=200, hold_from=70, flush=False)
    assert len(bursts) == 1
    (raw,) = bursts
    assert raw.held and raw.regions[0] == "mouth_corner_L"
    assert 56 <= raw.onset.index <= 66 and 66 <= raw.apex.index <= 74
    assert raw.onset.index <= raw.apex.index < raw.offset.index
    released = run_spotter(template, [(60, 70, 130)], frames=200, hold_from=None, flush=False)
    assert all(b.onset.index < 100 for b in released)  # the fall at 70–130 is not a new burst


def test_flush_reports_an_expression_still_rising_at_the_end(template: FloatArray) -> None:
    """The stream stops while an expression has just risen: its frames are inside the
    look-ahead, never judged, yet the flush reports it as held."""
    bursts = run_spotter(template, [(100, 108, 10_000)], frames=118, hold_from=108, amp=5.0)
    assert len(bursts) == 1 and bursts[0].held
    assert 96 <= bursts[0].onset.index <= 106


def _speech(i: int) -> list[Motion]:
    """Syllable-rate (4 Hz) jaw and lip movement, up to 3 px, for the whole clip."""
    level = 3.0 * max(0.0, float(np.sin(2 * np.pi * 4.0 * i / 30.0)))
    return [("chin", (0.0, 1.0), level), ("upper_lip", (0.0, -1.0), 0.5 * level)]


def test_speech_raises_the_mouth_bar_not_the_brows(template: FloatArray) -> None:
    """Continuous speech-like pulses on the mouth are that region's normal level: no bursts
    from them, while a brow pulse during the speech is still found."""
    talking = run_spotter(template, [], frames=240, background=_speech)
    assert talking == []
    event = (150, 156, 165)
    bursts = run_spotter(template, [event], frames=240, background=_speech,
                         region="inner_brow_L", direction=(0.0, -1.0))
    assert len(bursts) == 1
    _check_burst(bursts[0], event, "inner_brow_L")
    assert bursts[0].speaking  # subscribers learn the face was talking at the apex
    (quiet,) = run_spotter(template, [event], frames=240, region="inner_brow_L",
                           direction=(0.0, -1.0))
    assert not quiet.speaking


def test_a_blink_does_not_hide_the_mouth_movement_it_overlaps(template: FloatArray) -> None:
    """The lids close and open (a blink, by the blendshapes) while the mouth corner moves a
    little later: the blink is dropped, the mouth's burst is not taken for its duplicate."""
    blink, mouth = (38, 45, 52), (40, 50, 62)

    def lids(i: int) -> list[Motion]:
        return [("lower_lid_L", (0.0, -1.0), 3.0 * raised_cosine(i, *blink))]

    def shapes(i: int) -> dict[str, float]:
        closed = raised_cosine(i, *blink)
        return {"eyeBlinkLeft": 0.9 * closed, "eyeBlinkRight": 0.9 * closed}

    bursts = run_spotter(template, [mouth], frames=120, background=lids, shapes=shapes)
    assert len(bursts) == 1, [(b.onset.index, b.offset.index, b.regions) for b in bursts]
    assert "mouth_corner_L" in bursts[0].regions
    assert interval_iou((bursts[0].onset.index, bursts[0].offset.index), mouth[::2]) >= 0.5


def test_emitted_within_the_stated_look_ahead(template: FloatArray) -> None:
    cfg = SpotterConfig()
    emitted: list[int] = []
    (raw,) = run_spotter(template, [(60, 66, 75)], emitted=emitted, cfg=cfg)
    lookahead = scale_frames(cfg.scale_s, cfg.scales, 30.0)[-1]  # the judged frame's lag
    assert raw.offset.index <= emitted[0] <= raw.apex.index + lookahead + 6


def test_warm_up_hides_nothing_after_it(template: FloatArray) -> None:
    """An event right after the warm-up (plus the largest scale's span) is found."""
    cfg = SpotterConfig()
    start = round(cfg.warmup_s * 30) + 2 * scale_frames(cfg.scale_s, cfg.scales, 30.0)[-1] + 2
    event = (start, start + 5, start + 12)
    bursts = run_spotter(template, [event], frames=start + 60, cfg=cfg)
    assert len(bursts) == 1
    _check_burst(bursts[0], event, "mouth_corner_L")


def test_flush_emits_a_found_peak(template: FloatArray) -> None:
    """A burst whose peak was judged but not yet closed when the track ends is still emitted."""
    event = (100, 106, 115)
    lookahead = scale_frames(SpotterConfig().scale_s, SpotterConfig().scales, 30.0)[-1]
    end = 106 + lookahead + 1
    assert run_spotter(template, [event], frames=end, flush=False) == []
    (raw,) = run_spotter(template, [event], frames=end)
    _check_burst(raw, event, "mouth_corner_L")
    empty = BurstSpotter(SpotterConfig(), RegionMotion(template, CROP), 30.0)
    assert empty.flush() == [] and not empty.active


def test_scale_frames() -> None:
    assert scale_frames(0.1, 3, 30.0) == (3, 6, 12)
    assert scale_frames(0.1, 3, 25.0) == (2, 4, 8)
    assert scale_frames(0.01, 2, 30.0) == (1, 2)


def test_speaking_state_follows_sustained_jaw_movement(template: FloatArray) -> None:
    """Speaking starts once the jaw's mean movement over the last second is clearly up,
    survives a pause between words, and ends when the jaw stays still."""
    rng = np.random.default_rng(7)
    base = texture(0)
    chin = region_block(template, "chin", 8)
    spotter = BurstSpotter(SpotterConfig(), RegionMotion(template, CROP), 30.0)
    states = []
    for i in range(240):
        talking = 30 <= i < 150 and not 95 <= i < 101  # 4 s of speech with a 0.2 s pause
        level = _speech(i)[0][2] if talking else 0.0
        img = shift_block(base, chin, 0.0, level)
        gray = np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)
        spotter.update(Sample(i, i / 30, gray, gray, {}))
        states.append(spotter.speaking)
    assert not any(states[:30])
    assert all(states[60:150])  # the pause at 95–100 included
    assert not any(states[200:])
