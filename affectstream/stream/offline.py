"""Offline passes over a file with the live perception code: ``spot`` and ``bench``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.config import Config
from affectstream.stream.perception import STAGES, FrameResult, Perception
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


def _frames(path: Path, limit: int | None, loop: bool) -> Iterator[tuple[Frame, float]]:
    """Decoded frames with their decode time in ms."""
    source = FileSource(path, loop=loop)
    source.open()
    try:
        count = 0
        while limit is None or count < limit:
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                return
            yield frame, (time.perf_counter() - t0) * 1000
            count += 1
    finally:
        source.close()


def perceive_file(cfg: Config, model_paths: dict[str, Path], path: Path, *,
                  limit: int | None = None, loop: bool = False,
                  ) -> Iterator[tuple[Frame | None, FrameResult, float]]:
    """Every frame of a file through :class:`Perception`; the last item is the final flush
    (frame None). Yields (frame, result, decode_ms)."""
    probe = FileSource(path)
    probe.open()
    fps, still = probe.fps, probe.is_still
    probe.close()
    perception = Perception(cfg, model_paths, fps, secrets.token_hex(3), still_image=still)
    try:
        last = None
        for frame, decode_ms in _frames(path, limit, loop):
            yield frame, perception.process(frame), decode_ms
            last = frame
        yield None, perception.finish(last), 0.0
    finally:
        perception.close()


def spot_file(cfg: Config, model_paths: dict[str, Path], path: Path) -> SpotResult:
    probe = FileSource(path)
    probe.open()
    result = SpotResult(fps=round(probe.fps, 3), frames=0)
    probe.close()
    for frame, out, _ in perceive_file(cfg, model_paths, path):
        if frame is not None:
            result.frames += 1
        for face in out.faces:
            result.frames_with_track[face.track_id] = \
                result.frames_with_track.get(face.track_id, 0) + 1
        result.bursts.extend(out.bursts)
        result.track_events.extend(out.track_events)
    return result


def _pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values or [0.0], np.float64)
    return {"p50": round(float(np.percentile(arr, 50)), 3),
            "p95": round(float(np.percentile(arr, 95)), 3)}


def bench_file(cfg: Config, model_paths: dict[str, Path], path: Path, frames: int | None,
               warmup: int = 5) -> dict[str, Any]:
    """Throughput and per-stage latency on every frame of a file (looped up to ``frames``)."""
    stage_ms: dict[str, list[float]] = {s: [] for s in ("decode", *STAGES)}
    e2e: list[float] = []
    faces = bursts = count = 0
    providers: list[str] = []
    started = time.perf_counter()
    t_prev = started
    for i, (frame, out, decode_ms) in enumerate(
            perceive_file(cfg, model_paths, path, limit=frames, loop=frames is not None)):
        now = time.perf_counter()
        if frame is None:
            break
        if i == warmup:
            started = t_prev  # model warm-up and first-track setup are not throughput
        if i >= warmup:
            count += 1
            stage_ms["decode"].append(decode_ms)
            for stage, ms in out.stages_ms.items():
                stage_ms[stage].append(ms)
            e2e.append((now - t_prev) * 1000)
        faces += len(out.faces)
        bursts += len(out.bursts)
        t_prev = now
    elapsed = max(t_prev - started, 1e-9)
    from affectstream.detectors.face import pick_providers

    providers = pick_providers(cfg.detector.providers)
    return {
        "fps": round(count / elapsed, 2),
        "frames": count,
        "warmup_frames": warmup,
        "faces": faces,
        "bursts": bursts,
        "stages_ms": {s: _pct(v) for s, v in stage_ms.items()},
        "end_to_end_ms": _pct(e2e),
        "providers": providers,
    }
