"""The DFER evaluation loop: each clip through the live perception once, each condition's
request built by the live context builder and asked through the live backends
(:func:`affectstream.vlm.factory.make_backend`, :func:`affectstream.vlm.ask.ask_emotion`),
answers cached per clip and condition, calibrated twins derived afterwards.

Perception of the next clip runs in a worker thread while the requests of earlier clips are
in flight; at most ``concurrency`` requests (captions included) run at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from affectstream.config import Config, OpenAIVlmConfig, TransformersVlmConfig
from affectstream.errors import AffectStreamError, SourceError
from affectstream.eval.datasets import Clip, Dataset, Skipped
from affectstream.eval.dfer_cache import AnswerCache
from affectstream.eval.dfer_clips import ClipView, checked_view, perception_config
from affectstream.eval.dfer_conditions import (
    CAL,
    Condition,
    build,
    caption_contexts,
    pool_fps,
)
from affectstream.labels import top_label
from affectstream.vlm.ask import ask_emotion
from affectstream.vlm.backend import BackendError, VlmBackend
from affectstream.vlm.calibration import Calibrator
from affectstream.vlm.captions import clean_caption
from affectstream.vlm.context import Caption, ImagePart, VlmContext

log = logging.getLogger("affectstream.eval")
_T = TypeVar("_T")
Progress = Callable[[str, int], None]
"""progress(clip id, requests finished now) — also called with 0 for a clip being perceived."""


@dataclass
class EvalJob:
    cfg: Config
    vlm: OpenAIVlmConfig | TransformersVlmConfig
    model_paths: dict[str, Path]
    dataset: Dataset
    conditions: list[Condition]
    wanted: list[str]
    output: Path
    concurrency: int = 1
    skip_bad: bool = False
    calibration_table: Path | None = None


@dataclass
class EvalResult:
    records: list[dict[str, Any]]
    skipped: list[Skipped] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    calibration: str = "none"


def identity(job: EvalJob) -> dict[str, Any]:
    return {"backend": job.vlm.type, "model": job.vlm.model, "decode": job.vlm.decode,
            "labels": list(job.dataset.labels), "dataset": str(job.dataset.root.resolve()),
            "format": job.dataset.format}


class _Asker:
    """One clip's requests against the shared backend, bounded and cached."""

    def __init__(self, job: EvalJob, backend: VlmBackend, cache: AnswerCache,
                 progress: Progress) -> None:
        self.job, self.backend, self.cache, self.progress = job, backend, cache, progress
        self.slots = asyncio.Semaphore(max(1, job.concurrency))
        self.failures: dict[str, int] = {}
        self.limit = job.vlm.timeout_s * (job.vlm.max_retries + 2)

    async def bounded(self, call: Awaitable[_T]) -> _T:
        try:
            return await asyncio.wait_for(call, self.limit)
        except TimeoutError:
            raise BackendError(f"no answer within {self.limit:g} s; check the VLM or raise "
                               "vlm.timeout_s") from None

    async def _caption(self, request: VlmContext | None) -> Caption | None:
        if request is None:
            return None
        async with self.slots:
            try:
                text = await self.bounded(self.backend.caption(
                    request, max_tokens=self.job.vlm.context.caption_max_tokens))
            except AffectStreamError:
                return None  # the gap says nothing new, as in the live stage
        clean = clean_caption(text)
        return None if clean is None else Caption(clean, len(request.images),
                                                  request.prompt_tokens)

    async def context(self, cond: Condition, view: ClipView) -> VlmContext:
        vlm = self.job.vlm
        captions: list[Caption | None] | None = None
        if cond.captions:
            requests = caption_contexts(cond, view, max_frames=vlm.context.caption_frames,
                                        max_fps=vlm.context.caption_fps, max_side=vlm.max_side)
            captions = list(await asyncio.gather(*(self._caption(r) for r in requests)))
        return build(cond, view, self.job.dataset.labels, max_side=vlm.max_side,
                     captions=captions)

    async def ask(self, clip: Clip, cond: Condition, view: ClipView) -> None:
        try:
            ctx = await self.context(cond, view)
            async with self.slots:
                answer = await ask_emotion(self.backend, ctx, self.job.dataset.labels,
                                           self.job.vlm.decode, self.bounded)
        except AffectStreamError as exc:
            if not self.failures:
                log.warning("VLM request failed (%s); the clip is asked again on a rerun", exc)
            self.failures[cond.name] = self.failures.get(cond.name, 0) + 1
            self.progress(clip.id, 1)
            return
        images = sum(1 for p in ctx.parts if isinstance(p, ImagePart))
        self.cache.put({
            "clip": clip.id, "condition": cond.name, "label": clip.label,
            "pred": top_label(answer.probs), "probs": answer.probs,
            "rationale": answer.rationale, "images": images,
            "prompt_tokens": ctx.prompt_tokens, "caption_tokens": ctx.caption_tokens,
            "aligned": view.aligned, "model": self.backend.model})
        self.progress(clip.id, 1)


def _prior_path(job: EvalJob) -> Path:
    return job.output / "content_free_prior.json"


def _needs_backend(job: EvalJob, cache: AnswerCache) -> bool:
    """Whether anything is left to ask (a rerun of a finished run starts no model)."""
    missing = any(cache.get(clip.id, c.name) is None
                  for clip in job.dataset.clips for c in job.conditions)
    prior = (any(n.endswith(CAL) for n in job.wanted) and job.calibration_table is None
             and not _prior_path(job).is_file())
    return missing or prior


async def _calibrator(job: EvalJob, backend: VlmBackend | None
                      ) -> tuple[Calibrator | None, str]:
    """The calibration of the ``+cal`` conditions: the table file when given (read as the live
    stage reads ``calibration: table``), else contextual, with the content-free prior asked
    once through the live stage's factory and cached in the output folder."""
    from affectstream.vlm.calibration import make_calibrator
    from affectstream.vlm.factory import content_free_prior, table_calibrator

    if not any(name.endswith(CAL) for name in job.wanted):
        return None, "none"
    if job.calibration_table is not None:
        return (table_calibrator(job.calibration_table, "--calibration-table"),
                f"table ({job.calibration_table})")
    path = _prior_path(job)
    if path.is_file():
        prior = json.loads(path.read_text(encoding="utf-8"))
    else:
        assert backend is not None  # started whenever the prior is missing
        prior = await content_free_prior(backend, job.vlm, job.dataset.labels)
        path.write_text(json.dumps(prior, indent=2) + "\n", encoding="utf-8")
    return make_calibrator("contextual", content_free=prior), "contextual (content-free prior)"


async def _ask_all(job: EvalJob, asker: _Asker, progress: Progress) -> list[Skipped]:
    """Perceive each clip not fully cached and ask its missing conditions."""
    perception_cfg = perception_config(job.cfg, pool_fps(job.conditions,
                                                         job.vlm.context.caption_fps))
    fps = perception_cfg.keyframes.periodic_fps
    skipped = list(job.dataset.skipped)
    pending: set[asyncio.Task[None]] = set()
    for clip in job.dataset.clips:
        todo = [c for c in job.conditions if asker.cache.get(clip.id, c.name) is None]
        progress(clip.id, len(job.conditions) - len(todo))
        if not todo:
            continue
        try:
            view = await asyncio.to_thread(checked_view, perception_cfg, job.model_paths,
                                           clip, fps)
        except SourceError as exc:
            if not job.skip_bad:
                raise
            skipped.append(Skipped(clip.id, str(exc)))
            progress(clip.id, len(todo))
            continue
        pending |= {asyncio.create_task(asker.ask(clip, c, view)) for c in todo}
        while len(pending) > 4 * max(1, job.concurrency):
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.gather(*pending)
    return skipped


async def evaluate(job: EvalJob, progress: Progress) -> EvalResult:
    from affectstream.vlm.factory import make_backend

    cache = AnswerCache(job.output, identity(job))
    if not _needs_backend(job, cache):
        calibrate, kind = await _calibrator(job, None)
        return EvalResult(_records(job, cache, calibrate), list(job.dataset.skipped), {}, kind)
    backend = make_backend(job.vlm)
    await backend.start()
    try:
        calibrate, kind = await _calibrator(job, backend)
        asker = _Asker(job, backend, cache, progress)
        skipped = await _ask_all(job, asker, progress)
    finally:
        await backend.close()
    return EvalResult(_records(job, cache, calibrate), skipped, asker.failures, kind)


def _records(job: EvalJob, cache: AnswerCache,
             calibrate: Calibrator | None) -> list[dict[str, Any]]:
    """The prediction lines, clip by clip in dataset order, condition by condition."""
    out: list[dict[str, Any]] = []
    for clip in job.dataset.clips:
        for name in job.wanted:
            base = name.removesuffix(CAL)
            rec = cache.get(clip.id, base)
            if rec is None:
                continue  # failed or skipped: counted elsewhere
            rec = {**rec, "condition": name}
            if name.endswith(CAL) and calibrate is not None:
                rec["probs"] = calibrate(rec["probs"])
                rec["pred"] = top_label(rec["probs"])
            out.append(rec)
    return out
