"""The VLM as an emotion estimator (``source: vlm``): every frame goes to a
:class:`VlmScheduler`, whose requests run as tasks and emit their updates when the answers come.

The backend, the optional captioner, the calibration and the cap on requests in flight are one
:class:`VlmPool` per VLM config in a run: cameras with the same ``vlm`` section share one model
(or one HTTP client) and take turns for its ``max_in_flight`` slots (:class:`FairSlots`), so a
busy camera cannot starve another.
"""

from __future__ import annotations

import asyncio
from typing import Any

from affectstream.config import OpenAIVlmConfig, TransformersVlmConfig
from affectstream.emotion.base import EmotionEstimator, EstimatorSetup
from affectstream.emotion.scheduler import VlmScheduler
from affectstream.emotion.slots import FairSlots
from affectstream.types import FrameResult
from affectstream.vlm.backend import VlmBackend
from affectstream.vlm.calibration import Calibrator

VlmSettings = OpenAIVlmConfig | TransformersVlmConfig


class VlmPool:
    """One VLM backend (and captioner and calibration) for every camera that uses it: started
    by the first camera that needs it, closed after the last."""

    def __init__(self, cfg: VlmSettings, labels: tuple[str, ...]) -> None:
        self.cfg = cfg
        self._labels = labels
        self.slots = FairSlots(cfg.max_in_flight)
        self.backend: VlmBackend | None = None
        self.captioner: VlmBackend | None = None
        self.calibrator: Calibrator | None = None
        self._users = 0
        self._lock = asyncio.Lock()

    @classmethod
    def of(cls, setup: EstimatorSetup, cfg: VlmSettings) -> VlmPool:
        """The run's pool for ``cfg`` (``setup.shared`` holds one per distinct section)."""
        key = f"vlm-pool:{cfg.model_dump_json()}"
        pool = setup.shared.get(key)
        if not isinstance(pool, VlmPool):
            pool = setup.shared[key] = cls(cfg, setup.labels)
        return pool

    async def acquire(self) -> None:
        # imported here: the backends pull in httpx or torch, needed only with a VLM
        from affectstream.vlm.factory import calibrator_for, make_backend, start_captioner

        async with self._lock:  # cameras start concurrently; one of them starts the model
            self._users += 1
            if self.backend is not None:
                return
            try:
                backend = self.backend = make_backend(self.cfg)
                await backend.start()
                self.captioner = await start_captioner(self.cfg, backend)
                self.calibrator = await calibrator_for(self.cfg, backend, self._labels)
            except BaseException:
                self._users -= 1
                await self._close()
                raise

    async def release(self) -> None:
        async with self._lock:
            self._users -= 1
            if self._users <= 0:
                await self._close()

    async def _close(self) -> None:
        captioner, backend = self.captioner, self.backend
        self.captioner = self.backend = self.calibrator = None
        if captioner is not None and captioner is not backend:
            await captioner.close()
        if backend is not None:
            await backend.close()


class VlmEstimator(EmotionEstimator):
    def __init__(self, setup: EstimatorSetup, cfg: VlmSettings) -> None:
        self._setup = setup
        self._cfg = cfg
        self._pool: VlmPool | None = None
        self._scheduler: VlmScheduler | None = None
        self._closed = False

    async def start(self) -> None:
        from affectstream.vlm.calibration import EmotionSmoother

        vlm, setup = self._cfg, self._setup
        pool = VlmPool.of(setup, vlm)
        await pool.acquire()
        self._pool = pool
        assert pool.backend is not None and pool.calibrator is not None  # set by acquire
        self._scheduler = VlmScheduler(
            pool.backend, vlm, setup.labels, setup.cfg.camera_id, setup.emit, pool.calibrator,
            EmotionSmoother(vlm.smoothing_tau_s), captioner=pool.captioner,
            keyframe_fps=setup.cfg.keyframes.periodic_fps, clock=setup.clock, slots=pool.slots)

    async def observe(self, result: FrameResult) -> None:
        if self._scheduler is None:
            raise RuntimeError("VlmEstimator.observe before start")
        # requests run as tasks; nothing here waits for them
        self._scheduler.feed(result.pts_s, result.keyframes, result.log_lines, result.bursts,
                             [f.track_id for f in result.faces],
                             [e.track_id for e in result.track_events if e.type == "end"])

    def stats(self) -> dict[str, Any]:
        return {"vlm": self._scheduler.stats()} if self._scheduler is not None else {}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # the scheduler stays for the final stats
        if self._scheduler is not None:  # answers already on their way still count
            await self._scheduler.close(wait_s=self._cfg.timeout_s)
        if self._pool is not None:
            await self._pool.release()


def create(setup: EstimatorSetup) -> VlmEstimator | None:
    vlm = setup.cfg.vlm
    if isinstance(vlm, OpenAIVlmConfig | TransformersVlmConfig):
        return VlmEstimator(setup, vlm)
    return None
