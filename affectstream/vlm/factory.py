"""Backend choice by ``vlm.type`` (imported lazily) and the calibration set-up at start-up."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from affectstream.config import VlmConfig
from affectstream.errors import ConfigError
from affectstream.types import Keyframe
from affectstream.vlm.backend import VlmBackend
from affectstream.vlm.calibration import Calibrator, make_calibrator
from affectstream.vlm.context import build_context
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


def _gray_keyframes(k: int) -> list[Keyframe]:
    gray = np.full((224, 224, 3), 128, np.uint8)
    return [Keyframe(0, i, float(i), "periodic", gray) for i in range(k)]


async def content_free_prior(backend: VlmBackend, cfg: VlmConfig,
                             labels: Sequence[str]) -> dict[str, float]:
    """The label distribution the model gives to content-free input: gray keyframes and an
    empty motion log (contextual calibration, DESIGN §8)."""
    from affectstream.vlm.scheduler import softmax

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
