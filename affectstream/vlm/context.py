"""Interleaved VLM context for one track and window (DESIGN §1 stage 2, §8, P3 in §10).

The context is a neutral message structure that each backend turns into its own format::

    TextPart   track, window, summary of older log lines (+ lines before the first keyframe)
    ImagePart  keyframe 1            ┐
    TextPart   time + motion text    │ for each selected keyframe, in time order; the text
    ImagePart  keyframe 2            │ holds the log lines from this keyframe up to the next
    TextPart   …                     ┘ (the last one: up to the window end)
    TextPart   the question (always the last part)

Keyframes (K, default 4): burst apexes first (newest bursts first when there are more than fit),
the newest periodic frame always, the remaining slots filled from periodic frames so that they
spread evenly over the window. Every burst whose log line overlaps the window appears verbatim in
a text part, and as an image too when its apex was selected (with VLM captions, below, a
burst's line may give way to the caption only when its apex is an image), so sparse images
never hide a micro-expression (P3). Images are resized
(INTER_AREA) so the longest side ≤ ``max_side`` and converted BGR → RGB.

Motion text (``vlm.context.motion_text``): ``detectors`` (the default) writes the log lines; with
``vlm`` or ``both`` the caller first has a VLM caption the periodic frames between each pair of
consecutive keyframes (:mod:`affectstream.vlm.captions` builds those requests) and passes the
answers as one :class:`Caption` per gap: ``vlm`` replaces the gap's log lines by the caption
(keeping only the lines of bursts whose apex is not among the images), ``both`` puts the caption
first and all the lines after it. A gap without a caption (no in-between
frame, or the request failed) keeps its log lines, so no burst is lost from the text; lines
before the first keyframe and after the last one are always kept.

Token accounting is by pluggable functions: :func:`default_image_tokens` (Qwen2.5-VL) and
:func:`~affectstream.tokens.estimate_tokens`; :func:`dense_tokens` is the P3 baseline.
The captioner's prompts are counted separately (``caption_tokens``).

This module holds the context's types and its builder; the keyframe choice is in
:mod:`~affectstream.vlm.select`, where each log line goes in :mod:`~affectstream.vlm.group` and
the text and images in :mod:`~affectstream.vlm.render`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from affectstream.tokens import estimate_tokens
from affectstream.types import Image, Keyframe, LogLine
from affectstream.vlm.group import by_keyframe, split_lines
from affectstream.vlm.prompts import SYSTEM_PROMPT, question
from affectstream.vlm.render import (
    captioned,
    kept_beside_caption,
    line_text,
    marker,
    segment,
    summary_text,
    to_rgb,
)
from affectstream.vlm.select import check_window, select_keyframes

ImageTokens = Callable[[int, int], int]
TextTokens = Callable[[str], int]
MotionText = Literal["detectors", "vlm", "both", "none"]
"""``none`` (research only, the DFER evaluation's frame-only conditions): images and their
times, no motion text and no log summary."""

@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class ImagePart:
    """One keyframe as sent to the model (equality is identity: it holds an array)."""

    image: Image
    """RGB uint8, H×W×3, longest side ≤ the context's ``max_side``; owned by this part."""
    pts_s: float
    frame_index: int
    reason: str
    """``apex`` (a burst's apex frame) or ``periodic``."""
    burst_id: str | None = None


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class VlmContext:
    track_id: int
    window_start_s: float
    window_end_s: float
    system: str
    parts: tuple[Part, ...]
    """Interleaved user content; the last part is always the question."""
    keyframes_s: tuple[float, ...]
    burst_ids: tuple[str, ...]
    """Bursts in the window (by log line or apex image), in time order."""
    prompt_tokens: int
    """System + every text part + every image, by the builder's token functions."""
    dense_tokens: int
    """Images alone of dense 5-fps sampling of the window at ``max_side`` (the P3 baseline)."""
    labels: tuple[str, ...] = ()
    caption_tokens: int = 0
    """Prompt tokens of the caption requests behind this context's captions (0 without), by
    the same token functions: the extra cost of ``motion_text`` vlm or both."""

    @property
    def token_ratio(self) -> float:
        """``prompt_tokens / dense_tokens`` (P3 target ≤ 0.25)."""
        return self.prompt_tokens / self.dense_tokens if self.dense_tokens > 0 else math.inf

    @property
    def total_token_ratio(self) -> float:
        """``(prompt_tokens + caption_tokens) / dense_tokens``: P3 with the captioner's share."""
        total = self.prompt_tokens + self.caption_tokens
        return total / self.dense_tokens if self.dense_tokens > 0 else math.inf

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))


@dataclass(frozen=True, slots=True)
class Caption:
    """A VLM's caption of the frames between two consecutive keyframes."""

    text: str | None
    """One sentence of motion text; None when the request failed (the gap keeps its lines)."""
    frames: int
    """In-between frames the captioner saw."""
    prompt_tokens: int
    """The caption request's prompt tokens (counted even when it failed: they were sent)."""


def default_image_tokens(width: int, height: int) -> int:
    """Visual tokens of one image for Qwen2.5-VL (and Qwen2-VL).

    The vision tower cuts 14-px patches and merges each 2×2 block into one LLM token, so one
    token covers 28×28 px: ``ceil(w/28) · ceil(h/28)`` plus 2 for ``<|vision_start|>`` and
    ``<|vision_end|>``. The processor's ``smart_resize`` rounds each side to the *nearest*
    multiple of 28 (at least 56×56 px), so ceil is exact for multiples of 28 (224 px → 64 + 2,
    448 px → 256 + 2) and an upper bound by at most one row/column otherwise.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}×{height}")
    cols = max(2, math.ceil(width / 28))
    rows = max(2, math.ceil(height / 28))
    return cols * rows + 2


def dense_tokens(window_s: float, fps: float = 5.0, side: int = 448,
                 image_tokens: ImageTokens = default_image_tokens) -> int:
    """Image tokens of sampling a window densely at ``fps`` with full ``side``×``side`` crops:
    ``max(1, ceil(window_s · fps))`` frames. The P3 baseline (text is not counted)."""
    if window_s < 0 or fps <= 0 or side < 1:
        raise ValueError(f"need window_s ≥ 0, fps > 0, side ≥ 1; got {window_s}, {fps}, {side}")
    frames = max(1, math.ceil(window_s * fps - 1e-9))
    return frames * image_tokens(side, side)


def count_tokens(system: str, parts: Iterable[Part], image_tokens: ImageTokens,
                 text_tokens: TextTokens) -> int:
    """Prompt tokens of a system prompt and user parts, by the given token functions."""
    tokens = text_tokens(system)
    for part in parts:
        if isinstance(part, TextPart):
            tokens += text_tokens(part.text)
        else:
            tokens += image_tokens(part.image.shape[1], part.image.shape[0])
    return tokens


def build_context(track_id: int, periodic: Sequence[Keyframe], apexes: Sequence[Keyframe],
                  log_lines: Iterable[LogLine], window: tuple[float, float],
                  labels: Sequence[str], *, k: int = 4, max_side: int = 448,
                  image_tokens: ImageTokens = default_image_tokens,
                  text_tokens: TextTokens = estimate_tokens, motion_text: MotionText = "detectors",
                  captions: Sequence[Caption | None] | None = None) -> VlmContext:
    """The interleaved context of one track over ``window`` (see the module docstring).

    Keyframes and log lines of other tracks are ignored. Log lines ending before the window
    start are folded into the opening summary (with the latest ``summary`` line, whatever its
    time); lines overlapping the window are placed by their start time (clamped to the window
    start) after the keyframe that precedes it, or in the opening part when before the first
    keyframe; lines starting after the window end are dropped.

    ``captions`` (used with ``motion_text`` vlm or both) has one entry per gap between the
    selected keyframes, None where nothing was captioned; build it from the same inputs with
    :func:`affectstream.vlm.captions.caption_requests`.
    """
    check_window(window)
    start_s, end_s = window
    question_text = question(labels)  # validates labels first
    mine = [kf for kf in periodic if kf.track_id == track_id]
    mine_apex = [kf for kf in apexes if kf.track_id == track_id]
    frames = select_keyframes(mine, mine_apex, window, k)
    gaps = _gap_captions(motion_text, captions, len(frames))

    if motion_text == "none":  # frames only: the lines are not the model's to see
        log_lines = ()
    summary, older, inside = split_lines(log_lines, track_id, window)
    groups = by_keyframe(inside, frames, start_s)

    opening = f"Face track {track_id}, window {start_s:.2f}–{end_s:.2f} s."
    if motion_text != "none":
        opening += " " + summary_text(summary, older, start_s)
    if groups.get(-1):
        opening += "\nBefore the first frame:\n" + "\n".join(line_text(x) for x in groups[-1])
    parts: list[Part] = [TextPart(opening)]
    shown = {kf.burst_id for kf in frames if kf.burst_id is not None}
    for i, kf in enumerate(frames):
        parts.append(ImagePart(to_rgb(kf.image, max_side), float(kf.pts_s), kf.frame_index,
                               kf.reason, kf.burst_id))
        last = i == len(frames) - 1
        until = end_s if last else frames[i + 1].pts_s
        cap = gaps[i] if i < len(gaps) else None
        if motion_text == "none":
            text = f"{marker(kf)}."
        elif cap is not None and cap.text:
            kept = kept_beside_caption(groups.get(i, []), motion_text == "both", shown)
            text = captioned(kf, until, cap.text, cap.frames, kept)
        else:
            text = segment(kf, until, groups.get(i, []), last)
        parts.append(TextPart(text))
    parts.append(TextPart(question_text))

    bursts: list[tuple[float, str]] = [(line.start_s, line.burst_id) for line in inside
                                       if line.kind == "burst" and line.burst_id is not None]
    bursts += [(kf.pts_s, kf.burst_id) for kf in frames if kf.burst_id is not None]
    burst_ids = tuple(dict.fromkeys(b for _, b in sorted(bursts)))

    return VlmContext(
        track_id=track_id,
        window_start_s=float(start_s),
        window_end_s=float(end_s),
        system=SYSTEM_PROMPT,
        parts=tuple(parts),
        keyframes_s=tuple(float(kf.pts_s) for kf in frames),
        burst_ids=burst_ids,
        prompt_tokens=count_tokens(SYSTEM_PROMPT, parts, image_tokens, text_tokens),
        dense_tokens=dense_tokens(end_s - start_s, side=max_side, image_tokens=image_tokens),
        labels=tuple(str(x).strip() for x in labels),
        caption_tokens=sum(c.prompt_tokens for c in gaps if c is not None),
    )


def _gap_captions(motion_text: MotionText, captions: Sequence[Caption | None] | None,
                  n_frames: int) -> list[Caption | None]:
    """The captions to use, one per gap (none with ``detectors``); checks they fit."""
    if motion_text in ("detectors", "none") or captions is None:
        return []
    if len(captions) != max(0, n_frames - 1):
        raise ValueError(f"got {len(captions)} captions for {n_frames} keyframes; build them "
                         "with caption_requests() from the same keyframes and window")
    return list(captions)
