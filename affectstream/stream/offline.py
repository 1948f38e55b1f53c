"""Offline passes over a file with the live perception code: ``spot`` and ``bench``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.config import Config
from affectstream.onnx import pick_providers
from affectstream.stream.perception import Perception, SampleObserver
from affectstream.stream.pipeline import DetectAhead
from affectstream.stream.sources import FileSource
from affectstream.types import STAGES, Burst, Frame, FrameResult, TrackEvent


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


@dataclass(frozen=True, slots=True)
class Perceived:
    """One frame's result from :func:`perceive_file`; ``frame`` is None for the final flush."""

    frame: Frame | None
    result: FrameResult
    decode_ms: float = 0.0
    latency_ms: float = 0.0
    """From the start of decoding the frame to its result (detection runs ahead in a thread)."""


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
    ahead: DetectAhead | None = None
    try:
        perception = Perception(cfg, model_paths, source.fps, secrets.token_hex(3),
                                still_image=source.is_still, observer=observer)
        ahead = DetectAhead(_reader(source, limit), perception.detect)
        last = None
        for item in ahead:
            result = perception.process(item.frame, item.detections, item.detect_ms)
            latency = (time.perf_counter() - item.started) * 1000
            yield Perceived(item.frame, result, item.read_ms, latency)
            last = item.frame
        yield Perceived(None, perception.finish(last))
    finally:
        if ahead is not None:
            ahead.close()
        if perception is not None:
            perception.close()
        source.close()


def spot_file(cfg: Config, model_paths: dict[str, Path], path: Path) -> SpotResult:
    probe = FileSource(path)
    probe.open()
    result = SpotResult(fps=round(probe.fps, 3), frames=0)
    probe.close()
    for item in perceive_file(cfg, model_paths, path):
        out = item.result
        if item.frame is not None:
            result.frames += 1
        for face in out.faces:
            result.frames_with_track[face.track_id] = \
                result.frames_with_track.get(face.track_id, 0) + 1
        result.bursts.extend(out.bursts)
        result.track_events.extend(out.track_events)
    return result


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values or [0.0], np.float64)
    return {"p50": round(float(np.percentile(arr, 50)), 3),
            "p95": round(float(np.percentile(arr, 95)), 3)}


def bench_file(cfg: Config, model_paths: dict[str, Path], path: Path, frames: int | None,
               warmup: int = 5) -> dict[str, Any]:
    """Throughput and per-stage latency on every frame of a file (looped up to ``frames``
    measured frames, after ``warmup`` frames of model warm-up and first-track setup)."""
    stage_ms: dict[str, list[float]] = {s: [] for s in ("decode", *STAGES)}
    e2e: list[float] = []
    faces = bursts = count = 0
    started = time.perf_counter()
    limit = None if frames is None else frames + warmup
    for i, item in enumerate(perceive_file(cfg, model_paths, path, limit=limit,
                                           loop=frames is not None)):
        if item.frame is None:
            break
        if i == warmup:
            started = time.perf_counter()
        if i >= warmup:
            count += 1
            stage_ms["decode"].append(item.decode_ms)
            for stage, ms in item.result.stages_ms.items():
                stage_ms[stage].append(ms)
            e2e.append(item.latency_ms)
        faces += len(item.result.faces)
        bursts += len(item.result.bursts)
    elapsed = max(time.perf_counter() - started, 1e-9)
    return {
        "fps": round(count / elapsed, 2),
        "frames": count,
        "warmup_frames": warmup,
        "faces": faces,
        "bursts": bursts,
        "stages_ms": {s: percentiles(v) for s, v in stage_ms.items()},
        "end_to_end_ms": percentiles(e2e),
        "providers": pick_providers(cfg.detector.providers),
    }
