"""The paper's stage 1 as an option (``vlm.context.motion_text: vlm | both``, DESIGN §1, §8).

Between each pair of consecutive keyframes of a request, the periodic frames strictly between
them (:func:`gap_frames`: at most ``caption_frames``, no denser than ``caption_fps``) go to a VLM
— the main backend or a smaller captioner — with a short caption prompt; its one sentence ("the
lips move upwards into a brief smile") becomes that gap's motion text in the main request
(:func:`affectstream.vlm.context.build_context` with ``captions``). A request with K keyframes
costs up to K − 1 caption calls; their prompt tokens are counted with the same token functions
as the main prompt (``VlmContext.caption_tokens``).

Everything here is pure and synchronous; the scheduler makes the calls.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from affectstream.config import Config, VlmModelConfig
from affectstream.tokens import estimate_tokens
from affectstream.types import Keyframe
from affectstream.vlm.context import (
    ImagePart,
    ImageTokens,
    Part,
    TextPart,
    TextTokens,
    VlmContext,
    count_tokens,
    default_image_tokens,
    dense_tokens,
)
from affectstream.vlm.prompts import CAPTION_PROMPT, CAPTION_QUESTION, caption_intro
from affectstream.vlm.render import to_rgb
from affectstream.vlm.select import select_keyframes

MAX_CAPTION_CHARS = 300
"""A caption longer than this (a model that rambles) is cut: it is one line of motion text."""


def caption_config(cfg: Config) -> Config:
    """``cfg`` ready for captions: ``keyframes.periodic_fps`` raised to at least
    ``vlm.context.caption_fps`` when ``motion_text`` is vlm or both (the default 2 Hz leaves
    hardly a frame between keyframes). Call it before perception is created."""
    # Only a VLM type has vlm.context: captions without a VLM cannot load.
    if not isinstance(cfg.vlm, VlmModelConfig):
        return cfg
    ctx = cfg.vlm.context
    if ctx.motion_text == "detectors" or cfg.keyframes.periodic_fps >= ctx.caption_fps:
        return cfg
    keyframes = cfg.keyframes.model_copy(update={"periodic_fps": ctx.caption_fps})
    return cfg.model_copy(update={"keyframes": keyframes})


def gap_frames(keyframes: Sequence[Keyframe], periodic: Sequence[Keyframe], *,
               max_frames: int, max_fps: float) -> list[list[Keyframe]]:
    """Per gap between consecutive ``keyframes`` (in time order), the ``periodic`` frames
    strictly between the two, at most ``max_fps`` dense and evenly subsampled to at most
    ``max_frames``, in time order (an empty list: nothing to caption in that gap)."""
    if max_frames < 1 or not max_fps > 0:
        raise ValueError(f"need max_frames ≥ 1 and max_fps > 0, got {max_frames}, {max_fps}")
    pool = sorted({kf.frame_index: kf for kf in periodic}.values(), key=lambda f: f.pts_s)
    # 5 % slack: perception keeps a frame once 1/fps has passed, on jittery frame times
    min_dt = 0.95 / max_fps
    out: list[list[Keyframe]] = []
    for a, b in itertools.pairwise(keyframes):
        ends = (a.frame_index, b.frame_index)
        thinned: list[Keyframe] = []
        for kf in pool:
            if not a.pts_s < kf.pts_s < b.pts_s or kf.frame_index in ends:
                continue
            if not thinned or kf.pts_s - thinned[-1].pts_s >= min_dt:
                thinned.append(kf)
        out.append(_evenly(thinned, max_frames))
    return out


def _evenly(items: list[Keyframe], n: int) -> list[Keyframe]:
    """``n`` of ``items`` spread evenly, first and last included (the middle one for n = 1)."""
    if len(items) <= n:
        return items
    if n == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def caption_context(track_id: int, frames: Sequence[Keyframe], start: Keyframe, end: Keyframe,
                    *, max_side: int = 448, image_tokens: ImageTokens = default_image_tokens,
                    text_tokens: TextTokens = estimate_tokens) -> VlmContext:
    """The caption request for ``frames`` (in time order) between keyframes ``start`` and
    ``end``: the caption system prompt, then the frame times, the images and the question."""
    if not frames:
        raise ValueError("a caption request needs at least one frame")
    times = tuple(float(kf.pts_s) for kf in frames)
    parts: list[Part] = [TextPart(caption_intro(times, start.pts_s, end.pts_s))]
    parts += [ImagePart(to_rgb(kf.image, max_side), float(kf.pts_s), kf.frame_index, kf.reason,
                        kf.burst_id) for kf in frames]
    parts.append(TextPart(CAPTION_QUESTION))
    return VlmContext(
        track_id=track_id, window_start_s=float(start.pts_s), window_end_s=float(end.pts_s),
        system=CAPTION_PROMPT, parts=tuple(parts), keyframes_s=times, burst_ids=(),
        prompt_tokens=count_tokens(CAPTION_PROMPT, parts, image_tokens, text_tokens),
        dense_tokens=dense_tokens(end.pts_s - start.pts_s, side=max_side,
                                  image_tokens=image_tokens))


def caption_requests(track_id: int, periodic: Sequence[Keyframe], apexes: Sequence[Keyframe],
                     window: tuple[float, float], *, k: int = 4, max_frames: int = 4,
                     max_fps: float = 5.0, max_side: int = 448,
                     image_tokens: ImageTokens = default_image_tokens,
                     text_tokens: TextTokens = estimate_tokens) -> list[VlmContext | None]:
    """One caption request per gap between the keyframes that
    :func:`~affectstream.vlm.context.build_context` selects from the same arguments (None for a
    gap without in-between frames)."""
    mine = [kf for kf in periodic if kf.track_id == track_id]
    mine_apex = [kf for kf in apexes if kf.track_id == track_id]
    frames = select_keyframes(mine, mine_apex, window, k)
    gaps = gap_frames(frames, mine, max_frames=max_frames, max_fps=max_fps)
    return [caption_context(track_id, gap, a, b, max_side=max_side, image_tokens=image_tokens,
                            text_tokens=text_tokens) if gap else None
            for (a, b), gap in zip(itertools.pairwise(frames), gaps, strict=True)]


def clean_caption(text: str) -> str | None:
    """The caption as one line of motion text (whitespace collapsed, wrapping quotes removed,
    at most :data:`MAX_CAPTION_CHARS`); None when nothing is left."""
    flat = " ".join(text.split()).strip("\"'` ")
    if len(flat) > MAX_CAPTION_CHARS:
        flat = flat[:MAX_CAPTION_CHARS - 1].rstrip() + "…"
    return flat or None
