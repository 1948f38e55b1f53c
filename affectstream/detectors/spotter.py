"""Online burst spotter for one track: there-and-back pulses at several time scales (DESIGN §7).

A facial action is a movement that goes somewhere and comes back; speech, head turns and slow
expression changes mostly go somewhere and stay, or drift. For each scale ``k`` (frames) and each
region, with ``c`` the frame ``k`` frames ago, the *pulse* is

    pulse_k(c) = min(|rise|, |fall|) − |net|      if rise and fall point in opposite directions

with ``rise`` the region displacement from ``c−k`` to ``c``, ``fall`` from ``c`` to ``c+k`` and
``net`` from ``c−k`` to ``c+k`` (head motion removed). A held expression (a step) gives
``net ≈ rise`` and no pulse, a ramp gives a ``fall`` in the same direction as its ``rise``: only a
movement that returns within about ``2k`` frames scores. Scales double (``k``, ``2k``, …), and
so does every lag needed: one optical-flow call per frame measures the smallest lag, and each
longer displacement is the sum of two of the next shorter ones (region displacements add up),
so the scales cost additions, not flows.

Each pulse is divided by its own region's and scale's recent level (a high quantile of its
trailing history, plus a floor), so a region that is always busy — the mouth while speaking, the
face of a lively child — needs a larger movement to count than a quiet one; while the jaw keeps
moving (speaking) the mouth regions need ``speech_factor`` times more. The upper face (brows,
lids) and the lower face (nose, mouth, chin) are followed apart, so an action in one is found
while the other is busy. In each, a burst is a run of frames whose best normalised pulse exceeds
``min_z``; at the run's peak the best scale and region are known, and the burst's onset, apex and
offset are read off that region's displacement profile against a frame 1.5 scales before the
peak: the apex is its largest displacement near the peak, onset and offset are where it is back
within ``valley`` of that (or at its lowest before another movement starts). So
``onset ≤ apex ≤ offset`` always holds.

Latency: a frame is judged once the largest scale has passed after it (the stated look-ahead,
``scale_s · 2^(scales−1)``), and a burst is emitted a few frames after its run ends.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from affectstream.config import SpotterConfig
from affectstream.detectors.describer import is_eye_movement
from affectstream.detectors.motion import RegionMotion
from affectstream.detectors.runs import Candidate, follow_run
from affectstream.detectors.samples import RawBurst, Sample, frame_iou, joined
from affectstream.detectors.speech import SpeakingState
from affectstream.types import FloatArray

_MOUTH = ("mouth_corner", "upper_lip", "chin")
LOWER_FACE = ("nose", *_MOUTH)
"""Region stems of the lower face, which speech moves."""
_GROUPS = (("inner_brow", "outer_brow", "lower_lid"), LOWER_FACE)
"""Upper and lower face, as FACS divides them."""
_STEP_BAR = 3.0
"""A held expression needs this many times ``min_z``: speech and head turns make steps too."""


@dataclass(slots=True)
class _Group:
    """Regions that are spotted together, with their own candidate: an action of the upper
    face is found even while the lower face is busy (speech, a laugh), and the other way round."""

    mask: npt.NDArray[np.bool_]
    candidate: Candidate | None = None
    step: Candidate | None = None
    """A held expression (a step) being followed."""
    held_until: int = -1
    """No new held expression before this position (the last one's hold and release)."""
    last_offset: int = -1
    last_burst: int = -(10**9)
    """Position of the group's last burst peak."""


def scale_frames(scale_s: float, scales: int, fps: float) -> tuple[int, ...]:
    """Pulse half-widths in frames, smallest first, each twice the one before (so the lags
    ``k`` and ``2k`` of all scales are ``scales + 1`` distinct lags, each double the last)."""
    base = max(1, round(scale_s * fps))
    return tuple(base * 2**i for i in range(scales))


class BurstSpotter:
    def __init__(self, cfg: SpotterConfig, motion: RegionMotion, fps: float) -> None:
        self._cfg = cfg
        self._motion = motion
        self._fps = fps if fps > 0 else 30.0
        self._scales = scale_frames(cfg.scale_s, cfg.scales, self._fps)
        self._lags = tuple(sorted(set(self._scales) | {2 * k for k in self._scales}))
        self._kmax = self._scales[-1]
        self._count = 0
        """Samples seen; a sample's position is its count at arrival."""
        self._ring: deque[Sample] = deque(maxlen=4 * self._kmax + 4)
        self._speaking_ring: deque[bool] = deque(maxlen=4 * self._kmax + 4)
        """The speaking state after each sample of ``_ring`` (a burst reports its apex's)."""
        self._disp = {lag: deque[FloatArray](maxlen=self._kmax + 1) for lag in self._lags}
        """Region displacement vectors (R, 2) over each lag, newest last."""
        window = max(8, round(cfg.window_s * self._fps))
        self._window = window
        self._history = {k: deque[FloatArray](maxlen=window) for k in self._scales}
        self._judged = {k: deque[int](maxlen=window) for k in self._scales}
        """Position of the frame each history entry judged."""
        self._rank = cfg.noise_quantile
        names = motion.names
        self._mouth = np.array([n.startswith(_MOUTH) for n in names])
        self._speech = SpeakingState(names, motion.size, self._fps)
        self._speech_scale = np.where(self._mouth, cfg.speech_factor, 1.0).astype(np.float32)
        self._pending: dict[int, dict[int, FloatArray]] = {}
        """Normalised pulses per frame position and scale until every scale has judged it."""
        self._steps = deque[FloatArray](maxlen=window)
        """History of held-expression (step) scores, like ``_history`` for pulses."""
        self._pending_steps: dict[int, FloatArray] = {}
        self._hold = max(1, round(cfg.hold_s * self._fps))
        self._warmup = max(3, round(cfg.warmup_s * self._fps))
        self._emitted: deque[tuple[int, int]] = deque(maxlen=4)
        """Frame spans of the last bursts emitted."""
        self._groups = tuple(_Group(np.array([n.startswith(stems) for n in names]))
                             for stems in _GROUPS)
        self.last_signal: float = 0.0
        """Latest combined score (largest normalised pulse), for previews and plots."""
        self.last_signal_index: int = -1
        """Frame index that :attr:`last_signal` belongs to (``look-ahead`` frames back)."""

    @property
    def active(self) -> bool:
        return any(g.candidate is not None for g in self._groups)

    def update(self, sample: Sample) -> list[RawBurst]:
        """Take one aligned sample; the bursts whose runs ended with it (usually none)."""
        self._ring.append(sample)
        self._count += 1
        base = self._lags[0]
        if len(self._ring) > base:
            quick = self._motion.vectors(self._ring[-1 - base].gray, sample.gray)
            self._disp[base].append(quick)
            self._speech.update(quick)
        self._speaking_ring.append(self._speech.speaking)
        for short, lag in itertools.pairwise(self._lags):
            # Region displacements add up: over 2L frames it is the last L's plus the L before.
            steps = self._disp[short]
            if len(self._ring) > lag and len(steps) > short:
                self._disp[lag].append(steps[-1 - short] + steps[-1])
        for k in self._scales:
            self._judge(k)
        return self._advance()

    @property
    def speaking(self) -> bool:
        """The jaw has kept moving for the last second, clearly more than the brows."""
        return self._speech.speaking

    def flush(self) -> list[RawBurst]:
        """The track or stream ended: emit the bursts whose peaks were already found, and an
        expression that rose in the last frames the look-ahead could not judge (still held)."""
        out: list[RawBurst] = []
        for group in self._groups:
            candidate, group.candidate = group.candidate, None
            if candidate is not None and (raw := self._emit(group, candidate)) is not None:
                self._add(out, raw)
            step, group.step = group.step or self._rising(group), None
            if step is not None and (raw := self._emit_held(group, step)) is not None:
                self._add(out, raw)
        return out

    def _rising(self, group: _Group) -> Candidate | None:
        """A displacement over the longest lag seen so far (at most two largest scales) that
        stands out like a step; before any step history, against the floor alone."""
        lag = max((lag for lag in self._lags if self._disp[lag]), default=0)
        pos = self._count - 1 - lag // 2
        if not lag or pos <= group.held_until:
            return None
        level = (self._level(self._steps) if len(self._steps) >= 3
                 else np.float32(self._cfg.noise_floor_px))
        z = np.linalg.norm(self._disp[lag][-1], axis=1) / level
        z = np.where(group.mask, z, 0.0).astype(np.float32)
        if float(z.max()) < _STEP_BAR * self._cfg.min_z:
            return None
        return Candidate(pos, float(z.max()), max(1, lag // 2), z)

    # -- scoring --------------------------------------------------------------------------------
    def _judge(self, k: int) -> None:
        """Pulse of every region at the frame ``k`` back, normalised by its own history."""
        rise_q, net_q = self._disp[k], self._disp[2 * k]
        if len(rise_q) <= k or not net_q:
            return
        rise, fall, net = rise_q[-1 - k], rise_q[-1], net_q[-1]
        r, f = np.linalg.norm(rise, axis=1), np.linalg.norm(fall, axis=1)
        n = np.linalg.norm(net, axis=1)
        opposed = (rise * fall).sum(axis=1) < -0.3 * r * f
        pulse = np.maximum(np.where(opposed, np.minimum(r, f) - n, 0.0), 0.0).astype(np.float32)
        pos = self._count - 1 - k
        # A pulse is only judged once the face's normal motion is known (the warm-up).
        self._pending.setdefault(pos, {})[k] = self._normalise(self._history[k], pulse,
                                                               self._warmup)
        self._judged[k].append(pos)
        if k == self._kmax:  # a held expression: went there (rise ≈ net) and stayed (no fall)
            stayed = ((rise * net).sum(axis=1) > 0.5 * r * n) & (f < 0.5 * r)
            step = np.maximum(np.where(stayed, np.minimum(r, n) - f, 0.0), 0.0)
            # Steps need _STEP_BAR times more, which is bar enough in the warm-up: an
            # expression a new face starts with is still reported.
            self._pending_steps[pos] = self._normalise(self._steps, step.astype(np.float32), 3)

    def _level(self, history: deque[FloatArray]) -> FloatArray:
        """Each region's noise level: a high quantile of its history, plus the floor."""
        hist = np.asarray(history)
        kth = round(self._rank * (len(hist) - 1))
        level: FloatArray = np.partition(hist, kth, axis=0)[kth] + self._cfg.noise_floor_px
        return level

    def _normalise(self, history: deque[FloatArray], values: FloatArray,
                   minimum: int) -> FloatArray:
        """``values`` over their region's noise level in ``history`` (zero while the history
        is shorter than ``minimum``), which then takes them."""
        z = np.zeros_like(values)
        if len(history) >= minimum:
            z = np.where(values >= self._cfg.min_motion_px,
                         values / self._level(history), 0.0).astype(np.float32)
        history.append(values)
        return z

    def _advance(self) -> list[RawBurst]:
        """Combine the scales for the frame every scale has judged; follow each group."""
        pos = self._count - 1 - self._kmax
        per_scale = self._pending.pop(pos, None)
        if per_scale is None:
            return []
        steps = self._pending_steps.pop(pos, None)
        if self.speaking:  # the mouth is judged against speech, not against itself at rest
            per_scale = {k: z / self._speech_scale for k, z in per_scale.items()}
            steps = None if steps is None else steps / self._speech_scale
        self.last_signal = max(float(z.max()) for z in per_scale.values())
        self.last_signal_index = self._sample(pos).index
        out: list[RawBurst] = []
        for group in self._groups:
            k, z = max(per_scale.items(), key=lambda kv: float(kv[1][group.mask].max()))
            z = np.where(group.mask, z, 0.0).astype(np.float32)
            done = self._follow(group, pos, float(z.max()), k, z)
            if done is not None and (raw := self._emit(group, done)) is not None:
                self._add(out, raw)
            if steps is not None:
                held = self._follow_step(group, pos, np.where(group.mask, steps, 0.0))
                if held is not None and (raw := self._emit_held(group, held)) is not None:
                    self._add(out, raw)
        return out

    def _follow_step(self, group: _Group, pos: int, z: FloatArray) -> Candidate | None:
        """The same for held expressions, which need ``_STEP_BAR`` times ``min_z``."""
        score = float(z.max())
        above = score >= _STEP_BAR * self._cfg.min_z and pos > group.held_until
        fresh = Candidate(pos, score, self._kmax, z.astype(np.float32))
        group.step, done = follow_run(group.step, above, fresh)
        return done

    def _emit_held(self, group: _Group, cand: Candidate) -> RawBurst | None:
        """A held expression: onset where the rise starts, apex where it first reaches (nearly)
        its full displacement, offset at the newest frame; the group reports no other held
        expression for ``hold_s`` (its release belongs to it)."""
        _, trace, levels = self._trace(cand)
        reference = trace[0][0]
        peak = float(levels.max())
        apex_i = int(np.flatnonzero(levels >= 0.9 * peak)[0])
        onset_i = self._valley(levels, apex_i, -1, peak)
        raw = self._raw(trace, onset_i, apex_i, len(trace) - 1, reference, cand, peak, held=True)
        if raw is None:
            return None
        group.held_until = cand.pos + self._hold
        return raw

    def _add(self, out: list[RawBurst], raw: RawBurst) -> None:
        """One action is one burst: a burst that is the same as another (IoU ≥ 0.5, or a
        held expression whose apex lies in it: its rise was that burst) joins it when both end
        now, and is dropped when the other one was already emitted."""
        if self._cfg.blink_masking and is_eye_movement(raw):
            return  # before the dedup: a blink must not hide the expression it overlaps
        span = (raw.onset.index, raw.offset.index)

        def same(other: tuple[int, int]) -> bool:
            return frame_iou(span, other) >= 0.5 or (raw.held and
                                                other[0] <= raw.apex.index <= other[1])

        for i, other in enumerate(out):
            if same((other.onset.index, other.offset.index)):
                out[i] = joined(other, raw)
                return
        if any(same(old) for old in self._emitted):
            return
        self._emitted.append(span)
        out.append(raw)

    def _follow(self, group: _Group, pos: int, score: float, k: int,
                z: FloatArray) -> Candidate | None:
        """Update a group's candidate with this frame; the candidate when its run is over."""
        above = score >= self._cfg.min_z and self._sample(pos).index > group.last_offset
        group.candidate, done = follow_run(group.candidate, above, Candidate(pos, score, k, z))
        return done

    def _sample(self, pos: int) -> Sample:
        return self._ring[pos - (self._count - len(self._ring))]

    # -- the burst ------------------------------------------------------------------------------
    def _forget(self, group: _Group, first: int, last: int) -> None:
        """Replace a burst's own pulses in its regions' history by their typical level: one
        expression must not make the region deaf to the next, while recurring movement
        (speech) still raises its bar."""
        for k, history in self._history.items():
            if not history:
                continue
            typical = np.median(np.asarray(history), axis=0)
            for i, pos in enumerate(self._judged[k]):
                if first - k <= pos <= last + k:
                    history[i] = np.where(group.mask, np.minimum(history[i], typical),
                                          history[i]).astype(np.float32)

    def _valley(self, levels: FloatArray, apex: int, step: int, peak: float) -> int:
        """Walk from the apex (backwards for the onset, forwards for the offset) to where the
        displacement is back near the reference, or to its lowest point before another
        movement starts (it rises again by a fifth of the peak)."""
        best = i = apex
        while 0 <= i + step < len(levels):
            i += step
            if levels[i] < levels[best]:
                best = i
            if levels[i] <= self._cfg.valley * peak:
                return i
            if levels[i] > levels[best] + 0.2 * peak:
                break
        return best

    def _trace(self, cand: Candidate) -> tuple[int, list[tuple[Sample, FloatArray]],
                                                 FloatArray]:
        """Region displacements of every frame against a reference 1.5 scales before the
        candidate's peak (a slow rise starts before the pulse's own window), up to the newest
        frame (a slow fall ends after it), and the best region's level along them."""
        ref_pos = max(self._count - len(self._ring), cand.pos - round(1.5 * cand.scale))
        reference = self._sample(ref_pos)
        trace = [(self._sample(p), self._motion.vectors(reference.gray, self._sample(p).gray))
                 for p in range(ref_pos, self._count)]
        best = int(np.argmax(cand.z))
        levels = np.array([float(np.linalg.norm(v[best])) for _, v in trace])
        return ref_pos, trace, levels

    def _emit(self, group: _Group, cand: Candidate) -> RawBurst | None:
        ref_pos, trace, levels = self._trace(cand)
        reference = trace[0][0]
        # The apex is the largest displacement near the pulse's centre, not some later movement.
        lo, hi = cand.pos - cand.scale - ref_pos, cand.pos + cand.scale - ref_pos + 1
        apex_i = max(0, lo) + int(np.argmax(levels[max(0, lo):hi]))
        peak = float(levels[apex_i])
        onset_i = self._valley(levels, apex_i, -1, peak)
        offset_i = self._valley(levels, apex_i, 1, peak)
        isolated = cand.pos - group.last_burst > self._window
        group.last_offset = max(trace[offset_i][0].index, self._sample(cand.pos).index)
        group.last_burst = cand.pos
        if isolated and not self.speaking:
            self._forget(group, ref_pos + onset_i, ref_pos + offset_i)
        return self._raw(trace, onset_i, apex_i, offset_i, reference, cand, peak, held=False)

    def _raw(self, trace: list[tuple[Sample, FloatArray]], onset_i: int, apex_i: int,
             offset_i: int, reference: Sample, cand: Candidate, peak: float,
             held: bool) -> RawBurst | None:
        onset, apex, offset = trace[onset_i][0], trace[apex_i][0], trace[offset_i][0]
        if offset.pts_s - onset.pts_s < self._cfg.min_duration_s:
            return None
        names = self._motion.names
        order = np.argsort(-cand.z)
        best = float(cand.z[order[0]])
        regions = tuple(names[i] for i in order if cand.z[i] >= self._cfg.region_share * best)
        apex_vec = trace[apex_i][1]
        vectors = {names[i]: (float(apex_vec[i, 0]), float(apex_vec[i, 1])) for i in order}
        # the trace runs to the newest sample, so the apex is len(trace) − apex_i samples back
        speaking = self._speaking_ring[apex_i - len(trace)]
        return RawBurst(onset, apex, offset, reference, regions, vectors, peak, held, speaking)
