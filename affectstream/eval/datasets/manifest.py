"""A CSV or JSONL manifest: one clip per row, with ``path`` and ``label`` (and optional
``id`` and ``split``). Paths are relative to the manifest's folder; a path is a video or a
folder of frames.

``ROOT`` is the manifest file itself, or a folder holding ``manifest.csv`` or
``manifest.jsonl``. With ``--split S`` only rows whose ``split`` is S are read.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from affectstream.errors import SourceError
from affectstream.eval.datasets.clip import Entries

NAMES = ("manifest.csv", "manifest.jsonl")


def manifest_file(root: Path) -> Path:
    if root.is_file():
        return root
    for name in NAMES:
        if (root / name).is_file():
            return root / name
    raise SourceError(f"no manifest at {root}; give a .csv or .jsonl file, or a folder with "
                      f"{' or '.join(NAMES)}")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read manifest {path} ({exc})") from exc
    if path.suffix.lower() == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise SourceError(f"{path} line {n} is not JSON ({exc}); one object per "
                                  "line") from exc
            if not isinstance(row, dict):
                raise SourceError(f"{path} line {n} is not an object; write "
                                  '{"path": …, "label": …} per line')
            yield row
        return
    yield from csv.DictReader(text.splitlines())


def read_manifest(root: Path, split: str | None, labels: Sequence[str],
                  entries: Entries) -> None:
    path = manifest_file(root)
    for n, row in enumerate(_rows(path), 1):
        if not row.get("path") or not row.get("label"):
            raise SourceError(f"{path} row {n} lacks 'path' or 'label'; every row needs both")
        if split is not None and str(row.get("split", "")) != split:
            continue
        media = path.parent / str(row["path"])
        clip_id = str(row.get("id") or row["path"])
        entries.add(clip_id, str(row["label"]), labels, media)
