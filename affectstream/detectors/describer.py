"""Turns spotted bursts and slow blendshape changes into short factual FACS-style lines.

Example: ``12.43–12.70 s, 0.27 s micro: left lip corner pulled up and back (AU12 weak), eyes
not involved``. Sides are the subject's. Motion directions are read on the aligned crop (image
y grows downwards; the subject's right side is on the image left).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from affectstream.config import LogConfig
from affectstream.detectors import facs
from affectstream.detectors.samples import RawBurst
from affectstream.types import ActionUnit, Burst, BurstKind, LogLine, Side

_BLEND_THRESHOLD = 0.08
_EYE_REGIONS = ("lower_lid", "inner_brow", "outer_brow")


def _direction_phrase(stem: str, side: str, dx: float, dy: float) -> str:
    outward = (dx < 0) if side == "R" else (dx > 0)
    vertical = abs(dy) >= 0.5 * abs(dx)
    up, down = vertical and dy < 0, vertical and dy > 0
    phrases = {
        "inner_brow": "raised" if up else ("drawn together and down" if down else "drawn together"),
        "outer_brow": "raised" if up else ("lowered" if down else "moved sideways"),
        "lower_lid": "tightened (raised)" if up else ("lowered" if down else "moved"),
        "nose": "wrinkled" if up else "moved",
        "mouth_corner": ("pulled up and back" if up and outward else "pulled up" if up
                         else "pulled down" if down else
                         "stretched sideways" if outward else "drawn in"),
        "upper_lip": "raised" if up else ("pressed down" if down else "moved sideways"),
        "chin": "raised" if up else ("dropped (jaw)" if down else "moved sideways"),
    }
    return phrases.get(stem, "moved")


def _split(region: str) -> tuple[str, Side]:
    if region.endswith("_L"):
        return region[:-2], "L"
    if region.endswith("_R"):
        return region[:-2], "R"
    return region, "both"


_NOUN = {"inner_brow": "inner brow", "outer_brow": "outer brow", "lower_lid": "lower lid",
         "nose": "nose", "mouth_corner": "lip corner", "upper_lip": "upper lip", "chin": "chin"}


def region_phrases(regions: tuple[str, ...], vectors: dict[str, tuple[float, float]]) -> list[str]:
    """One phrase per moved facial feature, merging left and right when they agree."""
    by_stem: dict[str, dict[Side, str]] = {}
    for region in regions:
        stem, side = _split(region)
        dx, dy = vectors.get(region, (0.0, 0.0))
        by_stem.setdefault(stem, {})[side] = _direction_phrase(stem, side, dx, dy)
    out = []
    for stem, sides in by_stem.items():
        noun = _NOUN.get(stem, stem)
        if len(sides) == 2 and len(set(sides.values())) == 1:
            out.append(f"both {noun}s {next(iter(sides.values()))}")
            continue
        for side, phrase in sides.items():
            prefix = {"L": "left ", "R": "right ", "both": ""}[side]
            out.append(f"{prefix}{noun} {phrase}")
    return out


def burst_action_units(raw: RawBurst, crop_size: int) -> tuple[ActionUnit, ...]:
    """AUs from the blendshape change between the reference and the apex, completed by the
    AUs implied by region motion (blendshapes barely move for small brow and lip actions)."""
    delta = facs.blendshape_delta(raw.apex.blendshapes, raw.reference.blendshapes)
    units = {u.au: u for u in facs.action_units(delta, _BLEND_THRESHOLD) if u.au != 45}
    for region in raw.regions:
        dx, dy = raw.apex_vectors[region]
        found = facs.au_from_motion(region, dx, dy)
        if found is None or found[0] in units:
            continue
        _, side = _split(region)
        strength = min(1.0, math.hypot(dx, dy) / (0.08 * crop_size))
        units[found[0]] = ActionUnit(found[0], found[1], side, strength)
    return tuple(sorted(units.values(), key=lambda u: -u.intensity))


_GAZE = tuple(f"eyeLook{d}{s}" for d in ("In", "Out", "Up", "Down") for s in ("Left", "Right"))


def is_eye_movement(raw: RawBurst) -> bool:
    """Only eye-area regions moved, and the eyes blinked or looked elsewhere (a blink or a gaze
    shift moves the lids and brows, but is not a facial expression)."""
    if not all(_split(r)[0] in _EYE_REGIONS for r in raw.regions):
        return False
    after, before = raw.apex.blendshapes, raw.reference.blendshapes
    blink = max(after.get(k, 0.0) - before.get(k, 0.0) for k in ("eyeBlinkLeft", "eyeBlinkRight"))
    gaze = max((abs(after.get(k, 0.0) - before.get(k, 0.0)) for k in _GAZE), default=0.0)
    return blink >= 0.3 or gaze >= 0.45


def describe_burst(raw: RawBurst, *, burst_id: str, camera: str, track_id: int, ts: float,
                   crop_size: int, micro_max_s: float) -> Burst:
    onset_s, offset_s = raw.onset.pts_s, raw.offset.pts_s
    duration = offset_s - onset_s
    kind: BurstKind = "micro" if duration <= micro_max_s else "macro"
    units = burst_action_units(raw, crop_size)
    phrases = region_phrases(raw.regions, raw.apex_vectors) or ["facial movement"]
    au_text = ", ".join(f"AU{u.au} {facs.intensity_word(u.intensity)}" for u in units[:4])
    text = f"{onset_s:.2f}–{offset_s:.2f} s, {duration:.2f} s {kind}: " + "; ".join(phrases)
    if au_text:
        text += f" ({au_text})"
    stems = {_split(r)[0] for r in raw.regions}
    eye_aus = any(u.au in (6, 7) for u in units)
    if stems & {"mouth_corner", "upper_lip", "chin"} and not stems & set(_EYE_REGIONS) \
            and not eye_aus:
        text += ", eyes not involved"
    if raw.held:
        text += ", still held"
    return Burst(
        id=burst_id, camera=camera, track_id=track_id,
        onset_frame=raw.onset.index, apex_frame=raw.apex.index, offset_frame=raw.offset.index,
        onset_s=onset_s, apex_s=raw.apex.pts_s, offset_s=offset_s,
        kind=kind,
        regions=raw.regions, action_units=units, peak_motion=round(raw.peak_motion, 3),
        text=text, ts=ts, speaking=raw.speaking,
    )


@dataclass(slots=True)
class _AuState:
    fast: float
    slow: float
    active_since: float | None = None


class SlowChangeDescriber:
    """Lines for slow AU changes: an AU rising clearly above the track's own resting level
    (with hysteresis), and fading again. Blinks are left to the spotter's masking."""

    def __init__(self, cfg: LogConfig, camera: str, track_id: int) -> None:
        self._cfg = cfg
        self._camera = camera
        self._track = track_id
        self._state: dict[int, _AuState] = {}
        self._last_s: float | None = None

    def update(self, pts_s: float, units: Iterable[ActionUnit]) -> list[LogLine]:
        """One frame's AUs (``facs.action_units(blendshapes, 0.0)``); the new lines."""
        dt = 0.033 if self._last_s is None else max(1e-3, pts_s - self._last_s)
        self._last_s = pts_s
        a_fast, a_slow = 1 - math.exp(-dt / 0.3), 1 - math.exp(-dt / 20.0)
        lines: list[LogLine] = []
        for unit in units:
            if unit.au == 45:
                continue
            st = self._state.setdefault(unit.au, _AuState(unit.intensity, unit.intensity))
            st.fast += a_fast * (unit.intensity - st.fast)
            if st.active_since is None:
                st.slow += a_slow * (unit.intensity - st.slow)  # resting level adapts when idle
            rel = st.fast - st.slow
            if st.active_since is None and rel >= self._cfg.change_on:
                st.active_since = pts_s
                word = facs.intensity_word(unit.intensity)
                lines.append(self._line(pts_s, pts_s, f"{pts_s:.2f} s: {unit.name} (AU{unit.au}) "
                                        f"rose to {word}, {_side_word(unit.side)}"))
            elif st.active_since is not None and rel <= self._cfg.change_off:
                held = pts_s - st.active_since
                lines.append(self._line(st.active_since, pts_s, f"{pts_s:.2f} s: {unit.name} "
                                        f"(AU{unit.au}) faded after {held:.2f} s"))
                st.active_since = None
        return lines

    def _line(self, start: float, end: float, text: str) -> LogLine:
        return LogLine(self._camera, self._track, start, end, "change", text)


def _side_word(side: str) -> str:
    return {"L": "left side", "R": "right side"}.get(side, "both sides")
