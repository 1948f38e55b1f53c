"""Tiny labelled video datasets cut from the real test clips (for fine-tuning tests)."""

from __future__ import annotations

from pathlib import Path

import cv2


def cut(src: Path, dst: Path, start: int, frames: int, side: int = 64, fps: float = 25.0) -> Path:
    """``frames`` frames of ``src`` from frame ``start``, centre-cropped square and resized to
    ``side`` px, written as an MP4 to ``dst``."""
    cap = cv2.VideoCapture(str(src))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (side, side))
    try:
        for _ in range(frames):
            ok, frame = cap.read()
            assert ok, f"{src} has fewer than {start + frames} frames"
            h, w = frame.shape[:2]
            s = min(h, w)
            y, x = (h - s) // 2, (w - s) // 2
            out.write(cv2.resize(frame[y:y + s, x:x + s], (side, side)))
    finally:
        out.release()
        cap.release()
    return dst


def folder_dataset(media: Path, root: Path, frames: int = 6) -> Path:
    """happiness/neutral/sadness class folders: the smile of single_face.mp4, its neutral
    start, and two LivePortrait clips (where present; single_face.mp4 segments otherwise)."""
    face = media / "single_face.mp4"
    other = media / "liveportrait_d11.mp4"
    extra = other if other.is_file() else face
    cut(face, root / "happiness" / "smile.mp4", 30, frames)
    cut(face, root / "neutral" / "start.mp4", 0, frames)
    cut(extra, root / "neutral" / "talk.mp4", 0, frames)
    cut(extra, root / "sadness" / "late.mp4", 10 if extra != face else 60, frames)
    return root
