"""LBP χ² baseline (Moilanen 2014) on synthetic textured crops with injected local warps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import affectstream.eval.baseline as bl
from affectstream.errors import ConfigError
from affectstream.eval.baseline import (
    BaselineConfig,
    feature_difference,
    half_width,
    signal,
    spot_baseline,
)
from affectstream.eval.metrics import interval_iou

FPS = 30.0
N = 240
SIDE = 128


def make_sequence(
    n: int, events: list[tuple[int, int]], seed: int = 0, amp: float = 6.0, noise: float = 1.5
) -> list[np.ndarray]:
    """A fixed blurred-noise texture with per-frame sensor noise; each ``(start, frames)`` event
    pushes a Gaussian patch (σ 12 px, lower right: a mouth corner) by up to ``amp`` px with a
    sin² onset–apex–offset profile."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (SIDE, SIDE)).astype(np.float32), (0, 0), 1.5)
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    bump = np.exp(-((xx - 80) ** 2 + (yy - 90) ** 2) / (2 * 12**2)).astype(np.float32)
    level = np.zeros(n)
    for start, frames in events:
        level[start : start + frames] = np.sin(np.pi * (np.arange(frames) + 0.5) / frames) ** 2
    out = []
    for a in level:
        map_x = (xx - amp * a * bump).astype(np.float32)
        map_y = (yy - 0.5 * amp * a * bump).astype(np.float32)
        img = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        img = img + rng.normal(0.0, noise, img.shape)
        out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return out


SHORT = (100, 109)  # 10 frames = 0.33 s at 30 fps: micro
LONG = (100, 135)  # 36 frames = 1.2 s: macro


@pytest.fixture(scope="module")
def noise_seq() -> list[np.ndarray]:
    return make_sequence(N, [])


@pytest.fixture(scope="module")
def short_seq() -> list[np.ndarray]:
    return make_sequence(N, [(SHORT[0], SHORT[1] - SHORT[0] + 1)])


@pytest.fixture(scope="module")
def long_seq() -> list[np.ndarray]:
    return make_sequence(N, [(LONG[0], LONG[1] - LONG[0] + 1)])


def matching(found: list[tuple[int, int, int, str]], truth: tuple[int, int]) -> list[tuple]:
    return [s for s in found if interval_iou((s[0], s[2]), truth) >= 0.5]


def test_short_event_is_one_micro_interval(short_seq: list[np.ndarray]) -> None:
    found = spot_baseline(short_seq, FPS)
    # The event dominates the relative threshold, so nothing else survives it.
    assert len(found) == 1
    onset, apex, offset, kind = found[0]
    assert kind == "micro"
    assert SHORT[0] <= apex <= SHORT[1]
    assert offset - onset == 2 * half_width(0.4, FPS)
    assert interval_iou((onset, offset), SHORT) >= 0.5


def test_long_event_is_macro_not_micro(long_seq: list[np.ndarray]) -> None:
    found = spot_baseline(long_seq, FPS)
    hits = matching(found, LONG)
    assert [h[3] for h in hits] == ["macro"]
    onset, _, offset, _ = hits[0]
    assert offset - onset == 2 * half_width(1.2, FPS)
    # The micro pass fires on the event's slopes; those peaks must give way to the macro one.
    assert not [s for s in found if s[3] == "micro" and not (s[2] < onset or offset < s[0])]


def test_short_event_macro_duplicate_is_dropped(short_seq: list[np.ndarray]) -> None:
    k_macro = half_width(1.2, FPS)
    c_macro = feature_difference(short_seq, k_macro, BaselineConfig())
    # The macro pass does see the short event strongly; only the overlap rule removes it.
    assert SHORT[0] <= int(np.argmax(c_macro)) <= SHORT[1]
    assert [s[3] for s in spot_baseline(short_seq, FPS)] == ["micro"]


def test_noise_peaks_are_spread_and_an_event_stands_out(
    noise_seq: list[np.ndarray], short_seq: list[np.ndarray]
) -> None:
    # T is relative, so pure noise does cross it — but at many unrelated places, none dominant.
    found = spot_baseline(noise_seq, FPS)
    apexes = sorted(s[1] for s in found)
    assert len(found) >= 5
    assert apexes[-1] - apexes[0] >= N // 2
    c_noise, c_event = signal(noise_seq, FPS), signal(short_seq, FPS)
    assert c_noise.max() < 2.5 * np.percentile(c_noise[c_noise > 0], 90)
    # Same texture and noise plus one event: the event becomes the top peak, far above the rest.
    assert SHORT[0] <= int(np.argmax(c_event)) <= SHORT[1]
    assert c_event.max() > 4 * np.percentile(c_event[c_event > 0], 90)


def test_identical_frames_give_zero_and_nothing_spotted() -> None:
    frame = make_sequence(1, [])[0]
    crops = [frame] * 60
    assert not feature_difference(crops, 3, BaselineConfig()).any()
    assert spot_baseline(crops, FPS) == []


def test_contrast_is_zero_where_neighbours_are_missing(short_seq: list[np.ndarray]) -> None:
    k = 6
    c = feature_difference(short_seq, k, BaselineConfig())
    assert c.shape == (N,)
    assert c.min() >= 0.0
    assert not c[: 2 * k].any() and not c[N - 2 * k :].any()
    assert c[2 * k : N - 2 * k].any()


@pytest.mark.parametrize("n", [0, 1, 12])
def test_empty_and_short_inputs_return_nothing(n: int) -> None:
    crops = make_sequence(n, []) if n else []
    assert spot_baseline(crops, FPS) == []  # 12 < 2·6 + 1 frames
    assert feature_difference(crops, 6, BaselineConfig()).shape == (n,)
    assert not feature_difference(crops, 6, BaselineConfig()).any()


def test_too_short_for_macro_still_spots_micro() -> None:
    seq = make_sequence(60, [(25, 10)])  # 60 < 4·18 + 1: the macro pass has no valid frame
    found = spot_baseline(seq, FPS)
    assert [s[3] for s in found] == ["micro"]
    assert interval_iou((found[0][0], found[0][2]), (25, 34)) >= 0.5


def test_peaks_threshold_local_maxima_and_spacing() -> None:
    k = 2  # C is defined on frames 4..8 of 13; the zeros around them are padding, not data
    c = np.zeros(13)
    c[4:9] = [1.5, 0.0, 3.0, 0.0, 1.5]
    # T = 1.2 + 0.3·(3 − 1.2) = 1.74 over the defined frames; counting the padding would give 1.22
    # and let frames 4 and 8 through.
    assert bl._peaks(c, k, 0.3) == [6]
    c[4:9] = [0.0, 3.0, 3.0, 2.9, 0.0]  # a plateau: both are local maxima, only one is k apart
    assert bl._peaks(c, k, 0.3) == [5]
    assert bl._peaks(np.zeros(13), k, 0.3) == []  # flat: nothing exceeds T = max


def test_histograms_are_computed_once_per_frame(
    short_seq: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = bl._lbp

    def counting(grey: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        return real(grey)

    monkeypatch.setattr(bl, "_lbp", counting)
    spot_baseline(short_seq, FPS)
    assert calls == len(short_seq)


def test_lbp_codes_and_uniform_bins() -> None:
    # Neighbours clockwise from the top-left; bit i set when neighbour i ≥ the centre (50).
    img = np.array([[60, 10, 50], [10, 50, 10], [99, 10, 10]], dtype=np.uint8)
    assert bl._lbp(img).tolist() == [[0b01000101]]
    lut = bl._LUT
    assert lut.max() == bl.N_BINS - 1
    assert len(set(lut[lut < 58].tolist())) == 58  # 58 uniform patterns, each its own bin
    assert lut[0b00001111] < 58 and lut[0b01000101] == 58  # one arc vs. three separate bits


def test_colour_crops_match_grey(short_seq: list[np.ndarray]) -> None:
    colour = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in short_seq]
    assert spot_baseline(colour, FPS) == spot_baseline(short_seq, FPS)


def test_half_width_rounds_half_up() -> None:
    assert half_width(0.4, 30.0) == 6  # (12 − 1)/2 = 5.5
    assert half_width(1.2, 30.0) == 18  # 17.5
    assert half_width(0.4, 25.0) == 5  # 4.5
    assert half_width(0.01, 30.0) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grid": 0}, "grid=0"),
        ({"grid": 2.5}, "grid=2.5"),
        ({"p": 0.0}, "p=0.0"),
        ({"p": 1.0}, "p=1.0"),
        ({"top_fraction": 0.0}, "top_fraction"),
        ({"top_fraction": 1.5}, "top_fraction"),
        ({"micro_s": 0.0}, "micro_s"),
        ({"micro_s": float("nan")}, "micro_s"),
        ({"macro_s": 0.3}, "macro_s=0.3"),
    ],
)
def test_config_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BaselineConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_arguments_raise_config_error(short_seq: list[np.ndarray]) -> None:
    with pytest.raises(ConfigError, match="fps"):
        spot_baseline(short_seq, 0.0)
    with pytest.raises(ConfigError, match="k=0"):
        feature_difference(short_seq, 0, BaselineConfig())
    with pytest.raises(ConfigError, match="crop 1"):
        spot_baseline([short_seq[0], np.zeros((5, 5), np.uint8)] * 20, FPS)


def test_a_long_noise_clip_gives_well_formed_intervals() -> None:
    # Its speed is a benchmark figure (eval spotting), not a timed assertion.
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8) for _ in range(700)]
    for onset, apex, offset, kind in spot_baseline(crops, FPS):
        assert 0 <= onset <= apex <= offset < 700 and kind in ("micro", "macro")
