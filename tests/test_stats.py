"""Run statistics on a manual clock: uptime, frame rate, bursts per minute and the timestamp
are exact, with no waiting."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from affectstream.clock import ManualClock
from affectstream.stats import RunStats
from affectstream.stream.capture import CaptureThread
from affectstream.stream.perception import FrameResult
from affectstream.types import Frame


class _Camera:
    """A live source that is never started (RunStats only reads the capture counters)."""

    description = "camera"
    is_live = True
    fps = 30.0

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        return Frame(0, 0.0, 0.0, np.zeros((2, 2, 3), np.uint8))

    def close(self) -> None: ...


class _Sinks:
    def stats(self) -> dict[str, dict[str, Any]]:
        return {"stdout": {"queued": 0}}


class _Perception:
    def __init__(self) -> None:
        self.tracks: dict[int, Any] = {1: object()}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=500.0, wall=1_800_000_000.0)


@pytest.fixture
def stats(clock: ManualClock) -> RunStats:
    return RunStats("cam0", CaptureThread(_Camera(), queue_size=2), _Sinks(), _Perception(),
                    clock=clock)


def test_uptime_fps_and_timestamp_follow_the_clock(stats: RunStats, clock: ManualClock) -> None:
    first = stats.payload()
    assert (first["uptime_s"], first["fps"], first["ts"]) == (0.0, 0.0, 1_800_000_000.0)
    for i in range(31):  # 10 frames per second for 3 s
        stats.frame_done(FrameResult(i, i / 10, 0.0, stages_ms={"detect": 4.0}), 0.02)
        clock.advance(0.1)
    out = stats.payload()
    assert out["frames"] == 31 and out["fps"] == pytest.approx(10.0)
    assert out["uptime_s"] == pytest.approx(3.1) and out["ts"] == pytest.approx(1_800_000_003.1)
    assert out["stages_ms"]["detect"] == {"p50": 4.0, "p95": 4.0}
    assert out["stages_ms"]["end_to_end"] == {"p50": 20.0, "p95": 20.0}
    assert (out["tracks"], out["sinks"]) == (1, {"stdout": {"queued": 0}})


def test_bursts_per_minute_over_the_last_minute(stats: RunStats, clock: ManualClock) -> None:
    clock.advance(0.5)
    stats.burst_published(0.01)
    # The first minute rates per minute of uptime, counting at least one second.
    assert stats.payload()["bursts_per_min"] == 60.0
    clock.advance(29.5)
    for _ in range(4):
        stats.burst_published(0.01)
    assert stats.payload()["bursts_per_min"] == pytest.approx(10.0)  # 5 in half a minute
    clock.advance(60.5)
    stats.burst_published(0.03)
    out = stats.payload()
    assert out["bursts_per_min"] == 1.0 and out["bursts"] == 6  # older ones left the minute
    assert out["publish_ms"]["p50"] == pytest.approx(10.0)


class _FlakyCamera(_Camera):
    """A source that reports health counters (SourceHealth), as files and streams do."""

    reconnects, stalls, errors = 2, 3, 17


def test_source_errors_reconnects_and_stalls_are_reported(clock: ManualClock) -> None:
    out = RunStats("cam0", CaptureThread(_FlakyCamera(), queue_size=2), _Sinks(), _Perception(),
                   clock=clock).payload()
    assert (out["errors"], out["reconnects"], out["stalls"]) == (17, 2, 3)
