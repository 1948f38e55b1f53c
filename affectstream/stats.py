"""Run statistics for the ``stats`` message (DESIGN §5): counters and rolling percentiles.

Written by the perception worker thread and read by the event loop, so every update and read
holds one lock; all windows are bounded deques. Time comes from a :class:`Clock` so tests can
check rates and uptime with a :class:`~affectstream.clock.ManualClock`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.percentiles import percentiles
from affectstream.stream.capture import CaptureStats, CaptureThread
from affectstream.types import STAGES, FrameResult

_WINDOW = 600


class _SinkStats(Protocol):
    def stats(self) -> dict[str, dict[str, Any]]: ...


class _Tracks(Protocol):
    @property
    def tracks(self) -> dict[int, Any]: ...


_BUILT_IN_SECTIONS = ("vlm",)
"""Stats sections of the built-in estimators, documented in the stats message's model."""


class RunStats:
    def __init__(self, camera: str, capture: CaptureThread | None, sinks: _SinkStats,
                 perception: _Tracks | None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        """``capture`` and ``perception`` are None while the camera is still being opened
        (:meth:`attach` them once it is)."""
        self.camera = camera
        self._clock = clock
        self._capture = capture
        self._sinks = sinks
        self._perception = perception
        self.open_failures = 0
        """Failed attempts to open the camera (a camera of several is retried until it opens)."""
        self._lock = threading.Lock()
        self._start = clock.monotonic()
        self._frames = 0
        self._bursts = 0
        self.tracks_seen = 0
        self._stage_ms = {s: deque[float](maxlen=_WINDOW) for s in STAGES}
        self._latency_ms: deque[float] = deque(maxlen=_WINDOW)
        self._publish_ms: deque[float] = deque(maxlen=_WINDOW)
        self._frame_times: deque[float] = deque(maxlen=150)
        self._burst_times: deque[float] = deque(maxlen=10_000)
        self.sections: list[Callable[[], dict[str, Any]]] = []
        """Extra sections of the payload (the emotion estimators' counters, e.g. ``vlm``)."""
        self.primary: dict[str, Any] | None = None
        """The primary (largest) face's latest emotion: track_id, label, valence."""

    def frame_done(self, result: FrameResult, latency_s: float) -> None:
        with self._lock:
            self._frames += 1
            self._frame_times.append(self._clock.monotonic())
            for stage, ms in result.stages_ms.items():
                if stage in self._stage_ms:
                    self._stage_ms[stage].append(ms)
            self._latency_ms.append(latency_s * 1000)

    def track_event(self, kind: str) -> None:
        if kind == "new":
            with self._lock:
                self.tracks_seen += 1

    def burst_published(self, delay_s: float) -> None:
        with self._lock:
            self._bursts += 1
            self._publish_ms.append(delay_s * 1000)
            self._burst_times.append(self._clock.monotonic())

    def _fps(self) -> float:
        times = self._frame_times
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return round((len(times) - 1) / (times[-1] - times[0]), 2)

    def _bursts_per_min(self) -> float:
        """Bursts in the last minute (or per minute of uptime during the first minute)."""
        now = self._clock.monotonic()
        while self._burst_times and now - self._burst_times[0] > 60.0:
            self._burst_times.popleft()
        minutes = min(60.0, max(now - self._start, 1.0)) / 60.0
        return round(len(self._burst_times) / minutes, 2)

    def attach(self, capture: CaptureThread, perception: _Tracks) -> None:
        self._capture, self._perception = capture, perception

    def payload(self) -> dict[str, Any]:
        cap = self._capture.stats if self._capture is not None else CaptureStats()
        with self._lock:
            stages = {s: percentiles(v) for s, v in self._stage_ms.items()}
            stages["end_to_end"] = percentiles(self._latency_ms)
            return {
                "ts": round(self._clock.time(), 3),
                "uptime_s": round(self._clock.monotonic() - self._start, 3),
                "frames": self._frames,
                "dropped": cap.dropped,
                "stale": cap.stale,
                # Undecodable frames, failed reads and reconnect attempts of the source.
                "errors": cap.errors,
                "fps": self._fps(),
                "reconnects": cap.reconnects,
                "stalls": cap.stalls,
                "tracks": len(self._perception.tracks) if self._perception is not None else 0,
                "state": "running" if self._capture is not None else "opening",
                "open_failures": self.open_failures,
                "bursts": self._bursts,
                "bursts_per_min": self._bursts_per_min(),
                "primary": self.primary,
                "stages_ms": stages,
                "publish_ms": percentiles(self._publish_ms),
                "vlm": {"calls": 0, "failures": 0, "in_flight": 0, "latency_ms_p50": None,
                        "latency_ms_p95": None, "prompt_tokens_mean": None},
                "sinks": self._sinks.stats(),
            } | self._sections()

    def _sections(self) -> dict[str, Any]:
        """The estimators' sections: the built-in ones in their documented place, any other
        (an estimator registered by another package) under ``estimators``."""
        out: dict[str, Any] = {"estimators": {}}
        for section in self.sections:
            for key, value in section().items():
                if key in _BUILT_IN_SECTIONS:
                    out[key] = value
                else:
                    out["estimators"][key] = value
        return out
