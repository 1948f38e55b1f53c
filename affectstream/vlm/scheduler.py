"""VLM scheduler (DESIGN §8): per-track emotion requests that never hold up perception.

The event loop hands every frame result to :meth:`VlmScheduler.observe`, which keeps small
bounded mirrors of each track's keyframes and log lines (perception's own state lives in its
thread). A track is due every ``period_s`` of stream time, sooner after a burst (at least
``min_interval_s`` after its previous request). A due track's context is queued; a newer
request for the same track replaces a queued one (coalescing); at most ``max_in_flight`` run
at once. An unparseable answer gets one stricter retry; failures are counted and back the
scheduler off (1, 2, 4 … 30 s), and nothing ever waits on a request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from affectstream.config import VlmConfig
from affectstream.errors import AffectStreamError
from affectstream.types import Burst, EmotionUpdate, Keyframe, LogLine
from affectstream.vlm.backend import BackendError, VlmBackend
from affectstream.vlm.calibration import Calibrator, EmotionSmoother
from affectstream.vlm.context import VlmContext, build_context
from affectstream.vlm.labels import valence_arousal
from affectstream.vlm.parsing import parse_emotion

log = logging.getLogger("affectstream.vlm")

Publish = Callable[[EmotionUpdate], Awaitable[None]]
_T = TypeVar("_T")
_MIRROR = 32


@dataclass(slots=True)
class _Track:
    window_start_s: float
    periodic: deque[Keyframe] = field(default_factory=lambda: deque(maxlen=_MIRROR))
    apexes: deque[Keyframe] = field(default_factory=lambda: deque(maxlen=_MIRROR))
    lines: deque[LogLine] = field(default_factory=lambda: deque(maxlen=4 * _MIRROR))
    last_request_s: float | None = None
    burst_pending: bool = False


def softmax(logprobs: dict[str, float]) -> dict[str, float]:
    top = max(logprobs.values())
    weights = {k: math.exp(v - top) for k, v in logprobs.items()}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


class VlmScheduler:
    def __init__(self, backend: VlmBackend, cfg: VlmConfig, labels: Sequence[str], camera: str,
                 publish: Publish, calibrator: Calibrator, smoother: EmotionSmoother) -> None:
        self._backend = backend
        self._cfg = cfg
        self._labels = tuple(labels)
        self._camera = camera
        self._publish = publish
        self._calibrate = calibrator
        self._smoother = smoother
        self._tracks: dict[int, _Track] = {}
        self._queue: dict[int, VlmContext] = {}  # insertion-ordered; one entry per track
        self._tasks: set[asyncio.Task[None]] = set()
        self._backoff_until = 0.0
        self._failures_in_row = 0
        self.calls = self.failures = self.coalesced = self.skipped = self.late = 0
        self._latency_ms: deque[float] = deque(maxlen=500)
        self._prompt_tokens: deque[int] = deque(maxlen=500)
        self._token_ratio: deque[float] = deque(maxlen=500)

    # -- perception side (event loop, every frame) -----------------------------------------------
    def observe(self, pts_s: float, keyframes: Iterable[Keyframe], log_lines: Iterable[LogLine],
                bursts: Iterable[Burst], active: Iterable[int], ended: Iterable[int]) -> None:
        for track_id in active:
            self._tracks.setdefault(track_id, _Track(pts_s))
        for kf in keyframes:
            if (track := self._tracks.get(kf.track_id)) is not None:
                (track.apexes if kf.reason == "apex" else track.periodic).append(kf)
        for line in log_lines:
            if (track := self._tracks.get(line.track_id)) is not None:
                track.lines.append(line)
        for burst in bursts:
            if (track := self._tracks.get(burst.track_id)) is not None:
                track.burst_pending = True
        for track_id in ended:
            self._tracks.pop(track_id, None)
            self._queue.pop(track_id, None)
            self._smoother.forget(track_id)
        for track_id, track in self._tracks.items():
            if self._due(track, pts_s):
                self._submit(track_id, track, pts_s)
        self._pump()

    def _due(self, track: _Track, pts_s: float) -> bool:
        since = pts_s - (track.last_request_s if track.last_request_s is not None
                         else track.window_start_s)
        return since >= self._cfg.period_s or (track.burst_pending
                                               and since >= self._cfg.min_interval_s)

    def _submit(self, track_id: int, track: _Track, pts_s: float) -> None:
        track.burst_pending = False
        track.last_request_s = pts_s
        start = max(track.window_start_s, pts_s - max(self._cfg.period_s, 1.0) * 2)
        if time.monotonic() < self._backoff_until or not track.periodic:
            self.skipped += 1
            return
        ctx = build_context(track_id, list(track.periodic), list(track.apexes), track.lines,
                            (start, pts_s), self._labels, k=self._cfg.keyframes,
                            max_side=self._cfg.max_side)
        if track_id in self._queue:
            self.coalesced += 1  # the newer window replaces the one still waiting
            del self._queue[track_id]
        self._queue[track_id] = ctx

    def _pump(self) -> None:
        while self._queue and len(self._tasks) < self._cfg.max_in_flight:
            track_id = next(iter(self._queue))
            ctx = self._queue.pop(track_id)
            task = asyncio.create_task(self._request(ctx), name=f"vlm track {track_id}")
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("VLM request crashed: %r", task.exception())
        self._pump()

    # -- requests ---------------------------------------------------------------------------------
    async def _request(self, ctx: VlmContext) -> None:
        self.calls += 1
        t0 = time.perf_counter()
        try:
            probs, rationale, valence, arousal = await self._ask(ctx)
        except AffectStreamError as exc:
            self.failures += 1
            self._failures_in_row += 1
            delay = min(30.0, 2.0 ** (self._failures_in_row - 1))
            self._backoff_until = time.monotonic() + delay
            log.warning("VLM request for track %d failed (%s); backing off %.0f s",
                        ctx.track_id, exc, delay)
            return
        self._failures_in_row = 0
        if ctx.track_id not in self._tracks:  # the face left while the VLM was thinking
            self.late += 1
            self._smoother.forget(ctx.track_id)
            return
        latency = (time.perf_counter() - t0) * 1000
        self._latency_ms.append(latency)
        self._prompt_tokens.append(ctx.prompt_tokens)
        self._token_ratio.append(ctx.token_ratio)
        calibrated = self._cfg.calibration != "none"
        probs = self._smoother.update(ctx.track_id, ctx.window_end_s,
                                      self._calibrate(probs))
        label = max(probs, key=lambda k: probs[k])
        if calibrated or self._cfg.smoothing_tau_s > 0 or valence is None or arousal is None:
            valence, arousal = valence_arousal(probs)
        await self._publish(EmotionUpdate(
            camera=self._camera, track_id=ctx.track_id, ts=time.time(),
            window_start_s=ctx.window_start_s, window_end_s=ctx.window_end_s, label=label,
            probs=probs, valence=valence, arousal=arousal, confidence=probs[label],
            rationale=rationale, source="vlm", model=self._backend.model, calibrated=calibrated,
            keyframes_s=ctx.keyframes_s, bursts=ctx.burst_ids, latency_ms=latency,
            prompt_tokens=ctx.prompt_tokens,
        ))

    async def _ask(self, ctx: VlmContext
                   ) -> tuple[dict[str, float], str, float | None, float | None]:
        if self._cfg.decode == "score":
            scores = await self._bounded(self._backend.score(ctx))
            return softmax(scores), "label log-likelihoods (scoring mode)", None, None
        text = await self._bounded(self._backend.generate(ctx))
        try:
            parsed = parse_emotion(text, self._labels)
        except AffectStreamError:  # one stricter retry, then a counted failure
            text = await self._bounded(self._backend.generate(ctx, strict=True))
            parsed = parse_emotion(text, self._labels)
        return dict(parsed.probs), parsed.rationale, parsed.valence, parsed.arousal

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
        lat = np.asarray(self._latency_ms, np.float64)
        return {
            "calls": self.calls, "failures": self.failures, "in_flight": len(self._tasks),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
            "prompt_tokens_mean": (round(float(np.mean(self._prompt_tokens)), 1)
                                   if self._prompt_tokens else None),
            "token_ratio_mean": (round(float(np.mean(self._token_ratio)), 3)
                                 if self._token_ratio else None),
            "coalesced": self.coalesced, "skipped": self.skipped, "late": self.late,
            "queued": len(self._queue),
        }

    async def close(self, wait_s: float) -> None:
        """Drop queued requests; give those in flight ``wait_s`` to finish, then cancel."""
        self._queue.clear()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=wait_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
