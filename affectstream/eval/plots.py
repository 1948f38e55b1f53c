"""One timeline PNG per benchmark clip, drawn with OpenCV only (matplotlib is no dependency).

The picture answers "what did the spotters do on this clip" at a glance: the live spotter's
signal on top (the baseline's, if given, overlaid on its own scale), the injected truth below it,
then the live spotter's bursts (green when matched to a truth of the same kind, grey when on an
annotated natural expression of the footage, which is shaded grey in the truth lane, red else),
the baseline's intervals, and a time axis in seconds. Truth intervals are also shaded faintly
behind the signal so a peak can be read against the event that caused it.

Frame ``f`` of ``run.frames`` spans x from :func:`frame_x` ``(f)`` to ``frame_x(f + 1)``, so
intervals (0-based, inclusive) are drawn ``[onset, offset + 1)``.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from affectstream.errors import SinkError
from affectstream.eval.scoring import ClipRun, clip_counts, match_pairs

WIDTH, HEIGHT = 1200, 360
X0, X1 = 92, WIDTH - 24
"""Plot area left/right edges; the margin on the left holds the lane labels."""

LANES: dict[str, tuple[int, int]] = {
    "signal": (44, 176),
    "truth": (186, 208),
    "live": (216, 238),
    "baseline": (246, 268),
}
"""Vertical extent (top, bottom) of each lane, in pixels."""

AXIS_Y = 280

BG = (255, 255, 255)
INK = (40, 40, 40)
GRID = (225, 225, 225)
MICRO = (40, 140, 245)  # orange (BGR)
MACRO = (200, 120, 60)  # blue
MATCHED = (60, 170, 40)  # green
UNMATCHED = (50, 50, 220)  # red
BASELINE = (150, 110, 150)  # mauve
SIGNAL = (30, 30, 30)
BASELINE_SIGNAL = (180, 150, 180)
NATURAL = (150, 150, 150)  # grey: natural expressions of the footage

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_AA = cv2.LINE_AA
_TICK_STEPS_S = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)

Image = npt.NDArray[np.uint8]


def frame_x(frame: float, frames: int) -> int:
    """Left edge, in pixels, of ``frame`` on a time axis of ``frames`` frames."""
    return X0 + round(frame * (X1 - X0) / max(frames, 1))


def _text(img: Image, text: str, org: tuple[int, int], scale: float = 0.45,
          color: tuple[int, int, int] = INK, thickness: int = 1) -> None:  # fmt: skip
    cv2.putText(img, text, org, _FONT, scale, color, thickness, _AA)


def _text_w(text: str, scale: float, thickness: int = 1) -> int:
    return int(cv2.getTextSize(text, _FONT, scale, thickness)[0][0])


def _span(img: Image, frames: int, onset: int, offset: int, lane: tuple[int, int],
          color: tuple[int, int, int], alpha: float = 1.0) -> None:  # fmt: skip
    """Fill ``[onset, offset]`` in a lane, at least 2 px wide so one-frame events show."""
    x0 = max(X0, min(X1, frame_x(onset, frames)))
    x1 = max(X0, min(X1, frame_x(offset + 1, frames)))
    x1 = min(X1, max(x1, x0 + 2))
    y0, y1 = lane
    if alpha >= 1.0:
        cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
        return
    roi = img[y0 : y1 + 1, x0 : x1 + 1]
    tint = np.full_like(roi, color)
    roi[:] = cv2.addWeighted(roi, 1.0 - alpha, tint, alpha, 0.0)


def _polyline(
    img: Image, values: Sequence[float], frames: int, color: tuple[int, int, int], thickness: int
) -> tuple[float, float] | None:
    """Draw a signal auto-scaled into the signal lane; returns its (min, max), None if empty.

    Non-finite samples (frames without a face) break the line instead of dragging it to 0.
    """
    arr = np.asarray(values, np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return None
    lo = min(0.0, float(arr[finite].min()))
    hi = float(arr[finite].max())
    span = hi - lo if hi > lo else 1.0
    top, bottom = LANES["signal"][0] + 4, LANES["signal"][1] - 2
    xs = [frame_x(i + 0.5, frames) for i in range(len(arr))]
    ys = [bottom - (v - lo) / span * (bottom - top) if math.isfinite(v) else math.nan for v in arr]
    run: list[tuple[int, int]] = []
    for x, y in [*zip(xs, ys, strict=True), (0, math.nan)]:
        if math.isfinite(y) and X0 <= x <= X1:
            run.append((x, round(y)))
            continue
        if len(run) == 1:
            cv2.circle(img, run[0], 1, color, -1, _AA)
        elif run:
            cv2.polylines(img, [np.asarray(run, np.int32)], False, color, thickness, _AA)
        run = []
    return lo, hi


def _scale_labels(img: Image, labels: Sequence[tuple[str, tuple[int, int, int], int]]) -> None:
    """Y-scale labels right-aligned in the left margin at the signal lane's top (edge 0) or
    bottom (edge 1), like axis labels, so they never cover the curves; top ones stack down."""
    row = {0: 0, 1: 0}
    for text, color, edge in labels:
        y = LANES["signal"][0] + 10 + 15 * row[edge] if edge == 0 else LANES["signal"][1]
        row[edge] += 1
        _text(img, text, (X0 - 6 - _text_w(text, 0.4), y), 0.4, color)


def _axis(img: Image, frames: int, fps: float) -> None:
    duration = frames / fps
    step = next((s for s in _TICK_STEPS_S if duration / s <= 12), _TICK_STEPS_S[-1])
    cv2.line(img, (X0, AXIS_Y), (X1, AXIS_Y), INK, 1)
    for k in range(int(duration / step + 1e-9) + 1):
        t = k * step
        x = frame_x(t * fps, frames)
        cv2.line(img, (x, LANES["signal"][0]), (x, LANES["baseline"][1]), GRID, 1)
        cv2.line(img, (x, AXIS_Y), (x, AXIS_Y + 5), INK, 1)
        label = f"{t:g}"
        _text(img, label, (x - _text_w(label, 0.4) // 2, AXIS_Y + 19), 0.4)
    _text(img, "time (s)", (X0 - 80, AXIS_Y + 19), 0.4)


def _legend(img: Image, with_baseline_signal: bool) -> None:
    items: list[tuple[str, tuple[int, int, int], bool]] = [
        ("signal", SIGNAL, False),
        *([("baseline signal", BASELINE_SIGNAL, False)] if with_baseline_signal else []),
        ("micro truth", MICRO, True),
        ("macro truth", MACRO, True),
        ("live matched", MATCHED, True),
        ("live unmatched", UNMATCHED, True),
        ("natural expression", NATURAL, True),
        ("baseline", BASELINE, True),
    ]
    x, y = X0, HEIGHT - 18
    for label, color, box in items:
        if box:
            cv2.rectangle(img, (x, y - 10), (x + 16, y + 1), color, -1)
        else:
            cv2.line(img, (x, y - 4), (x + 16, y - 4), color, 2, _AA)
        _text(img, label, (x + 22, y), 0.42)
        x += 22 + _text_w(label, 0.42) + 22


def _title(img: Image, run: ClipRun, baseline_n: int) -> None:
    micro = sum(t.kind == "micro" for t in run.truth)
    if run.control:
        counts = f"control  live bursts {len(run.preds)}"
    else:
        tp, fp, fn = clip_counts(run)
        counts = (f"truth {len(run.truth)} ({micro} micro, {len(run.truth) - micro} macro)  "
                  f"live {len(run.preds)}: TP {tp} FP {fp} FN {fn}")  # fmt: skip
    text = f"{run.name} [{run.category}]  {counts}  baseline {baseline_n}"
    scale = 0.55
    while scale > 0.35 and _text_w(text, scale, 1) > WIDTH - 24:
        scale -= 0.025
    _text(img, text, (12, 24), scale, INK, 1)


def render_clip(run: ClipRun, signal: Sequence[float] | None,
                baseline: Sequence[tuple[int, int]] = (),
                baseline_signal: Sequence[float] | None = None) -> Image:  # fmt: skip
    """The timeline picture of one clip as a BGR image of ``HEIGHT × WIDTH``."""
    img = np.full((HEIGHT, WIDTH, 3), BG, np.uint8)
    frames = max(run.frames, 1)
    _title(img, run, len(baseline))
    for t in run.truth:  # faint bands behind the signal first, so the lines stay on top
        _span(img, frames, t.onset, t.offset, LANES["signal"], MICRO if t.kind == "micro"
              else MACRO, alpha=0.18)  # fmt: skip
    _axis(img, frames, run.fps)
    for name, (y0, y1) in LANES.items():
        cv2.rectangle(img, (X0, y0), (X1, y1), GRID, 1)
        _text(img, name, (10, (y0 + y1) // 2 + 5), 0.45)
    labels: list[tuple[str, tuple[int, int, int], int]] = []  # text, colour, lane edge
    if baseline_signal is not None:
        rng = _polyline(img, baseline_signal, frames, BASELINE_SIGNAL, 1)
        if rng is not None:
            labels.append((f"{rng[1]:.3g}", BASELINE, 0))
    if signal is not None and (rng := _polyline(img, signal, frames, SIGNAL, 1)) is not None:
        labels.insert(0, (f"{rng[1]:.3g}", INK, 0))
        if rng[0] < 0:
            labels.append((f"{rng[0]:.3g}", INK, 1))
    _scale_labels(img, labels)
    for onset, offset in run.natural:  # under the truth, which may ride on one
        _span(img, frames, onset, offset, LANES["truth"], NATURAL, alpha=0.35)
    for t in run.truth:
        _span(img, frames, t.onset, t.offset, LANES["truth"], MICRO if t.kind == "micro"
              else MACRO)  # fmt: skip
    matched = {id(p) for p, _ in match_pairs(run)}
    for p in run.preds:
        colour = (MATCHED if id(p) in matched
                  else NATURAL if run.on_natural(p) else UNMATCHED)  # fmt: skip
        _span(img, frames, p.onset, p.offset, LANES["live"], colour)
    for onset, offset in baseline:
        _span(img, frames, int(onset), int(offset), LANES["baseline"], BASELINE)
    _legend(img, baseline_signal is not None)
    return img


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def plot_clip(path: Path, run: ClipRun, signal: Sequence[float] | None,
              baseline: Sequence[tuple[int, int]] = (),
              baseline_signal: Sequence[float] | None = None) -> None:  # fmt: skip
    """Render :func:`render_clip` and write it to ``path`` atomically (temp file, then replace).

    The image format follows ``path``'s suffix (``.png`` normally). Raises :class:`SinkError`.
    """
    img = render_clip(run, signal, baseline, baseline_signal)
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = bool(cv2.imwrite(str(tmp), img))
    except (OSError, cv2.error) as exc:
        _discard(tmp)
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise SinkError(f"cannot write plot {path}: {msg}; check its folder and suffix") from exc
    if not ok:
        _discard(tmp)
        raise SinkError(f"cannot write plot {path}; check that its folder is writable")
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise SinkError(f"cannot write plot {path}: {exc.strerror or exc}") from exc
