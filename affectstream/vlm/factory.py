"""Backend choice by ``vlm.type`` (imported lazily), the captioner for ``vlm.context`` and the
calibration set-up at start-up."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from affectstream.config import VlmConfig
from affectstream.errors import ConfigError, ModelError
from affectstream.types import Keyframe
from affectstream.vlm.backend import VlmBackend
from affectstream.vlm.calibration import Calibrator, make_calibrator
from affectstream.vlm.context import build_context
from affectstream.vlm.logprobs import softmax
from affectstream.vlm.parsing import parse_emotion


def make_backend(cfg: VlmConfig) -> VlmBackend:
    if cfg.type == "openai":
        if not cfg.url:
            raise ConfigError("--vlm-backend openai needs the server's URL: --vlm-url "
                              "http://HOST:PORT/v1 (e.g. from `vllm serve MODEL`)")
        from affectstream.vlm.backends.openai import OpenAIBackend

        key = (cfg.api_key.get_secret_value() if cfg.api_key is not None
               else os.environ.get("OPENAI_API_KEY"))
        return OpenAIBackend(cfg.url, cfg.model, api_key=key, timeout_s=cfg.timeout_s,
                             max_retries=cfg.max_retries, max_tokens=cfg.max_tokens,
                             temperature=cfg.temperature)
    if cfg.type == "transformers":
        if not cfg.model:
            raise ConfigError("--vlm-backend transformers needs --vlm-model (a hub id or a "
                              "local model directory, e.g. Qwen/Qwen2.5-VL-3B-Instruct)")
        from affectstream.vlm.backends.transformers import TransformersBackend

        return TransformersBackend(cfg.model, device=cfg.device, dtype=cfg.dtype,
                                   max_new_tokens=cfg.max_tokens)
    raise ConfigError(f"vlm.type {cfg.type!r} has no VLM backend; use openai or transformers")


def make_captioner(cfg: VlmConfig) -> VlmBackend | None:
    """A separate, not yet started captioner for ``vlm.context.captioner`` openai or
    transformers (None for ``same``); the other settings come from ``cfg``."""
    ctx = cfg.context
    if ctx.captioner == "same":
        if ctx.captioner_model or ctx.captioner_url:
            raise ConfigError("vlm.context.captioner_model and captioner_url only apply to a "
                              "separate captioner; set vlm.context.captioner: openai or "
                              "transformers, or remove them")
        return None
    if ctx.captioner == "openai" and not (ctx.captioner_url or cfg.url):
        raise ConfigError("vlm.context.captioner: openai needs the captioner server's URL: set "
                          "vlm.context.captioner_url (http://HOST:PORT/v1) or vlm.url")
    if ctx.captioner == "transformers" and not ctx.captioner_model:
        raise ConfigError("vlm.context.captioner: transformers needs vlm.context.captioner_model "
                          "(a hub id or local directory of a small VLM)")
    return make_backend(cfg.model_copy(update={
        "type": ctx.captioner, "model": ctx.captioner_model, "url": ctx.captioner_url or cfg.url}))


async def start_captioner(cfg: VlmConfig, main: VlmBackend) -> VlmBackend | None:
    """What captions in-between frames: None with ``motion_text: detectors``, ``main`` with
    ``captioner: same``, else a separate backend, started here so that it fails at start-up
    with one line, like the main one."""
    if cfg.context.motion_text == "detectors":
        return None
    captioner = make_captioner(cfg)
    if captioner is None:
        return main
    try:
        await captioner.start()
    except BaseException as exc:
        await captioner.close()
        if isinstance(exc, ConfigError | ModelError):
            raise type(exc)(_for_captioner(str(exc))) from exc
        raise
    return captioner


def _for_captioner(message: str) -> str:
    """A backend's start-up error, reworded to name the captioner's settings: the backends
    name the main VLM's command-line flags in their fixes."""
    message = message.replace("--vlm-url", "vlm.context.captioner_url")
    message = message.replace("--vlm-model", "vlm.context.captioner_model")
    return f"captioner: {message}"


def _gray_keyframes(k: int) -> list[Keyframe]:
    gray = np.full((224, 224, 3), 128, np.uint8)
    return [Keyframe(0, i, float(i), "periodic", gray) for i in range(k)]


async def content_free_prior(backend: VlmBackend, cfg: VlmConfig,
                             labels: Sequence[str]) -> dict[str, float]:
    """The label distribution the model gives to content-free input: gray keyframes and an
    empty motion log (contextual calibration, DESIGN §8)."""
    ctx = build_context(0, _gray_keyframes(cfg.keyframes), [], [], (0.0, cfg.period_s),
                        labels, k=cfg.keyframes, max_side=cfg.max_side)
    if cfg.decode == "score":
        return softmax(await backend.score(ctx))
    return dict(parse_emotion(await backend.generate(ctx), labels).probs)


async def calibrator_for(cfg: VlmConfig, backend: VlmBackend,
                         labels: Sequence[str]) -> Calibrator:
    if cfg.calibration == "contextual":
        return make_calibrator("contextual",
                               content_free=await content_free_prior(backend, cfg, labels))
    if cfg.calibration == "table":
        if cfg.calibration_table is None:
            raise ConfigError("vlm.calibration: table needs vlm.calibration_table (a JSON file "
                              "{label: offset}, fitted with "
                              "affectstream.vlm.calibration.TableCalibration.fit)")
        try:
            offsets = json.loads(cfg.calibration_table.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read vlm.calibration_table {cfg.calibration_table} "
                              f"({exc}); point it to a JSON file of label offsets") from exc
        return make_calibrator("table", offsets=offsets)
    return make_calibrator("none")
