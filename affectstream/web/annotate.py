"""Drawing the preview's annotations on a copy of a frame, and encoding it as JPEG (cv2).

Runs in a worker thread of the server (never on the perception thread): the frame is copied
(and shrunk to at most :data:`MAX_WIDTH`) before anything is drawn, so perception's image is
never touched.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from affectstream.types import Image

BOX = (0, 220, 0)
"""Face box colour (BGR): a saturated green that skin and most scenes do not have, so the
browser test can find it in a screenshot."""
FLASH = (0, 200, 255)
"""Burst flash colour (BGR amber)."""
TEXT = (255, 255, 255)
SHADE = (32, 32, 32)
MAX_WIDTH = 960
"""Wider frames are shrunk first: the preview is for looking, and encoding scales with pixels."""
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Overlay:
    faces: tuple[tuple[int, tuple[float, float, float, float]], ...]
    """(track id, box in frame pixels) of each face."""
    emotions: dict[int, dict[str, Any]]
    """Latest ``affectstream.emotion/1`` payload per track on screen."""
    burst: dict[str, Any] | None = None
    """The ``affectstream.burst/1`` payload to flash, if one is recent."""
    flash: float = 0.0
    """Strength of the flash, 1 just after the burst, fading to 0."""


def ascii_text(text: str) -> str:
    """``text`` in the ASCII that cv2's Hershey fonts can draw (dashes, accents folded)."""
    text = text.replace("–", "-").replace("—", "-").replace("…", "...").replace("×", "x")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def render(image: Image, overlay: Overlay, quality: int) -> tuple[bytes, float, int, int]:
    """The annotated JPEG of ``image``, the scale applied and the output size."""
    scale = min(1.0, MAX_WIDTH / image.shape[1])
    canvas = (cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
              if scale < 1.0 else image.copy())
    draw(canvas, overlay, scale)
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(data), scale, int(canvas.shape[1]), int(canvas.shape[0])


def draw(canvas: Image, overlay: Overlay, scale: float = 1.0) -> None:
    """Faces, emotions and the burst flash onto ``canvas`` (in place)."""
    burst_track = overlay.burst.get("track_id") if overlay.burst else None
    for track_id, bbox in overlay.faces:
        x1, y1, x2, y2 = (round(v * scale) for v in bbox)
        flashing = track_id == burst_track and overlay.flash > 0
        cv2.rectangle(canvas, (x1, y1), (x2, y2), FLASH if flashing else BOX,
                      4 if flashing else 2)
        _label(canvas, f"#{track_id}", (x1, y1 - 4), BOX)
        emotion = overlay.emotions.get(track_id)
        if emotion is not None:
            _emotion(canvas, emotion, (x2 + 6, y1))
    if overlay.burst is not None and overlay.flash > 0:
        _flash(canvas, overlay.burst, overlay.flash)


def _label(canvas: Image, text: str, org: tuple[int, int], colour: tuple[int, int, int],
           size: float = 0.5) -> None:
    (w, h), base = cv2.getTextSize(text, FONT, size, 1)
    x, y = max(0, org[0]), max(h + base, org[1])
    cv2.rectangle(canvas, (x, y - h - base), (x + w + 4, y + 2), SHADE, -1)
    cv2.putText(canvas, text, (x + 2, y - 1), FONT, size, colour, 1, cv2.LINE_AA)


def _emotion(canvas: Image, emotion: dict[str, Any], org: tuple[int, int]) -> None:
    """Label, source and the four most probable labels as bars, right of the face (or inside
    the frame's right edge)."""
    width = 150
    x = min(org[0], canvas.shape[1] - width - 2)
    y = org[1]
    head = f"{emotion.get('label', '?')} ({emotion.get('source', '?')})"
    _label(canvas, ascii_text(head), (x, y + 14), TEXT)
    probs = sorted(dict(emotion.get("probs") or {}).items(), key=lambda kv: -float(kv[1]))[:4]
    for i, (label, p) in enumerate(probs):
        top = y + 22 + i * 14
        cv2.rectangle(canvas, (x, top), (x + width, top + 11), SHADE, -1)
        cv2.rectangle(canvas, (x, top), (x + int(width * float(p)), top + 11), (200, 140, 40),
                      -1)
        cv2.putText(canvas, ascii_text(f"{label} {float(p):.2f}"), (x + 3, top + 9), FONT, 0.35,
                    TEXT, 1, cv2.LINE_AA)


def _flash(canvas: Image, burst: dict[str, Any], strength: float) -> None:
    """An amber frame border fading out, and the burst's text along the bottom."""
    edge = 6
    colour = np.array(FLASH, np.float32) * strength
    for strip in (canvas[:edge], canvas[-edge:], canvas[edge:-edge, :edge],
                  canvas[edge:-edge, -edge:]):  # views: blended in place, only the border
        strip[:] = (strip * (1 - strength) + colour).astype(np.uint8)
    aus = ", ".join(f"AU{u['au']}" for u in burst.get("action_units", [])[:4])
    text = ascii_text(f"{burst.get('kind', '')} burst #{burst.get('track_id')}: {aus}  "
                      f"{burst.get('text', '')}")
    lines = _wrap(text, canvas.shape[1] // 8)[:3]
    for i, line in enumerate(lines):
        _label(canvas, line, (6, canvas.shape[0] - 10 - 18 * (len(lines) - 1 - i)), FLASH)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return [*lines, current] if current else lines
