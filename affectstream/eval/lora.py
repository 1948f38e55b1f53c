"""LoRA on the transformers backend's model, and label scores with gradients (torch, peft).

Training objective — why label scores and not the LM loss of an answer. The live stage reads a
local VLM in ``decode: score`` mode: each label's log-likelihood ``s_k = log P(label_k |
scoring prompt)`` (:meth:`TransformersBackend.score`), then ``softmax(s)`` over the label set.
Fine-tuning minimises ``CrossEntropy(s, y)`` on exactly those scores, computed here the same
way (same prompt, same answer variants "label" and " label", same sum over a label's tokens),
but differentiably. Unlike an LM loss on the answer text, it also pushes *down* the labels the
clip is not — which is what moves a head-class bias — and it trains what inference reads.

torch and peft are imported inside the functions: the rest of affectstream never needs them.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from affectstream.errors import ConfigError, ModelError
from affectstream.vlm.backends.hfload import one_line
from affectstream.vlm.backends.transformers import TransformersBackend
from affectstream.vlm.context import VlmContext

LANGUAGE_ATTENTION = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)$"
"""Default LoRA targets: the attention projections of the language model only. The vision
tower (CLIP's and Qwen-VL's blocks have q/k/v projections too) stays frozen: the bias the paper
describes lives in the language side, and vision features are shared by every label."""


def _peft() -> Any:
    try:
        import peft
    except ImportError as exc:
        raise ConfigError("fine-tuning needs peft; pip install 'affectstream[vlm]' "
                          "(or pip install peft)") from exc
    return peft


def attach_lora(net: Any, *, r: int, alpha: float, dropout: float, targets: str,
                seed: int) -> Any:
    """``net`` wrapped by a PEFT LoRA model (in place: ``net``'s modules get the adapters),
    only the adapters trainable; initialised from ``seed``."""
    import torch

    peft = _peft()
    if r < 1:
        raise ConfigError(f"--lora-r must be ≥ 1, got {r}")
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                             target_modules=targets, bias="none")
    torch.manual_seed(seed)
    try:
        model = peft.get_peft_model(net, config)
    except ValueError as exc:  # peft: "Target modules … not found in the base model"
        raise ConfigError(f"no LoRA target in the model matches {targets!r} "
                          f"({one_line(exc)}); pass --lora-targets REGEX naming its "
                          "language-model projections") from exc
    return model


def lora_tensors(model: Any) -> dict[str, Any]:
    """Detached CPU copies of the trainable (LoRA) tensors, by name."""
    return {name: p.detach().to("cpu").clone() for name, p in model.named_parameters()
            if p.requires_grad}


def label_scores(backend: TransformersBackend, context: VlmContext) -> Any:
    """A tensor of ``log P(label | scoring prompt)`` for ``context.labels``, with gradients:
    the scores :meth:`TransformersBackend.score` returns (see the module docstring)."""
    import torch

    net = backend.net
    prompt, inputs = backend.scoring_inputs(context)
    n_prompt = int(inputs["input_ids"].shape[-1])
    params = inspect.signature(net.forward).parameters
    # only the last position's logits: a full vocabulary row per prompt token costs GBs
    keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    out = net(**inputs, use_cache=True, **keep)
    first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
    # transformers 5.x returns and takes the KV cache as `cache`, 4.x as `past_key_values`
    cache = getattr(out, "cache", None)
    cache = cache if cache is not None else getattr(out, "past_key_values", None)
    cache_kw = "cache" if "cache" in params else "past_key_values"
    scores = []
    for label in context.labels:
        variants = []
        for ids in backend.answer_variants(prompt, label):
            logp = first[ids[0]]
            if len(ids) > 1:
                logp = logp + _continuation(net, inputs, (cache_kw, cache), n_prompt, ids)
            variants.append(logp)
        scores.append(torch.logsumexp(torch.stack(variants), dim=0))
    return torch.stack(scores)


def _continuation(net: Any, inputs: dict[str, Any], kw_cache: tuple[str, Any],
                  n_prompt: int, ids: list[int]) -> Any:
    """Σ log p(ids[i] | prompt, ids[:i]) for i ≥ 1, differentiable: fed on the prompt's KV
    cache, which is cropped back to the prompt afterwards (``deepcopy``, as inference does,
    cannot copy tensors inside an autograd graph); a full forward pass without a cache."""
    import torch

    kw, cache = kw_cache
    device = inputs["input_ids"].device
    feed = torch.tensor([ids[:-1]], dtype=torch.long, device=device)
    target = torch.tensor(ids[1:], dtype=torch.long, device=device)
    if cache is not None and hasattr(cache, "crop"):
        logits = net(input_ids=feed, **{kw: cache}, use_cache=True).logits[0]
        cache.crop(-len(feed[0]))  # negative: remove that many (transformers 4.x and 5.x)
        if cache.get_seq_length() != n_prompt:
            raise ModelError("the KV cache did not crop back to the prompt; this transformers "
                             "version is not supported for fine-tuning")
    else:
        full = dict(inputs)
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor) and value.shape == inputs["input_ids"].shape:
                pad = torch.ones_like(feed) if key == "attention_mask" else (
                    feed if key == "input_ids" else torch.zeros_like(feed))
                full[key] = torch.cat([value, pad.to(value.dtype)], dim=-1)
        logits = net(**full).logits[0, n_prompt:]
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, target[:, None]).sum()


def save_adapter(model: Any, backend: TransformersBackend, base: str, directory: Path) -> None:
    """The LoRA adapter (``adapter_config.json`` naming ``base``, the weights) and the
    processor into ``directory``: a model directory ``--vlm-model`` loads."""
    model.peft_config["default"].base_model_name_or_path = base
    _save(model, backend, directory, "the checkpoint")


def save_merged(model: Any, backend: TransformersBackend, directory: Path) -> None:
    """Full weights with the adapter merged in (for servers such as vLLM), and the processor.
    Merging unloads the adapter from the model: call it last."""
    _save(model.merge_and_unload(), backend, directory, "merged weights")


def _save(model: Any, backend: TransformersBackend, directory: Path, what: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(directory))
        backend.processor.save_pretrained(str(directory))
    except OSError as exc:
        raise ConfigError(f"cannot write {what} to {directory} ({one_line(exc)}); "
                          "choose a writable --output") from exc
