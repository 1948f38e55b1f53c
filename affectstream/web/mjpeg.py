"""``/stream.mjpg``: the annotated video as ``multipart/x-mixed-replace`` JPEG parts.

Frames are pulled, not pushed: each viewer's loop takes the camera's latest tapped frame at
most ``preview.max_fps`` times a second and encodes it in a worker thread
(``asyncio.to_thread``), so nothing is encoded while nobody watches and perception never waits.
Viewers of one camera share each encoded frame. Frames the viewer never got (perception ran
faster than ``max_fps``, or encoding fell behind) are counted as skipped.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from affectstream.types import Frame
from affectstream.web.annotate import render
from affectstream.web.events import Broadcaster
from affectstream.web.hub import CameraView
from affectstream.web.metrics import Metrics

BOUNDARY = "affectstream-frame"


@dataclass(frozen=True)
class Encoded:
    frame: Frame
    jpeg: bytes


class FrameEncoder:
    """One camera's latest annotated JPEG, encoded at most once per frame whoever asks."""

    def __init__(self, view: CameraView, quality: int, events: Broadcaster,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._view = view
        self._quality = quality
        self._events = events
        self._clock = clock
        self._last: Encoded | None = None
        self._lock = asyncio.Lock()

    async def latest(self) -> Encoded | None:
        async with self._lock:
            latest = self._view.latest
            if latest is None:
                return None
            frame, result = latest
            if self._last is not None and self._last.frame is frame:
                return self._last
            overlay = self._view.overlay(result, self._clock())  # built on the loop
            jpeg, scale, width, height = await asyncio.to_thread(
                render, frame.image, overlay, self._quality)
            self._last = Encoded(frame, jpeg)
            # the page mirrors the drawn boxes in its DOM (tests and scripts read them there)
            self._events.publish(self._view.id, json.dumps({
                "camera": self._view.id, "frame": frame.index, "width": width,
                "height": height, "faces": [{"track_id": t, "bbox": [round(v * scale, 1)
                                                                     for v in box]}
                                            for t, box in overlay.faces]}), event="frame")
            return self._last


async def stream(request: web.Request, encoder: FrameEncoder, view: CameraView,
                 metrics: Metrics, max_fps: float, closing: Callable[[], bool]
                 ) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    period = 1.0 / max_fps
    last: Frame | None = None
    view.viewers += 1
    try:
        while not closing():
            started = loop.time()
            encoded = await encoder.latest()
            if encoded is not None and encoded.frame is not last:
                skipped = 0 if last is None else max(0, encoded.frame.index - last.index - 1)
                await response.write(_part(encoded.jpeg))
                last = encoded.frame
                view.frames_sent += 1
                view.frames_skipped += skipped
                metrics.preview_frame(view.id, skipped)
            await asyncio.sleep(max(0.0, period - (loop.time() - started)))
    except (ConnectionResetError, ConnectionError):
        pass  # the viewer went away
    finally:
        view.viewers -= 1
    return response


def _part(jpeg: bytes) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(jpeg)}\r\n\r\n").encode()
    return head + jpeg + b"\r\n"
