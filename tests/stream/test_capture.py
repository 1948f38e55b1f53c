"""The capture thread: drop policies, back-pressure, realtime pacing, errors and shutdown.

Deterministic: the fake camera hands out frames only when the test releases them, and realtime
pacing runs on a :class:`ManualClock`, so no test sleeps or bounds the wall clock."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest

from affectstream.clock import ManualClock
from affectstream.errors import ConfigError, SourceError
from affectstream.stream.capture import CaptureStats, CaptureThread
from affectstream.stream.sources import FileSource
from affectstream.types import Frame

pytestmark = pytest.mark.timeout(60)
WAIT_S = 10.0
"""Generous bound on waiting for the capture thread to reach a state (it takes microseconds)."""


class FakeCamera:
    """A live camera stand-in whose frames arrive when the test says so: frame k is filled with
    k % 256 and comes once ``k < released`` (all at once unless ``released`` is given), like a
    camera whose next frame is not there yet. :meth:`interrupt` ends a waiting read."""

    description = "fake camera"
    is_live = True

    def __init__(self, frames: int | None = None, released: int | None = None,
                 fail_at: int | None = None, error: Exception | None = None) -> None:
        self.frames, self.fail_at, self.error = frames, fail_at, error
        self.released = released
        self.opened = self.closed = False
        self.reconnects, self.stalls, self.errors = 2, 1, 3
        self.asked = 0
        """Reads started: the capture thread has queued every frame before the last one asked."""
        self._cond = threading.Condition()
        self._interrupted = False
        self._next = 0

    def open(self) -> None:
        self.opened = True

    def read(self) -> Frame | None:
        with self._cond:
            self.asked += 1
            self._cond.notify_all()
            if self.frames is not None and self._next >= self.frames:
                return None
            if self._next == self.fail_at and self.error is not None:
                raise self.error
            self._cond.wait_for(lambda: self._interrupted or self.released is None
                                or self._next < self.released)
            if self._interrupted:
                return None
            image = np.full((8, 8, 3), self._next % 256, np.uint8)
            frame = Frame(self._next, self._next / 30, 1_700_000_000.0 + self._next / 30, image)
            self._next += 1
            return frame

    def release(self, n: int) -> None:
        """Let ``n`` more frames arrive."""
        with self._cond:
            self.released = (self.released or 0) + n
            self._cond.notify_all()

    def wait_asked(self, n: int) -> None:
        """Until the capture thread asks for its ``n``-th frame, i.e. has queued (or dropped)
        the ``n - 1`` before it."""
        with self._cond:
            assert self._cond.wait_for(lambda: self.asked >= n, WAIT_S), (
                f"capture asked for {self.asked} frames, not {n}")

    def interrupt(self) -> None:
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    def close(self) -> None:
        self.closed = True


def drain(capture: CaptureThread) -> list[Frame]:
    frames: list[Frame] = []
    while (frame := capture.read(timeout=WAIT_S)) is not None:
        frames.append(frame)
    return frames


def test_files_default_to_block_and_live_sources_to_drop_oldest(media_dir: Path) -> None:
    assert CaptureThread(FileSource(media_dir / "single_face.mp4"), queue_size=2).policy == "block"
    assert CaptureThread(FakeCamera(), queue_size=2).policy == "drop_oldest"


def test_block_never_drops_with_a_slow_consumer() -> None:
    camera = FakeCamera(frames=20)
    with CaptureThread(camera, queue_size=2, policy="block") as capture:
        frames: list[Frame] = []
        for k in range(20):
            # Read only once the producer holds frame k + 2 with the queue full: it must wait.
            camera.wait_asked(min(k + 3, 21))
            frame = capture.read(timeout=WAIT_S)
            assert frame is not None
            frames.append(frame)
        assert capture.read(timeout=WAIT_S) is None
        stats = capture.stats
    assert [f.index for f in frames] == list(range(20))
    assert stats == CaptureStats(frames_read=20, frames_delivered=20, dropped=0,
                                 reconnects=2, stalls=1, errors=3)


def test_drop_oldest_keeps_the_freshest_and_counts_drops() -> None:
    camera = FakeCamera(frames=10, released=0)
    with CaptureThread(camera, queue_size=4) as capture:
        camera.release(6)
        camera.wait_asked(7)  # 0..5 arrived, the queue kept 2..5
        first = capture.read(timeout=WAIT_S)
        camera.release(4)
        camera.wait_asked(11)  # 6..9 pushed out 3..5
        frames = [first, *drain(capture)]
        stats = capture.stats
    assert [f.index for f in frames if f is not None] == [2, 6, 7, 8, 9]
    assert (stats.frames_read, stats.frames_delivered, stats.dropped) == (10, 5, 5)


@pytest.mark.parametrize(("policy", "kept"), [("drop_oldest", [97, 98, 99]),
                                              ("drop_newest", [0, 1, 2])])
def test_drop_policies_with_a_stalled_consumer(policy: str, kept: list[int]) -> None:
    camera = FakeCamera(frames=100)
    with CaptureThread(camera, queue_size=3, policy=policy) as capture:
        camera.wait_asked(101)  # capture never waited for us
        assert [f.index for f in drain(capture)] == kept
        assert capture.stats.dropped == 97


def test_read_latest_skips_to_the_newest_frame() -> None:
    camera = FakeCamera(frames=50)
    with CaptureThread(camera, queue_size=8) as capture:
        camera.wait_asked(51)
        latest = capture.read_latest(timeout=WAIT_S)
        assert latest is not None and latest.index == 49
        assert capture.read_latest(timeout=WAIT_S) is None
        stats = capture.stats
    assert stats.dropped == 49 and stats.frames_delivered == 1


def test_realtime_pacing_follows_the_clip_clock(media_dir: Path) -> None:
    clock = ManualClock()
    source = FileSource(media_dir / "single_face.mp4")
    with CaptureThread(source, queue_size=8, realtime=True, max_frames=30,
                       clock=clock) as capture:
        frames = drain(capture)
    assert len(frames) == 30
    pts = [f.pts_s - frames[0].pts_s for f in frames]  # 29 frame intervals ≈ 0.97 s
    steps = [b - a for a, b in itertools.pairwise(pts)]
    assert clock.slept == pytest.approx(steps, abs=1e-9)  # each frame waited for its time
    # ts is the paced delivery time, on the clock's wall time.
    assert frames[0].ts == pytest.approx(clock.time() - pts[-1], abs=1e-5)
    assert [f.ts - frames[0].ts for f in frames] == pytest.approx(pts, abs=1e-5)


def test_live_sources_are_never_paced() -> None:
    assert not CaptureThread(FakeCamera(), queue_size=2, realtime=True).realtime


def test_no_realtime_never_waits(media_dir: Path) -> None:
    clock = ManualClock()
    source = FileSource(media_dir / "single_face.mp4")
    with CaptureThread(source, queue_size=8, realtime=False, clock=clock) as capture:
        frames = drain(capture)
    assert len(frames) == 72
    assert clock.slept == [] and clock.monotonic() == ManualClock().monotonic()


def test_max_frames_ends_a_looped_file(media_dir: Path) -> None:
    source = FileSource(media_dir / "single_face.mp4", loop=True)
    with CaptureThread(source, queue_size=4, realtime=False, max_frames=100) as capture:
        frames = drain(capture)
    assert [f.index for f in frames] == list(range(100))


def test_stop_is_idempotent_and_unblocks_a_blocked_producer() -> None:
    camera = FakeCamera()
    capture = CaptureThread(camera, queue_size=1, policy="block")
    capture.start()
    camera.wait_asked(2)  # frame 0 fills the queue: the producer waits to put frame 1
    capture.stop()
    capture.stop()
    # The capture thread closes the source as it ends: it ended within stop()'s join.
    assert camera.closed
    assert capture.read() is None
    assert capture.read_latest() is None


def test_stop_interrupts_a_waiting_live_source() -> None:
    camera = FakeCamera(released=1)  # the second frame never comes
    capture = CaptureThread(camera, queue_size=2)
    capture.start()
    assert capture.read(timeout=WAIT_S) is not None
    with pytest.raises(TimeoutError, match="within 0 s"):
        capture.read(timeout=0)
    capture.stop()
    assert camera.closed  # the read was interrupted, so the thread ended within the join


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
        frames = [capture.read(timeout=WAIT_S) for _ in range(3)]
        with pytest.raises(SourceError, match=r"^camera exploded; replug it$"):
            capture.read(timeout=WAIT_S)
        assert capture.stats.errors == 3 + 1
    assert [f.index for f in frames if f is not None] == [0, 1, 2]
    assert camera.closed


def test_an_unexpected_error_is_reraised_as_source_error() -> None:
    camera = FakeCamera(fail_at=0, error=RuntimeError("boom"))
    with CaptureThread(camera, queue_size=2) as capture, \
            pytest.raises(SourceError, match="RuntimeError: boom"):
        capture.read(timeout=WAIT_S)


def test_start_raises_for_a_bad_source(tmp_path: Path) -> None:
    capture = CaptureThread(FileSource(tmp_path / "missing.mp4"), queue_size=2)
    with pytest.raises(SourceError, match="not found"):
        capture.start()


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown drop policy"):
        CaptureThread(FakeCamera(), queue_size=2, policy="drop_everything")
    with pytest.raises(ConfigError, match="queue_size"):
        CaptureThread(FakeCamera(), queue_size=0)


def test_live_frames_older_than_max_staleness_are_dropped_and_counted() -> None:
    # the clock's "now" is 10 frames after the camera's frame 0; frames over 0.2 s old go
    clock = ManualClock(start=0.0, wall=1_700_000_000.0 + 10 / 30)
    camera = FakeCamera(frames=10)
    with CaptureThread(camera, queue_size=16, max_staleness_s=0.2, clock=clock) as capture:
        camera.wait_asked(11)  # all ten queued
        frames = drain(capture)
        stats = capture.stats
    assert [f.index for f in frames] == [4, 5, 6, 7, 8, 9]
    assert (stats.stale, stats.dropped, stats.frames_delivered) == (4, 4, 6)


def test_max_staleness_never_drops_a_file(media_dir: Path) -> None:
    clock = ManualClock()  # its wall time is years after the clip's frames were stamped
    source = FileSource(media_dir / "single_face.mp4")
    with CaptureThread(source, queue_size=8, realtime=False, max_staleness_s=0.01,
                       clock=clock) as capture:
        assert len(drain(capture)) == 72 and capture.stats.stale == 0
