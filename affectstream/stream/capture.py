"""Background capture: one thread per source feeding a bounded queue with a named drop policy.

Policies (DESIGN §2): ``block`` applies back-pressure and never drops (the default for files, so
every frame is processed); ``drop_oldest`` keeps the freshest frames (the default for live
sources, whose capture must never wait on a slow consumer); ``drop_newest`` keeps the queued
frames and discards incoming ones. Every dropped frame is counted.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from types import TracebackType
from typing import get_args

from affectstream.clock import SYSTEM_CLOCK, ThreadClock
from affectstream.config import DropPolicy
from affectstream.errors import ConfigError, SourceError
from affectstream.stream.sources import Interruptible, SourceHealth, VideoSource
from affectstream.types import Frame

log = logging.getLogger(__name__)

DROP_POLICIES: tuple[str, ...] = get_args(DropPolicy)
# stop() waits this long for the thread; a native read can be stuck up to the stream timeouts.
JOIN_TIMEOUT_S = 15.0


@dataclasses.dataclass(frozen=True, slots=True)
class CaptureStats:
    """A snapshot of the capture counters."""

    frames_read: int = 0
    """Frames the source produced."""
    frames_delivered: int = 0
    """Frames handed to the consumer."""
    dropped: int = 0
    """Frames discarded by the drop policy or skipped by :meth:`CaptureThread.read_latest`."""
    reconnects: int = 0
    stalls: int = 0
    errors: int = 0
    """Failed reads and reconnect attempts reported by the source, plus a fatal source error."""
    stale: int = 0
    """Frames of a live source discarded at the consumer for being older than
    ``max_staleness_s`` (also counted in ``dropped``)."""


def resolve_policy(policy: str | None, is_live: bool) -> str:
    """The named policy, or the default for the kind of source."""
    if policy is None:
        return "drop_oldest" if is_live else "block"
    if policy not in DROP_POLICIES:
        raise ConfigError(f"unknown drop policy {policy!r}; use one of {', '.join(DROP_POLICIES)}")
    return policy


class CaptureThread:
    """Reads ``source`` in a background thread into a bounded queue of ``queue_size`` frames.

    With ``realtime`` a non-live source is paced at its own timestamps, so a file behaves like a
    camera; otherwise it runs as fast as the consumer takes frames. ``max_frames`` ends the
    stream after that many frames. ``clock`` paces and stamps those frames (a
    :class:`~affectstream.clock.ManualClock` checks pacing without waiting it out). Use as a
    context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, source: VideoSource, *, queue_size: int, policy: str | None = None,
                 realtime: bool = True, max_frames: int | None = None,
                 max_staleness_s: float | None = None,
                 clock: ThreadClock = SYSTEM_CLOCK) -> None:
        if queue_size < 1:
            raise ConfigError(f"capture queue_size must be at least 1, got {queue_size}; "
                              "fix source.queue_size")
        self.source = source
        self.policy = resolve_policy(policy, source.is_live)
        self.realtime = realtime and not source.is_live  # live sources pace themselves
        self.queue_size = queue_size
        self.max_frames = max_frames
        # a file never drops (it waits); a live frame this old no longer describes the scene
        self.max_staleness_s = max_staleness_s if source.is_live else None
        self._stale = 0
        self._clock = clock
        self._queue: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ended = False
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._read = self._delivered = self._dropped = self._fatal = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the source (here, so a bad source fails in the caller) and start capturing."""
        if self._thread is not None:
            return
        if self._stop.is_set():
            raise RuntimeError("a stopped CaptureThread cannot be restarted; create a new one")
        self.source.open()
        self._thread = threading.Thread(target=self._run, name=f"capture {self.source.description}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop capturing, join the thread and close the source; safe to call repeatedly."""
        self._stop.set()
        with self._cond:
            self._queue.clear()  # frames nobody will read: free them now
            self._cond.notify_all()
        if isinstance(self.source, Interruptible):
            self.source.interrupt()
        thread = self._thread
        if thread is None:
            self.source.close()
            return
        if thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
        if thread.is_alive():
            log.warning("capture thread for %s did not stop within %.0f s; it will close the "
                        "source when its read returns", self.source.description, JOIN_TIMEOUT_S)

    def __enter__(self) -> CaptureThread:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- consumer side -----------------------------------------------------------------------

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame in order; ``None`` once the source ended (queue drained) or stopped.

        Raises :class:`TimeoutError` when no frame arrives within ``timeout`` seconds, and
        :class:`SourceError` when the source failed (after the frames it delivered).
        """
        with self._cond:
            while True:
                self._wait(timeout)
                if not self._queue:
                    self._raise_if_failed()
                    return None
                frame = self._queue.popleft()
                if not self._too_old(frame):
                    return self._deliver(frame)

    def read_latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, discarding (and counting as dropped) older queued ones."""
        with self._cond:
            self._wait(timeout)
            if self._queue:
                frame = self._queue.pop()
                self._dropped += len(self._queue)
                self._queue.clear()
                return self._deliver(frame)
            self._raise_if_failed()
            return None

    @property
    def stats(self) -> CaptureStats:
        """A consistent snapshot of the counters (safe from any thread)."""
        with self._cond:
            read, delivered, dropped, fatal, stale = (self._read, self._delivered,
                                                      self._dropped, self._fatal, self._stale)
        source = self.source
        if not isinstance(source, SourceHealth):
            return CaptureStats(read, delivered, dropped, errors=fatal, stale=stale)
        # Plain ints written by the capture thread: reading them unlocked is safe in CPython.
        return CaptureStats(read, delivered, dropped, source.reconnects, source.stalls,
                            source.errors + fatal, stale)

    def _wait(self, timeout: float | None) -> None:
        if self._thread is None:
            raise RuntimeError("CaptureThread.read() called before start()")
        ready = self._cond.wait_for(
            lambda: bool(self._queue) or self._ended or self._stop.is_set(), timeout)
        if not ready:
            raise TimeoutError(f"no frame from {self.source.description} within {timeout:g} s")

    def _too_old(self, frame: Frame) -> bool:
        """Counts and discards a live frame older than ``max_staleness_s`` (its slot frees)."""
        limit = self.max_staleness_s
        if limit is None or self._clock.time() - frame.ts <= limit:
            return False
        self._stale += 1
        self._dropped += 1
        self._cond.notify_all()
        return True

    def _deliver(self, frame: Frame) -> Frame:
        self._delivered += 1
        self._cond.notify_all()  # room in the queue for a blocked producer
        return frame

    def _raise_if_failed(self) -> None:
        """At the end of the stream, re-raise a fatal source error in the consumer's thread."""
        exc = self._error
        if exc is None or self._stop.is_set():
            return
        if isinstance(exc, SourceError):
            raise SourceError(str(exc)) from exc
        raise SourceError(f"reading {self.source.description} failed unexpectedly "
                          f"({type(exc).__name__}: {exc}); please report this bug") from exc

    # -- producer side -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._produce()
        except Exception as exc:  # handed to the consumer, which re-raises it
            with self._cond:
                self._error = exc
                self._fatal += 1
        finally:
            try:
                self.source.close()
            except Exception:
                log.exception("closing %s failed", self.source.description)
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _produce(self) -> None:
        origin: float | None = None  # monotonic time at which pts_s == 0, for realtime pacing
        produced = 0
        while not self._stop.is_set():
            if self.max_frames is not None and produced >= self.max_frames:
                return
            frame = self.source.read()
            if frame is None:
                return
            with self._cond:
                self._read += 1
            if self.realtime:
                if origin is None:
                    origin = self._clock.monotonic() - frame.pts_s
                delay = origin + frame.pts_s - self._clock.monotonic()
                if delay > 0 and self._clock.wait(self._stop, delay):
                    return
                frame = dataclasses.replace(frame, ts=self._clock.time())  # when it is "captured"
            if not self._put(frame):
                return
            produced += 1

    def _put(self, frame: Frame) -> bool:
        """Queue ``frame`` under the policy; False when stopped while waiting for room."""
        with self._cond:
            if self.policy == "block":
                # Back-pressure: stop() sets the event and notifies, so this cannot deadlock.
                self._cond.wait_for(
                    lambda: len(self._queue) < self.queue_size or self._stop.is_set())
                if self._stop.is_set():
                    return False
            elif len(self._queue) >= self.queue_size:
                self._dropped += 1
                if self.policy == "drop_newest":
                    return True
                self._queue.popleft()
            self._queue.append(frame)
            self._cond.notify_all()
        return True
