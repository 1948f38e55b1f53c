"""VLM scheduler (DESIGN §8): per-track emotion requests that never hold up perception.

The event loop hands every frame result to :meth:`VlmScheduler.feed`, which keeps small
bounded mirrors of each track's keyframes and log lines (perception's own state lives in its
thread). A track is due by the shared :class:`~affectstream.emotion.base.UpdateClock`: every
``period_s`` of stream time, sooner after a burst (at least ``min_interval_s`` after its
previous request). A due track's context is queued; a newer
request for the same track replaces a queued one (coalescing); at most ``max_in_flight`` run
at once. An unparseable answer gets one stricter retry; failures are counted and back the
scheduler off (1, 2, 4 … 30 s), and nothing ever waits on a request.

A queued request is a snapshot of the track's mirrors; its context is built when it starts.
With ``vlm.context.motion_text`` vlm or both, the request first has the captioner describe the
frames in each gap between its keyframes (concurrently, each bounded like a main call), then
builds the context with those captions. A failed caption is counted and its gap keeps the
detector lines: it never fails the emotion update nor backs the scheduler off.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.config import VlmModelConfig
from affectstream.emotion.base import Emit, UpdateClock
from affectstream.emotion.slots import FairSlots
from affectstream.errors import AffectStreamError
from affectstream.labels import valence_arousal
from affectstream.percentiles import percentiles
from affectstream.types import Burst, EmotionUpdate, Keyframe, LogLine
from affectstream.vlm.ask import ask_emotion
from affectstream.vlm.backend import BackendError, VlmBackend
from affectstream.vlm.calibration import Calibrator, EmotionSmoother
from affectstream.vlm.captions import caption_requests, clean_caption
from affectstream.vlm.context import Caption, VlmContext, build_context

log = logging.getLogger("affectstream.vlm")

_T = TypeVar("_T")
_MIRROR = 32
"""Keyframes kept per track and kind at least; periodic ones: a whole window's worth."""


@dataclass(slots=True)
class _Track:
    first_s: float
    periodic: deque[Keyframe]
    apexes: deque[Keyframe] = field(default_factory=lambda: deque(maxlen=_MIRROR))
    lines: deque[LogLine] = field(default_factory=lambda: deque(maxlen=4 * _MIRROR))


@dataclass(frozen=True, slots=True)
class _Job:
    """A queued request: what the track's mirrors held when it was due."""

    track_id: int
    periodic: list[Keyframe]
    apexes: list[Keyframe]
    lines: list[LogLine]
    window: tuple[float, float]


def window_s(cfg: VlmModelConfig) -> float:
    """Stream time a request covers: two periods (at least 2 s), so windows overlap."""
    return 2.0 * max(cfg.period_s, 1.0)


def mirror_size(cfg: VlmModelConfig, keyframe_fps: float) -> int:
    """Periodic keyframes to keep per track: a whole request window at the rate perception
    keeps them (at least ``caption_fps`` when captioning), plus slack."""
    fps = keyframe_fps
    if cfg.context.motion_text != "detectors":
        fps = max(fps, cfg.context.caption_fps)
    return max(_MIRROR, math.ceil(window_s(cfg) * fps) + 2)


class VlmScheduler:
    def __init__(self, backend: VlmBackend, cfg: VlmModelConfig, labels: Sequence[str], camera: str,
                 publish: Emit, calibrator: Calibrator, smoother: EmotionSmoother, *,
                 captioner: VlmBackend | None = None, keyframe_fps: float = 2.0,
                 clock: Clock = SYSTEM_CLOCK, slots: FairSlots | None = None) -> None:
        """``captioner`` captions in-between frames (default: ``backend``); ``keyframe_fps``
        is the rate at which perception keeps periodic keyframes (``keyframes.periodic_fps``),
        which sizes the per-track mirrors; ``clock`` times backoffs and latencies; ``slots`` caps
        the requests in flight together with other cameras' schedulers (default: this
        scheduler's own ``max_in_flight``)."""
        self._backend = backend
        self._captioner = captioner if captioner is not None else backend
        self._cfg = cfg
        self._captioning = cfg.context.motion_text != "detectors"
        self._mirror = mirror_size(cfg, keyframe_fps)
        self._labels = tuple(labels)
        self._camera = camera
        self._publish = publish
        self._calibrate = calibrator
        self._smoother = smoother
        self._clock = clock
        self._due = UpdateClock(cfg.period_s, cfg.min_interval_s)
        self._tracks: dict[int, _Track] = {}
        self._queue: dict[int, _Job] = {}  # insertion-ordered; one entry per track
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = slots if slots is not None else FairSlots(cfg.max_in_flight)
        self._backoff_until = 0.0
        self._failures_in_row = 0
        self.calls = self.failures = self.coalesced = self.skipped = self.late = 0
        self._latency_ms: deque[float] = deque(maxlen=500)
        self._prompt_tokens: deque[int] = deque(maxlen=500)
        self._token_ratio: deque[float] = deque(maxlen=500)
        self.caption_calls = self.caption_failures = 0
        self._caption_failing = False
        self._caption_tokens: deque[int] = deque(maxlen=500)
        self._total_ratio: deque[float] = deque(maxlen=500)

    # -- perception side (event loop, every frame) -----------------------------------------------
    def feed(self, pts_s: float, keyframes: Iterable[Keyframe], log_lines: Iterable[LogLine],
             bursts: Iterable[Burst], active: Iterable[int], ended: Iterable[int]) -> None:
        """One frame: mirror its keyframes and lines, queue the requests that came due."""
        for track_id in active:
            if track_id not in self._tracks:
                self._tracks[track_id] = _Track(pts_s, deque(maxlen=self._mirror))
                self._due.start(track_id, pts_s)
        for kf in keyframes:
            if (track := self._tracks.get(kf.track_id)) is not None:
                (track.apexes if kf.reason == "apex" else track.periodic).append(kf)
        for line in log_lines:
            if (track := self._tracks.get(line.track_id)) is not None:
                track.lines.append(line)
        for burst in bursts:
            self._due.burst(burst.track_id)
        for track_id in ended:
            self._tracks.pop(track_id, None)
            self._due.forget(track_id)
            self._queue.pop(track_id, None)
            self._smoother.forget(track_id)
        for track_id, track in self._tracks.items():
            if self._due.due(track_id, pts_s):
                self._submit(track_id, track, pts_s)
        self._pump()

    def _submit(self, track_id: int, track: _Track, pts_s: float) -> None:
        self._due.fired(track_id, pts_s)
        start = max(track.first_s, pts_s - window_s(self._cfg))
        if self._clock.monotonic() < self._backoff_until or not track.periodic:
            self.skipped += 1
            return
        # a snapshot (references, no image copies): the mirrors move on while it waits
        job = _Job(track_id, list(track.periodic), list(track.apexes), list(track.lines),
                   (start, pts_s))
        if track_id in self._queue:
            self.coalesced += 1  # the newer window replaces the one still waiting
            del self._queue[track_id]
        self._queue[track_id] = job

    def _pump(self) -> None:
        while self._queue and self._slots.acquire(self._pump):
            track_id = next(iter(self._queue))
            job = self._queue.pop(track_id)
            task = asyncio.create_task(self._request(job), name=f"vlm track {track_id}")
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("VLM request crashed: %r", task.exception())
        self._slots.release()  # may pump another camera's scheduler first: its turn
        self._pump()

    # -- requests ---------------------------------------------------------------------------------
    async def _request(self, job: _Job) -> None:
        self.calls += 1
        t0 = self._clock.monotonic()  # captions count towards the update's latency
        ctx = await self._context(job)
        if ctx.track_id not in self._tracks:  # the face left while its frames were captioned
            self.late += 1
            return
        try:
            probs, rationale, valence, arousal = await self._ask(ctx)
        except AffectStreamError as exc:
            self.failures += 1
            self._failures_in_row += 1
            delay = min(30.0, 2.0 ** (self._failures_in_row - 1))
            self._backoff_until = self._clock.monotonic() + delay
            log.warning("VLM request for track %d failed (%s); backing off %.0f s",
                        ctx.track_id, exc, delay)
            return
        self._failures_in_row = 0
        if ctx.track_id not in self._tracks:  # the face left while the VLM was thinking
            self.late += 1
            self._smoother.forget(ctx.track_id)
            return
        latency = (self._clock.monotonic() - t0) * 1000
        self._latency_ms.append(latency)
        self._prompt_tokens.append(ctx.prompt_tokens)
        self._token_ratio.append(ctx.token_ratio)
        if self._captioning:
            self._caption_tokens.append(ctx.caption_tokens)
            self._total_ratio.append(ctx.total_token_ratio)
        calibrated = self._cfg.calibration != "none"
        probs = self._smoother.update(ctx.track_id, ctx.window_end_s,
                                      self._calibrate(probs))
        label = max(probs, key=lambda k: probs[k])
        if calibrated or self._cfg.smoothing_tau_s > 0 or valence is None or arousal is None:
            valence, arousal = valence_arousal(probs)
        await self._publish(EmotionUpdate(
            camera=self._camera, track_id=ctx.track_id, ts=self._clock.time(),
            window_start_s=ctx.window_start_s, window_end_s=ctx.window_end_s, label=label,
            probs=probs, valence=valence, arousal=arousal, confidence=probs[label],
            rationale=rationale, source="vlm", model=self._backend.model, calibrated=calibrated,
            keyframes_s=ctx.keyframes_s, bursts=ctx.burst_ids, latency_ms=latency,
            prompt_tokens=ctx.prompt_tokens,
        ))

    async def _context(self, job: _Job) -> VlmContext:
        cfg = self._cfg
        captions: list[Caption | None] | None = None
        if self._captioning:
            requests = caption_requests(
                job.track_id, job.periodic, job.apexes, job.window, k=cfg.keyframes,
                max_frames=cfg.context.caption_frames, max_fps=cfg.context.caption_fps,
                max_side=cfg.max_side)
            texts = await asyncio.gather(*(self._caption(r) for r in requests if r is not None))
            answers = iter(texts)
            captions = [None if r is None else Caption(next(answers), len(r.images),
                                                       r.prompt_tokens) for r in requests]
        return build_context(job.track_id, job.periodic, job.apexes, job.lines, job.window,
                             self._labels, k=cfg.keyframes, max_side=cfg.max_side,
                             motion_text=cfg.context.motion_text, captions=captions)

    async def _caption(self, request: VlmContext) -> str | None:
        """The caption, or None after a failure (counted; logged once per run of failures)."""
        self.caption_calls += 1
        try:
            answer = await self._bounded(self._captioner.caption(
                request, max_tokens=self._cfg.context.caption_max_tokens))
        except AffectStreamError as exc:
            text, why = None, str(exc)
        else:
            text, why = clean_caption(answer), "an empty answer"
        if text is not None:
            self._caption_failing = False
            return text
        self.caption_failures += 1
        if not self._caption_failing:
            log.warning("VLM caption for track %d failed (%s); its gap keeps the detector "
                        "lines", request.track_id, why)
        self._caption_failing = True
        return None

    async def _ask(self, ctx: VlmContext
                   ) -> tuple[dict[str, float], str, float | None, float | None]:
        answer = await ask_emotion(self._backend, ctx, self._labels, self._cfg.decode,
                                   self._bounded)
        return answer.probs, answer.rationale, answer.valence, answer.arousal

    async def _bounded(self, call: Awaitable[_T]) -> _T:
        """The backend's own timeouts normally fire first; this ends a backend that hangs."""
        limit = self._cfg.timeout_s * (self._cfg.max_retries + 2)
        try:
            return await asyncio.wait_for(call, limit)
        except TimeoutError:
            raise BackendError(f"no answer within {limit:g} s; check the VLM or raise "
                               "vlm.timeout_s") from None

    # -- stats and shutdown -----------------------------------------------------------------------
    def stats(self) -> dict[str, object]:
        latency = percentiles(self._latency_ms, digits=1)
        return {
            "calls": self.calls, "failures": self.failures, "in_flight": len(self._tasks),
            "latency_ms_p50": latency["p50"], "latency_ms_p95": latency["p95"],
            "prompt_tokens_mean": _mean(self._prompt_tokens, 1),
            "token_ratio_mean": _mean(self._token_ratio, 3),
            "coalesced": self.coalesced, "skipped": self.skipped, "late": self.late,
            "queued": len(self._queue), **self._caption_stats(),
        }

    def _caption_stats(self) -> dict[str, object]:
        """Only with captions on, so the default stats keep their shape."""
        if not self._captioning:
            return {}
        return {
            "caption_calls": self.caption_calls, "caption_failures": self.caption_failures,
            "caption_tokens_mean": _mean(self._caption_tokens, 1),
            "total_token_ratio_mean": _mean(self._total_ratio, 3),
        }

    async def idle(self) -> None:
        """Wait until no request is queued or in flight (each finished request starts the
        next queued one)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self, wait_s: float) -> None:
        """Drop queued requests; give those in flight ``wait_s`` to finish, then cancel."""
        self._queue.clear()
        self._slots.leave(self._pump)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=wait_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def _mean(values: Sequence[float], digits: int) -> float | None:
    return round(float(np.mean(values)), digits) if values else None
