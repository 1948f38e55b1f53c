"""Uniform frame sampling from a dataset clip: the K frames ``finetune`` trains on, handed to
the live VLM stage's context builder as periodic keyframes.

A :class:`~affectstream.eval.datasets.Clip` is a video file or a frame folder (DFEW's
``clip_224x224``, FERV39k, ``folder``/``manifest`` datasets of frames). Both are sampled with
the same index formula, so a clip gives the same frames whichever way it is stored. ``eval
dfer`` reads whole clips through perception instead (:mod:`affectstream.eval.dfer_clips`) and
shares :func:`read_frame` and :data:`FRAME_FOLDER_FPS` from here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from affectstream.errors import ConfigError, SourceError
from affectstream.eval.datasets.clip import Clip
from affectstream.types import Image, Keyframe

FRAME_FOLDER_FPS = 25.0
"""Nominal rate of a clip that states none: a frame folder without ``clip.fps`` (DFEW's and
FERV39k's frames come from 25-fps films; the datasets do not say), or a video whose container
reports 0."""


def uniform_indices(n: int, k: int) -> list[int]:
    """``k`` frame indices of an ``n``-frame clip: frame ``i`` of ``k`` is the middle of the
    i-th of k equal parts (the paper's sparse ``uniform-K`` sampling). Clips shorter than ``k``
    frames repeat frames."""
    return [min(n - 1, int((2 * i + 1) * n / (2 * k))) for i in range(k)]


def read_frame(path: Path) -> Image:
    """One image of a frame folder (BGR); SourceError naming it when it is not an image."""
    image: Image | None = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot read frame {path}; it is not an image")
    return image


def sample_frames(clip: Clip, k: int) -> tuple[list[Image], list[int], float]:
    """``k`` frames spread uniformly over the clip (BGR, :func:`uniform_indices`), their
    indices and the clip's fps (a frame folder's: ``clip.fps``, else
    :data:`FRAME_FOLDER_FPS`)."""
    if k < 1:
        raise ConfigError(f"--frames must be ≥ 1, got {k}")
    if clip.path is not None:
        frames, fps = _decode(clip.path)
        indices = uniform_indices(len(frames), k)
        return [frames[i] for i in indices], indices, fps
    if not clip.frames:
        raise SourceError(f"clip {clip.id} has neither a video nor frames")
    indices = uniform_indices(len(clip.frames), k)
    # a folder is random access: read only the chosen files, each once (repeats share it)
    images = {i: read_frame(clip.frames[i]) for i in sorted(set(indices))}
    return [images[i] for i in indices], indices, clip.fps or FRAME_FOLDER_FPS


def _decode(path: Path) -> tuple[list[Image], float]:
    """Every frame of a video and its fps. DFER clips are short (seconds): decoding them whole
    is cheap and exact, where seeking by frame index is unreliable in many containers."""
    cap = cv2.VideoCapture(str(path))
    frames: list[Image] = []
    try:
        if not cap.isOpened():
            raise SourceError(f"cannot open clip {path}; check it is a readable video")
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or FRAME_FOLDER_FPS
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(np.ascontiguousarray(frame))
    finally:
        cap.release()
    if not frames:
        raise SourceError(f"clip {path} has no decodable frames; remove it or re-encode it")
    return frames, fps


def clip_keyframes(clip: Clip, k: int) -> tuple[list[Keyframe], float]:
    """The clip's uniform frames as periodic keyframes of track 0, and the clip's end time:
    the input of the same context builder the live VLM stage uses."""
    frames, indices, fps = sample_frames(clip, k)
    keyframes = [Keyframe(0, idx, idx / fps, "periodic", image)
                 for idx, image in zip(indices, frames, strict=True)]
    return keyframes, (max(indices) + 1) / fps
