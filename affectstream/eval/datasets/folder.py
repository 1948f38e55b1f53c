"""The generic layout: one folder per class, holding videos or frame folders.

::

    ROOT/[SPLIT/]CLASS/clip1.mp4
    ROOT/[SPLIT/]CLASS/clip2/0001.jpg …

Class folder names are read as labels (``happy`` → happiness, synonyms and case ignored).
A clip's id is ``CLASS/NAME`` (its path under the class folders, without suffix).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from affectstream.errors import SourceError
from affectstream.eval.datasets.clip import FRAME_SUFFIXES, VIDEO_SUFFIXES, Entries


def read_folder(root: Path, split: str | None, labels: Sequence[str], entries: Entries) -> None:
    base = root / split if split else root
    if not base.is_dir():
        raise SourceError(f"no split folder {base}; give --split as one of the folders in {root}"
                          if split else f"dataset folder {root} not found")
    classes = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise SourceError(f"{base} has no class folders; lay the dataset out as "
                          "CLASS/clip.mp4 or CLASS/clip/frames.jpg (or use --format manifest)")
    for folder in classes:
        for item in sorted(folder.iterdir()):
            if item.name.startswith("."):
                continue
            is_video = item.is_file() and item.suffix.lower() in VIDEO_SUFFIXES
            is_frames = item.is_dir()
            if not (is_video or is_frames):
                if item.suffix.lower() not in FRAME_SUFFIXES:  # stray notes, checksums
                    continue
                entries.bad(f"{folder.name}/{item.name}", f"{item}: a loose image in a class "
                            "folder; put each clip's frames in a folder of their own")
                continue
            entries.add(f"{folder.name}/{item.stem if is_video else item.name}", folder.name,
                        labels, item)
