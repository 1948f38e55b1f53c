"""Backend choice by ``vlm.type`` (imported lazily), the captioner for ``vlm.context`` and the
calibration set-up at start-up."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from affectstream.config import OpenAIVlmConfig, TransformersVlmConfig, VlmModelConfig
from affectstream.errors import ConfigError, ModelError
from affectstream.types import Keyframe
from affectstream.vlm.backend import VlmBackend
from affectstream.vlm.calibration import Calibrator, make_calibrator, read_table
from affectstream.vlm.context import build_context
from affectstream.vlm.logprobs import softmax
from affectstream.vlm.parsing import parse_emotion


def make_backend(cfg: OpenAIVlmConfig | TransformersVlmConfig, *, model_setting: str = "vlm.model",
                 url_setting: str = "vlm.url") -> VlmBackend:
    """The backend ``cfg`` describes, not yet started; its errors name ``model_setting`` and
    ``url_setting``, the config fields its model and server come from."""
    if isinstance(cfg, OpenAIVlmConfig):
        from affectstream.vlm.backends.openai import OpenAIBackend

        key = (cfg.api_key.get_secret_value() if cfg.api_key is not None
               else os.environ.get("OPENAI_API_KEY"))
        return OpenAIBackend(cfg.url, cfg.model, api_key=key, timeout_s=cfg.timeout_s,
                             max_retries=cfg.max_retries, max_tokens=cfg.max_tokens,
                             temperature=cfg.temperature, url_setting=url_setting,
                             model_setting=model_setting)
    from affectstream.vlm.backends.transformers import TransformersBackend

    return TransformersBackend(cfg.model, device=cfg.device, dtype=cfg.dtype,
                               max_new_tokens=cfg.max_tokens, setting=model_setting)


def captioner_config(cfg: VlmModelConfig) -> OpenAIVlmConfig | TransformersVlmConfig | None:
    """The separate captioner of ``vlm.context.captioner`` openai or transformers (None for
    ``same``): its model and URL from ``vlm.context``, the request limits from ``cfg`` and, when
    the main VLM is of the same type, its API key, temperature, device and dtype."""
    ctx = cfg.context
    limits = {"timeout_s": cfg.timeout_s, "max_retries": cfg.max_retries,
              "max_tokens": cfg.max_tokens}
    if ctx.captioner == "openai":
        main = cfg if isinstance(cfg, OpenAIVlmConfig) else None
        return OpenAIVlmConfig.model_validate({
            **limits, "model": ctx.captioner_model, "url": ctx.captioner_url or cfg.server_url(),
            "api_key": main.api_key if main else None,
            "temperature": main.temperature if main else 0.0})
    if ctx.captioner == "transformers":
        local = cfg if isinstance(cfg, TransformersVlmConfig) else None
        return TransformersVlmConfig.model_validate({
            **limits, "model": ctx.captioner_model, "device": local.device if local else None,
            "dtype": local.dtype if local else None})
    return None


def make_captioner(cfg: VlmModelConfig) -> VlmBackend | None:
    """A separate, not yet started captioner for ``vlm.context.captioner`` openai or
    transformers (None for ``same``); its errors name the ``vlm.context`` settings."""
    sub = captioner_config(cfg)
    if sub is None:
        return None
    return make_backend(sub, model_setting="vlm.context.captioner_model",
                        url_setting="vlm.context.captioner_url")


async def start_captioner(cfg: VlmModelConfig, main: VlmBackend) -> VlmBackend | None:
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
        if isinstance(exc, ConfigError | ModelError):  # say which of the two VLMs failed
            raise type(exc)(f"captioner: {exc}") from exc
        raise
    return captioner


def _gray_keyframes(k: int) -> list[Keyframe]:
    gray = np.full((224, 224, 3), 128, np.uint8)
    return [Keyframe(0, i, float(i), "periodic", gray) for i in range(k)]


async def content_free_prior(backend: VlmBackend, cfg: VlmModelConfig,
                             labels: Sequence[str]) -> dict[str, float]:
    """The label distribution the model gives to content-free input: gray keyframes and an
    empty motion log (contextual calibration, DESIGN §8)."""
    ctx = build_context(0, _gray_keyframes(cfg.keyframes), [], [], (0.0, cfg.period_s),
                        labels, k=cfg.keyframes, max_side=cfg.max_side)
    if cfg.decode == "score":
        return softmax(await backend.score(ctx))
    return dict(parse_emotion(await backend.generate(ctx), labels).probs)


async def calibrator_for(cfg: VlmModelConfig, backend: VlmBackend,
                         labels: Sequence[str]) -> Calibrator:
    if cfg.calibration == "contextual":
        return make_calibrator("contextual",
                               content_free=await content_free_prior(backend, cfg, labels))
    if cfg.calibration == "table":
        assert cfg.calibration_table is not None  # the config requires it when it loads
        return table_calibrator(cfg.calibration_table)
    return make_calibrator("none")


def table_calibrator(path: Path, setting: str = "vlm.calibration_table") -> Calibrator:
    """The ``calibration: table`` calibrator of a table file (:func:`read_table`); errors name
    ``setting``, where the path came from."""
    try:
        return make_calibrator("table", offsets=read_table(path, setting))
    except ValueError as exc:
        raise ConfigError(f"{setting} {path}: {exc}") from exc
