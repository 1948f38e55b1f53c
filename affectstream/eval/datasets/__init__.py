"""DFER datasets: one reader per format, one clip type, one loader (issue 12 item 1).

The stable API (the DFER evaluation and fine-tuning build on it)::

    from affectstream.eval.datasets import Clip, Dataset, load_dataset

    ds = load_dataset(root, "dfew", split="test-1", labels=DFEW7, balanced=50, seed=0)
    for clip in ds.clips:        # Clip(id, label, path | frames, source_label, fps)
        ...                      # clip.label is one of ds.labels; clip.media is a file or folder

- :class:`Clip` — ``id`` (unique in the dataset), ``label`` (canonical, one of the label set),
  ``path`` (a video file) *or* ``frames`` (the sorted image files of a frame folder),
  ``source_label`` (the dataset's own label text) and ``fps`` (a frame folder's rate, if known).
- :func:`load_dataset` ``(root, fmt, split, labels, *, skip_bad, balanced, limit, seed)`` →
  :class:`Dataset` (``format``, ``root``, ``split``, ``labels``, ``clips``, ``skipped``,
  ``counts()``). Formats (:data:`FORMATS`): ``folder`` (one folder per class; videos or frame
  folders), ``manifest`` (CSV/JSONL with ``path,label[,id,split]``), ``dfew``, ``mafw``,
  ``ferv39k`` (their official layouts and split files; see each module).
  :func:`default_format` is the format of a ``--dataset`` given without one.
- Labels come from the dataset's own words through :func:`affectstream.labels.canonical_label`
  (synonyms; MAFW's extra classes fold onto DFEW's seven when ``labels`` is ``DFEW7``).
- Bad entries (missing media, a label outside ``labels``) raise one
  :class:`~affectstream.errors.SourceError` line, or with ``skip_bad=True`` are left out and
  listed in ``Dataset.skipped``. Readability of the media is checked when a clip is decoded,
  not here (opening thousands of videos up front would take minutes).
- ``balanced=N`` draws N clips per class (fewer when a class has fewer), with ``random.Random
  (seed)`` over the clips sorted by id: the paper's balanced protocol, reproducible.
  ``limit=N`` then keeps N clips, a seeded sample in the same order. Clips come out sorted by
  class (label-set order), then id.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from affectstream.errors import ConfigError, SourceError
from affectstream.eval.datasets.clip import Clip, Entries, Skipped
from affectstream.labels import DFEW7

__all__ = ["FORMATS", "Clip", "Dataset", "Skipped", "balanced_subset", "default_format",
           "load_dataset"]

FORMATS = ("folder", "manifest", "dfew", "mafw", "ferv39k")
MANIFEST_SUFFIXES = (".jsonl", ".csv")
Reader = Callable[[Path, "str | None", Sequence[str], Entries], None]


@dataclass(slots=True)
class Dataset:
    format: str
    root: Path
    split: str | None
    labels: tuple[str, ...]
    clips: list[Clip] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Clips per label, in label-set order (0 for absent classes)."""
        found = Counter(c.label for c in self.clips)
        return {label: found[label] for label in self.labels}


def _reader(fmt: str) -> Reader:
    # imported on demand: each format's module only when asked for
    if fmt == "folder":
        from affectstream.eval.datasets.folder import read_folder
        return read_folder
    if fmt == "manifest":
        from affectstream.eval.datasets.manifest import read_manifest
        return read_manifest
    if fmt == "dfew":
        from affectstream.eval.datasets.dfew import read_dfew
        return read_dfew
    if fmt == "mafw":
        from affectstream.eval.datasets.mafw import read_mafw
        return read_mafw
    if fmt == "ferv39k":
        from affectstream.eval.datasets.ferv39k import read_ferv39k
        return read_ferv39k
    raise ConfigError(f"unknown dataset format {fmt!r}; use one of {', '.join(FORMATS)}")


def default_format(root: Path | str) -> str:
    """The layout a ``--dataset`` given without ``--format`` most likely has: ``manifest`` for
    a ``.jsonl`` or ``.csv`` file, else ``folder`` (the official layouts are folders too, but
    telling them apart by their files would guess; those need ``--format``)."""
    path = Path(root).expanduser()
    is_manifest = path.suffix.lower() in MANIFEST_SUFFIXES and not path.is_dir()
    return "manifest" if is_manifest else "folder"


def _ordered(clips: list[Clip], labels: Sequence[str]) -> list[Clip]:
    rank = {label: i for i, label in enumerate(labels)}
    return sorted(clips, key=lambda c: (rank[c.label], c.id))


def balanced_subset(clips: Sequence[Clip], per_class: int, labels: Sequence[str],
                    seed: int = 0) -> list[Clip]:
    """``per_class`` clips of each label (all of a smaller class), drawn with ``seed``."""
    if per_class < 1:
        raise ConfigError(f"--balanced must be at least 1, got {per_class}")
    rng = random.Random(seed)
    out: list[Clip] = []
    for label in labels:
        pool = sorted((c for c in clips if c.label == label), key=lambda c: c.id)
        out += pool if len(pool) <= per_class else rng.sample(pool, per_class)
    return _ordered(out, labels)


def load_dataset(root: Path | str, fmt: str = "folder", split: str | None = None,
                 labels: Sequence[str] = DFEW7, *, skip_bad: bool = False,
                 balanced: int | None = None, limit: int | None = None,
                 seed: int = 0) -> Dataset:
    """The clips of the dataset at ``root`` in format ``fmt`` (see the module docstring)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise SourceError(f"dataset {root} not found; give --dataset an existing folder or "
                          "manifest")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    entries = Entries(skip_bad=skip_bad)
    _reader(fmt)(root, split, tuple(labels), entries)
    clips = _ordered(_unique(entries), labels)
    if balanced is not None:
        clips = balanced_subset(clips, balanced, labels, seed)
    if limit is not None and limit < len(clips):
        keep = set(random.Random(seed).sample(range(len(clips)), limit))
        clips = [c for i, c in enumerate(clips) if i in keep]
    if not clips:
        raise SourceError(f"no clips found in {root} (format {fmt}"
                          + (f", split {split}" if split else "") + "); check --format and "
                          "--split")
    return Dataset(fmt, root, split, tuple(labels), clips, entries.skipped)


def _unique(entries: Entries) -> list[Clip]:
    seen: dict[str, Clip] = {}
    for clip in entries.clips:
        if clip.id in seen:
            entries.bad(clip.id, f"clip id {clip.id} appears twice; ids must be unique")
            continue
        seen[clip.id] = clip
    return list(seen.values())
