"""The caption variant of the motion text (the paper's stage 1; ``vlm.context.motion_text``):
in-between frame selection, segment text for detectors / vlm / both, fallback, token
accounting, the start-up configuration, and the captioning scheduler and OpenAI backend against
the real local HTTP server (tests/openai_server.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openai_server import CAPTION, OpenAIApi, OpenAIServer, is_caption
from pydantic import ValidationError

from affectstream.clock import ManualClock
from affectstream.config import Config, OpenAIVlmConfig, TransformersVlmConfig
from affectstream.emotion.scheduler import VlmScheduler, mirror_size
from affectstream.errors import ConfigError
from affectstream.labels import DFEW7
from affectstream.stream.offline import perceive_file
from affectstream.tokens import estimate_tokens
from affectstream.types import EmotionUpdate, Keyframe, LogLine
from affectstream.vlm.backend import BackendError, VlmBackend
from affectstream.vlm.backends.openai import OpenAIBackend
from affectstream.vlm.calibration import EmotionSmoother, NoCalibration
from affectstream.vlm.captions import (
    MAX_CAPTION_CHARS,
    caption_config,
    caption_context,
    caption_requests,
    clean_caption,
    gap_frames,
)
from affectstream.vlm.context import (
    Caption,
    ImagePart,
    TextPart,
    VlmContext,
    build_context,
    count_tokens,
    default_image_tokens,
)
from affectstream.vlm.factory import captioner_config, make_captioner, start_captioner
from affectstream.vlm.prompts import CAPTION_PROMPT, CAPTION_QUESTION

URL = "http://127.0.0.1:1/v1"  # nothing listens: configs only, or a captioner that fails

TRACK = 1
FPS = 30.0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def crop(value: int = 80) -> np.ndarray:
    return np.full((224, 224, 3), value, np.uint8)


def frame(t: float, reason: str = "periodic", burst: str | None = None,
          track: int = TRACK) -> Keyframe:
    return Keyframe(track, round(t * FPS), t, reason, crop(), burst)  # type: ignore[arg-type]


def periodic(t0: float, t1: float, fps: float = 5.0, track: int = TRACK) -> list[Keyframe]:
    n = round((t1 - t0) * fps)
    return [frame(round(t0 + i / fps, 4), track=track) for i in range(n + 1)]


def burst_line(t0: float, t1: float, burst_id: str, what: str = "lips pulled up") -> LogLine:
    return LogLine("cam0", TRACK, t0, t1, "burst", f"{t0:.2f}–{t1:.2f} s, micro: {what} "
                   f"({burst_id})", burst_id)


def texts(ctx: VlmContext) -> list[str]:
    return [p.text for p in ctx.parts if isinstance(p, TextPart)]


def segments(ctx: VlmContext) -> dict[float, str]:
    """The text after each keyframe image, by the keyframe's time."""
    return {p.pts_s: nxt.text for p, nxt in itertools.pairwise(ctx.parts)
            if isinstance(p, ImagePart) and isinstance(nxt, TextPart)}


# --- in-between frames ----------------------------------------------------------------------

def test_gap_frames_strictly_between_evenly_and_capped() -> None:
    keys = [frame(0.0), frame(1.0), frame(1.2), frame(4.0)]
    pool = periodic(0.0, 4.0, fps=10.0)  # denser than the cap
    gaps = gap_frames(keys, pool, max_frames=4, max_fps=5.0)
    assert len(gaps) == 3
    for (a, b), gap in zip(itertools.pairwise(keys), gaps, strict=True):
        times = [kf.pts_s for kf in gap]
        assert times == sorted(times) and len(gap) <= 4
        assert all(a.pts_s < t < b.pts_s for t in times)
        assert all(dt >= 0.95 / 5.0 for dt in np.diff(times))  # no denser than 5 fps
    assert [kf.pts_s for kf in gaps[0]] == pytest.approx([0.1, 0.3, 0.7, 0.9])  # 5 → 4
    assert gaps[1] == [next(kf for kf in pool if kf.pts_s == pytest.approx(1.1))]
    last = [kf.pts_s for kf in gaps[2]]
    assert last[0] == pytest.approx(1.3) and last[-1] > 3.5  # spread over the whole gap


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_gap_frames_counts(n: int) -> None:
    keys = [frame(0.0), frame(2.0)]
    gap = gap_frames(keys, periodic(0.0, 2.0), max_frames=n, max_fps=5.0)[0]
    assert len(gap) == min(n, 9)  # 0.2 … 1.8 s at 5 fps
    if n == 1:
        assert gap[0].pts_s == pytest.approx(1.0)  # the middle one
    assert len({kf.frame_index for kf in gap}) == len(gap)


def test_gap_frames_edge_cases() -> None:
    assert gap_frames([frame(1.0)], periodic(0.0, 2.0), max_frames=4, max_fps=5.0) == []
    # adjacent keyframes, or a keyframe that is itself a periodic frame: nothing between
    keys = [frame(1.0), frame(1.2)]
    assert gap_frames(keys, periodic(0.0, 2.0), max_frames=4, max_fps=5.0) == [[]]
    # a keyframe's own frame index is never captioned again, and duplicates count once
    pool = periodic(0.0, 1.0) + periodic(0.0, 1.0)
    gap = gap_frames([frame(0.0), frame(1.0)], pool, max_frames=8, max_fps=5.0)[0]
    assert [kf.pts_s for kf in gap] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    with pytest.raises(ValueError):
        gap_frames([], [], max_frames=0, max_fps=5.0)
    with pytest.raises(ValueError):
        gap_frames([], [], max_frames=1, max_fps=0.0)


def test_caption_context_shape_and_tokens() -> None:
    frames = periodic(0.2, 0.8)
    ctx = caption_context(TRACK, frames, frame(0.0), frame(1.0))
    kinds = [type(p).__name__ for p in ctx.parts]
    assert kinds == ["TextPart", *["ImagePart"] * 4, "TextPart"]
    assert ctx.system == CAPTION_PROMPT and ctx.labels == ()
    intro = texts(ctx)[0]
    assert intro.startswith("4 frames at 0.20, 0.40, 0.60, 0.80 s")
    assert "0.00 s and 1.00 s" in intro
    assert texts(ctx)[-1] == CAPTION_QUESTION
    assert ctx.prompt_tokens == estimate_tokens(CAPTION_PROMPT) + estimate_tokens(intro) \
        + estimate_tokens(CAPTION_QUESTION) + 4 * default_image_tokens(224, 224)
    with pytest.raises(ValueError):
        caption_context(TRACK, [], frame(0.0), frame(1.0))


# --- segment text ---------------------------------------------------------------------------

WINDOW = (0.0, 4.0)


def scene() -> tuple[list[Keyframe], list[LogLine]]:
    """5-fps periodic frames over 4 s (K = 4 picks 0, 1, 2 and 4 s), a burst in each of the
    first two gaps and a slow change in the first."""
    lines = [burst_line(0.5, 0.8, "b1"), burst_line(1.4, 1.6, "b2", "brows raised"),
             LogLine("cam0", TRACK, 0.6, 0.6, "change", "0.60 s: lip corner puller (AU12) rose "
                     "to moderate, both sides")]
    return periodic(*WINDOW), lines


def captions_for(requests: Sequence[VlmContext | None],
                 answers: Sequence[str | None]) -> list[Caption | None]:
    it = iter(answers)
    return [None if r is None else Caption(next(it), len(r.images), r.prompt_tokens)
            for r in requests]


def test_detectors_text_is_unchanged_by_default() -> None:
    per, lines = scene()
    plain = build_context(TRACK, per, [], lines, WINDOW, DFEW7)
    same = build_context(TRACK, per, [], lines, WINDOW, DFEW7, motion_text="detectors",
                         captions=None)
    assert texts(plain) == texts(same) and plain.caption_tokens == 0
    assert plain.total_token_ratio == plain.token_ratio
    assert all(line.text in "\n".join(texts(plain)) for line in lines)


@pytest.mark.parametrize("mode", ["vlm", "both"])
def test_caption_segments(mode: str) -> None:
    per, lines = scene()
    requests = caption_requests(TRACK, per, [], WINDOW, k=4)
    assert len(requests) == 3 and all(r is not None for r in requests)
    caps = captions_for(requests, ["the lips rise", "the brows go up", "no visible movement"])
    ctx = build_context(TRACK, per, [], lines, WINDOW, DFEW7, motion_text=mode,  # type: ignore[arg-type]
                        captions=caps)
    seg = segments(ctx)
    times = ctx.keyframes_s
    assert times == (0.0, 1.0, 2.0, 4.0)
    first = seg[times[0]]
    assert first.startswith(f"↑ {times[0]:.2f} s. VLM caption of 4 frames until "
                            f"{times[1]:.2f} s: the lips rise")
    assert "the brows go up" in seg[times[1]] and "no visible movement" in seg[times[2]]
    gap_of = {"b1": times[0], "b2": times[1], "": times[0]}
    for line in lines:
        where = seg[gap_of[line.burst_id or ""]]
        if mode == "vlm" and line.kind == "change":
            assert line.text not in "\n".join(texts(ctx))  # replaced by the caption
        else:  # the caption first, then the lines (with vlm: bursts without an apex image)
            assert where.index("VLM caption") < where.index("Detected motion:") \
                < where.index(line.text)
    assert ctx.burst_ids == ("b1", "b2")  # the bursts of the window, captioned or not
    assert ctx.caption_tokens == sum(r.prompt_tokens for r in requests if r is not None)


def test_failed_or_missing_caption_falls_back_to_detector_lines() -> None:
    per, lines = scene()
    requests = caption_requests(TRACK, per, [], WINDOW, k=4)
    caps = captions_for(requests, [None, "the brows go up", "no visible movement"])
    ctx = build_context(TRACK, per, [], lines, WINDOW, DFEW7, motion_text="vlm", captions=caps)
    seg = segments(ctx)
    t0 = ctx.keyframes_s[0]
    assert "VLM caption" not in seg[t0] and lines[0].text in seg[t0]  # the failed gap
    assert lines[2].text in seg[t0]  # with its slow change too
    t1 = ctx.keyframes_s[1]
    assert seg[t1].startswith(f"↑ {t1:.2f} s. VLM caption") and lines[1].text in seg[t1]
    # tokens of a failed caption were spent all the same
    assert ctx.caption_tokens == sum(r.prompt_tokens for r in requests if r is not None)
    # a gap without in-between frames (two apexes 0.1 s apart): no request, lines kept
    apexes = [frame(1.0, "apex", "a"), frame(1.1, "apex", "b")]
    inner = burst_line(1.02, 1.08, "a")
    requests = caption_requests(TRACK, per, apexes, WINDOW, k=4)
    assert [r is None for r in requests] == [True, False, False]
    caps = captions_for(requests, ["c1", "c2"])
    ctx = build_context(TRACK, per, apexes, [inner], WINDOW, DFEW7, motion_text="vlm",
                        captions=caps)
    assert ctx.keyframes_s[:2] == (1.0, 1.1)
    assert inner.text in segments(ctx)[1.0] and "VLM caption" not in segments(ctx)[1.0]
    assert "VLM caption of 4 frames" in segments(ctx)[1.1]


def test_lines_outside_gaps_are_always_kept() -> None:
    per = periodic(1.0, 4.0)
    lines = [burst_line(0.2, 0.4, "early"), burst_line(4.05, 4.15, "late")]
    window = (0.0, 4.2)  # the newest periodic frame is at 4.0 s
    requests = caption_requests(TRACK, per, [], window, k=4)
    caps = captions_for(requests, ["x"] * sum(r is not None for r in requests))
    ctx = build_context(TRACK, per, [], lines, window, DFEW7, motion_text="vlm", captions=caps)
    body = "\n".join(texts(ctx))
    assert all(line.text in body for line in lines)  # before the first / after the last frame


def test_captions_must_match_the_gaps() -> None:
    per, lines = scene()
    with pytest.raises(ValueError, match="caption_requests"):
        build_context(TRACK, per, [], lines, WINDOW, DFEW7, motion_text="vlm", captions=[None])


def test_token_accounting_with_custom_functions() -> None:
    per, lines = scene()

    def area(w: int, h: int) -> int:
        return w * h // 1000

    requests = caption_requests(TRACK, per, [], WINDOW, k=3, max_frames=2, max_side=112,
                                image_tokens=area, text_tokens=len)
    for r in requests:
        assert r is not None and 1 <= len(r.images) <= 2
        assert r.prompt_tokens == count_tokens(r.system, r.parts, area, len)
        assert all(max(p.image.shape[:2]) == 112 for p in r.images)
    caps = captions_for(requests, ["a", "b"])
    ctx = build_context(TRACK, per, [], lines, WINDOW, DFEW7, k=3, max_side=112,
                        image_tokens=area, text_tokens=len, motion_text="both", captions=caps)
    assert ctx.caption_tokens == sum(r.prompt_tokens for r in requests if r is not None)
    assert ctx.prompt_tokens == count_tokens(ctx.system, ctx.parts, area, len)
    assert ctx.total_token_ratio == pytest.approx(
        (ctx.prompt_tokens + ctx.caption_tokens) / ctx.dense_tokens)


def test_clean_caption() -> None:
    assert clean_caption('  "The lips\n move up."  ') == "The lips move up."
    assert clean_caption(" \n ") is None
    long = clean_caption("word " * 200)
    assert long is not None and len(long) == MAX_CAPTION_CHARS and long.endswith("…")


# --- configuration and start-up -------------------------------------------------------------

def test_caption_config_raises_the_keyframe_rate() -> None:
    cfg = Config.model_validate({"vlm": {"type": "openai", "url": "http://x/v1",
                                         "context": {"motion_text": "vlm"}}})
    out = caption_config(cfg)
    assert out.keyframes.periodic_fps == 5.0 and cfg.keyframes.periodic_fps == 2.0
    assert out.vlm == cfg.vlm
    faster = cfg.model_copy(update={"keyframes": cfg.keyframes.model_copy(
        update={"periodic_fps": 10.0})})
    assert caption_config(faster) is faster
    assert caption_config(Config()) == Config()  # detectors: untouched


def test_captions_without_a_vlm_cannot_load() -> None:
    # Only a VLM type has vlm.context, so caption_config never sees captions without a VLM.
    with pytest.raises(ValidationError, match="context"):
        Config.model_validate({"vlm": {"context": {"motion_text": "both"}}})
    assert caption_config(Config()) == Config()


def test_config_keys_are_checked() -> None:
    for bad in ({"caption_frames": 0}, {"caption_frames": 9}, {"caption_fps": 0},
                {"motion_text": "captions"}, {"captioner": "ollama"}, {"bogus": 1}):
        with pytest.raises(ValueError):
            OpenAIVlmConfig.model_validate({"url": URL, "context": bad})


def test_mirrors_hold_a_whole_window() -> None:
    cfg = OpenAIVlmConfig(url=URL, period_s=10.0)
    assert mirror_size(cfg, 2.0) == 42  # 20 s at 2 Hz + 2
    vlm = cfg.model_copy(update={"context": cfg.context.model_copy(
        update={"motion_text": "vlm"})})
    assert mirror_size(vlm, 2.0) == 102  # at caption_fps
    assert mirror_size(OpenAIVlmConfig(url=URL), 2.0) == 32


def test_captioner_rules_are_checked_when_the_config_loads() -> None:
    def cfg(**ctx: Any) -> OpenAIVlmConfig:
        return OpenAIVlmConfig.model_validate({"url": URL, "context": {"motion_text": "vlm",
                                                                        **ctx}})

    with pytest.raises(ValidationError, match="captioner: openai or transformers"):
        cfg(captioner_model="small")
    with pytest.raises(ValidationError, match="captioner_model"):
        cfg(captioner="transformers")
    with pytest.raises(ValidationError, match="captioner_url"):
        TransformersVlmConfig.model_validate({"model": "x/y", "context": {
            "motion_text": "vlm", "captioner": "openai"}})
    assert cfg(captioner="openai").context.captioner == "openai"  # the main vlm.url serves


def test_make_captioner_builds_the_captioners_own_config() -> None:
    main = OpenAIVlmConfig.model_validate({
        "url": URL, "api_key": "k", "temperature": 0.5, "timeout_s": 3, "max_retries": 1,
        "calibration": "contextual", "context": {"motion_text": "vlm"}})
    assert make_captioner(main) is None and captioner_config(main) is None  # same
    ctx = main.context.model_copy(update={"captioner": "openai", "captioner_model": "small"})
    sub = captioner_config(main.model_copy(update={"context": ctx}))
    assert sub == OpenAIVlmConfig(url=URL, model="small", api_key=main.api_key,
                                  temperature=0.5, timeout_s=3, max_retries=1)
    sep = make_captioner(main.model_copy(update={"context": ctx}))
    assert isinstance(sep, OpenAIBackend) and sep.model == "small"
    local = TransformersVlmConfig.model_validate({
        "model": "big", "device": "cpu", "dtype": "float32", "context": {
            "motion_text": "vlm", "captioner": "openai", "captioner_url": URL}})
    assert captioner_config(local) == OpenAIVlmConfig(url=URL)  # no openai settings to share
    ctx = local.context.model_copy(update={"captioner": "transformers",
                                           "captioner_model": "small", "captioner_url": None})
    assert captioner_config(local.model_copy(update={"context": ctx})) == \
        TransformersVlmConfig(model="small", device="cpu", dtype="float32")


def test_separate_captioner_fails_at_start_with_its_own_key() -> None:
    cfg = OpenAIVlmConfig.model_validate({"url": URL, "timeout_s": 1, "max_retries": 0,
                                          "context": {"motion_text": "vlm",
                                                      "captioner": "openai",
                                                      "captioner_url": URL}})
    main = OpenAIBackend(URL, None)
    with pytest.raises(ConfigError, match=r"^captioner: cannot reach") as info:
        asyncio.run(start_captioner(cfg, main))
    assert "vlm.context.captioner_url" in str(info.value) and "vlm.url" not in str(info.value)
    same = cfg.model_copy(update={"context": cfg.context.model_copy(
        update={"captioner": "same", "captioner_url": None})})
    assert asyncio.run(start_captioner(same, main)) is main
    off = OpenAIVlmConfig(url=URL)
    assert asyncio.run(start_captioner(off, main)) is None


# --- the OpenAI backend's caption() ---------------------------------------------------------

def test_openai_caption_request_is_free_text() -> None:
    request = caption_context(TRACK, periodic(0.2, 0.6), frame(0.0), frame(0.8))

    async def go(api: OpenAIApi) -> str:
        backend = OpenAIBackend(api.url, None, max_tokens=256, temperature=0.3,
                                transport=api.transport(), clock=ManualClock())
        await backend.start()
        try:
            return await backend.caption(request, max_tokens=40)
        finally:
            await backend.close()

    api = OpenAIApi(caption_text="  The jaw drops.\n")
    text = asyncio.run(go(api))
    body = api.chat_requests[-1].body
    assert text == "The jaw drops."
    assert is_caption(body) and "response_format" not in body
    assert body["max_tokens"] == 40 and body["temperature"] == 0.3
    user = body["messages"][1]["content"]
    assert [p["type"] for p in user] == ["text", *["image_url"] * 3, "text"]
    assert user[-1]["text"] == CAPTION_QUESTION


def test_openai_caption_failure_is_a_backend_error() -> None:
    request = caption_context(TRACK, periodic(0.2, 0.2), frame(0.0), frame(0.8))

    clock = ManualClock()

    async def go(api: OpenAIApi) -> None:
        backend = OpenAIBackend(api.url, None, max_retries=1, timeout_s=5,
                                transport=api.transport(), clock=clock)
        await backend.start()
        try:
            await backend.caption(request, max_tokens=16)
        finally:
            await backend.close()

    api = OpenAIApi(caption_status=500)
    with pytest.raises(BackendError, match="HTTP 500") as info:
        asyncio.run(go(api))
    assert "\n" not in str(info.value)
    assert len(api.caption_requests) == 2 and clock.slept == [0.5]  # retried once


# --- the scheduler with captions ------------------------------------------------------------
# e2e: the scheduler runs in real time (it takes no clock yet) against the real HTTP server.

async def _schedule(server: OpenAIServer, cfg: OpenAIVlmConfig,
                    captioner_url: str | None = None) -> tuple[VlmScheduler, list[EmotionUpdate]]:
    backend = OpenAIBackend(server.url, None, timeout_s=cfg.timeout_s, max_retries=0)
    await backend.start()
    captioner: VlmBackend | None = None
    if captioner_url is not None:
        captioner = OpenAIBackend(captioner_url, None, timeout_s=cfg.timeout_s, max_retries=0)
        await captioner.start()
    published: list[EmotionUpdate] = []

    async def publish(update: EmotionUpdate) -> None:
        published.append(update)

    sched = VlmScheduler(backend, cfg, DFEW7, "cam0", publish, NoCalibration(),
                         EmotionSmoother(0.0), captioner=captioner, keyframe_fps=5.0)
    pending = [burst_line(0.5, 0.8, "b1"), burst_line(2.6, 2.9, "b2")]
    for i in range(31):  # 0 … 6 s at 5 fps
        t = round(i / 5, 4)
        new = [ln for ln in pending if ln.end_s <= t + 1e-6]  # logged once the burst ends
        pending = [ln for ln in pending if ln not in new]
        sched.feed(t, [frame(t)], new, [], [TRACK], [])
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    await sched.close(wait_s=5)
    await backend.close()
    if captioner is not None:
        await captioner.close()
    return sched, published


def _cfg(mode: str) -> OpenAIVlmConfig:
    return OpenAIVlmConfig.model_validate({"url": URL, "period_s": 2.0, "timeout_s": 5,
                                           "context": {"motion_text": mode}})


@pytest.mark.e2e
def test_scheduler_captions_each_gap_then_asks() -> None:
    with OpenAIServer() as server:
        sched, published = asyncio.run(_schedule(server, _cfg("vlm")))
        captions = [r.body for r in server.caption_requests]
        mains = [r.body for r in server.main_requests]
    stats = sched.stats()
    assert published and all(u.source == "vlm" for u in published)
    assert stats["failures"] == 0 and stats["caption_failures"] == 0
    assert stats["caption_calls"] == len(captions) > 0
    assert len(captions) <= 3 * len(mains)  # K − 1 gaps per update at most
    assert stats["caption_tokens_mean"] > 0
    assert stats["total_token_ratio_mean"] > stats["token_ratio_mean"]
    for body in captions:
        n = [p["type"] for p in body["messages"][1]["content"]].count("image_url")
        assert 1 <= n <= 4
    assert all(CAPTION in json.dumps(b, ensure_ascii=False) for b in mains)


@pytest.mark.e2e
def test_scheduler_caption_failures_never_fail_the_update() -> None:
    with OpenAIServer() as server, OpenAIServer(caption_status=500) as down:
        sched, published = asyncio.run(_schedule(server, _cfg("both"), down.url))
        mains = [r.body for r in server.main_requests]
        assert not server.caption_requests and down.caption_requests
    stats = sched.stats()
    assert published and stats["failures"] == 0 and stats["skipped"] == 0
    assert stats["caption_failures"] == stats["caption_calls"] > 0
    joined = "\n".join(json.dumps(b, ensure_ascii=False) for b in mains)
    assert "VLM caption" not in joined and "(b1)" in joined  # the detector lines stayed


@pytest.mark.e2e
def test_detectors_mode_has_no_caption_stats() -> None:
    with OpenAIServer() as server:
        sched, published = asyncio.run(_schedule(server, _cfg("detectors")))
        assert not server.caption_requests
    assert published and "caption_calls" not in sched.stats()


# --- real perception output -----------------------------------------------------------------

@pytest.mark.e2e
def test_tokens_with_and_without_captions_on_real_video(
        media_dir: Path, model_paths: dict[str, Path]) -> None:
    """single_face.mp4 through perception at the caption rate; one 2.4 s window (the clip), as
    the scheduler would ask about it, with each motion_text."""
    cfg = caption_config(Config.model_validate({"vlm": {"type": "openai", "url": "http://x/v1",
                                                        "context": {"motion_text": "both"}}}))
    keyframes: list[Keyframe] = []
    lines: list[LogLine] = []
    for item in perceive_file(cfg, model_paths, media_dir / "single_face.mp4"):
        keyframes += item.result.keyframes
        lines += item.result.log_lines
    per = [kf for kf in keyframes if kf.reason == "periodic"]
    apx = [kf for kf in keyframes if kf.reason == "apex"]
    assert len(per) >= 10  # 5 fps over 2.4 s
    track, window = per[0].track_id, (0.0, 2.4)
    requests = caption_requests(track, per, apx, window)
    assert 1 <= sum(r is not None for r in requests) <= 3
    caps = captions_for(requests, [CAPTION] * sum(r is not None for r in requests))
    calls = sum(r is not None for r in requests)
    out = {}
    for mode in ("detectors", "vlm", "both"):
        ctx = build_context(track, per, apx, lines, window, DFEW7, motion_text=mode,  # type: ignore[arg-type]
                            captions=None if mode == "detectors" else caps)
        out[mode] = ctx
        print(f"\nsingle_face [0, 2.4] s, motion_text {mode}: prompt {ctx.prompt_tokens}, "
              f"captions {ctx.caption_tokens} ({0 if mode == 'detectors' else calls} calls), "
              f"dense {ctx.dense_tokens}; ratio {ctx.token_ratio:.3f}, with captions "
              f"{ctx.total_token_ratio:.3f}")
    assert out["detectors"].caption_tokens == 0
    assert out["vlm"].caption_tokens == out["both"].caption_tokens > 0
    assert out["both"].prompt_tokens > out["detectors"].prompt_tokens
    body = "\n".join(texts(out["both"]))
    assert all(line.text in body for line in lines if line.kind == "burst")  # nothing lost


def test_with_vlm_a_burst_shown_as_an_apex_image_gives_way_to_the_caption() -> None:
    per, lines = scene()
    apexes = [frame(1.5, "apex", "b2")]
    requests = caption_requests(TRACK, per, apexes, WINDOW, k=4)
    caps = captions_for(requests, [f"c{i}" for i, r in enumerate(requests) if r is not None])
    ctx = build_context(TRACK, per, apexes, lines, WINDOW, DFEW7, motion_text="vlm",
                        captions=caps)
    body = "\n".join(texts(ctx))
    assert 1.5 in ctx.keyframes_s
    assert lines[1].text not in body  # b2: its apex is an image, the caption covers the gap
    assert lines[0].text in body  # b1: no image, so its line stays (P3)
    assert lines[2].text not in body  # the slow change: replaced
    assert ctx.burst_ids == ("b1", "b2")
