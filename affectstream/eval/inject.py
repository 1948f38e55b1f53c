"""Landmark-anchored synthetic facial expressions for the spotting benchmark (DESIGN §9).

An *action* moves a few MediaPipe face-mesh landmarks along fixed directions in a face-relative
frame; :func:`warp_expression` turns those landmark moves into a smooth displacement field and
warps the image with it. Amplitudes are fractions of the inter-ocular distance (IOD, outer eye
corners 33↔263) so the same action looks the same at any face size.

Face frame: ``x`` runs from landmark 33 (the subject's right outer eye corner, on the viewer's
left) to landmark 263; ``y`` is ``x`` turned 90° towards the chin. "Up" is therefore ``-y`` and,
for a point on the viewer's left half, "outwards" is ``-x``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from affectstream.errors import ConfigError

ExpressionKind = Literal["micro", "macro"]
FloatArray = npt.NDArray[np.float32]

MICRO_MAX_S = 0.5
"""Longest micro-expression (MEGC convention); anything longer is macro."""

EYE_OUTER = (33, 263)
"""Outer eye corners that define the face frame and the inter-ocular distance."""

_ROI_SIGMAS = 3.0
"""The field is computed within this many sigmas of a moved landmark; beyond it w < 1.2 %."""


@dataclass(frozen=True, slots=True)
class LandmarkMove:
    """One landmark's displacement per unit of action strength, in the face frame (IOD units)."""

    index: int
    dx: float
    dy: float


@dataclass(frozen=True, slots=True)
class Action:
    """A synthetic facial action: which landmarks move, where to, and how smooth the warp is."""

    name: str
    au: str
    description: str
    sigma: float
    """Gaussian radius of each landmark's influence, as a fraction of the IOD."""
    moves: tuple[LandmarkMove, ...]

    @property
    def primary(self) -> tuple[int, ...]:
        """Landmarks that move by the full amplitude (the ones a check should look at)."""
        return tuple(m.index for m in self.moves if math.hypot(m.dx, m.dy) >= 0.99)


def _mirror(moves: tuple[LandmarkMove, ...], pairs: Mapping[int, int]) -> tuple[LandmarkMove, ...]:
    """Add the other side of the face: same moves with the face-frame x flipped."""
    return moves + tuple(LandmarkMove(pairs[m.index], -m.dx, m.dy) for m in moves)


def _group(indices: tuple[int, ...], dx: float, dy: float) -> tuple[LandmarkMove, ...]:
    return tuple(LandmarkMove(i, dx, dy) for i in indices)


def _unit(dx: float, dy: float, scale: float = 1.0) -> tuple[float, float]:
    norm = math.hypot(dx, dy)
    return dx / norm * scale, dy / norm * scale


# Left (viewer's) → right landmark pairs of the face mesh used below.
_PAIRS = {
    61: 291, 185: 409, 146: 375, 40: 270, 91: 321, 39: 269, 37: 267, 82: 312,
    70: 300, 63: 293, 105: 334, 66: 296, 107: 336, 46: 276, 53: 283, 52: 282, 65: 295, 55: 285,
    145: 374, 144: 373, 153: 380, 163: 390, 154: 381, 159: 386,
    205: 425, 50: 280, 187: 411, 123: 352, 117: 346,
}  # fmt: skip

_SMILE = _unit(-0.55, -0.85)
_DEPRESS = _unit(-0.25, 0.95)
_BROW_IN = _unit(0.45, 0.9)

ACTIONS: Mapping[str, Action] = {
    a.name: a
    for a in (
        Action(
            "smile", "AU12", "lip corners pulled up and outwards", 0.16,
            _mirror(
                _group((61,), *_SMILE)
                + _group((185, 146), *_unit(*_SMILE, 0.6))
                + _group((40, 91), *_unit(*_SMILE, 0.35))
                + _group((205,), 0.0, -0.3),
                _PAIRS,
            ),
        ),
        Action(
            "lip_corner_depress", "AU15", "lip corners pulled down", 0.15,
            _mirror(
                _group((61,), *_DEPRESS) + _group((146, 185), *_unit(*_DEPRESS, 0.55)),
                _PAIRS,
            ),
        ),
        Action(
            "upper_lip_raise", "AU10", "upper lip raised", 0.12,
            _group((0,), 0.0, -1.0)
            + _mirror(_group((37,), 0.0, -1.0) + _group((39,), 0.0, -0.8)
                      + _group((40,), 0.0, -0.5), _PAIRS),
        ),
        Action(
            "brow_raise", "AU1+AU2", "inner and outer brows raised", 0.11,
            _mirror(_group((70, 63, 105, 66, 107, 46, 53, 52, 65, 55), 0.0, -1.0), _PAIRS),
        ),
        Action(
            "brow_lower", "AU4", "inner brows lowered and drawn together", 0.11,
            _mirror(
                _group((107, 66, 55, 65), *_BROW_IN) + _group((105, 52), *_unit(0.2, 0.6, 0.6)),
                _PAIRS,
            ),
        ),
        Action(
            "eye_squint", "AU7", "lower eyelids raised, eyes narrowed", 0.06,
            _mirror(
                _group((145, 144, 153), 0.0, -1.0) + _group((163, 154), 0.0, -0.6)
                + _group((159,), 0.0, 0.3),
                _PAIRS,
            ),
        ),
        Action(
            "cheek_raise", "AU6", "cheeks raised towards the eyes", 0.16,
            _mirror(_group((205, 50, 187, 123, 117), 0.0, -1.0), _PAIRS),
        ),
    )
}  # fmt: skip
"""Every synthetic action by name."""


def classify_kind(onset_frame: int, offset_frame: int, fps: float) -> ExpressionKind:
    """``micro`` when the event lasts at most 0.5 s at ``fps`` (duration = offset − onset)."""
    return "micro" if (offset_frame - onset_frame) / fps <= MICRO_MAX_S + 1e-9 else "macro"


@dataclass(frozen=True)
class InjectedExpression:
    """One synthetic expression: 0-based inclusive frames, amplitude at the apex (IOD fraction)."""

    action: str
    onset_frame: int
    apex_frame: int
    offset_frame: int
    amplitude: float
    kind: ExpressionKind

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(
                f"unknown action {self.action!r}; use one of {', '.join(sorted(ACTIONS))}"
            )
        if not 0 <= self.onset_frame < self.apex_frame < self.offset_frame:
            raise ConfigError(
                f"expression frames {self.onset_frame}/{self.apex_frame}/{self.offset_frame} "
                "out of order; need 0 <= onset < apex < offset"
            )
        if not 0.0 < self.amplitude <= 0.5:
            raise ConfigError(
                f"amplitude {self.amplitude} out of range; use a fraction of the IOD in (0, 0.5]"
            )
        if self.kind not in ("micro", "macro"):
            raise ConfigError(f"kind {self.kind!r} is invalid; use 'micro' or 'macro'")

    def interval(self) -> tuple[int, int]:
        """The inclusive (onset, offset) frame interval, as the spotting metrics take it."""
        return self.onset_frame, self.offset_frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "onset_frame": self.onset_frame,
            "apex_frame": self.apex_frame,
            "offset_frame": self.offset_frame,
            "amplitude": self.amplitude,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InjectedExpression:
        try:
            return cls(
                action=str(data["action"]),
                onset_frame=int(data["onset_frame"]),
                apex_frame=int(data["apex_frame"]),
                offset_frame=int(data["offset_frame"]),
                amplitude=float(data["amplitude"]),
                kind=data["kind"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"bad injected-expression record ({exc!r}); rebuild the demo clip"
            ) from exc


def profile(frame: int, e: InjectedExpression) -> float:
    """Intensity of ``e`` at ``frame``: raised-cosine rise onset→apex, fall apex→offset.

    0 at and outside onset/offset, 1 at the apex; the cosine keeps velocity continuous so the
    event has no artificial step in optical flow.
    """
    if frame <= e.onset_frame or frame >= e.offset_frame:
        return 0.0
    if frame <= e.apex_frame:
        t = (frame - e.onset_frame) / (e.apex_frame - e.onset_frame)
    else:
        t = (e.offset_frame - frame) / (e.offset_frame - e.apex_frame)
    return 0.5 - 0.5 * math.cos(math.pi * t)


def strengths(frame: int, truth: Sequence[InjectedExpression]) -> dict[str, float]:
    """Action → strength (IOD fraction) of the expressions active at ``frame``."""
    out: dict[str, float] = {}
    for e in truth:
        level = profile(frame, e)
        if level > 0.0:
            out[e.action] = out.get(e.action, 0.0) + level * e.amplitude
    return out


def inter_ocular(landmarks_px: npt.NDArray[Any]) -> float:
    """Distance between the outer eye corners in pixels."""
    a, b = landmarks_px[EYE_OUTER[0]], landmarks_px[EYE_OUTER[1]]
    return float(math.hypot(float(b[0] - a[0]), float(b[1] - a[1])))


def landmark_displacements(
    landmarks_px: npt.NDArray[Any], actions: Mapping[str, float]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Control points of the warp: positions (N,2), pixel displacements (N,2), sigmas (N,)."""
    pts = np.asarray(landmarks_px, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[0] < 468 or pts.shape[1] < 2:
        raise ConfigError(
            f"landmarks have shape {pts.shape}; pass the (478, 2) MediaPipe face-mesh pixels"
        )
    iod = inter_ocular(pts)
    if iod < 1.0:
        raise ConfigError("inter-ocular distance is under 1 px; pass landmarks in pixels")
    ex = (pts[EYE_OUTER[1], :2] - pts[EYE_OUTER[0], :2]) / iod
    ey = np.array([-ex[1], ex[0]], dtype=np.float32)
    centers: list[FloatArray] = []
    disps: list[FloatArray] = []
    sigmas: list[float] = []
    for name, strength in actions.items():
        action = ACTIONS.get(name)
        if action is None:
            raise ConfigError(f"unknown action {name!r}; use one of {', '.join(sorted(ACTIONS))}")
        if strength == 0.0:
            continue
        for m in action.moves:
            centers.append(pts[m.index, :2])
            disps.append((strength * iod * (m.dx * ex + m.dy * ey)).astype(np.float32))
            sigmas.append(action.sigma * iod)
    if not centers:
        empty = np.zeros((0, 2), np.float32)
        return empty, empty, np.zeros(0, np.float32)
    return np.stack(centers), np.stack(disps), np.asarray(sigmas, np.float32)


def displacement_field(
    centers: FloatArray, disps: FloatArray, sigmas: FloatArray, roi: tuple[int, int, int, int]
) -> tuple[FloatArray, FloatArray]:
    """Smooth (dx, dy) over ``roi`` = (x0, y0, x1, y1) from Gaussian landmark weights.

    The weighted sum is divided by ``max(1, Σw)``: a lone landmark moves by exactly its
    displacement, and a dense cluster (a whole brow) moves as one piece instead of adding up.
    Gaussians are separable, so each sum is one (h×N)·(N×w) matrix product.
    """
    x0, y0, x1, y1 = roi
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)
    inv = (-0.5 / (sigmas * sigmas))[:, None]
    gx = np.exp(inv * (xs[None, :] - centers[:, 0:1]) ** 2)  # (N, w)
    gy = np.exp(inv * (ys[None, :] - centers[:, 1:2]) ** 2)  # (N, h)
    total = gy.T @ gx
    norm = np.maximum(total, 1.0)
    dx = (gy.T * disps[:, 0]) @ gx / norm
    dy = (gy.T * disps[:, 1]) @ gx / norm
    return dx.astype(np.float32), dy.astype(np.float32)


def _roi(
    centers: FloatArray, sigmas: FloatArray, shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    pad = _ROI_SIGMAS * sigmas[:, None]
    lo = np.floor((centers - pad).min(axis=0)).astype(int)
    hi = np.ceil((centers + pad).max(axis=0)).astype(int) + 1
    h, w = shape[:2]
    return max(0, lo[0]), max(0, lo[1]), min(w, hi[0]), min(h, hi[1])


def warp_expression(
    image: npt.NDArray[np.uint8], landmarks_px: npt.NDArray[Any], actions: Mapping[str, float]
) -> npt.NDArray[np.uint8]:
    """Return a copy of ``image`` with ``actions`` applied (action → strength, IOD fraction).

    Strength is ``profile × amplitude``: the primary landmarks move by ``strength × IOD`` px.
    Backward warp ``dst(x) = src(x − d(x))``, exact to first order for the few-pixel moves used
    here; pixels more than three sigmas from every moved landmark are returned untouched.
    """
    out = image.copy()
    centers, disps, sigmas = landmark_displacements(landmarks_px, actions)
    if centers.shape[0] == 0:
        return out
    x0, y0, x1, y1 = _roi(centers, sigmas, image.shape)
    if x1 <= x0 or y1 <= y0:
        return out
    dx, dy = displacement_field(centers, disps, sigmas, (x0, y0, x1, y1))
    grid_x, grid_y = np.meshgrid(
        np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32)
    )
    # remap samples the whole source image, so the ROI edge sees real neighbours, not a border.
    out[y0:y1, x0:x1] = cv2.remap(
        image, grid_x - dx, grid_y - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out
