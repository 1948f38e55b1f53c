"""One camera's pipeline: source → capture thread → perception worker → the event loop, where
its results are published and handed to its emotion estimators.

Blocking work (decode, perception) runs in threads. Results enter the event loop through exactly
one door, :meth:`_Bridge.deliver` (``loop.call_soon_threadsafe``), bounded by a semaphore so a
slow publisher applies back-pressure to perception instead of growing a queue. When the source
ends, is stopped or fails, perception flushes open bursts and ends its tracks, and every message
already produced is published before the camera's sinks close.

A camera alone (``--source``) fails fast: a source that cannot be opened is an error. A camera
of several (``cameras:``) is *patient*: it retries opening, and reopening after its source dies,
on its own schedule (capped exponential backoff), publishing its stats meanwhile, and never
stops or slows the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectstream.config import Config
from affectstream.emotion import EmotionEstimator, EstimatorRegistry, EstimatorSetup
from affectstream.errors import AffectStreamError, SourceError
from affectstream.labels import LABEL_SETS
from affectstream.prepare import prepare_source, resolve_models
from affectstream.publish import messages
from affectstream.publish.sinks import Fanout
from affectstream.stats import RunStats
from affectstream.stream.attempt import Attempt
from affectstream.stream.capture import CaptureThread
from affectstream.stream.perception import Perception
from affectstream.stream.pipeline import perceive
from affectstream.stream.sources import FileSource, VideoSource
from affectstream.types import Burst, EmotionUpdate, Frame, FrameResult, FrameTap
from affectstream.vlm.captions import caption_config

log = logging.getLogger("affectstream")

ResultHook = Callable[[FrameResult], None]
FIRST_RETRY_S = 0.25


@dataclass
class RunSummary:
    frames: int = 0
    burst_count: int = 0
    bursts: list[Burst] = field(default_factory=list)
    """Only filled with ``keep_bursts`` (a bounded clip): a live run may last for months."""
    tracks: int = 0
    duration_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    """The final stats message's payload (of the first camera when there are several)."""
    cameras: dict[str, RunSummary] = field(default_factory=dict)
    """Per camera, when the run had several."""


class _Bridge:
    """The one thread-safe way from the perception worker into the event loop."""

    _END = object()

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int = 64) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._slots = threading.BoundedSemaphore(capacity)
        self._closed = threading.Event()

    def deliver(self, item: object) -> None:
        while not self._slots.acquire(timeout=0.5):
            if self._closed.is_set():
                return  # the consumer is gone; nobody will ever free a slot
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def end(self) -> None:
        self.deliver(self._END)

    async def get(self) -> object:
        item = await self._queue.get()
        self._slots.release()
        return item

    def is_end(self, item: object) -> bool:
        return item is self._END

    def close(self) -> None:
        self._closed.set()


def _perceive(capture: CaptureThread, perception: Perception, bridge: _Bridge,
              stats: RunStats, taps: list[FrameTap]) -> None:
    """Worker thread: every frame through perception; always flush and signal the end."""
    camera_id = stats.camera
    try:
        for item in perceive(capture.read, perception):
            if item.frame is not None:
                stats.frame_done(item.result, time.time() - item.frame.ts)
            _tap(taps, camera_id, item.frame, item.result)
            bridge.deliver(item.result)
    except Exception as exc:  # the error first, then what perception still holds
        if not isinstance(exc, AffectStreamError):
            log.exception("perception failed")
        bridge.deliver(exc)
        bridge.deliver(perception.finish())
    finally:
        bridge.end()


def _tap(taps: list[FrameTap], camera_id: str, frame: Frame | None,
         result: FrameResult) -> None:
    for tap in list(taps):
        try:
            tap(camera_id, frame, result)
        except Exception:  # a viewer's or a report's bug must not stop perception
            log.exception("camera %s: frame tap %r failed; it is removed", camera_id, tap)
            taps.remove(tap)


class CameraRun:
    """One camera of a run (see the module docstring): opens its source, perceives every frame,
    feeds its estimators and publishes everything through its own ``fanout``."""

    def __init__(self, cfg: Config, fanout: Fanout, registry: EstimatorRegistry, *,
                 patient: bool, on_result: ResultHook | None = None, keep_bursts: bool = False,
                 on_running: Callable[[], None] | None = None,
                 shared: dict[str, Any] | None = None,
                 taps: Sequence[FrameTap] = ()) -> None:
        """``shared``: the run's resources shared by every camera (see EstimatorSetup).
        ``taps``: see :data:`FrameTap`."""
        self.cfg = cfg
        self.fanout = fanout
        self._registry = registry
        self._patient = patient
        self._on_result = on_result
        self._keep_bursts = keep_bursts
        self._on_running = on_running
        self._shared = shared if shared is not None else {}
        self._taps = list(taps)
        self.summary = RunSummary()
        self._labels = LABEL_SETS[cfg.vlm.labels]
        self._estimators: list[EmotionEstimator] = []
        self._latest: dict[int, EmotionUpdate] = {}
        self._stopping = asyncio.Event()
        self._stop_flag = threading.Event()
        """``_stopping`` for the threads that wait on an open."""
        self._capture: CaptureThread | None = None
        self.stats = RunStats(cfg.camera_id, None, fanout, None)

    def stop(self) -> None:
        """Stop the camera as ``--max-seconds`` does; call it in the event loop. Everything
        already captured is still processed and published."""
        self._stopping.set()
        self._stop_flag.set()
        if self._capture is not None:
            asyncio.get_running_loop().run_in_executor(None, self._capture.stop)

    async def run(self) -> RunSummary:
        if not self._patient:  # fail fast: a bad source is the user's error
            model_paths = resolve_models(self.cfg)
            cfg, source = prepare_source(self.cfg, model_paths)
            await self._session(cfg, source, model_paths, start_fanout=True)
            return self.summary
        async with contextlib.AsyncExitStack() as stack:
            await self.fanout.start()
            stack.push_async_callback(self.fanout.close)
            # not yet: an MQTT sink says its process is online, the camera is not until it opens
            await self.fanout.publish(messages.availability(self.cfg.camera_id, False))
            ticker = asyncio.create_task(self._stats_ticker(self.cfg.stats_interval_s))
            stack.callback(ticker.cancel)
            model_paths = resolve_models(self.cfg)
            await self._run_patiently(model_paths)
            await self.fanout.publish(messages.stats(self.cfg.camera_id, self._final()))
            await self.fanout.publish(messages.availability(self.cfg.camera_id, False))
        return self.summary

    async def _run_patiently(self, model_paths: dict[str, Path]) -> None:
        """Open, run, and after a source failure open again, until stopped or a file ends."""
        delay = FIRST_RETRY_S
        while not self._stopping.is_set():
            opened = await self._open(model_paths)
            if opened is None:
                return
            try:
                await self._session(*opened, model_paths, start_fanout=False)
                return  # the source ended (a file) or the camera was stopped
            except SourceError as exc:
                log.warning("camera %s: %s; reopening it", self.cfg.camera_id, exc)
            delay = await self._pause(delay)

    async def _open(self, model_paths: dict[str, Path]) -> tuple[Config, VideoSource] | None:
        """The opened source, retried with capped backoff; None once stopped. A stop never
        waits for an open's timeout."""
        delay = FIRST_RETRY_S
        while not self._stopping.is_set():
            attempt = Attempt(lambda: prepare_source(self.cfg, model_paths), _close_source,
                              name=f"open {self.cfg.camera_id}")
            try:  # a blocking open, abandoned (and closed when it returns) once stopped
                opened = await asyncio.to_thread(attempt.result, self._stop_flag)
            except SourceError as exc:
                self.stats.open_failures += 1
                if self.stats.open_failures == 1:
                    log.warning("camera %s: %s; retrying until it opens", self.cfg.camera_id,
                                exc)
                delay = await self._pause(delay)
                continue
            if opened is not None:
                return opened
        return None

    async def _pause(self, delay: float) -> float:
        """Wait ``delay`` (or until stopped); the next, doubled and capped, delay."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        return min(2 * delay, self.cfg.source.reconnect_backoff_max_s)

    async def _session(self, cfg: Config, source: VideoSource, model_paths: dict[str, Path],
                       *, start_fanout: bool) -> None:
        """One opened source, run until it ends, fails or the camera is stopped."""
        async with contextlib.AsyncExitStack() as stack:
            # the capture thread owns the source from here: stopping it closes the source, and
            # never under a read still blocked in its thread (its constructor only checks
            # settings the config already validated)
            capture = CaptureThread(source, queue_size=cfg.source.queue_size,
                                    policy=cfg.source.drop_policy, realtime=cfg.source.realtime,
                                    max_staleness_s=cfg.source.max_staleness_s)
            stack.callback(capture.stop)
            still = isinstance(source, FileSource) and source.is_still
            cfg = caption_config(cfg)  # captions need denser periodic keyframes from perception
            perception = Perception(cfg, model_paths, source.fps, secrets.token_hex(3),
                                    still_image=still)
            stack.callback(perception.close)
            specialist = perception.specialist.name if perception.specialist else None
            self._estimators = self._registry.create(
                EstimatorSetup(cfg, self._labels, self._emit, specialist, shared=self._shared))
            for estimator in self._estimators:  # an unusable VLM fails before any publishing
                stack.push_async_callback(estimator.close)
                await estimator.start()
            if start_fanout:
                await self.fanout.start()
                stack.push_async_callback(self.fanout.close)
                ticker = asyncio.create_task(self._stats_ticker(cfg.stats_interval_s))
                stack.callback(ticker.cancel)
            await self._perceive_all(cfg, capture, perception, final_stats=start_fanout)

    async def _emit(self, update: EmotionUpdate) -> None:
        """The one publish path of emotion updates, whichever estimator made them."""
        self._latest[update.track_id] = update
        await self.fanout.publish(messages.emotion(update))

    async def _perceive_all(self, cfg: Config, capture: CaptureThread, perception: Perception,
                            *, final_stats: bool) -> None:
        loop = asyncio.get_running_loop()
        bridge = _Bridge(loop)
        stats = self.stats
        stats.attach(capture, perception)
        stats.sections = [e.stats for e in self._estimators]
        cam = cfg.camera_id
        await self.fanout.publish(messages.availability(cam, True))
        self._capture = capture
        capture.start()
        if self._stopping.is_set():  # stopped while it was being set up
            loop.run_in_executor(None, capture.stop)
        worker = threading.Thread(target=_perceive, args=(capture, perception, bridge, stats,
                                        self._taps),
                                  name=f"affectstream-perception {cam}", daemon=True)
        worker.start()
        if self._on_running is not None:
            self._on_running()
        error: BaseException | None = None
        try:
            while not bridge.is_end(item := await bridge.get()):
                if isinstance(item, BaseException):
                    error = item
                elif isinstance(item, FrameResult):
                    await self._publish_result(item, stats)
        finally:
            bridge.close()
            self._capture = None
            await loop.run_in_executor(None, capture.stop)
            worker.join(timeout=10)
            for estimator in self._estimators:  # answers already on their way still count
                await estimator.close()
            if final_stats:
                await self.fanout.publish(messages.stats(cam, self._final()))
            if final_stats or not self._stopping.is_set():  # else the camera's end says it
                await self.fanout.publish(messages.availability(cam, False))
        if error is not None:
            raise error

    def _final(self) -> dict[str, Any]:
        final = self.stats.payload()
        self.summary.stats = final
        self.summary.frames = int(final["frames"])
        self.summary.tracks = self.stats.tracks_seen
        self.summary.duration_s = float(final["uptime_s"])
        return final

    async def _publish_result(self, result: FrameResult, stats: RunStats) -> None:
        # new tracks, then bursts and log lines, then emotions, then ended tracks: a burst
        # closed because its track ended is published before that track's "end".
        for event in (e for e in result.track_events if e.type == "new"):
            stats.track_event(event.type)
            await self.fanout.publish(messages.track(event))
        for burst in result.bursts:
            self.summary.burst_count += 1
            if self._keep_bursts:
                self.summary.bursts.append(burst)
            await self.fanout.publish(messages.burst(burst))
            stats.burst_published(time.time() - burst.ts)
        for line in result.log_lines:
            await self.fanout.publish(messages.log_line(line, time.time()))
        for estimator in self._estimators:
            await estimator.observe(result)
        ended = [e.track_id for e in result.track_events if e.type == "end"]
        cleared = [t for t in ended if self._latest.pop(t, None) is not None]
        primary = self._primary(result)
        kept = stats.primary is not None and stats.primary["track_id"] in self._latest
        if primary is not None or not kept:  # a frame without faces keeps a live track's state
            stats.primary = primary
        for event in (e for e in result.track_events if e.type == "end"):
            await self.fanout.publish(messages.track(event))
        for track_id in cleared:  # a late VLM answer for it is dropped, never re-retained
            await self.fanout.publish(messages.emotion_cleared(self.cfg.camera_id, track_id))
        if self._on_result is not None:
            self._on_result(result)

    def _primary(self, result: FrameResult) -> dict[str, Any] | None:
        """The largest face's latest emotion, for stats (and Home Assistant's sensors)."""
        faces = [f for f in result.faces if f.track_id in self._latest]
        if not faces:
            return None
        face = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        update = self._latest[face.track_id]
        return {"track_id": face.track_id, "label": update.label,
                "valence": round(update.valence, 3)}

    async def _stats_ticker(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.fanout.publish(messages.stats(self.cfg.camera_id, self.stats.payload()))


def _close_source(opened: tuple[Config, VideoSource]) -> None:
    opened[1].close()
