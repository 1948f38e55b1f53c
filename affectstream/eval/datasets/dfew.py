"""DFEW (Jiang et al., ACM MM 2020) as it ships::

    ROOT/EmoLabel_DataSplit/train(single-labeled)/set_1.csv … set_5.csv
    ROOT/EmoLabel_DataSplit/test(single-labeled)/set_1.csv … set_5.csv
    ROOT/Clip/clip_224x224/00001/…jpg          face-cropped frames, one folder per clip
    ROOT/Clip/clip_224x224_16f/00001/1.jpg …   the 16-frame version
    ROOT/Clip/original/00001.mp4               the original clips (any video suffix)

Split files are CSV with a header and columns ``video_name,label``; ``video_name`` is the clip
number (zero-padded to five digits on disk), ``label`` 1–7: happy, sad, neutral, angry,
surprise, disgust, fear. Splits are ``test-K`` / ``train-K`` for fold K (default ``test-1``)
or ``all-K`` (both halves of fold K: every single-labelled clip). Media are taken from the
first of ``clip_224x224``, ``clip_224x224_16f``, ``original`` that holds the clip.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from affectstream.errors import SourceError
from affectstream.eval.datasets.clip import Entries, find_media, numbered_label

DFEW_LABELS = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")
"""DFEW's label numbers 1–7, in order."""
MEDIA_DIRS = ("Clip/clip_224x224", "Clip/clip_224x224_16f", "Clip/original")
_SPLIT = re.compile(r"^(train|test|all)[-_:]?([1-5])?$")


def parse_split(split: str | None, default: str = "test-1") -> tuple[list[str], int]:
    """(halves, fold) of a split name like ``test-1``, ``train-3`` or ``all-2``."""
    m = _SPLIT.match((split or default).lower())
    if m is None:
        raise SourceError(f"unknown split {split!r}; use test-K, train-K or all-K with K the "
                          "fold, 1 to 5")
    half, fold = m.group(1), int(m.group(2) or 1)
    return (["train", "test"] if half == "all" else [half]), fold


def _media(root: Path, name: str) -> Path | None:
    for folder in MEDIA_DIRS:
        found = find_media(root / folder / name)
        if found is not None:
            return found
    return None


def read_dfew(root: Path, split: str | None, labels: Sequence[str], entries: Entries) -> None:
    halves, fold = parse_split(split)
    for half in halves:
        path = root / "EmoLabel_DataSplit" / f"{half}(single-labeled)" / f"set_{fold}.csv"
        try:
            rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
        except OSError as exc:
            raise SourceError(f"cannot read the DFEW split file {path} ({exc.strerror}); give "
                              "--dataset the folder holding EmoLabel_DataSplit/ and Clip/") from exc
        for n, row in enumerate(rows, 2):
            name, raw = (row.get("video_name") or "").strip(), row.get("label") or ""
            if not name:
                raise SourceError(f"{path} line {n} has no video_name; expected the columns "
                                  "video_name,label")
            name = name.zfill(5) if name.isdigit() else name
            entries.add(name, numbered_label(raw, DFEW_LABELS), labels, _media(root, name))
