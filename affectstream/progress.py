"""Progress bars of file runs (``run`` on files, ``spot``): frames done of the file's total,
and frames per second. Live cameras get none: they have no end to progress towards.

The bars are fed by a frame tap, which runs on perception's path, so the tap only stores the
newest frame index per camera (one dict assignment); the bars read those counters when they
redraw, in rich's refresh thread. Whether bars are drawn at all is the command's choice
(:func:`affectstream.terminal.current`): never with ``--quiet`` or JSON logs, and only on a
terminal unless forced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from affectstream.config import Config
from affectstream.terminal import current
from affectstream.types import Frame, FrameResult, FrameTap


class _Fps(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:5.1f} fps", style="progress.data.speed")


class _Synced(Progress):
    """A rich Progress whose tasks take their counts from plain counters when it redraws."""

    def __init__(self, counts: dict[str, int], *columns: Any, **kwargs: Any) -> None:
        self._counts = counts
        self.ids: dict[str, Any] = {}  # before rich's init, which may draw already
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[Any]:
        for camera, task in self.ids.items():
            self.update(task, completed=self._counts[camera])
        yield from super().get_renderables()


class FrameProgress:
    """Bars for the cameras in ``totals`` (camera id → frame count, None when unknown, e.g.
    a looped file); a no-op when progress is off or there are none."""

    def __init__(self, totals: dict[str, int | None]) -> None:
        term = current()
        self._counts = dict.fromkeys(totals, 0)
        self._bar: _Synced | None = None
        if totals and term.progress:
            self._bar = _Synced(self._counts, TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), _Fps(), TimeRemainingColumn(),
                                console=term.console(), transient=True)
            for camera, total in totals.items():
                self._bar.ids[camera] = self._bar.add_task(camera, total=total)

    @property
    def taps(self) -> list[FrameTap]:
        return [self.tap] if self._bar is not None else []

    def tap(self, camera_id: str, frame: Frame | None, _result: FrameResult) -> None:
        if frame is not None and camera_id in self._counts:
            self._counts[camera_id] = frame.index + 1

    @contextlib.contextmanager
    def shown(self) -> Iterator[FrameProgress]:
        if self._bar is None:
            yield self
            return
        with self._bar:
            yield self


def frame_count(path: Path) -> int | None:
    """A video file's frame count from its container, None when it does not say."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return int(count) if count > 0 else None


def file_totals(cfg: Config) -> dict[str, int | None]:
    """The run's file cameras (camera id → frame count; None for a looped file or one whose
    container has no count). Webcams, streams and ``demo`` are left out."""
    if not current().progress:
        return {}  # no bars: do not even open the files
    out: dict[str, int | None] = {}
    for cam in cfg.camera_configs():
        url = cam.source.url.strip()
        if url == "demo" or url.isdigit() or "://" in url or not Path(url).is_file():
            continue
        out[cam.camera_id] = None if cam.source.loop else frame_count(Path(url))
    return out
