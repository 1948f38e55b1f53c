"""Training-free LBP χ² spotting baseline of the MEGC challenges (the comparison for our spotter).

Moilanen, Zhao & Pietikäinen (2014), "Spotting rapid facial movements from videos using
appearance-based feature difference analysis", ICPR; the MEGC2019/2020 spotting baseline.
Each aligned grey face crop is cut into ``grid × grid`` blocks with one LBP histogram per block.
The feature difference F(t) is the χ² distance between frame t's histograms and the mean of
frames t−k and t+k, averaged over the ``top_fraction`` most-changed blocks; the contrast
C(t) = F(t) − ½(F(t−k) + F(t+k)), clipped at 0, keeps movements that rise *and* fall within
about 2k+1 frames. Peaks above T = mean(C) + p·(max(C) − mean(C)) become intervals
[peak−k, peak+k] with k = (L·fps − 1)/2 for the interval length L (``micro_s``/``macro_s``);
``grid`` sets the blocks per side. Both passes run; where they overlap one interval is kept
(micro, unless the macro peak clearly dominates: a long event, see ``_MACRO_DOMINANCE``).

It is offline: T needs the whole sequence and C(t) needs frames up to t+2k, so events within
2k frames of either end cannot be spotted. Because T is relative, every non-flat sequence yields
at least one peak; the baseline ranks movements, it does not decide that nothing happened.

Histograms are the 59-bin *uniform* LBP(8,1) of Ojala et al., not the plain 256 bins: with 128-px
crops a 6×6 block holds ~440 pixels, too few to fill 256 bins without sampling noise dominating χ².
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from affectstream.errors import ConfigError
from affectstream.types import BurstKind

FloatArray = npt.NDArray[np.float64]
Interval = tuple[int, int, int, BurstKind]

# Neighbours of the centre in circular order, so "uniform" (≤ 2 bit flips round the circle) means
# a single arc of brighter neighbours: an edge, corner, line end or flat spot.
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _uniform_lut() -> npt.NDArray[np.intp]:
    lut = np.empty(256, dtype=np.intp)
    nxt = 0
    for code in range(256):
        flips = sum(((code >> i) & 1) != ((code >> ((i + 1) % 8)) & 1) for i in range(8))
        if flips <= 2:
            lut[code], nxt = nxt, nxt + 1
        else:
            lut[code] = 58  # every non-uniform pattern shares the last bin
    return lut


_LUT = _uniform_lut()
N_BINS = 59

_MACRO_DOMINANCE = 2.0
"""A macro peak this many times the overlapping micro peaks is a long event, not a micro one.

For a short event both passes compare the apex with neutral frames: equal peaks (ratio ≈ 0.9 on
synthetic warps). For a long event frames t±k_micro are moved too, so the micro pass only sees
weak peaks on the slopes (ratio ≈ 4–5). The relative threshold lets those slope peaks through, so
with a plain "micro wins" every long event would be reported as micro.
"""


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """Moilanen's parameters; the defaults are the MEGC baseline's."""

    grid: int = 6  # blocks per side of the face crop
    top_fraction: float = 1 / 3  # mean of the top third of block χ² distances (Moilanen)
    p: float = 0.3  # threshold T = mean(C) + p·(max(C) − mean(C))
    micro_s: float = 0.4  # interval length L for the micro pass (k = (L·fps − 1)/2 frames)
    macro_s: float = 1.2  # interval length for the macro pass

    def __post_init__(self) -> None:
        if not (isinstance(self.grid, int) and self.grid >= 1):
            raise ConfigError(f"baseline grid={self.grid!r} is invalid; use an integer ≥ 1")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ConfigError(f"baseline top_fraction={self.top_fraction} is invalid; use (0, 1]")
        if not 0.0 < self.p < 1.0:
            raise ConfigError(f"baseline p={self.p} is invalid; use a value in (0, 1)")
        if not (math.isfinite(self.micro_s) and self.micro_s > 0.0):
            raise ConfigError(f"baseline micro_s={self.micro_s} is invalid; use seconds > 0")
        if not (math.isfinite(self.macro_s) and self.macro_s > self.micro_s):
            raise ConfigError(
                f"baseline macro_s={self.macro_s} is invalid; use seconds > micro_s={self.micro_s}"
            )


def half_width(length_s: float, fps: float) -> int:
    """k = (L·fps − 1)/2 frames, rounded half up (not Python's half-to-even)."""
    if not (math.isfinite(fps) and fps > 0.0):
        raise ConfigError(f"fps={fps} is invalid; pass the video's frame rate (> 0)")
    return max(1, math.floor((length_s * fps - 1.0) / 2.0 + 0.5))


def _lbp(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Plain 8-bit LBP(8,1) codes of the interior pixels (the 1-px border has no full ring)."""
    h, w = grey.shape
    centre = grey[1 : h - 1, 1 : w - 1]
    codes = np.zeros(centre.shape, dtype=np.uint8)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        codes |= (grey[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] >= centre).astype(np.uint8) << bit
    return codes


def _as_grey(crop: npt.NDArray[np.uint8], i: int, grid: int) -> npt.NDArray[np.uint8]:
    img = np.asarray(crop)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if img.ndim != 2 or min(img.shape) - 2 < grid:
        raise ConfigError(
            f"crop {i} has shape {img.shape}; pass 2-D grey crops with sides > grid+2={grid + 2}"
        )
    return img


def _histograms(crops: Sequence[npt.NDArray[np.uint8]], grid: int) -> FloatArray:
    """(frames, grid², 59) block histograms, each normalised to sum 1 (blocks differ in size)."""
    out = np.zeros((len(crops), grid * grid, N_BINS))
    maps: dict[tuple[int, int], tuple[npt.NDArray[np.intp], FloatArray]] = {}
    for i, crop in enumerate(crops):
        codes = _lbp(_as_grey(crop, i, grid))
        if codes.shape not in maps:  # one block-index map per crop size, reused by every frame
            rows = np.minimum(np.arange(codes.shape[0]) * grid // codes.shape[0], grid - 1)
            cols = np.minimum(np.arange(codes.shape[1]) * grid // codes.shape[1], grid - 1)
            base = (rows[:, None] * grid + cols[None, :]) * N_BINS
            sizes = np.bincount((base // N_BINS).ravel(), minlength=grid * grid).astype(np.float64)
            maps[codes.shape] = (base, sizes)
        base, sizes = maps[codes.shape]
        counts = np.bincount((base + _LUT[codes]).ravel(), minlength=grid * grid * N_BINS)
        out[i] = counts.reshape(grid * grid, N_BINS) / sizes[:, None]
    return out


def _contrast(hists: FloatArray, k: int, top_fraction: float) -> FloatArray:
    n, blocks = hists.shape[0], hists.shape[1]
    c = np.zeros(n)
    if n < 2 * k + 1:
        return c
    cur, ref = hists[k : n - k], 0.5 * (hists[: n - 2 * k] + hists[2 * k :])
    den = cur + ref
    # χ² per bin; 0/0 (a bin empty in both) contributes nothing.
    chi = np.divide((cur - ref) ** 2, den, out=np.zeros_like(den), where=den > 0).sum(axis=2)
    top = max(1, round(top_fraction * blocks))
    f = np.zeros(n)
    f[k : n - k] = np.partition(chi, blocks - top, axis=1)[:, blocks - top :].mean(axis=1)
    # C needs F at t±k, which is only defined for k ≤ t±k < n−k; elsewhere C stays 0.
    if n >= 4 * k + 1:
        c[2 * k : n - 2 * k] = f[2 * k : n - 2 * k] - 0.5 * (f[k : n - 3 * k] + f[3 * k : n - k])
    return np.maximum(c, 0.0)


def feature_difference(
    crops: Sequence[npt.NDArray[np.uint8]], k: int, cfg: BaselineConfig
) -> FloatArray:
    """F(t): χ² distance between the block LBP histograms of frame t and the average of frames
    t−k and t+k, mean of the top blocks; then contrast C(t) = F(t) − ½(F(t−k) + F(t+k)), clipped
    at 0. Frames without both neighbours get 0 (F for the first/last k frames, C for 2k)."""
    if k < 1:
        raise ConfigError(f"k={k} is invalid; use a half-width of at least 1 frame")
    return _contrast(_histograms(crops, cfg.grid), k, cfg.top_fraction)


def _peaks(c: FloatArray, k: int, p: float) -> list[int]:
    """Local maxima above T, greedily kept highest first when ≥ k frames from every kept one."""
    n = len(c)
    if n < 4 * k + 1:
        return []
    valid = c[2 * k : n - 2 * k]  # T over the frames where C is defined, not the zero padding
    mean = float(valid.mean())
    thr = mean + p * (float(valid.max()) - mean)
    kept: list[int] = []
    for t in sorted(range(2 * k, n - 2 * k), key=lambda t: (-c[t], t)):
        if c[t] <= thr:
            break
        if c[t] >= c[t - 1] and c[t] >= c[t + 1] and all(abs(t - s) >= k for s in kept):
            kept.append(t)
    return kept


def _intervals(c: FloatArray, k: int, p: float, kind: BurstKind) -> list[Interval]:
    n = len(c)
    return [(max(0, t - k), t, min(n - 1, t + k), kind) for t in _peaks(c, k, p)]


def _overlaps(a: Interval, b: Interval) -> bool:
    return not (a[2] < b[0] or b[2] < a[0])


def signal(
    crops: Sequence[npt.NDArray[np.uint8]], fps: float, cfg: BaselineConfig = BaselineConfig()
) -> FloatArray:
    """The micro-pass contrast C(t), one value per crop (for plotting)."""
    return feature_difference(crops, half_width(cfg.micro_s, fps), cfg)


def spot_baseline(
    crops: Sequence[npt.NDArray[np.uint8]], fps: float, cfg: BaselineConfig = BaselineConfig()
) -> list[Interval]:
    """(onset, apex, offset, kind) per spotted interval, 0-based inclusive positions in `crops`;
    kind 'micro' or 'macro'."""
    k_micro, k_macro = half_width(cfg.micro_s, fps), half_width(cfg.macro_s, fps)
    if len(crops) < 2 * k_micro + 1:
        return []
    hists = _histograms(crops, cfg.grid)  # once per frame, shared by both passes
    c_micro = _contrast(hists, k_micro, cfg.top_fraction)
    c_macro = _contrast(hists, k_macro, cfg.top_fraction)
    micro = _intervals(c_micro, k_micro, cfg.p, "micro")
    macro = _intervals(c_macro, k_macro, cfg.p, "macro")
    # One event, one report: where a macro interval overlaps micro ones, micro wins unless the
    # macro peak is _MACRO_DOMINANCE times the strongest of them (see the constant for why).
    dropped: set[int] = set()
    kept: list[Interval] = []
    for m in macro:
        hit = [i for i, u in enumerate(micro) if _overlaps(m, u)]
        if not hit:
            kept.append(m)
        elif c_macro[m[1]] >= _MACRO_DOMINANCE * max(c_micro[micro[i][1]] for i in hit):
            kept.append(m)
            dropped.update(hit)
    return sorted(kept + [u for i, u in enumerate(micro) if i not in dropped])
