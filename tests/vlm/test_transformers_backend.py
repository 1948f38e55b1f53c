"""The transformers VLM backend on tiny random models built offline (DESIGN §6, §8): loading
from a local directory with the hub offline, the interleaved prompt, greedy generation, exact
label scoring checked against an independent forward pass, prompt token counts and the errors.
The models are random, so answers are garbage: only the plumbing is checked."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the vlm extra (torch)")
pytest.importorskip("transformers", reason="needs the vlm extra (transformers)")

import torch
from tiny_vlm import IMAGE_MARKUP, build_tiny_vlm, torchvision_works

from affectstream.config import Config
from affectstream.errors import ConfigError, ModelError
from affectstream.labels import DFEW7
from affectstream.stream.offline import perceive_file
from affectstream.terminal import Terminal, session
from affectstream.types import Keyframe, LogLine
from affectstream.vlm.backend import BackendError, VlmBackend
from affectstream.vlm.backends.transformers import TransformersBackend
from affectstream.vlm.captions import caption_requests
from affectstream.vlm.context import ImagePart, TextPart, VlmContext, build_context
from affectstream.vlm.parsing import strict_retry_prompt
from affectstream.vlm.prompts import CAPTION_PROMPT, SCORE_SYSTEM_SUFFIX, score_question

# DFEW's labels are single tokens of the tiny tokenizer; the unseen words take several.
LABELS = (*DFEW7, "bewilderment", "schadenfreude")
TOL = 1e-4
_T = TypeVar("_T")

# Qwen-VL processors need torchvision, which the pinned CPU torch cannot load here; where it
# works (a CUDA machine) the same tests also run on a tiny Qwen2.5-VL.
ARCHES = ["llava", *(["qwen2_5_vl"] if torchvision_works() else [])]


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


@pytest.fixture(scope="session")
def perception(media_dir: Path, model_paths: dict[str, Path]
               ) -> tuple[list[Keyframe], list[LogLine]]:
    keyframes: list[Keyframe] = []
    lines: list[LogLine] = []
    for item in perceive_file(Config(), model_paths, media_dir / "single_face.mp4"):
        keyframes += item.result.keyframes
        lines += item.result.log_lines
    return keyframes, lines


@pytest.fixture(scope="module")
def context(perception: tuple[list[Keyframe], list[LogLine]]) -> VlmContext:
    keyframes, lines = perception
    per = [kf for kf in keyframes if kf.reason == "periodic"]
    apx = [kf for kf in keyframes if kf.reason == "apex"]
    assert per and lines, "single_face.mp4 should give keyframes and motion text"
    ctx = build_context(per[0].track_id, per, apx, lines, (0.0, 2.4), LABELS)
    assert len(ctx.images) >= 2, "the test wants an interleaved context"
    return ctx


@pytest.fixture(scope="session", params=ARCHES)
def model_dir(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    arch: str = request.param
    return arch, build_tiny_vlm(tmp_path_factory.mktemp(f"tiny-{arch}"), seed=0, arch=arch)


@pytest.fixture(scope="module")
def backend(model_dir: tuple[str, Path], _offline: None) -> Iterator[TransformersBackend]:
    b = TransformersBackend(str(model_dir[1]), max_new_tokens=12)
    run(b.start())
    yield b
    run(b.close())


class Spy:
    """Records the processor's calls (text and images) and passes them through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture()
def spy(backend: TransformersBackend, monkeypatch: pytest.MonkeyPatch) -> Spy:
    s = Spy(backend._processor)
    monkeypatch.setattr(backend, "_processor", s)
    return s


def interleaved(ctx: VlmContext, markup: str, parts: tuple[Any, ...] | None = None) -> str:
    """The user turn as a chat template that concatenates parts renders it."""
    return "".join(markup if isinstance(p, ImagePart) else p.text
                   for p in (ctx.parts if parts is None else parts))


def arch_of(backend: TransformersBackend) -> str:
    return str(backend._model.config.model_type)


# --- loading --------------------------------------------------------------------------------

def test_protocol_and_start(backend: TransformersBackend, model_dir: tuple[str, Path]) -> None:
    assert isinstance(backend, TransformersBackend)
    proto: VlmBackend = backend
    assert proto.name == "transformers" and proto.model == str(model_dir[1])
    assert backend.started
    assert arch_of(backend) == model_dir[0]
    assert str(backend._model.device) == "cpu" and backend._model.dtype == torch.float32
    assert not backend._model.training
    run(backend.start())  # idempotent


@pytest.mark.parametrize("term", [Terminal(quiet=True), Terminal(force_progress=True)],
                         ids=["quiet", "progress"])
def test_loading_bar_follows_the_commands_progress_choice(
        model_dir: tuple[str, Path], term: Terminal) -> None:
    """transformers' own "Loading weights" bar is drawn only when affectstream's bars are."""
    from transformers.utils import logging as hf_logging

    with session(term):
        b = TransformersBackend(str(model_dir[1]))
        run(b.start())
        run(b.close())
    assert hf_logging.is_progress_bar_enabled() == term.progress


def test_missing_directory_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"as vlm\.model$") as info:
        run(TransformersBackend(str(tmp_path / "no-such-model")).start())
    assert "\n" not in str(info.value)


def test_hub_id_offline_names_the_option() -> None:
    b = TransformersBackend("affectstream-tests/no-such-vlm", local_files_only=True)
    with pytest.raises(ModelError, match=r"set vlm\.model to its directory") as info:
        run(b.start())
    msg = str(info.value)
    assert "huggingface-cli download affectstream-tests/no-such-vlm" in msg and "\n" not in msg


@pytest.mark.timeout(60)
def test_hub_id_with_hub_offline_fails_fast() -> None:
    assert TransformersBackend("x/y").local_files_only is None  # HF_HUB_OFFLINE=1 decides
    with pytest.raises(ModelError, match=r"hub is unreachable.*vlm\.model"):
        run(TransformersBackend("affectstream-tests/no-such-vlm").start())


@pytest.mark.skipif(torchvision_works(), reason="only without torchvision")
def test_qwen_without_torchvision_is_a_config_error(tmp_path: Path) -> None:
    """transformers builds Qwen-VL processors only with torchvision: a clear error."""
    import transformers
    from tiny_vlm import build_tokenizer

    transformers.Qwen2_5_VLConfig().save_pretrained(tmp_path)  # no weights: the processor fails
    build_tokenizer().save_pretrained(tmp_path)
    image_processor = (getattr(transformers, "Qwen2VLImageProcessorPil", None)
                       or transformers.Qwen2VLImageProcessor)
    image_processor().save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="torchvision") as info:
        run(TransformersBackend(str(tmp_path)).start())
    assert "\n" not in str(info.value)


def test_incomplete_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelError, match=r"vlm\.model"):
        run(TransformersBackend(str(tmp_path)).start())


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="dtype"):
        TransformersBackend("x/y", dtype="int3")
    with pytest.raises(ConfigError, match=r"^vlm\.model must name"):
        TransformersBackend(" ")


def test_errors_name_the_setting_the_model_came_from(tmp_path: Path) -> None:
    setting = "vlm.context.captioner_model"
    with pytest.raises(ConfigError, match=rf"^{setting} must name"):
        TransformersBackend(" ", setting=setting)
    with pytest.raises(ModelError) as info:
        run(TransformersBackend(str(tmp_path / "none"), setting=setting).start())
    assert str(info.value).endswith(f"as {setting}") and "vlm.model" not in str(info.value)


def test_not_started(context: VlmContext) -> None:
    b = TransformersBackend("x/y")
    with pytest.raises(BackendError, match="start"):
        run(b.generate(context))
    with pytest.raises(BackendError, match="start"):
        run(b.score(context))
    with pytest.raises(BackendError, match="start"):
        b.prompt_tokens(context)
    run(b.close())  # nothing to release


# --- the prompt -----------------------------------------------------------------------------

def test_prompt_interleaves_images_and_text(backend: TransformersBackend,
                                            context: VlmContext) -> None:
    markup = IMAGE_MARKUP[arch_of(backend)]
    text = backend.prompt_text(context)
    assert text.count(markup) == len(context.images)
    assert context.system in text
    assert interleaved(context, markup) in text  # every part, in order
    assert text.endswith("<|im_start|>assistant\n")
    assert strict_retry_prompt(context.labels) not in text


def test_generate(backend: TransformersBackend, context: VlmContext, spy: Spy) -> None:
    answer = run(backend.generate(context))
    assert isinstance(answer, str)
    (call,) = spy.calls
    (text,) = call["text"]
    assert text == backend.prompt_text(context)
    markup = IMAGE_MARKUP[arch_of(backend)]
    assert text.count(markup) == len(context.images) == len(call["images"])
    for pil, part in zip(call["images"], context.images, strict=True):  # same images, in order
        np.testing.assert_array_equal(np.asarray(pil), part.image)
    # greedy: the same context gives the same answer
    assert run(backend.generate(context)) == answer


def test_generate_decodes_only_new_tokens(backend: TransformersBackend,
                                          context: VlmContext) -> None:
    model = backend._model
    captured: dict[str, Any] = {}
    original = model.generate

    def generate(**kwargs: Any) -> Any:
        out = original(**kwargs)
        captured["prompt"] = kwargs["input_ids"].shape[-1]
        captured["out"] = out
        captured["config"] = kwargs["generation_config"]
        return out

    model.generate = generate
    try:
        answer = run(backend.generate(context))
    finally:
        del model.generate
    out, n = captured["out"], captured["prompt"]
    assert out.shape[-1] - n <= 12 and captured["config"].do_sample is False
    new = backend._tokenizer.decode(out[0, n:], skip_special_tokens=True).strip()
    assert answer == new
    assert context.system not in answer


@pytest.mark.parametrize("max_tokens", [1, 6])
def test_caption_is_free_text_within_max_tokens(
        backend: TransformersBackend, perception: tuple[list[Keyframe], list[LogLine]],
        spy: Spy, max_tokens: int) -> None:
    keyframes, _ = perception
    per = [kf for kf in keyframes if kf.reason == "periodic"]
    requests = caption_requests(per[0].track_id, per, [], (0.0, 2.4), k=2, max_frames=2,
                                max_fps=2.0)
    request = next(r for r in requests if r is not None)
    assert 1 <= len(request.images) <= 2 and request.labels == ()
    model = backend._model
    captured: dict[str, Any] = {}
    original = model.generate

    def generate(**kwargs: Any) -> Any:
        out = original(**kwargs)
        captured["new"] = out.shape[-1] - kwargs["input_ids"].shape[-1]
        return out

    model.generate = generate
    try:
        text = run(backend.caption(request, max_tokens=max_tokens))
    finally:
        del model.generate
    assert isinstance(text, str) and text == text.strip()
    assert 1 <= captured["new"] <= max_tokens
    (call,) = spy.calls
    assert call["text"] == [backend.prompt_text(request)]
    assert CAPTION_PROMPT in call["text"][0] and len(call["images"]) == len(request.images)
    assert strict_retry_prompt(DFEW7) not in call["text"][0]


def test_strict_adds_retry_text(backend: TransformersBackend, context: VlmContext,
                                spy: Spy) -> None:
    retry = strict_retry_prompt(context.labels)
    text = backend.prompt_text(context, strict=True)
    assert text.index(retry) > text.index(context.parts[-1].text)  # last user part
    assert text.endswith(retry + "<|im_end|>\n<|im_start|>assistant\n")
    assert isinstance(run(backend.generate(context, strict=True)), str)
    assert spy.calls[-1]["text"] == [text]


def test_prompt_tokens_count_image_tokens(backend: TransformersBackend,
                                          context: VlmContext) -> None:
    n = backend.prompt_tokens(context)
    processor, tok = backend._processor, backend._tokenizer
    images = [np.asarray(p.image) for p in context.images]
    ids = processor(text=[backend.prompt_text(context)], images=images,
                    return_tensors="pt")["input_ids"][0]
    assert n == len(ids)
    image_id = backend._model.config.image_token_id
    per_image = 16  # both tiny processors give 224-px crops 16 image tokens
    assert int((ids == image_id).sum()) == per_image * len(context.images)
    text_only = len(tok(backend.prompt_text(context), add_special_tokens=False)["input_ids"])
    assert n == text_only + (per_image - 1) * len(context.images)


# --- scoring ---------------------------------------------------------------------------------

def reference_scores(backend: TransformersBackend, ctx: VlmContext) -> dict[str, float]:
    """log P(label | scoring prompt), summed over the answers "label" and " label", each by
    one plain forward pass over the processed prompt + answer text."""
    processor, model = backend._processor, backend._model
    prompt = backend.prompt_text(ctx, scoring=True)
    images = [np.asarray(p.image) for p in ctx.images]
    base = processor(text=[prompt], images=images, return_tensors="pt")["input_ids"][0]
    n = len(base)
    scores: dict[str, float] = {}
    for label in ctx.labels:
        probs = []
        for answer in (label, " " + label):
            full = processor(text=[prompt + answer], images=images, return_tensors="pt")
            ids = full["input_ids"][0]
            assert torch.equal(ids[:n], base), "the answer must not merge with the prompt"
            with torch.no_grad():
                logits = model(**full).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            probs.append(math.exp(sum(float(logp[i - 1, ids[i]]) for i in range(n, len(ids)))))
        scores[label] = math.log(sum(probs))
    return scores


def test_scoring_prompt(backend: TransformersBackend, context: VlmContext) -> None:
    text = backend.prompt_text(context, scoring=True)
    markup = IMAGE_MARKUP[arch_of(backend)]
    assert context.system + SCORE_SYSTEM_SUFFIX in text
    parts = (*context.parts[:-1], TextPart(score_question(context.labels)))
    assert interleaved(context, markup, parts) in text
    assert context.parts[-1].text not in text  # the JSON question is replaced
    assert text.endswith("<|im_start|>assistant\n")


def test_score_is_exact(backend: TransformersBackend, context: VlmContext) -> None:
    prompt = backend.prompt_text(context, scoring=True)
    variants = {label: backend.answer_variants(prompt, label) for label in LABELS}
    lengths = [len(ids) for v in variants.values() for ids in v]
    assert min(lengths) == 1 and max(lengths) >= 2, variants  # both code paths
    assert all(len(v) == 2 for v in variants.values())  # "label" and " label" differ here
    scores = run(backend.score(context))
    assert list(scores) == list(LABELS)
    assert all(math.isfinite(v) and v < 0 for v in scores.values())
    ref = reference_scores(backend, context)
    for label in LABELS:
        assert scores[label] == pytest.approx(ref[label], abs=TOL), label
    assert len(set(scores.values())) > 1


def test_score_without_kv_cache(backend: TransformersBackend, context: VlmContext,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    cached = run(backend.score(context))
    monkeypatch.setattr(TransformersBackend, "_prompt_cache", staticmethod(lambda out: None))
    full = run(backend.score(context))
    for label in LABELS:
        assert full[label] == pytest.approx(cached[label], abs=TOL), label


def test_concurrent_requests(backend: TransformersBackend, context: VlmContext) -> None:
    async def both() -> tuple[str, dict[str, float], dict[str, float]]:
        return await asyncio.gather(backend.generate(context), backend.score(context),
                                    backend.score(context))

    answer, s1, s2 = run(both())
    assert isinstance(answer, str) and s1 == s2


def test_failures_are_backend_errors(backend: TransformersBackend, context: VlmContext,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory\nmore detail")

    monkeypatch.setattr(backend._model, "generate", boom)
    with pytest.raises(BackendError, match="CUDA out of memory") as info:
        run(backend.generate(context))
    assert "\n" not in str(info.value)


def test_close_is_idempotent(model_dir: tuple[str, Path], context: VlmContext) -> None:
    b = TransformersBackend(str(model_dir[1]), max_new_tokens=4)
    run(b.start())
    assert set(run(b.score(context))) == set(LABELS)
    run(b.close())
    run(b.close())
    assert not b.started
    with pytest.raises(BackendError):
        run(b.generate(context))

