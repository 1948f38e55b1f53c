"""The built-in demo clip: a real face photo animated with known synthetic expressions.

scikit-image's astronaut photo is placed in a webcam-like frame, given slow head motion, mild
brightness drift and sensor noise, and a schedule of micro and macro expressions is warped into
it (:mod:`affectstream.eval.inject`). The ground truth goes into a JSON sidecar beside the video,
so ``affectstream demo`` and the spotting benchmark can score themselves offline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from affectstream.detectors.landmarks import native_stderr_silenced
from affectstream.errors import ConfigError, ModelError, SinkError, SourceError
from affectstream.eval.inject import (
    ACTIONS,
    InjectedExpression,
    classify_kind,
    inter_ocular,
    strengths,
    warp_expression,
)

SCHEMA = "affectstream.democlip/1"

# Head motion limits (DESIGN asks for a webcam-like, slow sway) and its frequency band: a few
# tenths of a pixel per frame, far slower than a micro-expression's onset.
MAX_SHIFT_PX = 10.0
MAX_ROT_DEG = 3.0
MAX_SCALE = 0.03
_MOTION_HZ = (0.03, 0.15)
MAX_GAIN = 0.015
"""Brightness drift (relative), slow like auto-exposure hunting."""
NOISE_SIGMA = 2.0
FACE_HEIGHT = 0.47
"""Face height (landmark 10 to 152) as a fraction of the frame height: ≈170 px at 360 p."""

# Schedule rules (per 20 s: 5 micro, 3 macro).
EVENTS_PER_20S = 8
MACRO_SHARE = 3 / 8
MICRO_S = (0.2, 0.45)
MACRO_S = (0.8, 2.0)
MICRO_AMP = (0.03, 0.08)
MACRO_AMP = (0.10, 0.16)
CALM_GAP_S = 1.2
LEAD_IN_S = 1.5
TAIL_S = 0.5
_MACRO_ACTIONS = tuple(a for a in ACTIONS if ACTIONS[a].sigma >= 0.1)
"""Actions whose warp is wide enough for macro amplitudes without folding the image."""

Image = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]
FloatArray32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class DemoClip:
    """A demo video and its ground truth (frames are 0-based and inclusive)."""

    path: Path
    fps: float
    frames: int
    width: int
    height: int
    truth: tuple[InjectedExpression, ...]


def _durations(kinds: Sequence[str], fps: float, rng: np.random.Generator) -> list[int]:
    """Onset→offset length in frames per event (at least 2 so onset < apex < offset)."""
    out = []
    for kind in kinds:
        lo, hi = MICRO_S if kind == "micro" else MACRO_S
        out.append(max(2, round(float(rng.uniform(lo, hi)) * fps)))
    return out


def _pick_actions(kinds: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Cycle through a shuffled action list so every action shows up before any repeats."""
    order = [str(a) for a in rng.permutation(sorted(ACTIONS))]
    picked: list[str] = []
    for kind in kinds:
        allowed = _MACRO_ACTIONS if kind == "macro" else tuple(ACTIONS)
        choice = next(a for a in order if a in allowed)
        order.remove(choice)
        order.append(choice)
        picked.append(choice)
    return picked


def default_schedule(seconds: float, fps: float, seed: int) -> tuple[InjectedExpression, ...]:
    """About 8 expressions per 20 s (≈5 micro, ≈3 macro), calm-separated, none in the lead-in.

    Events that do not fit the clip (short clips) are dropped, macro first.
    """
    if seconds <= 0 or fps <= 0:
        raise ConfigError(f"seconds={seconds}, fps={fps}; both must be positive")
    rng = np.random.default_rng([seed, 0])
    total = max(1, round(EVENTS_PER_20S * seconds / 20.0))
    n_macro = round(total * MACRO_SHARE)
    kinds = ["macro"] * n_macro + ["micro"] * (total - n_macro)
    kinds = [str(k) for k in rng.permutation(kinds)]
    durations = _durations(kinds, fps, rng)
    gap, start = math.ceil(CALM_GAP_S * fps), math.ceil(LEAD_IN_S * fps)
    last = round(seconds * fps) - 1 - math.ceil(TAIL_S * fps)
    while kinds and start + sum(durations) + gap * (len(kinds) - 1) > last:
        drop = kinds.index("macro") if "macro" in kinds else 0
        del kinds[drop], durations[drop]
    if not kinds:
        return ()
    slack = last - start - sum(durations) - gap * (len(kinds) - 1)
    extra = np.floor(rng.dirichlet(np.ones(len(kinds) + 1)) * slack).astype(int)
    actions = _pick_actions(kinds, rng)
    events, onset = [], start
    for i, (kind, dur, action) in enumerate(zip(kinds, durations, actions, strict=True)):
        onset += int(extra[i])
        apex = onset + min(dur - 1, max(1, round(float(rng.uniform(0.3, 0.5)) * dur)))
        amp_range = MICRO_AMP if kind == "micro" else MACRO_AMP
        events.append(InjectedExpression(
            action=action, onset_frame=onset, apex_frame=apex, offset_frame=onset + dur,
            amplitude=round(float(rng.uniform(*amp_range)), 4),
            kind=classify_kind(onset, onset + dur, fps),
        ))  # fmt: skip
        onset += dur + gap
    return tuple(events)


def still_landmarks(rgb: Image, landmarker_model: Path) -> npt.NDArray[np.float32]:
    """Face-mesh landmarks (478, 2) in pixels of one RGB still, from the MediaPipe landmarker."""
    if not Path(landmarker_model).is_file():
        raise ModelError(
            f"face landmarker model not found at {landmarker_model}; "
            "run `affectstream models fetch face-landmarker`"
        )
    import mediapipe as mp  # heavy import, only needed when building a clip
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(landmarker_model)),
        running_mode=vision.RunningMode.IMAGE,
        num_faces=1,
        output_face_blendshapes=True,
    )
    with native_stderr_silenced():  # MediaPipe's graph set-up chatter on fd 2
        landmarker = vision.FaceLandmarker.create_from_options(options)
        try:
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
            result = landmarker.detect(image)
        finally:
            landmarker.close()  # its destructor crashes at interpreter exit
    if not result.face_landmarks:
        raise SourceError("no face found in the still image; use a photo with one frontal face")
    h, w = rgb.shape[:2]
    pts = [(p.x * w, p.y * h) for p in result.face_landmarks[0]]
    return np.asarray(pts, dtype=np.float32)


def _smooth_wave(n: int, fps: float, limit: float, rng: np.random.Generator) -> FloatArray:
    """A sum of three slow sinusoids, scaled so its largest excursion equals ``limit``."""
    t = np.arange(n) / fps
    wave = np.zeros(n)
    for _ in range(3):
        freq = rng.uniform(*_MOTION_HZ)
        wave += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    peak = float(np.abs(wave).max()) if n else 0.0
    return wave * (limit / peak) if peak > 0 else wave


class DemoScene:
    """Renders any frame of the demo clip on demand (deterministic per seed and frame index).

    Exposes what a detector never sees — the head transform and the true landmark positions —
    so tests and the benchmark can check the clip itself.
    """

    def __init__(
        self,
        still_rgb: Image,
        landmarks_px: npt.NDArray[np.float32],
        truth: Sequence[InjectedExpression],
        *,
        frames: int,
        fps: float,
        size: tuple[int, int] = (640, 360),
        seed: int = 0,
    ) -> None:
        self.still_bgr: Image = np.ascontiguousarray(
            cv2.cvtColor(still_rgb, cv2.COLOR_RGB2BGR), dtype=np.uint8
        )
        self.landmarks_src = np.asarray(landmarks_px, np.float32)
        self.truth = tuple(truth)
        self.frames, self.fps, self.size, self.seed = frames, fps, size, seed
        rng = np.random.default_rng([seed, 1])
        self._tx, self._ty = (_smooth_wave(frames, fps, MAX_SHIFT_PX, rng) for _ in range(2))
        self._rot = _smooth_wave(frames, fps, MAX_ROT_DEG, rng)
        self._scale = 1.0 + _smooth_wave(frames, fps, MAX_SCALE, rng)
        self._gain = 1.0 + _smooth_wave(frames, fps, MAX_GAIN, rng)
        top, chin = self.landmarks_src[10], self.landmarks_src[152]
        self._center_src = (top + chin) / 2.0
        self._base_scale = FACE_HEIGHT * size[1] / float(np.hypot(*(chin - top)))

    def transform(self, i: int) -> npt.NDArray[np.float64]:
        """The 2×3 similarity mapping still pixels to frame ``i`` pixels (head pose)."""
        w, h = self.size
        scale = self._base_scale * self._scale[i]
        m = cv2.getRotationMatrix2D(
            (float(self._center_src[0]), float(self._center_src[1])), float(self._rot[i]), scale
        )
        # Move the face centre to where a webcam user sits: centred, a bit above the middle.
        m[0, 2] += w / 2 + self._tx[i] - self._center_src[0]
        m[1, 2] += FACE_HEIGHT * h + self._ty[i] - self._center_src[1]
        return np.asarray(m, np.float64)

    def landmarks(self, i: int) -> npt.NDArray[np.float32]:
        """Neutral-face landmarks in frame ``i`` pixels (expressions not included)."""
        m = self.transform(i)
        return (self.landmarks_src @ m[:, :2].T + m[:, 2]).astype(np.float32)

    def inter_ocular_px(self, i: int = 0) -> float:
        return inter_ocular(self.landmarks(i))

    def strengths(self, i: int) -> dict[str, float]:
        """Action → strength (IOD fraction) active at frame ``i``."""
        return strengths(i, self.truth)

    def frame(self, i: int, *, noise: bool = True) -> Image:
        """Frame ``i`` (BGR): expression warp on the still, then head pose, gain and noise."""
        if not 0 <= i < self.frames:
            raise ConfigError(f"frame {i} out of range; the clip has {self.frames} frames")
        face = warp_expression(self.still_bgr, self.landmarks_src, self.strengths(i))
        img = cv2.warpAffine(
            face, self.transform(i), self.size, flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT101,
        )  # fmt: skip
        out: FloatArray32 = np.asarray(img, np.float32)
        out *= np.float32(self._gain[i])
        if noise:
            rng = np.random.default_rng([self.seed, 2, i])
            out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(NOISE_SIGMA)
        out += np.float32(0.5)  # round, not truncate, on the cast below
        frame: Image = np.clip(out, 0, 255).astype(np.uint8)
        return frame


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An mp4v writer for a synthetic clip (the demo's, the benchmark's)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise SinkError(f"cannot write video {path}; check the folder is writable and ends in .mp4")
    return writer


def _sidecar(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def _write_sidecar(clip: DemoClip, seed: int, iod_px: float) -> None:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "video": clip.path.name,
        "fps": clip.fps,
        "frames": clip.frames,
        "width": clip.width,
        "height": clip.height,
        "seed": seed,
        "source": "skimage.data.astronaut",
        "inter_ocular_px": round(iod_px, 2),
        "truth": [e.to_dict() for e in clip.truth],
    }
    _sidecar(clip.path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def astronaut() -> Image:
    """scikit-image's astronaut photo, the demo's face: 512×512×3 uint8 RGB."""
    from skimage import data  # imported here: loading the photo is only needed for a build

    # skimage ships no type hints
    return np.ascontiguousarray(data.astronaut(), dtype=np.uint8)  # type: ignore[no-untyped-call]


def build_demo_clip(
    path: Path,
    landmarker_model: Path,
    *,
    seconds: float = 20.0,
    fps: float = 30.0,
    size: tuple[int, int] = (640, 360),
    seed: int = 0,
) -> DemoClip:
    """Render the demo clip to ``path`` (mp4v) and its truth to ``path.with_suffix('.json')``."""
    path = Path(path)
    frames = round(seconds * fps)
    if frames < 2 or size[0] < 64 or size[1] < 64:
        raise ConfigError(f"clip of {frames} frames at {size} is too small; use ≥2 frames, ≥64 px")
    still = astronaut()
    landmarks = still_landmarks(still, landmarker_model)
    truth = default_schedule(seconds, fps, seed)
    scene = DemoScene(still, landmarks, truth, frames=frames, fps=fps, size=size, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = open_writer(path, fps, size)
    try:
        for i in range(frames):
            writer.write(scene.frame(i))
    finally:
        writer.release()
    clip = DemoClip(path, float(fps), frames, size[0], size[1], truth)
    _write_sidecar(clip, seed, scene.inter_ocular_px())
    return clip


def load_demo_truth(path: Path) -> DemoClip:
    """Read the clip's sidecar (``path.with_suffix('.json')``) back into a :class:`DemoClip`."""
    sidecar = _sidecar(Path(path))
    try:
        doc = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourceError(f"no ground truth at {sidecar}; rebuild the demo clip") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"cannot read ground truth {sidecar} ({exc}); rebuild it") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise SourceError(f"{sidecar} is not an {SCHEMA} sidecar; rebuild the demo clip")
    try:
        truth = tuple(InjectedExpression.from_dict(e) for e in doc["truth"])
        return DemoClip(
            Path(path), float(doc["fps"]), int(doc["frames"]), int(doc["width"]),
            int(doc["height"]), truth,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"{sidecar} is missing {exc}; rebuild the demo clip") from exc
