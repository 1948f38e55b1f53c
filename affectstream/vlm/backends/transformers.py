"""A local Hugging Face VLM as the VLM backend (DESIGN §6, §8).

``AutoProcessor`` + ``AutoModelForImageTextToText`` load any image-text-to-text model whose
processor renders a chat template with image placeholders (Qwen2.5-VL, Qwen3-VL, SmolVLM2,
InternVL, LLaVA, …) from a hub id or a local directory. torch and transformers are imported
lazily in :meth:`TransformersBackend.start`, so the rest of affectstream never needs them.

Prompt: one system turn and one user turn whose content mirrors ``context.parts`` in order
(``{"type": "image"}`` per keyframe, ``{"type": "text"}`` per text part); the processor's chat
template places the image placeholders and the processor expands them to the model's image
tokens, fed the keyframes as PIL images in the same order.

* ``generate``: greedy decoding of up to ``max_new_tokens``; only the new tokens are decoded.
* ``caption``: the same on a caption context, with its own token limit (free text).
* ``score``: exact label log-likelihoods by teacher forcing, on the scoring prompt (the JSON
  question replaced by "Answer with one word from: …", as the openai backend asks). One
  forward pass over the prompt (ending with the assistant's generation prompt) gives the first
  answer token's distribution and a KV cache; each label's remaining tokens are then fed on a
  copy of that cache, so images and prompt are encoded once per request. A label's score is
  ``log Σ_v exp Σ_t log p(t)`` over its answer variants v — the label itself and the label
  after a space (templates whose generation prompt ends in ``Assistant:`` are answered with a
  space first) — each tokenised as the continuation of the prompt text; no end-of-turn token.

Model calls run in a worker thread, one at a time (a lock), so the event loop stays free; the
processor has its own lock so :meth:`TransformersBackend.prompt_tokens` never waits for a
generation.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import inspect
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from affectstream.errors import ConfigError, ModelError
from affectstream.terminal import current
from affectstream.vlm.backend import BackendError
from affectstream.vlm.backends.hfload import (
    DTYPES,
    load_pretrained,
    one_line,
    resolve_device_dtype,
)
from affectstream.vlm.context import ImagePart, TextPart, VlmContext
from affectstream.vlm.parsing import strict_retry_prompt
from affectstream.vlm.prompts import SCORE_SYSTEM_SUFFIX, score_question

_T = TypeVar("_T")

class TransformersBackend:
    """A VLM run in-process with transformers (see the module docstring)."""

    name = "transformers"

    def __init__(self, model: str, *, device: str | None = None, dtype: str | None = None,
                 max_new_tokens: int = 256, local_files_only: bool | None = None,
                 setting: str = "vlm.model") -> None:
        """``setting`` names the config field ``model`` comes from, so that the fixes in
        errors point there."""
        if not model or not model.strip():
            raise ConfigError(f"{setting} must name a hub id or a local model directory")
        if dtype is not None and dtype not in (*DTYPES, "auto"):
            raise ConfigError(f"vlm.dtype {dtype!r} is not supported; use one of "
                              f"{', '.join(DTYPES)} (or leave it unset)")
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
        self.model = model
        self.setting = setting
        self.device = device
        self.dtype = None if dtype == "auto" else dtype
        self.max_new_tokens = max_new_tokens
        self.local_files_only = local_files_only
        self._lock = threading.Lock()  # one model call at a time
        self._prep = threading.Lock()  # the processor (fast tokenizers are not re-entrant)
        self._torch: Any = None
        self._processor: Any = None
        self._tokenizer: Any = None
        self._model: Any = None
        self._torch_dtype: Any = None
        self._cache_kw = "past_key_values"
        self._logits_to_keep = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self._model is not None

    async def start(self) -> None:
        if self._model is not None:
            return
        try:
            import PIL.Image  # noqa: F401  (image conversion; a transformers dependency)
            import torch
            import transformers
        except ImportError as exc:
            raise ConfigError("the transformers backend needs torch and transformers; "
                              "pip install 'affectstream[vlm]'") from exc
        # transformers draws its own "Loading weights" bar on stderr: it follows the command's
        # progress choice (--quiet, --log-format json, no terminal) like affectstream's own bars
        bars = transformers.utils.logging
        if current().progress:
            bars.enable_progress_bar()
        else:
            bars.disable_progress_bar()
        await asyncio.to_thread(self._load, torch, transformers)

    def _load(self, torch: Any, transformers: Any) -> None:
        device, dtype = resolve_device_dtype(torch, self.device, self.dtype)
        with self._lock:
            processor, net = load_pretrained(transformers, self.model, self.setting, dtype,
                                             self.local_files_only)
            try:
                net = net.to(device).eval()
            except RuntimeError as exc:  # out of memory, mostly
                raise ModelError(f"VLM model {self.model} cannot be moved to {device} "
                                 f"({one_line(exc)}); use a smaller model, another "
                                 "vlm.device or vlm.dtype") from exc
            self._torch = torch
            self._processor = processor
            self._tokenizer = getattr(processor, "tokenizer", processor)
            self._torch_dtype = dtype
            params = inspect.signature(net.forward).parameters
            self._cache_kw = "cache" if "cache" in params else "past_key_values"
            self._logits_to_keep = "logits_to_keep" in params
            self._model = net

    async def close(self) -> None:
        if self._model is not None:
            await asyncio.to_thread(self._release)

    def _release(self) -> None:
        with self._lock, self._prep:
            if self._model is None:
                return
            cuda = str(self._model.device).startswith("cuda")
            self._model = self._processor = self._tokenizer = None
            gc.collect()
            if cuda:
                self._torch.cuda.empty_cache()

    # ------------------------------------------------------------------ prompt

    def messages(self, context: VlmContext, *, strict: bool = False,
                 scoring: bool = False) -> list[dict[str, Any]]:
        """The chat messages: the system turn and one user turn mirroring ``context.parts``.

        ``strict`` appends the stricter retry instruction; ``scoring`` asks for one label word
        instead of JSON (the question part replaced, as the openai backend does), the prompt
        that :meth:`score` conditions on.
        """
        system, parts = context.system, list(context.parts)
        if scoring:
            system += SCORE_SYSTEM_SUFFIX
            parts = [*parts[:-1], TextPart(score_question(context.labels))]
        content: list[dict[str, Any]] = []
        for part in parts:
            if isinstance(part, ImagePart):
                content.append({"type": "image"})
            elif isinstance(part, TextPart):
                content.append({"type": "text", "text": part.text})
        if strict:
            content.append({"type": "text", "text": strict_retry_prompt(context.labels)})
        return [{"role": "system", "content": [{"type": "text", "text": system}]},
                {"role": "user", "content": content}]

    def prompt_text(self, context: VlmContext, *, strict: bool = False,
                    scoring: bool = False) -> str:
        """The chat-templated prompt (image placeholders not yet expanded), ending with the
        assistant's generation prompt."""
        processor = self._require()
        messages = self.messages(context, strict=strict, scoring=scoring)
        text = processor.apply_chat_template(messages, add_generation_prompt=True,
                                             tokenize=False)
        if isinstance(text, list):  # some processors return a batch
            text = text[0]
        return str(text)

    def _inputs(self, context: VlmContext, text: str) -> dict[str, Any]:
        """Processor output for ``text`` and the context's keyframes, on the model's device,
        float tensors in the model's dtype."""
        import PIL.Image

        images = [PIL.Image.fromarray(p.image).convert("RGB") for p in context.images]
        with self._prep:
            processor = self._require()
            batch = processor(text=[text], images=images or None, return_tensors="pt")
        torch, device = self._torch, self._model.device
        out: dict[str, Any] = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                value = value.to(device, dtype=self._torch_dtype if value.is_floating_point()
                                 else None)
            out[key] = value
        return out

    def prompt_tokens(self, context: VlmContext) -> int:
        """The real token count of the (generation) prompt: the ``input_ids`` length, image
        tokens included."""
        try:
            return int(self._inputs(context, self.prompt_text(context))["input_ids"].shape[-1])
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"transformers prompt failed: {one_line(exc)}") from exc

    def _ids(self, text: str) -> list[int]:
        with self._prep:
            ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return [int(i) for i in (ids[0] if ids and isinstance(ids[0], list) else ids)]

    def answer_variants(self, prompt: str, label: str) -> list[list[int]]:
        """The distinct token sequences of ``label`` as the start of the answer after the
        templated ``prompt``: the label and the label after a space, each tokenised as the
        continuation of the prompt text (standalone when it would merge with the prompt)."""
        base = self._ids(prompt)
        variants: list[list[int]] = []
        for answer in (label, " " + label):
            full = self._ids(prompt + answer)
            ids = full[len(base):] if full[:len(base)] == base else self._ids(answer)
            if ids and ids not in variants:
                variants.append(ids)
        if not variants:
            raise BackendError(f"label {label!r} has no tokens")
        return variants

    @property
    def net(self) -> Any:
        """The loaded torch model (fine-tuning wraps it with LoRA in place)."""
        self._require()
        return self._model

    @property
    def processor(self) -> Any:
        """The loaded processor (saved beside a fine-tuned adapter)."""
        return self._require()

    def scoring_inputs(self, context: VlmContext) -> tuple[str, dict[str, Any]]:
        """The scoring prompt text and its processor output on the model's device: what
        :meth:`score` conditions on (and fine-tuning trains on)."""
        prompt = self.prompt_text(context, scoring=True)
        return prompt, self._inputs(context, prompt)

    def _require(self) -> Any:
        if self._model is None or self._processor is None:
            raise BackendError("the transformers backend is not started (or closed); "
                               "await start() first")
        return self._processor

    # ------------------------------------------------------------------ requests

    async def _run(self, what: str, fn: Callable[[], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                self._require()
                try:
                    with self._torch.inference_mode():
                        return fn()
                except BackendError:
                    raise
                except Exception as exc:
                    raise BackendError(f"transformers {what} failed: {one_line(exc)}") from exc
        return await asyncio.to_thread(locked)

    async def generate(self, context: VlmContext, *, strict: bool = False) -> str:
        return await self._run("generate", lambda: self._greedy(
            context, self.prompt_text(context, strict=strict), self.max_new_tokens))

    async def caption(self, context: VlmContext, *, max_tokens: int) -> str:
        """Greedy free text of at most ``max_tokens`` new tokens (a motion caption)."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be ≥ 1, got {max_tokens}")
        return await self._run("caption", lambda: self._greedy(
            context, self.prompt_text(context), max_tokens))

    def _greedy(self, context: VlmContext, prompt: str, max_new_tokens: int) -> str:
        """Greedy decoding of up to ``max_new_tokens``; only the new tokens are decoded."""
        inputs = self._inputs(context, prompt)
        config = copy.deepcopy(self._model.generation_config)
        config.do_sample = False
        config.num_beams = 1
        config.temperature = config.top_p = config.top_k = None
        config.max_new_tokens = max_new_tokens
        config.max_length = None
        if config.pad_token_id is None:
            config.pad_token_id = config.eos_token_id if not isinstance(
                config.eos_token_id, list) else config.eos_token_id[0]
        out = self._model.generate(**inputs, generation_config=config)
        new = out[0, inputs["input_ids"].shape[-1]:]
        return str(self._tokenizer.decode(new, skip_special_tokens=True)).strip()

    async def score(self, context: VlmContext) -> dict[str, float]:
        if not context.labels:
            raise BackendError("the context has no labels to score")

        def work() -> dict[str, float]:
            torch = self._torch
            prompt, inputs = self.scoring_inputs(context)
            extra: dict[str, Any] = {"use_cache": True}
            if self._logits_to_keep:
                extra["logits_to_keep"] = 1
            out = self._model(**inputs, **extra)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            cache = self._prompt_cache(out)
            scores: dict[str, float] = {}
            for label in context.labels:
                logps = []
                for ids in self.answer_variants(prompt, label):
                    logp = float(first[ids[0]])
                    if len(ids) > 1:
                        logp += self._continuation(inputs, cache, ids)
                    logps.append(logp)
                top = max(logps)
                total = top + math.log(sum(math.exp(x - top) for x in logps)) \
                    if math.isfinite(top) else top
                if not math.isfinite(total):
                    raise BackendError(f"label {label!r} got a non-finite log-probability")
                scores[label] = total
            return scores
        return await self._run("score", work)

    @staticmethod
    def _prompt_cache(out: Any) -> Any:
        """The KV cache a forward pass returned (``cache`` from transformers 5.x on, formerly
        ``past_key_values``), or None."""
        cache = getattr(out, "cache", None)
        return cache if cache is not None else getattr(out, "past_key_values", None)

    def _continuation(self, inputs: dict[str, Any], cache: Any, ids: list[int]) -> float:
        """Σ log p(ids[i] | prompt, ids[:i]) for i ≥ 1: on a copy of the prompt's KV cache when
        the model returned one, else by a full forward pass over prompt + label."""
        torch = self._torch
        device = self._model.device
        feed = torch.tensor([ids[:-1]], dtype=torch.long, device=device)
        target = torch.tensor(ids[1:], dtype=torch.long, device=device)
        if cache is not None:
            out = self._model(input_ids=feed, **{self._cache_kw: copy.deepcopy(cache)},
                              use_cache=True)
            logits = out.logits[0]
        else:
            prompt = inputs["input_ids"]
            full = dict(inputs)
            for key, value in inputs.items():
                if isinstance(value, torch.Tensor) and value.shape == prompt.shape:
                    pad = torch.ones_like(feed) if key == "attention_mask" else (
                        feed if key == "input_ids" else torch.zeros_like(feed))
                    full[key] = torch.cat([value, pad.to(value.dtype)], dim=-1)
            logits = self._model(**full).logits[0, prompt.shape[-1]:]
        logp = torch.log_softmax(logits.float(), dim=-1)
        return float(logp.gather(-1, target[:, None]).sum())
