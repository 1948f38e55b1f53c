"""Tiny, randomly initialised VLMs built offline for the tests of the transformers backend
(DESIGN §6: they check the plumbing, never accuracy). Nothing is downloaded.

Each is a model directory that ``AutoProcessor`` + ``AutoModelForImageTextToText`` load: a
byte-level BPE tokenizer trained here on a small corpus (the prompts, the JSON keys, the labels,
digits and punctuation) with Qwen2's pre-tokenisation and special tokens and a ChatML chat
template, an image processor with a small pixel budget, and a model with two text layers
(hidden 64) and a two-block vision tower (hidden 32):

* ``llava`` (default): ``LlavaForConditionalGeneration`` (CLIP vision tower + Llama), 16 image
  tokens per image. Its processor needs no torchvision.
* ``qwen2_5_vl``: ``Qwen2_5_VLForConditionalGeneration`` (M-RoPE, windowed vision tower), at
  most 16 image tokens per image. transformers (4.57, 5.24) builds Qwen-VL processors only with
  torchvision (for their video processor), which the CPU build of torch 2.13.0 lacks; see
  :func:`torchvision_works`.

Needs torch and transformers (the ``vlm`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from affectstream.labels import LABEL_SETS
from affectstream.vlm.parsing import strict_retry_prompt
from affectstream.vlm.prompts import SYSTEM_PROMPT, question

# Qwen2's pre-tokenisation (the same regex as transformers' Qwen2Tokenizer).
PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
                     r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<image>")

ARCHES = ("llava", "qwen2_5_vl")
IMAGE_MARKUP = {"qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>", "llava": "<image>"}
"""How each architecture's chat template writes one image (its processor expands the pad)."""


def chat_template(image: str) -> str:
    """A ChatML template like Qwen2.5-VL's, trimmed to what the backend sends (system, user
    with images and text, assistant; no video): parts are concatenated as they come and each
    image is written as ``image``."""
    return (
        "{% for message in messages %}"
        "{% if loop.first and message['role'] != 'system' %}"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "{% endif %}"
        "<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for content in message['content'] %}"
        "{% if content['type'] == 'image' %}" + image +
        "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
        "{% endfor %}{% endif %}"
        "<|im_end|>\n"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def torchvision_works() -> bool:
    """Whether torchvision imports: Qwen-VL processors need it for their video processor
    (seen with transformers 4.57 and 5.24), and the CPU build of torch 2.13.0 has none."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


LLAVA_SIDE = 56
LLAVA_IMAGE_TOKENS = (LLAVA_SIDE // 14) ** 2
"""LLaVA: every image is resized and centre-cropped to 56 px → 4×4 patches = 16 image tokens
(the CLS token is dropped by the ``default`` feature selection)."""

MIN_PIXELS = 56 * 56
MAX_PIXELS = 112 * 112
"""Pixel budget of the tiny image processor: any crop becomes at most 8×8 patches of 14 px,
i.e. at most 16 image tokens after the 2×2 merge (224-px crops: exactly 16)."""


def _corpus() -> list[str]:
    lines = [SYSTEM_PROMPT, "You are a helpful assistant."]
    for labels in LABEL_SETS.values():
        lines += [question(labels), strict_retry_prompt(labels), " ".join(labels)]
        lines += [json.dumps({"label": label, "probs": dict.fromkeys(labels, 0.5),
                              "valence": -0.25, "arousal": 0.75, "confidence": 0.9,
                              "rationale": "lip corners pulled up, cheeks raised"})
                  for label in labels]
    lines += [
        "Face track 1, window 0.00–2.00 s. Nothing logged before it.",
        "↑ 0.50 s, burst apex. Motion until end 2.00 s:",
        "0.40–0.62 s, 0.22 s micro: left lip corner pulled up and back (AU12, weak), "
        "eyes not involved; brow lowerer (AU4) rose to moderate, both sides",
        "0123456789 .,:;!?-+*/=()[]{}<>\"'_ \n\t",
    ]
    return lines * 3


def build_tokenizer(vocab_size: int = 1024) -> Any:
    """A byte-level BPE tokenizer with Qwen2's pre-tokenisation, trained on :func:`_corpus`,
    as a ``PreTrainedTokenizerFast`` with Qwen's special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"])
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<|endoftext|>", eos_token="<|im_end|>",
        pad_token="<|endoftext|>", model_max_length=32768,
        model_input_names=["input_ids", "attention_mask"])
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    return tokenizer


def build_tiny_vlm(directory: Path, seed: int = 0, arch: str = "llava") -> Path:
    """Write a tiny random VLM of ``arch`` (``llava`` or ``qwen2_5_vl``) and its processor to
    ``directory``; return it. Both load with ``AutoProcessor`` and
    ``AutoModelForImageTextToText``; ``qwen2_5_vl`` needs a working torchvision."""
    import torch
    import transformers
    from transformers import GenerationConfig

    def pil_backend(name: str) -> Any:
        """The PIL image processor (transformers 5.x ``…Pil``; the slow one in 4.x)."""
        return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)

    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, got {arch!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    text = {
        "vocab_size": -(-len(tokenizer) // 64) * 64, "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 4096,
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    template = chat_template(IMAGE_MARKUP[arch])
    tokenizer.chat_template = template
    torch.manual_seed(seed)
    if arch == "llava":
        from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

        config = LlavaConfig(
            text_config={"model_type": "llama", **text},
            vision_config={
                "model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": LLAVA_SIDE,
                "patch_size": 14, "projection_dim": 32,
            },
            image_token_index=ids["<image>"], image_seq_length=LLAVA_IMAGE_TOKENS,
            vision_feature_layer=-1, vision_feature_select_strategy="default",
        )
        model: Any = LlavaForConditionalGeneration(config)
        processor: Any = LlavaProcessor(
            image_processor=pil_backend("LlavaImageProcessor")(
                size={"shortest_edge": LLAVA_SIDE},
                crop_size={"height": LLAVA_SIDE, "width": LLAVA_SIDE}),
            tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
            num_additional_image_tokens=1, chat_template=template, image_token="<image>")
    else:
        from transformers import (
            Qwen2_5_VLConfig,
            Qwen2_5_VLForConditionalGeneration,
            Qwen2_5_VLProcessor,
            Qwen2VLVideoProcessor,
        )

        config = Qwen2_5_VLConfig(
            text_config={
                **text, "max_window_layers": 2,
                "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                    "mrope_section": [2, 3, 3]},  # sums to head_dim / 2
            },
            vision_config={
                "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                "window_size": 112, "out_hidden_size": 64, "fullatt_block_indexes": [1],
            },
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"],
        )
        model = Qwen2_5_VLForConditionalGeneration(config)
        pixels = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
        processor = Qwen2_5_VLProcessor(
            image_processor=pil_backend("Qwen2VLImageProcessor")(
                size=pixels, patch_size=14, temporal_patch_size=2, merge_size=2),
            tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(size=pixels),
            chat_template=template)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"], do_sample=False)
    model.eval().save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def run_tiny_vlm(model: Path, config_yaml: str, clip: Path, folder: Path) -> tuple[Any, Any]:
    """``affectstream run`` on ``clip`` (as fast as possible) with the transformers backend on
    ``model`` and ``config_yaml`` as its config, offline; returns (process, JSONL lines)."""
    from cli_helpers import cli, cli_env, read_jsonl

    cfg = folder / "vlm.yaml"
    cfg.write_text(config_yaml, encoding="utf-8")
    out = folder / "out.jsonl"
    proc = cli("run", "--config", str(cfg), "--source", str(clip), "--no-realtime",
               "--vlm-backend", "transformers", "--vlm-model", str(model),
               "--sink", f"jsonl:{out}", cwd=folder,
               env=cli_env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))
    return proc, (read_jsonl(out) if out.exists() else [])
