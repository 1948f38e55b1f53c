"""MAFW (Liu et al., ACM MM 2022) as it ships::

    ROOT/data/clips/00001.mp4 …
    ROOT/Train & Test Set/single/no_caption/set_1/train.txt, test.txt … set_5/
    ROOT/Labels/single-set.xlsx                 (not read: the split files carry the labels)

Split lines are ``00001.mp4 anger`` (whitespace-separated; a label number 1–11 is read in
MAFW's order too: anger, disgust, fear, happiness, neutral, sadness, surprise, contempt,
anxiety, helplessness, disappointment). Splits as DFEW's: ``test-K``, ``train-K``, ``all-K``.
Frames instead of videos: ``ROOT/data/frames/00001/`` is used when the video is absent.

With the DFEW label set (``dfew7``) MAFW's four extra classes fold onto their nearest basic
emotion (:data:`affectstream.labels.FALLBACK`: contempt → disgust, anxiety → fear,
helplessness and disappointment → sadness): the 7-class mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from affectstream.errors import SourceError
from affectstream.eval.datasets.clip import Entries, find_media, numbered_label
from affectstream.eval.datasets.dfew import parse_split

MAFW_LABELS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise",
               "contempt", "anxiety", "helplessness", "disappointment")
"""MAFW's label numbers 1–11, in order."""
SPLITS = Path("Train & Test Set") / "single" / "no_caption"


def _media(root: Path, name: str) -> Path | None:
    stem = Path(name).stem
    return (find_media(root / "data" / "clips" / name) or find_media(root / "data" / "clips" / stem)
            or find_media(root / "data" / "frames" / stem))


def read_mafw(root: Path, split: str | None, labels: Sequence[str], entries: Entries) -> None:
    halves, fold = parse_split(split)
    for half in halves:
        path = root / SPLITS / f"set_{fold}" / f"{half}.txt"
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except OSError as exc:
            raise SourceError(f"cannot read the MAFW split file {path} ({exc.strerror}); give "
                              "--dataset the folder holding 'Train & Test Set/' and data/") from exc
        for n, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise SourceError(f"{path} line {n} is not 'CLIP LABEL': {line.strip()!r}")
            name, raw = fields[0], fields[1]
            entries.add(Path(name).stem, numbered_label(raw, MAFW_LABELS), labels,
                        _media(root, name))
