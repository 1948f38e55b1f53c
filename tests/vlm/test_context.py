"""VLM context builder: keyframe selection, interleaving, burst coverage, resizing and the P3
token budget (DESIGN §1, §8, §10 P3), on synthetic keyframes and on real perception output."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from affectstream.config import Config
from affectstream.detectors.textlog import RollingLog
from affectstream.stream.offline import perceive_file
from affectstream.tokens import estimate_tokens
from affectstream.types import Burst, Keyframe, LogLine
from affectstream.vlm.context import (
    ImagePart,
    TextPart,
    VlmContext,
    build_context,
    default_image_tokens,
    dense_tokens,
)
from affectstream.vlm.prompts import SYSTEM_PROMPT, question
from affectstream.vlm.select import select_keyframes

LABELS = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")
FPS = 30.0
TRACK = 1


def crop(value: int = 0, h: int = 224, w: int = 224) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def periodic(t0: float, t1: float, every: float = 0.5, track: int = TRACK) -> list[Keyframe]:
    times = np.arange(t0, t1 + 1e-9, every)
    return [Keyframe(track, round(t * FPS), float(t), "periodic", crop()) for t in times]


def apex(t: float, burst_id: str, track: int = TRACK) -> Keyframe:
    return Keyframe(track, round(t * FPS), t, "apex", crop(), burst_id)


def burst_line(t0: float, t1: float, burst_id: str, what: str = "left lip corner pulled up "
               "and back (AU12, weak), eyes not involved", track: int = TRACK) -> LogLine:
    kind = "micro" if t1 - t0 <= 0.5 else "macro"
    text = f"{t0:.2f}–{t1:.2f} s, {t1 - t0:.2f} s {kind}: {what}"
    return LogLine("cam0", track, t0, t1, "burst", text, burst_id)


def change_line(t: float, what: str = "lip corner puller (AU12) rose to moderate, both sides",
                track: int = TRACK) -> LogLine:
    return LogLine("cam0", track, t, t, "change", f"{t:.2f} s: {what}")


def texts(ctx: VlmContext) -> list[str]:
    return [p.text for p in ctx.parts if isinstance(p, TextPart)]


def images(ctx: VlmContext) -> list[ImagePart]:
    return [p for p in ctx.parts if isinstance(p, ImagePart)]


def assert_bursts_covered(ctx: VlmContext, lines: Sequence[LogLine]) -> None:
    """Every burst whose line overlaps the window is an apex image or a text line (P3)."""
    lo, hi = ctx.window_start_s, ctx.window_end_s
    body = "\n".join(texts(ctx))
    apexes = {p.burst_id for p in images(ctx) if p.reason == "apex"}
    for line in lines:
        if line.kind == "burst" and line.end_s >= lo and line.start_s <= hi:
            assert line.burst_id in apexes or line.text in body, line
            assert line.burst_id in ctx.burst_ids


# --- keyframe selection -------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 6, 20])
def test_k_respected(k: int) -> None:
    per = periodic(0.0, 4.0)  # 9 frames
    apx = [apex(0.7, "a"), apex(2.3, "b")]
    picked = select_keyframes(per, apx, (0.0, 4.0), k)
    assert len(picked) == min(k, len(per) + len(apx))


def test_apexes_first_and_newest_always() -> None:
    per = periodic(0.0, 4.0)
    apx = [apex(0.7, "a"), apex(1.9, "b"), apex(3.1, "c")]
    picked = select_keyframes(per, apx, (0.0, 4.0), k=4)
    assert [kf.burst_id for kf in picked if kf.reason == "apex"] == ["a", "b", "c"]
    assert picked[-1] is per[-1]  # the newest frame
    assert len(picked) == 4


def test_newest_bursts_first_when_more_than_k_minus_1() -> None:
    per = periodic(0.0, 4.0)
    apx = [apex(0.2 + 0.5 * i, f"b{i}") for i in range(7)]  # 0.2 … 3.2
    picked = select_keyframes(per, apx, (0.0, 4.0), k=4)
    assert [kf.burst_id for kf in picked if kf.reason == "apex"] == ["b4", "b5", "b6"]
    assert picked[-1] is per[-1]
    only = select_keyframes(per, apx, (0.0, 4.0), k=1)
    assert only == [per[-1]]


def test_without_periodic_frames_apexes_fill_all_slots() -> None:
    apx = [apex(0.2 + 0.5 * i, f"b{i}") for i in range(6)]
    picked = select_keyframes([], apx, (0.0, 4.0), k=4)
    assert [kf.burst_id for kf in picked] == ["b2", "b3", "b4", "b5"]


def test_time_order_and_no_duplicates() -> None:
    per = periodic(0.0, 3.0)
    same_frame = apex(1.5, "x")  # the same frame as a periodic keyframe
    assert any(kf.frame_index == same_frame.frame_index for kf in per)
    apx = [same_frame, apex(1.5, "x"), apex(2.2, "y")]
    for k in range(1, 9):
        picked = select_keyframes(per, apx, (0.0, 3.0), k)
        idx = [kf.frame_index for kf in picked]
        assert len(idx) == len(set(idx))
        assert [kf.pts_s for kf in picked] == sorted(kf.pts_s for kf in picked)
        assert sum(kf.burst_id == "x" for kf in picked) <= 1
    picked = select_keyframes(per, apx, (0.0, 3.0), 4)
    assert next(kf for kf in picked if kf.frame_index == same_frame.frame_index).reason == "apex"


def test_newest_frame_that_is_an_apex_uses_one_slot() -> None:
    per = periodic(0.0, 2.0)
    apx = [apex(0.4, "a"), apex(1.2, "b"), apex(2.0, "c")]  # "c" is the newest frame itself
    picked = select_keyframes(per, apx, (0.0, 2.0), k=3)
    assert [kf.burst_id for kf in picked] == ["a", "b", "c"]


def test_window_filtering() -> None:
    per = periodic(0.0, 10.0)
    apx = [apex(1.0, "old"), apex(5.2, "in"), apex(9.0, "late")]
    picked = select_keyframes(per, apx, (4.0, 6.0), k=4)
    assert all(4.0 <= kf.pts_s <= 6.0 for kf in picked)
    assert [kf.burst_id for kf in picked if kf.burst_id] == ["in"]
    assert picked[-1].pts_s == 6.0
    assert select_keyframes(per, apx, (10.5, 11.0), k=4) == []
    with pytest.raises(ValueError):
        select_keyframes(per, apx, (6.0, 4.0))
    with pytest.raises(ValueError):
        select_keyframes(per, apx, (4.0, 6.0), k=-1)


def test_rest_evenly_spaced() -> None:
    per = periodic(0.0, 3.0, every=0.1)
    picked = select_keyframes(per, [], (0.0, 3.0), k=4)
    times = [kf.pts_s for kf in picked]
    assert times[0] == pytest.approx(0.0) and times[-1] == pytest.approx(3.0)
    gaps = np.diff(times)
    assert gaps.min() >= 0.7 and gaps.max() <= 1.6, times
    # with an apex, the periodic frames go where the largest gaps are
    picked = select_keyframes(per, [apex(2.45, "a")], (0.0, 3.0), k=4)
    times = [kf.pts_s for kf in picked]
    assert np.diff(times).min() >= 0.5, times


# --- interleaving and coverage ------------------------------------------------------------

def test_interleaving_order_and_text_placement() -> None:
    per = periodic(10.0, 12.0)
    apx = [apex(10.8, "b1")]
    lines = [
        burst_line(10.6, 11.0, "b1"),
        change_line(10.9),
        burst_line(11.2, 11.6, "b2", "inner brows raised (AU1 moderate)"),
        change_line(11.7, "brow lowerer (AU4) fell to weak"),
    ]
    ctx = build_context(TRACK, per, apx, lines, (10.0, 12.0), LABELS)
    kinds = [type(p).__name__ for p in ctx.parts]
    n = len(ctx.keyframes_s)
    assert n == 4
    assert kinds == ["TextPart"] + ["ImagePart", "TextPart"] * n + ["TextPart"]
    assert ctx.keyframes_s == (10.0, 10.8, 11.5, 12.0)
    assert [p.pts_s for p in images(ctx)] == list(ctx.keyframes_s)
    assert isinstance(ctx.parts[-1], TextPart) and ctx.parts[-1].text == question(LABELS)
    after = {p.pts_s: ctx.parts[i + 1] for i, p in enumerate(ctx.parts) if isinstance(p, ImagePart)}
    segment = {t: part.text for t, part in after.items() if isinstance(part, TextPart)}
    assert lines[0].text in segment[10.0]  # onset 10.6 lies between 10.0 and the apex at 10.8
    assert lines[1].text in segment[10.8] and lines[2].text in segment[10.8]
    assert lines[3].text in segment[11.5]
    assert "until end 12.00" not in segment[12.0]  # the newest frame sits at the window end
    for line in lines:
        assert sum(line.text in t for t in texts(ctx)) == 1
    assert ctx.burst_ids == ("b1", "b2")
    assert_bursts_covered(ctx, lines)


def test_lines_before_first_keyframe_after_window_and_other_tracks() -> None:
    per = periodic(5.5, 7.0)
    lines = [
        burst_line(4.8, 5.3, "early"),  # overlaps the window start, before the first keyframe
        burst_line(7.5, 7.7, "future"),  # after the window end
        burst_line(6.2, 6.4, "other", track=2),
        change_line(6.1),
    ]
    ctx = build_context(TRACK, per + periodic(5.0, 7.0, track=2), [apex(6.3, "other", track=2)],
                        lines, (5.0, 7.0), LABELS)
    body = "\n".join(texts(ctx))
    assert lines[0].text in texts(ctx)[0]
    assert lines[1].text not in body and lines[2].text not in body
    assert lines[3].text in body
    assert all(p.burst_id is None for p in images(ctx))
    assert ctx.burst_ids == ("early",)


def test_every_burst_covered_with_many_bursts() -> None:
    rng = np.random.default_rng(0)
    onsets = np.sort(rng.uniform(20.0, 29.5, 15))
    lines, apx = [], []
    for i, t0 in enumerate(onsets):
        t1 = float(t0 + rng.uniform(0.07, 0.45))
        bid = f"burst-{i}"
        lines.append(burst_line(float(t0), t1, bid, f"marker {i} (AU{i + 1} weak)"))
        apx.append(apex(round((t0 + t1) / 2 * FPS) / FPS, bid))
        if i % 3 == 0:
            lines.append(change_line(t1 + 0.01))
    per = periodic(18.0, 30.0)
    for window in [(20.0, 30.0), (26.0, 28.0), (24.0, 26.0), (29.0, 30.0)]:
        for k in (1, 2, 4, 6):
            ctx = build_context(TRACK, per, apx, lines, window, LABELS, k=k)
            in_window = {ln.burst_id for ln in lines if ln.kind == "burst"
                         and ln.end_s >= window[0] and ln.start_s <= window[1]}
            assert len(images(ctx)) <= k
            assert set(ctx.burst_ids) == in_window
            assert_bursts_covered(ctx, lines)
    ctx = build_context(TRACK, per, apx, lines, (20.0, 30.0), LABELS)
    assert len(ctx.burst_ids) == 15 > len(images(ctx)) == 4


def test_summary_of_older_lines_comes_first() -> None:
    log = RollingLog("cam0", TRACK, token_budget=90)
    lines = [burst_line(1.0 + i, 1.2 + i, f"b{i}", f"brows lowered (AU4 weak) #{i}")
             for i in range(8)]
    lines += [change_line(9.5), burst_line(10.3, 10.5, "now")]
    for line in lines:
        log.append(line)
    rolled = list(log)
    assert rolled[0].kind == "summary"
    older = [ln for ln in rolled[1:] if ln.end_s < 10.0]
    n_bursts = sum(ln.kind == "burst" for ln in older)
    assert n_bursts >= 1 and len(older) > n_bursts  # unfolded lines also end before the window
    ctx = build_context(TRACK, periodic(10.0, 12.0), [], rolled, (10.0, 12.0), LABELS)
    first = ctx.parts[0]
    assert isinstance(first, TextPart)
    assert rolled[0].text.split(":")[0][1:] in first.text  # the rolling summary, capitalised
    assert f"Then up to 10.00 s: {n_bursts} burst" in first.text
    assert first.text.index(rolled[0].text[1:]) < first.text.index("Then up to")
    assert "AU4" in first.text
    rest = "\n".join(texts(ctx)[1:])
    assert all(ln.text not in rest for ln in older)
    assert lines[-1].text in rest
    empty = build_context(TRACK, periodic(10.0, 12.0), [], [], (10.0, 12.0), LABELS)
    assert "Nothing logged before" in texts(empty)[0]


# --- images and tokens --------------------------------------------------------------------

def test_resize_and_rgb() -> None:
    wide = np.zeros((300, 600, 3), np.uint8)
    wide[..., 0] = 255  # blue in BGR
    tall = crop(7, h=1000, w=300)
    per = [Keyframe(TRACK, 0, 0.0, "periodic", wide), Keyframe(TRACK, 15, 0.5, "periodic", tall),
           Keyframe(TRACK, 30, 1.0, "periodic", crop(9))]
    ctx = build_context(TRACK, per, [], [], (0.0, 1.0), LABELS)
    shapes = [p.image.shape for p in images(ctx)]
    assert shapes == [(224, 448, 3), (448, 134, 3), (224, 224, 3)]
    first = images(ctx)[0].image
    assert first.dtype == np.uint8 and first.flags.c_contiguous
    assert (first[..., 2] == 255).all() and (first[..., :2] == 0).all()  # RGB: blue last
    assert not np.shares_memory(images(ctx)[2].image, per[2].image)
    small = build_context(TRACK, per, [], [], (0.0, 1.0), LABELS, max_side=224)
    assert max(max(p.image.shape[:2]) for p in images(small)) == 224


def test_image_token_model() -> None:
    assert default_image_tokens(224, 224) == 8 * 8 + 2
    assert default_image_tokens(448, 448) == 16 * 16 + 2
    assert default_image_tokens(448, 224) == 16 * 8 + 2
    assert default_image_tokens(10, 10) == 2 * 2 + 2  # at least 56×56 px
    assert dense_tokens(2.0) == 10 * 258
    assert dense_tokens(0.0) == 258
    assert dense_tokens(2.0, fps=10, side=224) == 20 * 66


@pytest.mark.parametrize("custom", [False, True])
def test_token_accounting(custom: bool) -> None:
    per = periodic(0.0, 2.0)
    lines = [burst_line(0.3, 0.6, "a"), change_line(1.4)]
    def area(w: int, h: int) -> int:
        return w * h

    img_tok = area if custom else default_image_tokens
    txt_tok = len if custom else estimate_tokens
    ctx = build_context(TRACK, per, [apex(0.5, "a")], lines, (0.0, 2.0), LABELS,
                        image_tokens=img_tok, text_tokens=txt_tok)
    expected = txt_tok(ctx.system) + sum(
        txt_tok(p.text) if isinstance(p, TextPart) else img_tok(p.image.shape[1], p.image.shape[0])
        for p in ctx.parts)
    assert ctx.system == SYSTEM_PROMPT
    assert ctx.prompt_tokens == expected
    assert ctx.dense_tokens == dense_tokens(2.0, image_tokens=img_tok)
    assert ctx.token_ratio == ctx.prompt_tokens / ctx.dense_tokens


def realistic(window_s: float, end_s: float = 30.0) -> tuple[VlmContext, list[LogLine]]:
    """4 keyframes of 224 px, a rolling-log summary and 5 describer-style lines (3 bursts)."""
    start = end_s - window_s
    lines = [
        LogLine("cam0", TRACK, 2.0, start - 1.0, "summary", f"earlier (2.0–{start - 1:.1f} s): "
                "6 bursts, 3 slow changes; most frequent AU12×4, AU4×2, AU1×1"),
        burst_line(end_s - 1.4, end_s - 1.0, "b1"),
        change_line(end_s - 1.1),
        burst_line(end_s - 0.8, end_s - 0.4, "b2",
                   "inner brows raised (AU1 moderate), upper lids raised (AU5 weak)"),
        change_line(end_s - 0.3, "brow lowerer (AU4) fell to weak"),
        burst_line(end_s - 0.2, end_s - 0.05, "b3", "nose wrinkled (AU9 weak)"),
    ]
    per = periodic(start, end_s)
    ctx = build_context(TRACK, per, [apex(end_s - 1.2, "b1")], lines, (start, end_s), LABELS)
    return ctx, lines


@pytest.mark.parametrize("window_s", [2.0, 4.0, 10.0])
def test_p3_prompt_within_quarter_of_dense(window_s: float) -> None:
    ctx, lines = realistic(window_s)
    assert len(images(ctx)) == 4 and all(p.image.shape == (224, 224, 3) for p in images(ctx))
    assert ctx.dense_tokens == math.ceil(window_s * 5) * 258
    print(f"P3 {window_s:.0f} s window: prompt {ctx.prompt_tokens} tokens, dense 5 fps "
          f"{ctx.dense_tokens}, ratio {ctx.token_ratio:.3f}")
    assert ctx.token_ratio <= 0.25
    assert set(ctx.burst_ids) == {"b1", "b2", "b3"}
    assert_bursts_covered(ctx, lines)


def test_prompts() -> None:
    q = question(LABELS)
    assert all(label in q for label in LABELS)
    assert "[" + ", ".join(LABELS) + "]" in q
    assert "neutral" in q.split("}.")[-1]  # the head-class (neutral sink) warning
    for key in ("label", "probs", "valence", "arousal", "confidence", "rationale"):
        assert f'"{key}"' in q
    assert "JSON" in SYSTEM_PROMPT and "ONLY" in SYSTEM_PROMPT
    for bad in ([], ["happiness", "happiness"], ["happiness", " "]):
        with pytest.raises(ValueError):
            question(bad)
    ctx = build_context(TRACK, [], [], [], (0.0, 1.0), ["contempt", "fear"])
    assert ctx.labels == ("contempt", "fear") and ctx.parts[-1] == TextPart(question(ctx.labels))


# --- real perception output ---------------------------------------------------------------

@pytest.mark.e2e
def test_context_from_real_perception(media_dir: Path, model_paths: dict[str, Path]) -> None:
    keyframes: list[Keyframe] = []
    lines: list[LogLine] = []
    bursts: list[Burst] = []
    for item in perceive_file(Config(), model_paths, media_dir / "single_face.mp4"):
        keyframes += item.result.keyframes
        lines += item.result.log_lines
        bursts += item.result.bursts
    assert bursts, "the smile of single_face.mp4 should be spotted"
    smile = bursts[0]
    track = smile.track_id
    per = [kf for kf in keyframes if kf.reason == "periodic"]
    apx = [kf for kf in keyframes if kf.reason == "apex"]
    ctx = build_context(track, per, apx, lines, (0.0, 2.4), LABELS)
    print(f"single_face [0, 2.4] s: keyframes {ctx.keyframes_s}, prompt {ctx.prompt_tokens} "
          f"tokens, dense {ctx.dense_tokens}, ratio {ctx.token_ratio:.3f}")
    assert smile.id in ctx.burst_ids
    assert_bursts_covered(ctx, lines)
    assert any(p.burst_id == smile.id for p in images(ctx)) \
        or any(smile.text in t for t in texts(ctx))
    assert 1 <= len(images(ctx)) <= 4
    for part in images(ctx):
        assert part.image.shape == (224, 224, 3) and part.image.dtype == np.uint8
    src = {kf.frame_index: kf.image for kf in keyframes}
    for part in images(ctx):
        np.testing.assert_array_equal(part.image, src[part.frame_index][..., ::-1])  # RGB
    assert ctx.token_ratio <= 0.25


# --- the specialist's probabilities (specialist.to_vlm) ------------------------------------

def test_keyframe_expression_probabilities_follow_their_image() -> None:
    probs = dict.fromkeys(LABELS, 0.0) | {"happiness": 0.9412, "neutral": 0.05, "fear": 0.0088}
    per = [Keyframe(TRACK, 15, 0.5, "periodic", crop(), None, probs),
           Keyframe(TRACK, 45, 1.5, "periodic", crop())]
    ctx = build_context(TRACK, per, [], [burst_line(0.6, 0.9, "b1")], (0.0, 2.0), LABELS, k=4)
    after_first, after_second = texts(ctx)[1], texts(ctx)[2]
    assert after_first.startswith(
        "↑ 0.50 s (expression classifier on this frame: happiness 0.94, neutral 0.05).")
    assert "fear" not in after_first  # under 0.01: left out
    assert "burst" not in after_first.split("\n")[0] and "0.60–0.90 s" in after_first
    assert "classifier" not in after_second
    plain = build_context(TRACK, [Keyframe(TRACK, 15, 0.5, "periodic", crop()), per[1]], [],
                          [burst_line(0.6, 0.9, "b1")], (0.0, 2.0), LABELS, k=4)
    assert ctx.prompt_tokens - plain.prompt_tokens == (
        estimate_tokens(after_first) - estimate_tokens(texts(plain)[1]))
