"""``affectstream bench``: throughput and per-stage latency, of perception alone or of the whole
run pipeline.

- :func:`bench_file` times perception alone, in one thread with detection running ahead, on
  every frame of a file (looped up to the requested frames).
- :func:`bench_pipeline` (``--pipeline full``) runs the real :class:`~affectstream.app.Runner`
  on the file, looped and as fast as possible (capture thread, perception worker, event loop
  with the emotion stage: FACS rules, the specialist or the VLM scheduler and its requests),
  with no sinks, so the cost of the emotion stage on perception can be measured.
  ``end_to_end_ms`` is then capture → result published, queueing included.

Both measure with one :class:`BenchMeter` and report the same fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affectstream.config import Config
from affectstream.onnx import pick_providers
from affectstream.percentiles import percentiles
from affectstream.types import STAGES, FrameResult


class BenchMeter:
    """Counts and times measured frames: the first ``warmup`` frames (model warm-up, first
    track set-up) are not measured and the clock starts when the last of them is done (with no
    warm-up, when the meter is created); measuring ends after ``frames`` frames (None: never,
    the source ends)."""

    def __init__(self, frames: int | None, warmup: int, *, decode: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if warmup < 0 or (frames is not None and frames < 1):
            raise ValueError(f"need warmup ≥ 0 and frames ≥ 1, got {warmup}, {frames}")
        self.frames, self.warmup = frames, warmup
        self._clock = clock
        self.seen = 0
        self.started: float | None = clock() if warmup == 0 else None
        self.ended: float | None = None
        self.stage_ms: dict[str, list[float]] = {s: [] for s in
                                                 (("decode",) if decode else ()) + STAGES}
        self.e2e_ms: list[float] = []
        self.faces = self.bursts = 0

    @property
    def done(self) -> bool:
        return self.ended is not None

    @property
    def measured(self) -> int:
        return max(0, self.seen - self.warmup)

    def add(self, result: FrameResult, latency_ms: float, decode_ms: float | None = None
            ) -> bool:
        """Count one frame's result; True once the last measured frame is in. The end-of-
        stream flush (no stages) and frames after the end are ignored."""
        if not result.stages_ms or self.done:
            return self.done
        self.seen += 1
        if self.seen <= self.warmup:
            if self.seen == self.warmup:
                self.started = self._clock()
            return False
        if decode_ms is not None and "decode" in self.stage_ms:
            self.stage_ms["decode"].append(decode_ms)
        for stage, ms in result.stages_ms.items():
            self.stage_ms.setdefault(stage, []).append(ms)
        self.e2e_ms.append(latency_ms)
        self.faces += len(result.faces)
        self.bursts += len(result.bursts)
        if self.frames is not None and self.measured == self.frames:
            self.ended = self._clock()
        return self.done

    def report(self, providers: list[str]) -> dict[str, Any]:
        """The bench report: fps over the measured frames and their latency percentiles."""
        elapsed = (self.ended if self.ended is not None else self._clock()) - (
            self.started if self.started is not None else self._clock())
        return {
            "fps": round(self.measured / elapsed, 2) if self.measured and elapsed > 0 else 0.0,
            "frames": self.measured,
            "warmup_frames": self.warmup,
            "faces": self.faces,
            "bursts": self.bursts,
            # a stage that never ran (classify without a specialist) is left out
            "stages_ms": {s: percentiles(v) for s, v in self.stage_ms.items() if v},
            "end_to_end_ms": percentiles(self.e2e_ms),
            "providers": providers,
        }


def bench_file(cfg: Config, model_paths: dict[str, Path], path: Path, frames: int | None,
               warmup: int = 5) -> dict[str, Any]:
    """Perception alone on every frame of a file (looped up to ``frames`` measured frames,
    after ``warmup`` frames)."""
    from affectstream.stream.offline import perceive_file

    meter = BenchMeter(frames, warmup, decode=True)
    limit = None if frames is None else frames + warmup
    for item in perceive_file(cfg, model_paths, path, limit=limit, loop=frames is not None):
        if item.frame is None or meter.add(item.result, item.latency_ms, item.decode_ms):
            break
    return meter.report(pick_providers(cfg.detector.providers))


def bench_pipeline(cfg: Config, path: Path, frames: int = 300,
                   warmup: int = 5) -> dict[str, Any]:
    """The full pipeline on ``path`` for ``frames`` measured frames (after ``warmup``)."""
    from affectstream.app import Runner

    source = cfg.source.model_copy(update={"url": str(path), "realtime": False, "loop": True,
                                           "drop_policy": "block"})
    cfg = cfg.model_copy(update={"source": source, "sinks": [], "max_seconds": None})
    meter = BenchMeter(frames, warmup)
    runner = Runner(cfg, on_result=lambda result: _measure(meter, result, runner.request_stop))
    summary = runner.run_sync()
    return {**meter.report(pick_providers(cfg.detector.providers)), "pipeline": "full",
            "emotion_source": _emotion_source(cfg), "vlm": summary.stats.get("vlm")}


def _measure(meter: BenchMeter, result: FrameResult, stop: Callable[[], None]) -> None:
    if meter.add(result, (time.time() - result.ts) * 1000):
        stop()  # thread-safe; frames already in flight are ignored by the meter


def _emotion_source(cfg: Config) -> str:
    if cfg.vlm.type != "none":
        return f"vlm ({cfg.vlm.type})"
    return "specialist" if cfg.specialist.enabled else "facs"
