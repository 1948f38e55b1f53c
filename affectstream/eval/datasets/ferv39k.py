"""FERV39k (Wang et al., CVPR 2022) as it ships::

    ROOT/…/2_ClipsforFaceCrop/SCENE/EMOTION/CLIP/*.jpg      face-cropped frames
    ROOT/…/4_setups/All_scenes/train_All.csv, test_All.csv

Split lines are ``Action/Sad/0010 Sad`` (the clip's folder under ``2_ClipsforFaceCrop`` and its
label; a comma may stand for the space). Both folders are looked for anywhere under ROOT (the
archives unpack with an extra level). Splits: ``test`` (default) or ``train``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from affectstream.errors import SourceError
from affectstream.eval.datasets.clip import Entries

_SEP = re.compile(r"[\s,]+")


def _find(root: Path, pattern: str, what: str) -> Path:
    direct = sorted(root.glob(pattern)) or sorted(root.glob(f"*/{pattern}")) \
        or sorted(root.glob(f"*/*/{pattern}"))
    if not direct:
        raise SourceError(f"no {what} ({pattern}) under {root}; give --dataset the FERV39k "
                          "folder")
    return direct[0]


def read_ferv39k(root: Path, split: str | None, labels: Sequence[str],
                 entries: Entries) -> None:
    half = (split or "test").lower()
    if half not in ("train", "test"):
        raise SourceError(f"unknown FERV39k split {split!r}; use train or test")
    setup = _find(root, f"4_setups/All_scenes/{half}_All.csv", "split file")
    frames = _find(root, "2_ClipsforFaceCrop", "face-crop folder")
    try:
        lines = setup.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read {setup} ({exc.strerror})") from exc
    for n, line in enumerate(lines, 1):
        fields = [f for f in _SEP.split(line.strip()) if f]
        if not fields:
            continue
        if len(fields) < 2:
            raise SourceError(f"{setup} line {n} is not 'SCENE/EMOTION/CLIP LABEL'")
        entries.add(fields[0], fields[1], labels, frames / fields[0])
