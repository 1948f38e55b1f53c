"""Wiring of a run: source → capture thread → perception worker → asyncio publisher → sinks.

Blocking work (decode, perception) runs in threads. Results enter the event loop through exactly
one door, :meth:`_Bridge.deliver` (``loop.call_soon_threadsafe``), bounded by a semaphore so a
slow publisher applies back-pressure to perception instead of growing a queue. When the source
ends, is stopped (``--max-seconds``, Ctrl-C, SIGTERM) or fails, perception flushes open bursts
and ends its tracks, and every message already produced is published before the sinks close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectstream import models
from affectstream.config import Config
from affectstream.emotion import (
    EmotionEstimator,
    EstimatorRegistry,
    EstimatorSetup,
    default_registry,
)
from affectstream.errors import AffectStreamError, ModelError
from affectstream.labels import LABEL_SETS
from affectstream.publish import messages
from affectstream.publish.sinks import Fanout, parse_sink
from affectstream.stats import RunStats
from affectstream.stream.capture import CaptureThread
from affectstream.stream.perception import Perception
from affectstream.stream.pipeline import perceive
from affectstream.stream.sources import FileSource, VideoSource, open_source
from affectstream.types import Burst, EmotionUpdate, FrameResult
from affectstream.vlm.captions import caption_config

log = logging.getLogger("affectstream")

ResultHook = Callable[[FrameResult], None]


@dataclass
class RunSummary:
    frames: int = 0
    burst_count: int = 0
    bursts: list[Burst] = field(default_factory=list)
    """Only filled with ``keep_bursts`` (a bounded clip): a live run may last for months."""
    tracks: int = 0
    duration_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


def resolve_models(cfg: Config) -> dict[str, Path]:
    detector = cfg.detector.registry_model
    paths = {detector: models.resolve_from_config(detector, cfg.models,
                                                  cfg.detector.model_path)}
    if cfg.landmarks.enabled:
        paths["face-landmarker"] = models.resolve_from_config(
            "face-landmarker", cfg.models, cfg.landmarks.model_path)
    if cfg.specialist.enabled:
        paths["specialist"] = _specialist_path(cfg)
    return paths


def _specialist_path(cfg: Config) -> Path:
    """``specialist.model_path`` as given (no registry checksum to hold it to), else the
    registry model named by ``specialist.model``."""
    path = cfg.specialist.model_path
    if path is None:
        return models.resolve_from_config(cfg.specialist.model, cfg.models)
    if not path.expanduser().is_file():
        raise ModelError(f"specialist.model_path {path} does not exist; fix the path or unset "
                         f"it to use the registry model {cfg.specialist.model}")
    return path.expanduser()


def demo_clip_path(cfg: Config, landmarker: Path) -> Path:
    """The built-in demo clip, built once into the affectstream home and reused."""
    from affectstream.eval.democlip import build_demo_clip

    folder = models.models_dir(cfg.models.home).parent / "demo"
    path = folder / "demo_v1.mp4"
    if not (path.exists() and path.with_suffix(".json").exists()):
        folder.mkdir(parents=True, exist_ok=True)
        build_demo_clip(path, landmarker)
    return path


def prepare_source(cfg: Config, model_paths: dict[str, Path]) -> tuple[Config, VideoSource]:
    """Resolve ``demo`` to the demo clip, then create and open the source (fails fast)."""
    if cfg.source.url == "demo":
        clip = demo_clip_path(cfg, model_paths.get("face-landmarker")
                              or models.resolve_from_config("face-landmarker", cfg.models))
        cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"url": str(clip)})})
    source = open_source(cfg.source)
    source.open()
    return cfg, source


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
              stats: RunStats) -> None:
    """Worker thread: every frame through perception; always flush and signal the end."""
    try:
        for item in perceive(capture.read, perception):
            if item.frame is not None:
                stats.frame_done(item.result, time.time() - item.frame.ts)
            bridge.deliver(item.result)
    except Exception as exc:  # the error first, then what perception still holds
        if not isinstance(exc, AffectStreamError):
            log.exception("perception failed")
        bridge.deliver(exc)
        bridge.deliver(perception.finish())
    finally:
        bridge.end()


class Runner:
    """One camera's run. The emotion stage is whatever ``estimators`` (default: the built-in
    registry) makes of the config; every update they emit takes the one publish path."""

    def __init__(self, cfg: Config, *, on_result: ResultHook | None = None,
                 keep_bursts: bool = False, estimators: EstimatorRegistry | None = None) -> None:
        self.cfg = cfg
        self._on_result = on_result
        self._keep_bursts = keep_bursts
        self._registry = estimators if estimators is not None else default_registry()
        self.summary = RunSummary()
        self._labels = LABEL_SETS[cfg.vlm.labels]
        self._estimators: list[EmotionEstimator] = []
        self._latest: dict[int, EmotionUpdate] = {}
        self._fanout: Fanout | None = None
        self._stop: Callable[[], None] | None = None

    def request_stop(self) -> None:
        """Stop the source as ``--max-seconds`` does (thread-safe; no-op before the run starts
        or after it ended). Everything already captured is still processed and published."""
        stop = self._stop
        if stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                stop()

    async def run(self) -> RunSummary:
        cfg = self.cfg
        # Bad sink specs fail first, before models or the source are touched.
        fanout = Fanout([parse_sink(s, cfg.mqtt, cfg.camera_id) for s in cfg.sinks])
        model_paths = resolve_models(cfg)
        async with contextlib.AsyncExitStack() as stack:
            cfg, source = prepare_source(cfg, model_paths)
            # the capture thread owns the source from here: stopping it closes the source, and
            # never under a read still blocked in its thread (its constructor only checks
            # settings the config already validated)
            capture = CaptureThread(source, queue_size=cfg.source.queue_size,
                                    policy=cfg.source.drop_policy, realtime=cfg.source.realtime)
            stack.callback(capture.stop)
            still = isinstance(source, FileSource) and source.is_still
            cfg = caption_config(cfg)  # captions need denser periodic keyframes from perception
            perception = Perception(cfg, model_paths, source.fps, secrets.token_hex(3),
                                    still_image=still)
            stack.callback(perception.close)
            specialist = perception.specialist.name if perception.specialist else None
            self._estimators = self._registry.create(
                EstimatorSetup(cfg, self._labels, self._emit, specialist))
            for estimator in self._estimators:  # an unusable VLM fails before any publishing
                stack.push_async_callback(estimator.close)
                await estimator.start()
            await fanout.start()
            stack.push_async_callback(fanout.close)
            self._fanout = fanout
            summary = await self._run(cfg, capture, perception, fanout)
        return summary

    def run_sync(self) -> RunSummary:
        return asyncio.run(self.run())

    async def _emit(self, update: EmotionUpdate) -> None:
        """The one publish path of emotion updates, whichever estimator made them."""
        self._latest[update.track_id] = update
        if self._fanout is not None:
            await self._fanout.publish(messages.emotion(update))

    async def _run(self, cfg: Config, capture: CaptureThread, perception: Perception,
                   fanout: Fanout) -> RunSummary:
        loop = asyncio.get_running_loop()
        bridge = _Bridge(loop)
        stats = RunStats(cfg.camera_id, capture, fanout, perception)
        stats.sections = [e.stats for e in self._estimators]
        cam = cfg.camera_id
        await fanout.publish(messages.availability(cam, True))
        capture.start()
        worker = threading.Thread(target=_perceive, args=(capture, perception, bridge, stats),
                                  name="affectstream-perception", daemon=True)
        worker.start()
        def stop_capture() -> None:  # in the loop; capture.stop joins its thread
            loop.run_in_executor(None, capture.stop)

        def stop_from_any_thread() -> None:
            loop.call_soon_threadsafe(stop_capture)

        stop = self._install_stops(loop, stop_capture, cfg.max_seconds)
        self._stop = stop_from_any_thread
        ticker = asyncio.create_task(self._stats_ticker(fanout, stats, cfg.stats_interval_s))
        error: BaseException | None = None
        try:
            while not bridge.is_end(item := await bridge.get()):
                if isinstance(item, BaseException):
                    error = item
                elif isinstance(item, FrameResult):
                    await self._publish_result(item, fanout, stats)
        finally:
            ticker.cancel()
            bridge.close()
            self._stop = None
            stop()
            await loop.run_in_executor(None, capture.stop)
            worker.join(timeout=10)
            for estimator in self._estimators:  # answers already on their way still count
                await estimator.close()
            final = stats.payload()
            await fanout.publish(messages.stats(cam, final))
            await fanout.publish(messages.availability(cam, False))
            self.summary.stats = final
            self.summary.frames = int(final["frames"])
            self.summary.tracks = stats.tracks_seen
            self.summary.duration_s = float(final["uptime_s"])
        if error is not None:
            raise error
        return self.summary

    async def _publish_result(self, result: FrameResult, fanout: Fanout, stats: RunStats) -> None:
        # new tracks, then bursts and log lines, then emotions, then ended tracks: a burst
        # closed because its track ended is published before that track's "end".
        for event in (e for e in result.track_events if e.type == "new"):
            stats.track_event(event.type)
            await fanout.publish(messages.track(event))
        for burst in result.bursts:
            self.summary.burst_count += 1
            if self._keep_bursts:
                self.summary.bursts.append(burst)
            await fanout.publish(messages.burst(burst))
            stats.burst_published(time.time() - burst.ts)
        for line in result.log_lines:
            await fanout.publish(messages.log_line(line, time.time()))
        for estimator in self._estimators:
            await estimator.observe(result)
        ended = [e.track_id for e in result.track_events if e.type == "end"]
        cleared = [t for t in ended if self._latest.pop(t, None) is not None]
        primary = self._primary(result)
        kept = stats.primary is not None and stats.primary["track_id"] in self._latest
        if primary is not None or not kept:  # a frame without faces keeps a live track's state
            stats.primary = primary
        for event in (e for e in result.track_events if e.type == "end"):
            await fanout.publish(messages.track(event))
        for track_id in cleared:  # a late VLM answer for it is dropped, never re-retained
            await fanout.publish(messages.emotion_cleared(self.cfg.camera_id, track_id))
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

    async def _stats_ticker(self, fanout: Fanout, stats: RunStats, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await fanout.publish(messages.stats(self.cfg.camera_id, stats.payload()))

    @staticmethod
    def _install_stops(loop: asyncio.AbstractEventLoop, request_stop: Callable[[], None],
                       max_seconds: float | None) -> Callable[[], None]:
        """Call ``request_stop`` on SIGINT/SIGTERM or after max_seconds; returns an
        uninstaller."""
        timer = loop.call_later(max_seconds, request_stop) if max_seconds else None
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, request_stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / platform
                pass

        def uninstall() -> None:
            if timer is not None:
                timer.cancel()
            for sig in installed:
                loop.remove_signal_handler(sig)

        return uninstall


def run(cfg: Config, *, on_result: ResultHook | None = None) -> RunSummary:
    return Runner(cfg, on_result=on_result).run_sync()
