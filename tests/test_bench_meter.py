"""BenchMeter: what ``bench`` counts and how it times it, on a clock the test moves."""

from __future__ import annotations

import pytest

from affectstream.benchmark import BenchMeter
from affectstream.clock import ManualClock
from affectstream.types import FrameResult


def _result(i: int) -> FrameResult:
    return FrameResult(i, i / 30, 0.0, stages_ms={"detect": 2.0 + i, "spot": 1.0})


def _feed(meter: BenchMeter, clock: ManualClock, n: int, dt: float) -> list[bool]:
    done = []
    for i in range(n):
        clock.advance(dt)
        done.append(meter.add(_result(i), latency_ms=10.0 + i))
    return done


@pytest.mark.parametrize("warmup", [0, 1, 5])
def test_fps_counts_measured_frames_over_their_time(warmup: int) -> None:
    clock = ManualClock(start=0.0)
    meter = BenchMeter(10, warmup, clock=clock.monotonic)
    done = _feed(meter, clock, warmup + 12, dt=0.05)  # two frames too many: ignored
    assert done.index(True) == warmup + 9
    report = meter.report(["CPUExecutionProvider"])
    # the clock starts when the warm-up ends (at creation without warm-up): 10 frames, 0.5 s
    assert report["frames"] == 10 and report["fps"] == pytest.approx(20.0)
    assert report["warmup_frames"] == warmup
    assert set(report["stages_ms"]) == {"detect", "spot"}  # stages that never ran left out
    assert report["end_to_end_ms"]["p50"] == pytest.approx(10.0 + warmup + 4.5)


def test_the_final_flush_and_no_frames_count_nothing() -> None:
    clock = ManualClock(start=0.0)
    meter = BenchMeter(None, 0, decode=True, clock=clock.monotonic)
    assert meter.add(FrameResult(0, 0.0, 0.0), latency_ms=1.0) is False  # flush: no stages
    report = meter.report([])
    assert report["frames"] == 0 and report["fps"] == 0.0 and report["stages_ms"] == {}
    assert report["end_to_end_ms"] == {"p50": None, "p95": None}


def test_decode_times_are_kept_when_asked() -> None:
    clock = ManualClock(start=0.0)
    meter = BenchMeter(None, 0, decode=True, clock=clock.monotonic)
    clock.advance(0.1)
    meter.add(_result(0), latency_ms=5.0, decode_ms=3.0)
    assert meter.report([])["stages_ms"]["decode"] == {"p50": 3.0, "p95": 3.0}


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="warmup"):
        BenchMeter(0, 5)
