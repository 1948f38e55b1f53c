"""Labelled training clips for ``affectstream finetune``: a small local reader and uniform
frame sampling.

Two layouts are read:

* a folder with one sub-folder per class, named by its label (``happiness/``, ``fear/`` …,
  matched case-insensitively against the label set), holding video files;
* a JSONL manifest, one ``{"path": …, "label": …}`` per line (``id`` optional; relative paths
  are relative to the manifest's folder).

This is deliberately the minimum fine-tuning needs. ``eval dfer``'s dataset readers
(``affectstream.eval.datasets.load_dataset(root, fmt, split, labels) -> list[Clip]``, with the
DFEW/MAFW/FERV39k layouts and split files) return clips with the same three fields — an id, a
label and a path — so :func:`read_clips` can later hand over to them unchanged for callers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from affectstream.errors import ConfigError, SourceError
from affectstream.types import Image, Keyframe

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True, slots=True)
class LabelledClip:
    id: str
    label: str
    path: Path


def read_clips(root: Path, labels: tuple[str, ...]) -> list[LabelledClip]:
    """The clips of a class-folder tree or a ``.jsonl`` manifest at ``root``, in a stable
    order; every label must be one of ``labels``."""
    if root.is_file() and root.suffix.lower() == ".jsonl":
        clips = _from_manifest(root, labels)
    elif root.is_dir():
        clips = _from_folders(root, labels)
    else:
        raise ConfigError(f"dataset {root} is neither a folder of class folders nor a .jsonl "
                          "manifest; pass one with --dataset")
    if not clips:
        raise ConfigError(f"dataset {root} holds no video clips; put videos in one folder per "
                          "label (happiness/, fear/ …) or list them in a JSONL manifest")
    return clips


def _canonical(name: str, labels: tuple[str, ...], where: str) -> str:
    lowered = {label.lower(): label for label in labels}
    label = lowered.get(name.strip().lower())
    if label is None:
        raise ConfigError(f"{where}: label {name!r} is not in the label set "
                          f"({', '.join(labels)}); rename it or choose --labels")
    return label


def _from_folders(root: Path, labels: tuple[str, ...]) -> list[LabelledClip]:
    clips: list[LabelledClip] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = _canonical(folder.name, labels, f"class folder {folder}")
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
                clips.append(LabelledClip(f"{folder.name}/{path.stem}", label, path))
    return clips


def _from_manifest(manifest: Path, labels: tuple[str, ...]) -> list[LabelledClip]:
    clips: list[LabelledClip] = []
    lines = manifest.read_text(encoding="utf-8").splitlines()
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{manifest}:{n}"
        try:
            obj = json.loads(raw)
            path, name = Path(obj["path"]), str(obj["label"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where} is not a manifest line {{\"path\", \"label\"}} "
                              f"({type(exc).__name__}: {exc}); fix the line") from exc
        path = path if path.is_absolute() else manifest.parent / path
        if not path.is_file():
            raise ConfigError(f"{where}: clip {path} does not exist; fix its path")
        clips.append(LabelledClip(str(obj.get("id", path.stem)),
                                  _canonical(name, labels, where), path))
    return clips


def sample_frames(path: Path, k: int) -> tuple[list[Image], list[int], float]:
    """``k`` frames spread uniformly over the clip (BGR), their indices and the clip's fps.

    Frame ``i`` of ``k`` is the middle of the i-th of k equal parts of the clip (the sparse
    ``uniform-K`` sampling of the paper). Clips shorter than ``k`` frames repeat frames.
    """
    if k < 1:
        raise ConfigError(f"--frames must be ≥ 1, got {k}")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise SourceError(f"cannot open clip {path}; check it is a readable video")
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
        frames = _read_all(cap)  # short clips: decoding them whole beats unreliable seeking
    finally:
        cap.release()
    if not frames:
        raise SourceError(f"clip {path} has no decodable frames; remove it or re-encode it")
    n = len(frames)
    indices = [min(n - 1, int((2 * i + 1) * n / (2 * k))) for i in range(k)]
    return [frames[i] for i in indices], indices, fps


def _read_all(cap: cv2.VideoCapture) -> list[Image]:
    frames: list[Image] = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(np.ascontiguousarray(frame))


def clip_keyframes(path: Path, k: int) -> tuple[list[Keyframe], float]:
    """The clip's uniform frames as periodic keyframes of track 0, and the clip's end time:
    the input of the same context builder the live VLM stage uses."""
    frames, indices, fps = sample_frames(path, k)
    keyframes = [Keyframe(0, idx, idx / fps, "periodic", image)
                 for idx, image in zip(indices, frames, strict=True)]
    return keyframes, (max(indices) + 1) / fps
