"""Wiring of a run: one or several cameras (:mod:`affectstream.camera`), their sinks, and the
stops (``--max-seconds``, Ctrl-C, SIGTERM), on one event loop.

Each camera has its own capture thread, perception worker, emotion estimators and stats, and
publishes under its own id. File and stdout sinks are shared by every camera (one file, one
stream); each camera has its own MQTT connections, so each has its own last will (its
``availability`` goes ``offline`` when the process dies). A camera alone fails fast on a bad
source; cameras of a ``cameras:`` run are retried on their own schedules and never stop the
others, while an error that is not the source's (a model, a VLM, a sink) stops the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

from affectstream.camera import CameraRun, ResultHook, RunSummary
from affectstream.config import Config
from affectstream.emotion import EstimatorRegistry, default_registry
from affectstream.publish import messages
from affectstream.publish.messages import Message
from affectstream.publish.sinks import Fanout, Sink, check_sink, parse_sink
from affectstream.types import FrameTap

log = logging.getLogger("affectstream")

__all__ = ["FrameTap", "ResultHook", "RunSummary", "Runner", "run"]


class _SharedSink:
    """A sink every camera writes to: started by the first camera that starts it, closed by
    the last that closes it."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self.name = sink.name
        self._users = 0

    async def start(self) -> None:
        if self._users == 0:
            await self._sink.start()
        self._users += 1

    async def publish(self, message: Message) -> None:
        await self._sink.publish(message)

    async def close(self) -> None:
        self._users -= 1
        if self._users == 0:
            await self._sink.close()

    def stats(self) -> dict[str, Any]:
        return self._sink.stats()


def _fanouts(cfg: Config, cameras: list[Config], extra: Sequence[Sink] = ()) -> list[Fanout]:
    """One fan-out per camera: the shared file and stdout sinks, and its own MQTT sinks. Bad
    sink specs fail here, before models or sources are touched. ``extra`` (in-process sinks
    such as the preview server's) are shared by every camera too."""
    shared = {spec: _SharedSink(parse_sink(spec, cfg.mqtt, cfg.camera_id))
              for spec in cfg.sinks if check_sink(spec, cfg.mqtt) != "mqtt"}
    ids = [cam.camera_id for cam in cameras]
    others: list[Sink] = [_SharedSink(sink) for sink in extra]
    return [Fanout([shared[spec] if spec in shared
                    else parse_sink(spec, cam.mqtt, cam.camera_id, ids) for spec in cfg.sinks]
                   + others)
            for cam in cameras]


class Runner:
    """A run of every camera the config names (``camera_configs()``). The emotion stage of each
    is whatever ``estimators`` (default: the built-in registry) makes of its config."""

    def __init__(self, cfg: Config, *, on_result: ResultHook | None = None,
                 keep_bursts: bool = False, estimators: EstimatorRegistry | None = None,
                 taps: Sequence[FrameTap] = (), sinks: Sequence[Sink] = ()) -> None:
        """``taps`` see every camera's frames (:data:`FrameTap`); ``sinks`` are in-process
        sinks that get every camera's messages besides the configured ones."""
        self.cfg = cfg
        self._taps = taps
        self._sinks = sinks
        self._on_result = on_result
        self._keep_bursts = keep_bursts
        self._registry = estimators if estimators is not None else default_registry()
        self.summary = RunSummary()
        self._stop: Callable[[], None] | None = None

    def request_stop(self) -> None:
        """Stop every camera as ``--max-seconds`` does (thread-safe; no-op before the run
        starts or after it ended). Everything already captured is still processed and
        published."""
        stop = self._stop
        if stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                stop()

    def run_sync(self) -> RunSummary:
        return asyncio.run(self.run())

    async def run(self) -> RunSummary:
        if self.cfg.preview.port is None and self.cfg.metrics.port is None:
            return await self._run(self._taps, self._sinks)
        from affectstream.web.service import serve  # aiohttp only with a web server

        async with serve(self.cfg) as web:  # listening before the cameras start
            return await self._run([*self._taps, *web.taps], [*self._sinks, *web.sinks])

    async def _run(self, taps: Sequence[FrameTap], sinks: Sequence[Sink]) -> RunSummary:
        cameras = self.cfg.camera_configs()
        patient = bool(self.cfg.cameras)
        loop = asyncio.get_running_loop()
        stops = _Stops(loop, self.cfg.max_seconds)
        shared: dict[str, Any] = {}  # e.g. one VLM backend for the cameras that use it
        runs = [CameraRun(cam, fanout, self._registry, patient=patient,
                          on_result=self._on_result, keep_bursts=self._keep_bursts,
                          on_running=stops.install, shared=shared, taps=taps)
                for cam, fanout in zip(cameras, _fanouts(self.cfg, cameras, sinks),
                                       strict=True)]
        def stop_all() -> None:
            for r in runs:
                r.stop()

        def stop_from_any_thread() -> None:
            loop.call_soon_threadsafe(stop_all)

        stops.request = stop_all
        self._stop = stop_from_any_thread
        if patient:  # a camera that never opens must not keep the run from ending
            stops.install()
        summer = asyncio.create_task(_process_stats(runs, self.cfg.stats_interval_s)) \
            if len(runs) > 1 else None
        try:
            await _run_all(runs, stops.request)
        finally:
            if summer is not None:
                summer.cancel()
            self._stop = None
            stops.uninstall()
            self._summarise(runs)
        return self.summary

    def _summarise(self, runs: list[CameraRun]) -> None:
        for r in runs:
            self.summary.frames += r.summary.frames
            self.summary.burst_count += r.summary.burst_count
            self.summary.bursts += r.summary.bursts
            self.summary.tracks += r.summary.tracks
            self.summary.duration_s = max(self.summary.duration_s, r.summary.duration_s)
        self.summary.stats = runs[0].summary.stats
        if len(runs) > 1:
            self.summary.cameras = {r.cfg.camera_id: r.summary for r in runs}


async def _run_all(runs: list[CameraRun], stop_all: Callable[[], object]) -> None:
    """Every camera at once; the first error stops the others and is raised when all ended."""
    if len(runs) == 1:
        await runs[0].run()
        return
    tasks = [asyncio.create_task(r.run(), name=f"camera {r.cfg.camera_id}") for r in runs]
    error: BaseException | None = None
    for next_done in asyncio.as_completed(tasks):
        try:
            await next_done
        except Exception as exc:
            if error is None:
                error = exc
                log.error("camera failed: %s; stopping the run", exc)
                stop_all()
    if error is not None:
        raise error


async def _process_stats(runs: list[CameraRun], every: float) -> None:
    """Every ``every`` seconds, the cameras' stats summed on ``{prefix}/stats`` (through the
    first camera's sinks: the file sinks are shared, and any MQTT connection will do)."""
    while True:
        await asyncio.sleep(every)
        message = messages.process_stats(
            {r.cfg.camera_id: r.stats.payload() for r in runs}, time.time())
        await runs[0].fanout.publish(message)


class _Stops:
    """SIGINT, SIGTERM and ``max_seconds`` call ``request``; installed once, when the first
    camera runs (model loading and VLM start-up do not count against ``--max-seconds``), or at
    once for several cameras."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_seconds: float | None) -> None:
        self._loop = loop
        self._max_seconds = max_seconds
        self.request: Callable[[], object] = lambda: None
        self._timer: asyncio.TimerHandle | None = None
        self._signals: list[signal.Signals] = []
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        if self._max_seconds:
            self._timer = self._loop.call_later(self._max_seconds, self.request)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(sig, self.request)
                self._signals.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / platform
                pass

    def uninstall(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for sig in self._signals:
            self._loop.remove_signal_handler(sig)
        self._signals.clear()


def run(cfg: Config, *, on_result: ResultHook | None = None) -> RunSummary:
    return Runner(cfg, on_result=on_result).run_sync()
