"""The capture thread: drop policies, back-pressure, realtime pacing, errors and shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import ConfigError, SourceError
from affectstream.stream.capture import CaptureStats, CaptureThread
from affectstream.stream.sources import FileSource
from affectstream.types import Frame

pytestmark = pytest.mark.timeout(60)


class FakeCamera:
    """A live camera stand-in: frames at a fixed rate, each image filled with its index % 256."""

    description = "fake camera"
    is_live = True

    def __init__(self, fps: float = 500.0, frames: int | None = None,
                 fail_at: int | None = None, error: Exception | None = None) -> None:
        self.fps = fps
        self.frames, self.fail_at, self.error = frames, fail_at, error
        self.opened = self.closed = False
        self.reconnects, self.stalls, self.errors = 2, 1, 3
        self._interrupted = threading.Event()
        self._next = 0
        self._t0 = 0.0

    def open(self) -> None:
        self.opened = True
        self._t0 = time.monotonic()

    def read(self) -> Frame | None:
        if self.frames is not None and self._next >= self.frames:
            return None
        if self._next == self.fail_at and self.error is not None:
            raise self.error
        due = self._t0 + self._next / self.fps
        if self._interrupted.wait(max(0.0, due - time.monotonic())):
            return None
        image = np.full((8, 8, 3), self._next % 256, np.uint8)
        frame = Frame(self._next, self._next / self.fps, time.time(), image)
        self._next += 1
        return frame

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self.closed = True


def drain(capture: CaptureThread, delay_s: float = 0.0) -> list[Frame]:
    frames: list[Frame] = []
    while (frame := capture.read(timeout=10)) is not None:
        frames.append(frame)
        time.sleep(delay_s)  # a slow consumer
    return frames


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_block_never_drops_with_a_slow_consumer(media_dir: Path) -> None:
    source = FileSource(media_dir / "single_face.mp4")
    with CaptureThread(source, queue_size=2, realtime=False) as capture:
        assert capture.policy == "block"
        frames = drain(capture, delay_s=0.005)
        assert capture.read() is None
        stats = capture.stats
    assert [f.index for f in frames] == list(range(72))
    assert stats == CaptureStats(frames_read=72, frames_delivered=72, dropped=0)


def test_drop_oldest_keeps_the_freshest_and_counts_drops() -> None:
    camera = FakeCamera(fps=500.0, frames=200)
    with CaptureThread(camera, queue_size=4) as capture:
        assert capture.policy == "drop_oldest"
        frames = drain(capture, delay_s=0.01)
        stats = capture.stats
    indices = [f.index for f in frames]
    assert indices == sorted(indices) and indices[-1] == 199
    assert stats.dropped > 0
    assert stats.frames_read == 200 == stats.frames_delivered + stats.dropped
    assert stats.frames_delivered == len(frames)


@pytest.mark.parametrize(("policy", "kept"), [("drop_oldest", [97, 98, 99]),
                                              ("drop_newest", [0, 1, 2])])
def test_drop_policies_with_a_stalled_consumer(policy: str, kept: list[int]) -> None:
    with CaptureThread(FakeCamera(frames=100), queue_size=3, policy=policy) as capture:
        wait_until(lambda: capture.stats.frames_read == 100)  # capture never waited for us
        assert [f.index for f in drain(capture)] == kept
        assert capture.stats.dropped == 97


def test_read_latest_skips_to_the_newest_frame() -> None:
    with CaptureThread(FakeCamera(frames=50), queue_size=8) as capture:
        wait_until(lambda: capture.stats.frames_read == 50)
        latest = capture.read_latest(timeout=5)
        assert latest is not None and latest.index == 49
        assert capture.read_latest(timeout=5) is None
        stats = capture.stats
    assert stats.dropped == 49 and stats.frames_delivered == 1


def test_realtime_pacing_follows_the_clip_clock(media_dir: Path) -> None:
    source = FileSource(media_dir / "single_face.mp4")
    start = time.monotonic()
    with CaptureThread(source, queue_size=8, realtime=True, max_frames=30) as capture:
        frames = drain(capture)
    elapsed = time.monotonic() - start
    assert len(frames) == 30
    duration = frames[-1].pts_s - frames[0].pts_s  # 29 frame intervals ≈ 0.97 s
    assert elapsed >= 0.8 * duration
    assert frames[-1].ts - frames[0].ts >= 0.8 * duration  # ts is the paced delivery time


def test_live_sources_are_never_paced() -> None:
    assert not CaptureThread(FakeCamera(), queue_size=2, realtime=True).realtime


def test_no_realtime_runs_faster_than_the_clip(media_dir: Path) -> None:
    source = FileSource(media_dir / "single_face.mp4")
    start = time.monotonic()
    with CaptureThread(source, queue_size=8, realtime=False) as capture:
        frames = drain(capture)
    assert len(frames) == 72
    assert time.monotonic() - start < 0.8 * 72 / 30


def test_max_frames_ends_a_looped_file(media_dir: Path) -> None:
    source = FileSource(media_dir / "single_face.mp4", loop=True)
    with CaptureThread(source, queue_size=4, realtime=False, max_frames=100) as capture:
        frames = drain(capture)
    assert [f.index for f in frames] == list(range(100))


def test_stop_is_idempotent_and_unblocks_a_blocked_producer(media_dir: Path) -> None:
    capture = CaptureThread(FileSource(media_dir / "single_face.mp4"), queue_size=1,
                            realtime=False)
    capture.start()
    wait_until(lambda: capture.stats.frames_read >= 2)  # queue full: the producer waits
    start = time.monotonic()
    capture.stop()
    capture.stop()
    assert time.monotonic() - start < 2.0
    assert capture.read() is None
    assert capture.read_latest() is None


def test_stop_interrupts_a_waiting_live_source() -> None:
    camera = FakeCamera(fps=0.1)  # the second frame is 10 s away
    capture = CaptureThread(camera, queue_size=2)
    capture.start()
    assert capture.read(timeout=5) is not None
    with pytest.raises(TimeoutError):
        capture.read(timeout=0.05)
    start = time.monotonic()
    capture.stop()
    assert time.monotonic() - start < 2.0
    assert camera.closed


def test_stop_without_start_closes_the_source() -> None:
    camera = FakeCamera()
    CaptureThread(camera, queue_size=2).stop()
    assert camera.closed


def test_source_health_counters_are_reported() -> None:
    with CaptureThread(FakeCamera(frames=3), queue_size=4) as capture:
        drain(capture)
        stats = capture.stats
    assert (stats.reconnects, stats.stalls, stats.errors) == (2, 1, 3)


def test_a_fatal_source_error_reaches_the_consumer_after_its_frames() -> None:
    camera = FakeCamera(fail_at=3, error=SourceError("camera exploded; replug it"))
    with CaptureThread(camera, queue_size=8, policy="block") as capture:
        frames = [capture.read(timeout=5) for _ in range(3)]
        with pytest.raises(SourceError, match=r"^camera exploded; replug it$"):
            capture.read(timeout=5)
        assert capture.stats.errors == 3 + 1
    assert [f.index for f in frames if f is not None] == [0, 1, 2]
    assert camera.closed


def test_an_unexpected_error_is_reraised_as_source_error() -> None:
    camera = FakeCamera(fail_at=0, error=RuntimeError("boom"))
    with CaptureThread(camera, queue_size=2) as capture, \
            pytest.raises(SourceError, match="RuntimeError: boom"):
        capture.read(timeout=5)


def test_start_raises_for_a_bad_source(tmp_path: Path) -> None:
    capture = CaptureThread(FileSource(tmp_path / "missing.mp4"), queue_size=2)
    with pytest.raises(SourceError, match="not found"):
        capture.start()


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown drop policy"):
        CaptureThread(FakeCamera(), queue_size=2, policy="drop_everything")
    with pytest.raises(ConfigError, match="queue_size"):
        CaptureThread(FakeCamera(), queue_size=0)
