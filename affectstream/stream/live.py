"""Live sources: webcams and network streams (RTSP, HTTP), with stall and reconnect handling.

Re-exported by :mod:`affectstream.stream.sources`, which holds the source interface.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt

from affectstream.errors import SourceError
from affectstream.stream.attempt import Attempt
from affectstream.types import Frame, Image
from affectstream.urls import redact_url

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
def as_image(image: npt.ArrayLike) -> Image:
    """An OpenCV result as the package's uint8 image type (no copy: decoders give uint8)."""
    return np.asarray(image, np.uint8)


def nominal_fps(cap: cv2.VideoCapture, default: float = DEFAULT_FPS) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    # Streams and some webcams report 0, NaN or absurd values (90000, the RTP clock).
    return fps if math.isfinite(fps) and 0.0 < fps <= 1000.0 else default


class _LiveClock:
    """Stream time of a live source: the stream's own timestamps when sane, else the wall clock.

    Stream timestamps give jitter-free intervals but restart after a reconnect and are invented by
    some demuxers (MJPEG over HTTP is stamped at 25 fps whatever the real rate), so they are
    anchored to the wall clock per connection and abandoned for it once they drift away.
    """

    DRIFT_LIMIT_S = 1.0
    MIN_STEP_S = 1e-3  # strictly increasing in whole milliseconds (MediaPipe VIDEO mode needs it)

    def __init__(self) -> None:
        self._t0: float | None = None
        self._last = -math.inf
        self._anchor: tuple[float, float] | None = None
        self._trusted = True

    def new_connection(self) -> None:
        self._anchor, self._trusted = None, True

    def stamp(self, stream_s: float | None) -> float:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        wall = now - self._t0
        t = wall
        if stream_s is not None and math.isfinite(stream_s) and self._trusted:
            if self._anchor is None:
                self._anchor = (wall, stream_s)
            candidate = self._anchor[0] + stream_s - self._anchor[1]
            if abs(candidate - wall) <= self.DRIFT_LIMIT_S and candidate > self._last:
                t = candidate
            else:
                self._trusted = False
        t = max(t, self._last + self.MIN_STEP_S)
        self._last = t
        return t


class _OpenCVCapture:
    """What both live sources share: one cv2.VideoCapture and an interruptible wait."""

    _cap: cv2.VideoCapture | None
    _interrupted: threading.Event

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class WebcamSource(_OpenCVCapture):
    """A local camera by index (``cv2.VideoCapture(int)``); ``pts_s`` is wall time since start."""

    def __init__(self, index: int, *, width: int | None = None, height: int | None = None,
                 max_consecutive_failures: int = 25) -> None:
        self.index = index
        self.width, self.height = width, height
        self.max_consecutive_failures = max_consecutive_failures
        self.description = f"webcam {index}"
        self.is_live = True
        self.fps = DEFAULT_FPS
        self.reconnects = self.stalls = self.errors = 0
        self._cap: cv2.VideoCapture | None = None
        self._clock = _LiveClock()
        self._frames = 0
        self._interrupted = threading.Event()

    def open(self) -> None:
        if self._cap is not None:
            return
        self._interrupted.clear()
        try:
            cap = cv2.VideoCapture(self.index)
        except cv2.error as exc:
            raise self._missing() from exc
        if not cap.isOpened():
            cap.release()
            raise self._missing()
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap, self.fps = cap, nominal_fps(cap)

    def read(self) -> Frame | None:
        if self._cap is None:
            raise RuntimeError("WebcamSource.read() called before open()")
        failures = 0
        while not self._interrupted.is_set():
            ok, image = self._cap.read()
            if ok and image is not None:
                frame = Frame(self._frames, self._clock.stamp(None), time.time(), as_image(image))
                self._frames += 1
                return frame
            failures += 1
            self.errors += 1
            if failures == 1:
                self.stalls += 1
            if failures >= self.max_consecutive_failures:
                raise SourceError(f"webcam {self.index} stopped delivering frames ({failures} "
                                  "failed reads in a row); check the cable and that no other "
                                  "program uses it")
            # A failed read can return at once; back off a little instead of spinning.
            self._interrupted.wait(min(0.01 * failures, 0.2))
        return None

    def _missing(self) -> SourceError:
        return SourceError(f"no webcam at index {self.index}; check that it is plugged in and free "
                           "(ls /dev/video*) or pass another index")


class NetworkSource(_OpenCVCapture):
    """An RTSP / HTTP(S) stream through OpenCV's FFmpeg backend, reconnecting when it dies.

    Reads that fail ``max_consecutive_failures`` times in a row, or deliver nothing for
    ``read_timeout_s``, close the stream and reconnect with exponential backoff capped at
    ``reconnect_backoff_max_s``; ``max_reconnect_attempts=None`` keeps trying (a camera that
    reboots comes back), otherwise :meth:`read` raises once the attempts are spent.
    """

    FIRST_BACKOFF_S = 0.25

    def __init__(self, url: str, *, open_timeout_s: float = 10.0, read_timeout_s: float = 5.0,
                 max_consecutive_failures: int = 25, reconnect_backoff_max_s: float = 10.0,
                 max_reconnect_attempts: int | None = None,
                 rtsp_transport: str = "tcp") -> None:
        self.url = url
        self.rtsp_transport = rtsp_transport
        self.description = redact_url(url)
        self.is_live = True
        self.fps = DEFAULT_FPS
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.max_consecutive_failures = max_consecutive_failures
        self.reconnect_backoff_max_s = reconnect_backoff_max_s
        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnects = self.stalls = self.errors = 0
        self._cap: cv2.VideoCapture | None = None
        self._clock = _LiveClock()
        self._frames = 0
        self._failures = 0
        self._last_ok = 0.0
        self._interrupted = threading.Event()

    def open(self) -> None:
        if self._cap is not None:
            return
        self._interrupted.clear()
        cap = self._connect()
        if cap is None:
            raise SourceError(f"cannot open stream {self.description} (refused, unreachable or no "
                              f"video within {self.open_timeout_s:g} s); check the URL, "
                              "credentials and network, or raise source.open_timeout_s")
        self._install(cap)
        self.fps = nominal_fps(cap)

    def read(self) -> Frame | None:
        while not self._interrupted.is_set():
            frame = self._read_once()
            if frame is not None:
                return frame
            stalled_s = time.monotonic() - self._last_ok
            if (self._failures >= self.max_consecutive_failures
                    or stalled_s >= self.read_timeout_s):
                self._reconnect()
        return None

    def _connect(self) -> cv2.VideoCapture | None:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, round(self.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(self.read_timeout_s * 1000)]
        try:
            with _ffmpeg_options(self._options()):
                cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        except cv2.error:
            return None
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _options(self) -> str | None:
        """FFmpeg options of this stream: the RTSP transport (FFmpeg alone would try UDP
        first and fall back to TCP only after a timeout)."""
        if self.url.lower().startswith(("rtsp://", "rtsps://")):
            return f"rtsp_transport;{self.rtsp_transport}"
        return None

    def _install(self, cap: cv2.VideoCapture) -> None:
        self._cap = cap
        self._failures = 0
        self._last_ok = time.monotonic()
        self._clock.new_connection()

    def _read_once(self) -> Frame | None:
        if self._cap is None:
            raise RuntimeError("NetworkSource.read() called before open()")
        try:
            ok, image = self._cap.read()
        except cv2.error:
            ok, image = False, None
        if ok and image is not None:
            self._failures = 0
            self._last_ok = time.monotonic()
            stream_s = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            frame = Frame(self._frames, self._clock.stamp(stream_s), time.time(),
                          as_image(image))
            self._frames += 1
            return frame
        self._failures += 1
        self.errors += 1
        if self._failures == 1:
            self.stalls += 1
            log.warning("stream %s stalled; retrying", self.description)
        return None

    def _reconnect(self) -> None:
        """Reopen the stream, backing off between attempts; returns early when interrupted."""
        self.close()
        attempt = 0
        while True:
            delay = 0.0 if attempt == 0 else min(
                self.FIRST_BACKOFF_S * 2.0 ** (attempt - 1), self.reconnect_backoff_max_s)
            if self._interrupted.wait(delay):
                return
            cap = Attempt(self._connect, _release, name=f"connect {self.description}").result(
                self._interrupted)
            if self._interrupted.is_set():
                if cap is not None:
                    cap.release()
                return
            if cap is not None:
                self._install(cap)
                self.reconnects += 1
                log.warning("stream %s reconnected after %d failed attempt(s)",
                            self.description, attempt)
                return
            attempt += 1
            self.errors += 1
            if self.max_reconnect_attempts is not None and attempt >= self.max_reconnect_attempts:
                raise SourceError(f"stream {self.description} is gone ({attempt} reconnect "
                                  "attempts failed); check the camera and the network")


_OPTIONS_LOCK = threading.Lock()
_CAPTURE_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


@contextlib.contextmanager
def _ffmpeg_options(options: str | None) -> Iterator[None]:
    """OpenCV hands ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` to FFmpeg when a capture opens. It is
    process-wide: it is left set to the last options used, so cameras that agree (the usual
    case: every camera on TCP) open concurrently without a lock; cameras with different RTSP
    transports in one process may race at open time (keep one transport per process)."""
    if options is None or os.environ.get(_CAPTURE_OPTIONS) == options:
        yield
        return
    with _OPTIONS_LOCK:
        os.environ[_CAPTURE_OPTIONS] = options
        yield


def _release(cap: cv2.VideoCapture | None) -> None:
    if cap is not None:
        cap.release()
