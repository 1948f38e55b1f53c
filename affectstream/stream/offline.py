"""Offline passes over a file with the live perception code: ``spot`` and ``bench``."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectstream.config import Config
from affectstream.stream.perception import Perception, SampleObserver
from affectstream.stream.pipeline import Perceived, perceive
from affectstream.stream.sources import FileSource
from affectstream.types import Burst, Frame, TrackEvent


@dataclass
class SpotResult:
    fps: float
    frames: int
    bursts: list[Burst] = field(default_factory=list)
    track_events: list[TrackEvent] = field(default_factory=list)
    frames_with_track: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "fps": self.fps,
            "frames": self.frames,
            "bursts": [{
                "track_id": b.track_id, "onset": b.onset_frame, "apex": b.apex_frame,
                "offset": b.offset_frame, "onset_s": round(b.onset_s, 3),
                "offset_s": round(b.offset_s, 3), "kind": b.kind,
                "action_units": [u.to_dict() for u in b.action_units], "text": b.text,
            } for b in self.bursts],
            "tracks": [{"type": e.type, "track_id": e.track_id, "frame": e.frame_index}
                       for e in self.track_events],
            "frames_with_track": {str(k): v for k, v in self.frames_with_track.items()},
        }


def _reader(source: FileSource, limit: int | None) -> Callable[[], Frame | None]:
    count = 0

    def read() -> Frame | None:
        nonlocal count
        if limit is not None and count >= limit:
            return None
        count += 1
        return source.read()

    return read


def perceive_file(cfg: Config, model_paths: dict[str, Path], path: Path, *,
                  limit: int | None = None, loop: bool = False,
                  observer: SampleObserver | None = None) -> Iterator[Perceived]:
    """Every frame of a file through the same detect-ahead pipeline and :class:`Perception` as
    a live run, as fast as possible; the last item is the final flush."""
    source = FileSource(path, loop=loop)
    source.open()
    perception: Perception | None = None
    try:
        perception = Perception(cfg, model_paths, source.fps, secrets.token_hex(3),
                                still_image=source.is_still, observer=observer)
        yield from perceive(_reader(source, limit), perception)
    finally:
        if perception is not None:
            perception.close()
        source.close()


def probe_fps(path: Path) -> float:
    """A file's frame rate (opening it the way ``spot`` will, so a bad file fails here)."""
    probe = FileSource(path)
    probe.open()
    try:
        return round(probe.fps, 3)
    finally:
        probe.close()


def spot_file(cfg: Config, model_paths: dict[str, Path], path: Path, *,
              observer: SampleObserver | None = None,
              on_item: Callable[[Perceived], None] | None = None) -> SpotResult:
    """Every burst of a file; ``observer`` sees every aligned sample (see
    :data:`SampleObserver`) and ``on_item`` every frame's result as it comes (a progress bar,
    a report)."""
    result = SpotResult(fps=probe_fps(path), frames=0)
    for item in perceive_file(cfg, model_paths, path, observer=observer):
        if on_item is not None:
            on_item(item)
        out = item.result
        if item.frame is not None:
            result.frames += 1
        for face in out.faces:
            result.frames_with_track[face.track_id] = \
                result.frames_with_track.get(face.track_id, 0) + 1
        result.bursts.extend(out.bursts)
        result.track_events.extend(out.track_events)
    return result
