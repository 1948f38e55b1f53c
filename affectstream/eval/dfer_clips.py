"""A DFER clip through the live perception code (face detection, tracking, alignment, the
burst spotter and the describer, as in ``run``), reduced to what the conditions ask about:
the main face's aligned crops at a fixed rate, its burst apexes and its log lines.

Clips are short (DFEW's are 2–5 s), so every crop perception keeps is held in memory. Frame
folders are read image by image at :data:`FRAME_FOLDER_FPS` (the datasets do not say their
rate). When no face is tracked in a clip (a face detector can miss a face that fills a
pre-cropped frame), the whole frames, resized, stand in for the crops at the same rate, and the
clip is marked ``aligned=False``: the VLM still gets pictures of the clip, never nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from affectstream.config import Config
from affectstream.errors import SourceError
from affectstream.eval.datasets import Clip
from affectstream.eval.datasets.frames import FRAME_FOLDER_FPS, read_frame
from affectstream.stream.perception import Perception
from affectstream.stream.pipeline import perceive
from affectstream.stream.sources import FileSource
from affectstream.types import Frame, Image, Keyframe, LogLine

FALLBACK_SIDE = 448


@dataclass(frozen=True, slots=True)
class ClipView:
    """What the conditions see of one clip."""

    track_id: int
    periodic: tuple[Keyframe, ...]
    """The main face's aligned crops at the pool rate, in time order."""
    apexes: tuple[Keyframe, ...]
    lines: tuple[LogLine, ...]
    window: tuple[float, float]
    aligned: bool
    """False when no face was tracked and whole frames stand in for the crops."""
    frames: int
    fps: float


def perception_config(cfg: Config, pool_fps: float) -> Config:
    """``cfg`` with periodic keyframes kept at ``pool_fps`` (the densest condition's rate)."""
    keyframes = cfg.keyframes.model_copy(update={"periodic_fps": pool_fps})
    return cfg.model_copy(update={"keyframes": keyframes})


def _folder_reader(frames: tuple[Path, ...], fps: float) -> Callable[[], Frame | None]:
    it = iter(enumerate(frames))

    def read() -> Frame | None:
        item = next(it, None)
        if item is None:
            return None
        index, path = item
        return Frame(index, index / fps, 0.0, read_frame(path))

    return read


def _shrunk(image: Image) -> Image:
    h, w = image.shape[:2]
    scale = min(1.0, FALLBACK_SIDE / max(h, w))
    if scale >= 1.0:
        return image.copy()
    out: Image = cv2.resize(image, (round(w * scale), round(h * scale)),
                            interpolation=cv2.INTER_AREA)
    return out


class _Collector:
    def __init__(self, pool_fps: float) -> None:
        self.min_dt = 0.95 / pool_fps  # 5 % slack on jittery frame times
        self.keyframes: list[Keyframe] = []
        self.lines: list[LogLine] = []
        self.whole: list[Keyframe] = []
        self.frames = 0
        self.last_s = 0.0

    def frame(self, frame: Frame) -> None:
        self.frames += 1
        self.last_s = frame.pts_s
        if not self.whole or frame.pts_s - self.whole[-1].pts_s >= self.min_dt:
            self.whole.append(Keyframe(0, frame.index, frame.pts_s, "periodic",
                                       _shrunk(frame.image)))

    def view(self, fps: float) -> ClipView:
        periodic = [kf for kf in self.keyframes if kf.reason == "periodic"]
        if periodic:
            counts: dict[int, int] = {}
            for kf in periodic:
                counts[kf.track_id] = counts.get(kf.track_id, 0) + 1
            track = max(counts, key=lambda t: (counts[t], -t))
            pool = tuple(kf for kf in periodic if kf.track_id == track)
            apexes = tuple(kf for kf in self.keyframes
                           if kf.reason == "apex" and kf.track_id == track)
            lines = tuple(ln for ln in self.lines if ln.track_id == track)
            aligned = True
        else:
            track, pool, apexes, lines, aligned = 0, tuple(self.whole), (), (), False
        if not pool:
            raise SourceError("no frame could be decoded")
        start = min(pool[0].pts_s, *(kf.pts_s for kf in apexes)) if apexes else pool[0].pts_s
        end = max(self.last_s, pool[-1].pts_s)
        return ClipView(track, pool, apexes, lines, (start, end), aligned, self.frames, fps)


def view_clip(cfg: Config, model_paths: dict[str, Path], clip: Clip,
              pool_fps: float) -> ClipView:
    """Every frame of ``clip`` through the live perception (``cfg`` as from
    :func:`perception_config`). Raises SourceError (one line naming the clip) when the clip
    cannot be read."""
    source: FileSource | None = None
    if clip.path is not None:
        source = FileSource(clip.path)
        source.open()
        read, fps = source.read, source.fps
    else:
        fps = clip.fps or FRAME_FOLDER_FPS
        read = _folder_reader(clip.frames, fps)
    got = _Collector(pool_fps)
    perception = Perception(cfg, model_paths, fps, secrets.token_hex(3))
    try:
        for item in perceive(read, perception):
            if item.frame is not None:
                got.frame(item.frame)
            got.keyframes += item.result.keyframes
            got.lines += item.result.log_lines
    finally:
        perception.close()
        if source is not None:
            source.close()
    return got.view(fps)


def checked_view(cfg: Config, model_paths: dict[str, Path], clip: Clip,
                 pool_fps: float) -> ClipView:
    """:func:`view_clip` with the clip's id in its one-line error."""
    try:
        return view_clip(cfg, model_paths, clip, pool_fps)
    except SourceError as exc:
        raise SourceError(f"clip {clip.id} ({clip.media}): {exc}") from exc
