"""Frozen dataclasses passed between stages (DESIGN §3).

Images are numpy arrays (BGR, uint8, H×W×3) and are never copied by these types; a stage that
keeps an image beyond the current frame must own it (the capture thread hands out fresh arrays).
Times: ``*_s`` are seconds from the stream start (container timestamps when available); ``ts`` is
wall-clock epoch seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]

BurstKind = Literal["micro", "macro"]
TrackEventType = Literal["new", "end"]
Side = Literal["L", "R", "both"]
LogKind = Literal["burst", "change", "summary"]
KeyframeReason = Literal["apex", "periodic"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame."""

    index: int
    """0-based index of the frame since the stream started (keeps increasing across loops)."""
    pts_s: float
    """Stream time in seconds (container timestamp when the source has one)."""
    ts: float
    """Wall-clock time (epoch seconds) when the frame was captured."""
    image: Image


@dataclass(frozen=True, slots=True)
class Detections:
    """Face detections of one frame: the one canonical detections type (supervision-style).

    ``xyxy`` is (N, 4) float32 pixel boxes; ``scores`` (N,); ``keypoints`` (N, 5, 2): eyes (L, R
    from the viewer's side), nose, mouth corners.
    """

    xyxy: FloatArray
    scores: FloatArray
    keypoints: FloatArray

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            keypoints=np.zeros((0, 5, 2), np.float32),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def scaled(self, sx: float, sy: float) -> Detections:
        """Boxes and keypoints scaled from detector-input to frame pixels."""
        scale = np.array([sx, sy, sx, sy], np.float32)
        return Detections(
            xyxy=(self.xyxy * scale).astype(np.float32),
            scores=self.scores,
            keypoints=(self.keypoints * np.array([sx, sy], np.float32)).astype(np.float32),
        )


@dataclass(frozen=True, slots=True)
class ActionUnit:
    """One FACS action unit observed in a burst or a slow change."""

    au: int
    name: str
    side: Side
    intensity: float
    """0–1; the text says weak (<0.3), moderate (<0.6) or strong."""

    def to_dict(self) -> dict[str, object]:
        return {"au": self.au, "name": self.name, "side": self.side,
                "intensity": round(self.intensity, 3)}


@dataclass(frozen=True, slots=True)
class Face:
    """A tracked face in one frame with its landmarks and blendshapes (when the landmarker ran)."""

    track_id: int
    frame_index: int
    pts_s: float
    bbox: tuple[float, float, float, float]
    score: float
    landmarks: FloatArray | None = None
    """(478, 3) MediaPipe landmarks in frame pixels (z in the same scale), or None."""
    blendshapes: dict[str, float] = field(default_factory=dict)
    head_pose: tuple[float, float, float] | None = None
    """(yaw, pitch, roll) in degrees."""
    action_units: tuple[ActionUnit, ...] = ()
    """Every AU of the blendshape table at its current intensity (strongest first), computed
    once per frame for the slow-change describer and the FACS emotion rules."""
    expression: dict[str, float] | None = None
    """The specialist classifier's probabilities over the run's labels, on the frames it ran
    (every ``specialist.every_n_frames`` and on keyframes); None otherwise."""


@dataclass(frozen=True, slots=True)
class Burst:
    """A spotted facial-expression burst (micro ≤ 0.5 s, macro otherwise)."""

    id: str
    camera: str
    track_id: int
    onset_frame: int
    apex_frame: int
    offset_frame: int
    onset_s: float
    apex_s: float
    offset_s: float
    kind: BurstKind
    regions: tuple[str, ...]
    action_units: tuple[ActionUnit, ...]
    peak_motion: float
    text: str
    ts: float
    speaking: bool = False
    """The face was speaking at the apex (the spotter's speaking state): a mouth burst may be
    speech rather than an expression."""

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a track's rolling text log."""

    camera: str
    track_id: int
    start_s: float
    end_s: float
    kind: LogKind
    text: str
    burst_id: str | None = None


@dataclass(frozen=True, slots=True)
class Keyframe:
    """An aligned face crop kept for the VLM stage."""

    track_id: int
    frame_index: int
    pts_s: float
    reason: KeyframeReason
    image: Image
    burst_id: str | None = None
    expression: dict[str, float] | None = None
    """The specialist classifier's probabilities for this crop, when one is enabled."""


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """A track appeared (``new``) or ended (``end``)."""

    type: TrackEventType
    camera: str
    track_id: int
    frame_index: int
    pts_s: float
    bbox: tuple[float, float, float, float]
    ts: float
    first_s: float
    last_s: float


@dataclass(frozen=True, slots=True)
class EmotionUpdate:
    """An emotion estimate for one track over a window (VLM, specialist or FACS rules)."""

    camera: str
    track_id: int
    ts: float
    window_start_s: float
    window_end_s: float
    label: str
    probs: dict[str, float]
    valence: float
    arousal: float
    confidence: float
    rationale: str
    source: str
    """Which estimator made it: the built-ins are ``vlm``, ``specialist`` and ``facs``."""
    model: str
    calibrated: bool
    keyframes_s: tuple[float, ...]
    bursts: tuple[str, ...]
    latency_ms: float
    prompt_tokens: int


STAGES = ("detect", "track", "landmarks", "align", "classify", "spot", "describe")


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything perception produced for one frame (the final flush has no stages), handed to
    the emotion stage and the sinks."""

    frame_index: int
    pts_s: float
    ts: float
    faces: tuple[Face, ...] = ()
    bursts: tuple[Burst, ...] = ()
    track_events: tuple[TrackEvent, ...] = ()
    log_lines: tuple[LogLine, ...] = ()
    keyframes: tuple[Keyframe, ...] = ()
    stages_ms: dict[str, float] = field(default_factory=dict)


FrameTap = Callable[[str, Frame | None, FrameResult], None]
"""Called in a camera's perception worker thread with its id, each frame and that frame's
result, and once more at the end of the stream with ``None`` and the final flush (the bursts
and track ends perception still held). It is on perception's path, so it must return at once:
keep a reference or drop the frame, never encode or wait there. A tap that raises is logged and
removed; perception goes on."""
