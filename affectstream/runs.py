"""``run`` and ``spot`` as commands: the run or the spotting pass with what a person watching it
gets besides the messages, i.e. the file progress bars and the ``--report`` file."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from affectstream import app
from affectstream.config import Config
from affectstream.percentiles import percentiles
from affectstream.progress import FrameProgress, file_totals, frame_count
from affectstream.publish import messages
from affectstream.report import Report, open_report
from affectstream.stream.offline import SpotResult, probe_fps, spot_file
from affectstream.stream.pipeline import Perceived
from affectstream.terminal import current

_WINDOW = 10_000
"""Stage timings kept for the report's percentiles (the latest frames')."""


def run_command(cfg: Config, report: Path | None, command: str = "run") -> app.RunSummary:
    """The main job, with progress bars for file cameras and the report written at its end
    (also when it is stopped by ``--max-seconds``, SIGINT or SIGTERM)."""
    progress = FrameProgress(file_totals(cfg))
    with open_report(report, cfg, command) as rep, progress.shown():
        runner = app.Runner(cfg, taps=[*progress.taps, *(rep.taps if rep else [])],
                            sinks=rep.sinks if rep else [])
        summary = runner.run_sync()
    if rep is not None:
        current().note(f"report: {rep.path}")
    return summary


def spot_command(cfg: Config, model_paths: dict[str, Path], source: Path,
                 report: Path | None) -> SpotResult:
    """``spot``: every burst of a file; with ``report``, the report also shows the spotting
    signal per track."""
    camera = cfg.camera_id
    fps = probe_fps(source)  # a bad file fails before the report or the bar exist
    total = frame_count(source) if current().progress else None
    progress = FrameProgress({camera: total} if current().progress else {})
    with open_report(report, cfg, "spot") as rep:
        if rep is not None:
            rep.source(camera, str(source))
        feed = _SpotFeed(camera, rep, progress)
        with progress.shown():
            result = spot_file(cfg, model_paths, source,
                               observer=rep.observer(camera, fps) if rep else None,
                               on_item=feed)
        if rep is not None:
            rep.publish(messages.stats(camera, feed.stats(result)))
    if rep is not None:
        current().note(f"report: {rep.path}")
    return result


class _SpotFeed:
    """Each spotted frame to the progress bar and the report, with the per-stage timings of
    the report's latency table (``spot`` publishes no stats message of its own)."""

    def __init__(self, camera: str, rep: Report | None, progress: FrameProgress) -> None:
        self._camera = camera
        self._rep = rep
        self._progress = progress
        self._stage_ms: dict[str, deque[float]] = {}
        self._started = time.monotonic()

    def __call__(self, item: Perceived) -> None:
        self._progress.tap(self._camera, item.frame, item.result)
        if self._rep is None:
            return
        out = item.result
        self._rep.collector.tap(self._camera, item.frame, out)  # the end's flush too
        if item.frame is not None:
            for stage, ms in {**out.stages_ms, "end_to_end": item.latency_ms}.items():
                self._stage_ms.setdefault(stage, deque(maxlen=_WINDOW)).append(ms)
        for event in (e for e in out.track_events if e.type == "new"):
            self._rep.publish(messages.track(event))
        for burst in out.bursts:
            self._rep.publish(messages.burst(burst))
        for event in (e for e in out.track_events if e.type == "end"):
            self._rep.publish(messages.track(event))

    def stats(self, result: SpotResult) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        # A whole stats/1 payload (the report reads it like a run's), with the counters a
        # file spotted offline cannot have at zero.
        none = percentiles(())
        return {"ts": round(time.time(), 3), "uptime_s": round(elapsed, 3),
                "frames": result.frames, "dropped": 0, "stale": 0, "errors": 0,
                "fps": round(result.frames / elapsed, 2), "reconnects": 0, "stalls": 0,
                "tracks": 0, "state": "running", "open_failures": 0,
                "bursts": len(result.bursts),
                "bursts_per_min": round(len(result.bursts) / max(elapsed / 60, 1 / 60), 2),
                "primary": None,
                "stages_ms": {s: percentiles(v) for s, v in self._stage_ms.items()},
                "publish_ms": none,
                "vlm": {"calls": 0, "failures": 0, "in_flight": 0, "latency_ms_p50": None,
                        "latency_ms_p95": None, "prompt_tokens_mean": None},
                "sinks": {}}
