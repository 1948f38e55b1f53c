"""The common clip type of every DFER dataset reader, and what the readers share: media
lookup, label mapping and the bad-entry policy (a clear error, or counted and skipped)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from affectstream.errors import SourceError
from affectstream.labels import canonical_label

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True, slots=True)
class Clip:
    """One labelled clip: a video file (``path``) or a folder of frames (``frames``, sorted).

    ``label`` is canonical, one of the dataset's label set; ``source_label`` is what the
    dataset wrote (``"4"``, ``"Happy"``, ``"contempt"``), kept for reports and mappings.
    """

    id: str
    label: str
    path: Path | None = None
    frames: tuple[Path, ...] = ()
    source_label: str = ""
    fps: float | None = None
    """Nominal frame rate of a frame folder (datasets rarely say; None: the reader default)."""

    @property
    def media(self) -> Path:
        """The video file, or the folder of the frames."""
        if self.path is not None:
            return self.path
        if not self.frames:
            raise SourceError(f"clip {self.id} has neither a video nor frames")
        return self.frames[0].parent


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry left out with ``skip_bad``: which one and why (one line)."""

    id: str
    reason: str


@dataclass(slots=True)
class Entries:
    """What a reader found: clips, and the bad entries it skipped (with ``skip_bad``)."""

    clips: list[Clip] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    skip_bad: bool = False

    def bad(self, clip_id: str, reason: str) -> None:
        """A bad entry: counted when skipping bad ones, else the run's one-line error."""
        if not self.skip_bad:
            raise SourceError(f"{reason}; fix the dataset or pass --skip-bad to skip such clips")
        self.skipped.append(Skipped(clip_id, reason))

    def add(self, clip_id: str, word: str, labels: Sequence[str], media: Path | None) -> None:
        """A clip whose label is ``word`` (mapped onto ``labels``) and whose video or frame
        folder is ``media`` (None: not found)."""
        label = canonical_label(word, labels)
        if label is None:
            self.bad(clip_id, f"clip {clip_id}: label {word!r} is not in the label set "
                              f"({', '.join(labels)})")
            return
        if media is None or not media.exists():
            where = f" ({media})" if media is not None else ""
            self.bad(clip_id, f"clip {clip_id}: video or frames not found{where}")
            return
        clip = media_clip(clip_id, label, word, media)
        if clip is None:
            self.bad(clip_id, f"clip {clip_id}: {media} is neither a video nor a folder of "
                              "frames")
            return
        self.clips.append(clip)


def numbered_label(raw: str, names: Sequence[str]) -> str:
    """A dataset's label number (1-based, as DFEW and MAFW write them) as its word; other text
    is passed on, to be mapped through the synonyms or rejected."""
    raw = raw.strip()
    if raw.isdigit() and 1 <= int(raw) <= len(names):
        return names[int(raw) - 1]
    return raw


def frame_files(folder: Path) -> tuple[Path, ...]:
    """The image files of a frame folder, in natural order (``2.jpg`` before ``10.jpg``)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()]
    return tuple(sorted(files, key=_natural))


def _natural(path: Path) -> tuple[object, ...]:
    digits = "".join(c if c.isdigit() else " " for c in path.stem).split()
    return (tuple(int(d) for d in digits), path.name)


def media_clip(clip_id: str, label: str, source_label: str, media: Path) -> Clip | None:
    """A clip of a video file or a non-empty frame folder; None for anything else."""
    if media.is_file() and media.suffix.lower() in VIDEO_SUFFIXES:
        return Clip(clip_id, label, path=media, source_label=source_label)
    if media.is_dir():
        frames = frame_files(media)
        if frames:
            return Clip(clip_id, label, frames=frames, source_label=source_label)
    return None


def find_media(stem: Path) -> Path | None:
    """``stem`` as a frame folder, or as a video with any known suffix (None: not there)."""
    if stem.is_dir():
        return stem
    if stem.suffix.lower() in VIDEO_SUFFIXES and stem.is_file():
        return stem
    for suffix in VIDEO_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return candidate
    return None
