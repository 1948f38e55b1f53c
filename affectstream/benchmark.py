"""``bench --pipeline full``: throughput of the whole run pipeline on a file, emotion stage
included, so the cost of the VLM stage on perception can be measured (with and without it).

The plain ``bench`` (:func:`affectstream.stream.offline.bench_file`) times perception alone in
one thread. Here the real :class:`~affectstream.app.Runner` runs the file looped and as fast as
possible (capture thread, perception worker, event loop with the emotion stage: FACS rules,
the specialist or the VLM scheduler and its requests) with no sinks, and stops after the
requested frames. ``end_to_end_ms`` is then capture → result published, queueing included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affectstream.config import Config
from affectstream.onnx import pick_providers
from affectstream.stream.offline import percentiles
from affectstream.types import STAGES, FrameResult


class _Meter:
    """Counts and times the frames the runner publishes; asks it to stop after ``frames``."""

    def __init__(self, frames: int, warmup: int) -> None:
        self.frames, self.warmup = frames, warmup
        self.seen = 0
        self.started = self.ended = 0.0
        self.stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
        self.e2e_ms: list[float] = []
        self.faces = self.bursts = 0
        self.stop: Callable[[], None] = lambda: None

    def __call__(self, result: FrameResult) -> None:
        if not result.stages_ms or self.seen >= self.warmup + self.frames:
            return  # the end-of-stream flush, or frames already in flight at the stop
        self.seen += 1
        if self.seen == self.warmup:
            self.started = time.perf_counter()
        elif self.seen > self.warmup:
            for stage, ms in result.stages_ms.items():
                self.stage_ms[stage].append(ms)
            self.e2e_ms.append((time.time() - result.ts) * 1000)
            self.faces += len(result.faces)
            self.bursts += len(result.bursts)
            if self.seen == self.warmup + self.frames:
                self.ended = time.perf_counter()
                self.stop()


def bench_pipeline(cfg: Config, path: Path, frames: int = 300,
                   warmup: int = 5) -> dict[str, Any]:
    """Run the full pipeline on ``path`` for ``frames`` measured frames (after ``warmup``)."""
    from affectstream.app import Runner

    source = cfg.source.model_copy(update={"url": str(path), "realtime": False, "loop": True,
                                           "drop_policy": "block"})
    cfg = cfg.model_copy(update={"source": source, "sinks": [], "max_seconds": None})
    meter = _Meter(frames, warmup)
    runner = Runner(cfg, on_result=meter)
    meter.stop = runner.request_stop
    summary = runner.run_sync()
    measured = max(0, meter.seen - warmup)
    elapsed = max((meter.ended or time.perf_counter()) - meter.started, 1e-9)
    return {
        "fps": round(measured / elapsed, 2) if measured else 0.0,
        "frames": measured,
        "warmup_frames": warmup,
        "faces": meter.faces,
        "bursts": meter.bursts,
        "stages_ms": {s: percentiles(v) for s, v in meter.stage_ms.items()},
        "end_to_end_ms": percentiles(meter.e2e_ms),
        "providers": pick_providers(cfg.detector.providers),
        "pipeline": "full",
        "emotion_source": _emotion_source(cfg),
        "vlm": summary.stats.get("vlm"),
    }


def _emotion_source(cfg: Config) -> str:
    if cfg.vlm.type != "none":
        return f"vlm ({cfg.vlm.type})"
    return "specialist" if cfg.specialist.enabled else "facs"
