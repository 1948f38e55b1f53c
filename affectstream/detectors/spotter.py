"""Online, causal burst spotter for one track (DESIGN §7).

Idle: a lag signal (region flow between frame i−k and i, k ≈ lag_s) is normalised per region
against that region's own trailing history (median / MAD), so regions that are always busy
(speech) do not drown quiet ones. A burst starts when a region rises ``min_z`` robust deviations
above its history, above an absolute floor, and above the adaptive threshold
``T = mean + p·(high − mean)`` of the trailing combined signal.

Active: displacement is measured from the frame before the onset (the onset reference), not
from a fixed lag, so a held expression stays one burst instead of a rise bump and a fall bump.
Apex is the displacement peak; the burst is released when displacement falls back below
``release × peak`` (or the noise floor), or closed as held after ``max_duration_s``. After
release the fall is followed into its valley (within ``valley × peak``, rising again, or
0.2 s at most) and the offset is its lowest point; the onset is the last frame before the apex
still within ``valley × peak``. All durations scale with the frame rate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from affectstream.config import SpotterConfig
from affectstream.detectors.motion import RegionMotion
from affectstream.types import FloatArray, Image


@dataclass(frozen=True, slots=True)
class Sample:
    index: int
    pts_s: float
    gray: Image
    crop: Image
    blendshapes: dict[str, float]


@dataclass(frozen=True, slots=True)
class RawBurst:
    """A spotted burst before description: frames, regions and their motion at the apex."""

    onset: Sample
    apex: Sample
    offset: Sample
    reference: Sample
    regions: tuple[str, ...]
    apex_vectors: dict[str, tuple[float, float]]
    peak_motion: float
    held: bool


@dataclass(slots=True)
class _Active:
    reference: Sample
    baseline: FloatArray
    """Per-region median of the lag signal, frozen at the onset (the history does not grow
    while a burst is active, so it is computed once per burst, not per frame)."""
    trace: list[tuple[Sample, FloatArray]] = field(default_factory=list)
    """(sample, per-region displacement magnitude above baseline) since the reference."""
    vectors: list[FloatArray] = field(default_factory=list)
    peak: float = 0.0
    apex_pos: int = 0
    released_pos: int | None = None
    """Where the displacement first fell below ``release × peak`` after the apex."""


class BurstSpotter:
    def __init__(self, cfg: SpotterConfig, motion: RegionMotion, fps: float, lag_s: float) -> None:
        self._cfg = cfg
        self._motion = motion
        self._fps = fps if fps > 0 else 30.0
        self._lag = max(1, round(lag_s * self._fps))
        # Look back further than the lag so a slow onset gets a reference from before it began.
        self._lookback = self._lag + max(1, round(0.2 * self._fps))
        self._ring: deque[Sample] = deque(maxlen=self._lookback + 1)
        window = max(8, round(cfg.window_s * self._fps))
        self._history: deque[FloatArray] = deque(maxlen=window)
        self._combined: deque[float] = deque(maxlen=window)
        self._warmup = max(3, round(cfg.warmup_s * self._fps))
        self._max_frames = max(2, round(cfg.max_duration_s * self._fps))
        self._tail = max(1, round(0.2 * self._fps))
        self._rearm_frames = max(2, round(1.0 * self._fps))
        self._disarmed = 0
        self._last_offset = -1
        self._active: _Active | None = None
        self.last_signal: float = 0.0
        """Latest combined onset score (max robust z over regions), for previews and debugging."""

    @property
    def active(self) -> bool:
        return self._active is not None

    def update(self, sample: Sample) -> RawBurst | None:
        self._ring.append(sample)
        if self._active is not None:
            return self._continue(sample)
        if len(self._ring) <= self._lag:
            return None
        lagged = self._ring[-1 - self._lag]
        lag = np.linalg.norm(self._motion.vectors(lagged.gray, sample.gray), axis=1)
        if self._disarmed > 0:
            self._rearm(lag)
        elif self._triggered(lag):
            self._start()
            return None
        self._history.append(lag)
        self._combined.append(self.last_signal)
        return None

    def flush(self) -> RawBurst | None:
        """Close an open burst (the track or stream ended)."""
        if self._active is None or not self._active.trace:
            self._active = None
            return None
        return self._finish(len(self._active.trace) - 1, held=True)

    # -- idle -------------------------------------------------------------------------------
    def _baseline(self) -> tuple[FloatArray, FloatArray]:
        hist = np.asarray(self._history, np.float32)
        med = np.median(hist, axis=0)
        mad = np.median(np.abs(hist - med), axis=0) * 1.4826
        return med, mad

    def _triggered(self, lag: FloatArray) -> bool:
        if len(self._history) < self._warmup:
            self.last_signal = 0.0
            return False
        med, mad = self._baseline()
        z = (lag - med) / (mad + 0.03)
        self.last_signal = float(z.max())
        strong = (z >= self._cfg.min_z) & (lag >= self._cfg.min_motion_px)
        if not strong.any():
            return False
        comb = np.asarray(self._combined, np.float32)
        adaptive = float(comb.mean() + self._cfg.p * (comb.max() - comb.mean()))
        return self.last_signal >= adaptive

    def _rearm(self, lag: FloatArray) -> None:
        """After a burst, wait until the tail of its motion has settled (or a second passed),
        so the fall of one expression does not start the next burst."""
        self._disarmed -= 1
        if len(self._history) >= self._warmup:
            med, mad = self._baseline()
            if float(((lag - med) / (mad + 0.03)).max()) < 0.5 * self._cfg.min_z:
                self._disarmed = 0

    def _start(self) -> None:
        ring = [s for s in self._ring if s.index > self._last_offset] or [self._ring[-1]]
        self._active = _Active(ring[0], self._baseline()[0])
        for sample in ring[1:]:
            self._measure(sample)

    # -- active -----------------------------------------------------------------------------
    def _measure(self, sample: Sample) -> float:
        active = self._active
        assert active is not None
        vec = self._motion.vectors(active.reference.gray, sample.gray)
        above = np.clip(np.linalg.norm(vec, axis=1) - active.baseline, 0,
                        None).astype(np.float32)
        active.trace.append((sample, above))
        active.vectors.append(vec)
        level = float(above.max())
        if level > active.peak:
            active.peak, active.apex_pos = level, len(active.trace) - 1
        return level

    def _continue(self, sample: Sample) -> RawBurst | None:
        active = self._active
        assert active is not None
        level = self._measure(sample)
        pos = len(active.trace) - 1
        if active.released_pos is None:
            noise = float(active.baseline.max())
            released = level <= max(self._cfg.release * active.peak, noise)
            if pos > active.apex_pos and released:
                active.released_pos = pos
            elif len(active.trace) >= self._max_frames:
                return self._finish(pos, held=True)
            else:
                return None
        return self._settle(active, pos, level)

    def _settle(self, active: _Active, pos: int, level: float) -> RawBurst | None:
        """After release, follow the fall into its valley (back near the reference, rising
        again, or at most ``self._tail`` frames) and put the offset at its lowest point."""
        assert active.released_pos is not None
        levels = [float(a.max()) for _, a in active.trace[active.released_pos:]]
        rising = len(levels) > 1 and level > levels[-2]
        if level <= self._cfg.valley * active.peak or rising or len(levels) > self._tail:
            return self._finish(active.released_pos + int(np.argmin(levels)), held=False)
        return None

    def _finish(self, end_pos: int, held: bool) -> RawBurst | None:
        active = self._active
        assert active is not None
        self._active = None
        self._disarmed = self._rearm_frames
        peak = active.peak
        levels = np.array([a.max() for _, a in active.trace[:active.apex_pos + 1]])
        # Onset: the last frame before the apex still in the valley near the reference.
        calm = np.flatnonzero(levels <= self._cfg.valley * peak)
        onset_pos = int(calm[-1]) if len(calm) else 0
        onset = active.trace[onset_pos][0]
        offset = active.trace[end_pos][0]
        self._last_offset = offset.index
        duration = offset.pts_s - onset.pts_s
        if peak < self._cfg.min_motion_px or duration < self._cfg.min_duration_s:
            return None
        apex_sample, apex_above = active.trace[active.apex_pos]
        apex_vec = active.vectors[active.apex_pos]
        names = self._motion.names
        order = np.argsort(-apex_above)
        regions = tuple(names[i] for i in order if apex_above[i] >= 0.5 * peak)
        vectors = {names[i]: (float(apex_vec[i, 0]), float(apex_vec[i, 1])) for i in order}
        return RawBurst(onset, apex_sample, offset, active.reference, regions, vectors, peak, held)
