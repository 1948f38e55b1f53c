"""The text of a VLM request: log lines with their times, the summary of older lines, the
marker and motion text after each keyframe, captions with the lines kept beside them, and the
keyframe images as RGB crops."""

from __future__ import annotations

import re
from collections import Counter

import cv2
import numpy as np

from affectstream.labels import top_labels
from affectstream.types import Image, Keyframe, LogLine

_AU = re.compile(r"AU(\d+)")


def to_rgb(image: Image, max_side: int) -> Image:
    """A new RGB uint8 copy of a BGR (or gray, BGRA) crop, longest side ≤ ``max_side``."""
    if max_side < 1:
        raise ValueError(f"max_side must be ≥ 1, got {max_side}")
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"expected a non-empty uint8 image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    channels = 1 if image.ndim == 2 else image.shape[2]
    code = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}.get(channels)
    if code is None:
        raise ValueError(f"expected 1, 3 or 4 channels, got {channels}")
    out: Image = np.ascontiguousarray(cv2.cvtColor(image, code))
    return out


def line_text(line: LogLine) -> str:
    """The log line with its times (describer lines already start with them)."""
    if line.text.startswith(f"{line.start_s:.2f}"):
        return line.text
    if line.end_s - line.start_s < 0.005:
        return f"{line.start_s:.2f} s: {line.text}"
    return f"{line.start_s:.2f}–{line.end_s:.2f} s: {line.text}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_text(summary: LogLine | None, older: list[LogLine], start_s: float) -> str:
    """Older log lines folded: the rolling log's summary line plus a count of the rest."""
    if summary is None and not older:
        return "Nothing logged before it."
    parts: list[str] = []
    if summary is not None:
        text = summary.text.rstrip(". ")
        parts.append(f"{text[:1].upper()}{text[1:]}.")
    if older:
        kinds: Counter[str] = Counter(line.kind for line in older)
        aus = Counter(f"AU{n}" for line in older for n in _AU.findall(line.text))
        top = ", ".join(f"{au}×{n}" if n > 1 else au for au, n in aus.most_common(4))
        counts = ", ".join(plural(kinds[kind], word) for kind, word in
                           (("burst", "burst"), ("change", "slow change")) if kinds[kind])
        lead = "Then" if summary is not None else "Earlier"
        parts.append(f"{lead} up to {start_s:.2f} s: {counts or plural(len(older), 'line')}"
                     + (f"; {top}." if top else "."))
    return " ".join(parts)


def marker(kf: Keyframe) -> str:
    text = f"↑ {kf.pts_s:.2f} s" + (", burst apex" if kf.reason == "apex" else "")
    if kf.expression:  # the specialist's view of this very frame (specialist.to_vlm)
        text += f" (expression classifier on this frame: {top_labels(kf.expression)})"
    return text


def segment(kf: Keyframe, until_s: float, lines: list[LogLine], last: bool) -> str:
    if not lines:
        if until_s <= kf.pts_s:
            return f"{marker(kf)}."
        return f"{marker(kf)}; nothing new logged until {'end ' if last else ''}{until_s:.2f} s."
    body = "\n".join(line_text(line) for line in lines)
    return f"{marker(kf)}. Motion until {'end ' if last else ''}{until_s:.2f} s:\n{body}"


def captioned(kf: Keyframe, until_s: float, caption: str, frames: int,
              lines: list[LogLine]) -> str:
    """A gap's text: its ``caption`` (of ``frames`` frames) first, then the log ``lines`` kept
    beside it."""
    seen = plural(frames, "frame")
    text = f"{marker(kf)}. VLM caption of {seen} until {until_s:.2f} s: {caption}"
    if lines:
        text += "\nDetected motion:\n" + "\n".join(line_text(line) for line in lines)
    return text


def kept_beside_caption(lines: list[LogLine], both: bool, shown: set[str]) -> list[LogLine]:
    """With ``both`` every line; with ``vlm`` only bursts whose apex is not one of the images:
    a caption of a few frames can miss a 0.25 s micro-expression, and P3 wants every burst
    present as an apex image or a text line."""
    if both:
        return lines
    return [ln for ln in lines if ln.kind == "burst" and ln.burst_id not in shown]
