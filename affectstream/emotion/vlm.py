"""The VLM as an emotion estimator (``source: vlm``): the backend, the optional captioner and
the calibration are set up at start, and every frame goes to a :class:`VlmScheduler`, whose
requests run as tasks and emit their updates when the answers come."""

from __future__ import annotations

from typing import Any

from affectstream.config import OpenAIVlmConfig, TransformersVlmConfig
from affectstream.emotion.base import EmotionEstimator, EstimatorSetup
from affectstream.emotion.scheduler import VlmScheduler
from affectstream.types import FrameResult
from affectstream.vlm.backend import VlmBackend


class VlmEstimator(EmotionEstimator):
    def __init__(self, setup: EstimatorSetup, cfg: OpenAIVlmConfig | TransformersVlmConfig
                 ) -> None:
        self._setup = setup
        self._cfg = cfg
        self._backend: VlmBackend | None = None
        self._captioner: VlmBackend | None = None
        self._scheduler: VlmScheduler | None = None
        self._closed = False

    async def start(self) -> None:
        # imported here: the backends pull in httpx or torch, needed only with a VLM
        from affectstream.vlm.calibration import EmotionSmoother
        from affectstream.vlm.factory import calibrator_for, make_backend, start_captioner

        vlm, setup = self._cfg, self._setup
        self._backend = make_backend(vlm)
        await self._backend.start()
        self._captioner = await start_captioner(vlm, self._backend)
        calibrator = await calibrator_for(vlm, self._backend, setup.labels)
        self._scheduler = VlmScheduler(
            self._backend, vlm, setup.labels, setup.cfg.camera_id, setup.emit, calibrator,
            EmotionSmoother(vlm.smoothing_tau_s), captioner=self._captioner,
            keyframe_fps=setup.cfg.keyframes.periodic_fps, clock=setup.clock)

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
        captioner, backend = self._captioner, self._backend
        self._captioner = self._backend = None
        if captioner is not None and captioner is not backend:
            await captioner.close()
        if backend is not None:
            await backend.close()


def create(setup: EstimatorSetup) -> VlmEstimator | None:
    vlm = setup.cfg.vlm
    if isinstance(vlm, OpenAIVlmConfig | TransformersVlmConfig):
        return VlmEstimator(setup, vlm)
    return None
