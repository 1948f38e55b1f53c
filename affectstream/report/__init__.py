"""The run report (``--report F.html``): one self-contained HTML file written when a run ends.

:func:`open_report` is what a command uses: it checks the path before anything runs, yields a
:class:`Report` whose ``taps`` and ``sinks`` go to :class:`affectstream.app.Runner` (``spot``
feeds it directly), and writes the file when the block ends, however it ends: at the end of
the source, on ``--max-seconds``, SIGINT or SIGTERM (the run stops and flushes normally) and
after an error once something was recorded. The report knows messages, stats and the types of
``types.py``, never the detectors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from affectstream.config import Config
from affectstream.errors import ConfigError, SinkError
from affectstream.publish.messages import Message
from affectstream.report.collect import Collector, ReportSink
from affectstream.report.page import RunInfo, render
from affectstream.types import FrameTap
from affectstream.urls import redact_url

__all__ = ["Report", "check_report_path", "open_report", "write_atomic"]

log = logging.getLogger("affectstream.report")


def check_report_path(path: Path) -> Path:
    """``path`` if a report can be written there; else a one-line error with the fix."""
    path = path.expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"--report {path} is a folder; give a file name such as "
                          f"{path / 'report.html'}")
    if not parent.is_dir():
        raise ConfigError(f"--report {path}: folder {parent} does not exist; create it or "
                          "write the report into an existing folder")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"--report {path}: folder {parent} is not writable; choose a folder "
                          "you can write to")
    return path


class Report:
    """A report being collected for ``cfg``'s cameras (see the module docstring)."""

    def __init__(self, path: Path, cfg: Config, command: str) -> None:
        self.path = path
        self._cfg = cfg
        self._command = command
        self.collector = Collector(cfg.report)
        self._sink = ReportSink(self.collector)
        self._started = time.time()
        self._sources = {c.camera_id: redact_url(c.source.url) for c in cfg.camera_configs()}
        for camera in self._sources:  # a camera that never opened still gets its section
            self.collector.camera(camera)

    @property
    def taps(self) -> list[FrameTap]:
        return [self.collector.tap]

    @property
    def sinks(self) -> list[ReportSink]:
        return [self._sink]

    def publish(self, message: Message) -> None:
        """A message recorded directly (``spot`` has no sinks)."""
        self.collector.publish(message)

    def observer(self, camera_id: str, fps: float) -> Callable[[int, Any, tuple[int, float]],
                                                               None]:
        """A perception sample observer (``(track_id, sample, (frame, score))``) that records
        the spotting signal."""
        self.collector.camera(camera_id, fps)

        def observe(track_id: int, _sample: Any, score: tuple[int, float]) -> None:
            self.collector.signal(camera_id, track_id, score[0], score[1])

        return observe

    def source(self, camera_id: str, text: str) -> None:
        """Name a camera's source as the report shows it (e.g. the demo clip's path)."""
        self._sources[camera_id] = redact_url(text)

    def write(self) -> Path:
        """Write the file (atomically: a reader never sees half a report)."""
        from affectstream import __version__

        info = RunInfo(self._command, dict(self._sources), self._started, time.time(),
                       self._cfg.report.thumbnails, __version__)
        return write_atomic(self.path, render(info, self.collector.cameras()))


def write_atomic(path: Path, text: str) -> Path:
    """``text`` into ``path`` through a temporary file beside it, so a reader never sees half
    a report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a report is meant to be opened
        os.replace(tmp, path)
    except OSError as exc:
        raise SinkError(f"cannot write the report {path} ({exc}); check the disk and the "
                        "folder's permissions") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def open_report(path: Path | None, cfg: Config, command: str) -> Iterator[Report | None]:
    """A :class:`Report` for the block (None without ``path``), written when it ends."""
    if path is None:
        yield None
        return
    report = Report(check_report_path(path), cfg, command)
    try:
        yield report
    except BaseException:
        if report.collector.has_content():  # keep what was produced before the error
            try:
                report.write()
            except Exception as exc:  # the run's own error is the one to report
                log.error("%s", exc)
        raise
    report.write()
