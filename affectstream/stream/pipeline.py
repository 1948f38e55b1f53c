"""Detect-ahead pipelining: face detection runs one or two frames ahead of the rest of
perception, in its own thread.

onnxruntime (detection) and MediaPipe/OpenCV (landmarks, flow) release the GIL, so on two cores
the halves overlap; on ``single_face.mp4`` this took perception from about 47 to 84 fps. The
order of frames is kept, nothing is dropped here (drop policies belong to the capture queue),
and an error in the reader or the detector reaches the consumer after the frames before it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from affectstream.types import Detections, Frame, FrameResult, Image

if TYPE_CHECKING:
    from affectstream.stream.perception import Perception


@dataclass(frozen=True, slots=True)
class Detected:
    frame: Frame
    detections: Detections
    detect_ms: float
    read_ms: float
    started: float
    """perf_counter() when reading the frame began, for end-to-end latency."""


_END = object()


class DetectAhead:
    def __init__(self, read: Callable[[], Frame | None], detect: Callable[[Image], Detections],
                 depth: int = 1) -> None:
        self._read = read
        self._detect = detect
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="affectstream-detect",
                                        daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[Detected]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Detected)
            yield item

    def close(self) -> None:
        """Stop the detect thread (idempotent); queued detections are discarded."""
        self._stop.set()
        while self._thread.is_alive():
            # Make room so a producer blocked on a full queue sees the stop.
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        self._thread.join()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = self._read()
                t1 = time.perf_counter()
                if frame is None:
                    break
                dets = self._detect(frame.image)
                t2 = time.perf_counter()
                if not self._put(Detected(frame, dets, (t2 - t1) * 1000, (t1 - t0) * 1000, t0)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
        self._put(_END)


@dataclass(frozen=True, slots=True)
class Perceived:
    """One frame's result from :func:`perceive`; ``frame`` is None for the final flush."""

    frame: Frame | None
    result: FrameResult
    decode_ms: float = 0.0
    latency_ms: float = 0.0
    """From the start of reading the frame to its result (detection runs ahead in a thread)."""


def perceive(read: Callable[[], Frame | None], perception: Perception) -> Iterator[Perceived]:
    """The perceive loop of ``run``, ``spot``, ``bench`` and the research tools: every frame
    from ``read`` (None ends it) through detect-ahead and ``perception``; the last item is the
    final flush. On an error the flush is the caller's (``perception.finish()``): the error
    comes first, then whatever perception still holds."""
    ahead = DetectAhead(read, perception.detect)
    try:
        for item in ahead:
            result = perception.process(item.frame, item.detections, item.detect_ms)
            latency = (time.perf_counter() - item.started) * 1000
            yield Perceived(item.frame, result, item.read_ms, latency)
    finally:
        ahead.close()
    yield Perceived(None, perception.finish())
