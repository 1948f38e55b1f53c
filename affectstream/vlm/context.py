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
:func:`~affectstream.detectors.textlog.estimate_tokens`; :func:`dense_tokens` is the P3 baseline.
The captioner's prompts are counted separately (``caption_tokens``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from affectstream.labels import top_labels
from affectstream.tokens import estimate_tokens
from affectstream.types import Image, Keyframe, LogLine
from affectstream.vlm.prompts import SYSTEM_PROMPT, question

ImageTokens = Callable[[int, int], int]
TextTokens = Callable[[str], int]
MotionText = Literal["detectors", "vlm", "both"]

_AU = re.compile(r"AU(\d+)")


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


def _in_window(kf: Keyframe, window: tuple[float, float]) -> bool:
    return window[0] <= kf.pts_s <= window[1]


def _check_window(window: tuple[float, float]) -> None:
    if not window[0] <= window[1]:
        raise ValueError(f"window end must not precede its start, got {window}")


def select_keyframes(periodic: Sequence[Keyframe], apexes: Sequence[Keyframe],
                     window: tuple[float, float], k: int = 4) -> list[Keyframe]:
    """Up to ``k`` keyframes inside ``window`` (inclusive), in time order, no frame twice.

    Burst apexes come first (newest bursts first when more than ``k − 1`` fit), one per burst;
    the newest periodic frame is always kept; the remaining slots go to periodic frames picked
    one by one where the largest gap to the frames already chosen is (evenly spaced over the
    window, ties to the earlier frame).
    """
    if k < 0:
        raise ValueError(f"k must be ≥ 0, got {k}")
    _check_window(window)
    per = sorted((kf for kf in periodic if _in_window(kf, window)), key=lambda f: f.pts_s)
    apx = sorted((kf for kf in apexes if _in_window(kf, window)),
                 key=lambda f: f.pts_s, reverse=True)
    newest = per[-1] if per else None
    chosen: dict[int, Keyframe] = {}
    bursts: set[str] = set()
    for kf in apx:
        if kf.frame_index in chosen or (kf.burst_id is not None and kf.burst_id in bursts):
            continue
        # one slot stays reserved for the newest frame unless this apex is that frame
        reserve = newest is not None and kf.frame_index != newest.frame_index \
            and newest.frame_index not in chosen
        if len(chosen) + 1 + int(reserve) > k:
            continue
        chosen[kf.frame_index] = kf
        if kf.burst_id is not None:
            bursts.add(kf.burst_id)
    if newest is not None and newest.frame_index not in chosen and len(chosen) < k:
        chosen[newest.frame_index] = newest
    rest = [kf for kf in per if kf.frame_index not in chosen]
    while len(chosen) < k and rest:
        times = [kf.pts_s for kf in chosen.values()]

        def gap(kf: Keyframe, times: list[float] = times) -> float:
            return min((abs(kf.pts_s - t) for t in times), default=0.0)

        best = max(rest, key=gap)  # max() keeps the first (earliest) on ties
        chosen[best.frame_index] = best
        rest.remove(best)
    return sorted(chosen.values(), key=lambda f: (f.pts_s, f.frame_index))


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


def to_rgb(image: Image, max_side: int) -> Image:
    """A new RGB uint8 copy of a BGR (or gray, BGRA) crop, longest side ≤ ``max_side``."""
    if max_side < 1:
        raise ValueError(f"max_side must be ≥ 1, got {max_side}")
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"expected a non-empty uint8 image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    channels = 1 if image.ndim == 2 else image.shape[2]
    code = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}.get(channels)
    if code is None:
        raise ValueError(f"expected 1, 3 or 4 channels, got {channels}")
    out: Image = np.ascontiguousarray(cv2.cvtColor(image, code))
    return out


def _line_text(line: LogLine) -> str:
    """The log line with its times (describer lines already start with them)."""
    if line.text.startswith(f"{line.start_s:.2f}"):
        return line.text
    if line.end_s - line.start_s < 0.005:
        return f"{line.start_s:.2f} s: {line.text}"
    return f"{line.start_s:.2f}–{line.end_s:.2f} s: {line.text}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(summary: LogLine | None, older: list[LogLine], start_s: float) -> str:
    """Older log lines folded: the rolling log's summary line plus a count of the rest."""
    if summary is None and not older:
        return "Nothing logged before it."
    parts: list[str] = []
    if summary is not None:
        text = summary.text.rstrip(". ")
        parts.append(f"{text[:1].upper()}{text[1:]}.")
    if older:
        kinds: Counter[str] = Counter(line.kind for line in older)
        aus = Counter(f"AU{n}" for line in older for n in _AU.findall(line.text))
        top = ", ".join(f"{au}×{n}" if n > 1 else au for au, n in aus.most_common(4))
        counts = ", ".join(_plural(kinds[kind], word) for kind, word in
                           (("burst", "burst"), ("change", "slow change")) if kinds[kind])
        lead = "Then" if summary is not None else "Earlier"
        parts.append(f"{lead} up to {start_s:.2f} s: {counts or _plural(len(older), 'line')}"
                     + (f"; {top}." if top else "."))
    return " ".join(parts)


def _marker(kf: Keyframe) -> str:
    text = f"↑ {kf.pts_s:.2f} s" + (", burst apex" if kf.reason == "apex" else "")
    if kf.expression:  # the specialist's view of this very frame (specialist.to_vlm)
        text += f" (expression classifier on this frame: {top_labels(kf.expression)})"
    return text


def _segment(kf: Keyframe, until_s: float, lines: list[LogLine], last: bool) -> str:
    if not lines:
        if until_s <= kf.pts_s:
            return f"{_marker(kf)}."
        return f"{_marker(kf)}; nothing new logged until {'end ' if last else ''}{until_s:.2f} s."
    body = "\n".join(_line_text(line) for line in lines)
    return f"{_marker(kf)}. Motion until {'end ' if last else ''}{until_s:.2f} s:\n{body}"


def _captioned(kf: Keyframe, until_s: float, caption: Caption, lines: list[LogLine]) -> str:
    """A gap's text: its caption first, then the log ``lines`` kept beside it."""
    frames = _plural(caption.frames, "frame")
    text = f"{_marker(kf)}. VLM caption of {frames} until {until_s:.2f} s: {caption.text}"
    if lines:
        text += "\nDetected motion:\n" + "\n".join(_line_text(line) for line in lines)
    return text


def _kept_beside_caption(lines: list[LogLine], both: bool, shown: set[str]) -> list[LogLine]:
    """With ``both`` every line; with ``vlm`` only bursts whose apex is not one of the images:
    a caption of a few frames can miss a 0.25 s micro-expression, and P3 wants every burst
    present as an apex image or a text line."""
    if both:
        return lines
    return [ln for ln in lines if ln.kind == "burst" and ln.burst_id not in shown]


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
    _check_window(window)
    start_s, end_s = window
    question_text = question(labels)  # validates labels first
    mine = [kf for kf in periodic if kf.track_id == track_id]
    mine_apex = [kf for kf in apexes if kf.track_id == track_id]
    frames = select_keyframes(mine, mine_apex, window, k)
    gaps = _gap_captions(motion_text, captions, len(frames))

    summary: LogLine | None = None
    older: list[LogLine] = []
    inside: list[LogLine] = []
    for line in log_lines:
        if line.track_id != track_id:
            continue
        if line.kind == "summary":
            if summary is None or line.end_s >= summary.end_s:
                summary = line
        elif line.end_s < start_s:
            older.append(line)
        elif line.start_s <= end_s:
            inside.append(line)
    inside.sort(key=lambda line: (line.start_s, line.end_s))

    def slot(line: LogLine) -> int:
        """-1: before the first keyframe; else the index of the keyframe that precedes it."""
        t = max(line.start_s, start_s)
        return sum(1 for kf in frames if kf.pts_s <= t) - 1

    groups: dict[int, list[LogLine]] = {}
    for line in inside:
        groups.setdefault(slot(line), []).append(line)

    opening = (f"Face track {track_id}, window {start_s:.2f}–{end_s:.2f} s. "
               + _summary(summary, older, start_s))
    if groups.get(-1):
        opening += "\nBefore the first frame:\n" + "\n".join(_line_text(x) for x in groups[-1])
    parts: list[Part] = [TextPart(opening)]
    shown = {kf.burst_id for kf in frames if kf.burst_id is not None}
    for i, kf in enumerate(frames):
        parts.append(ImagePart(to_rgb(kf.image, max_side), float(kf.pts_s), kf.frame_index,
                               kf.reason, kf.burst_id))
        last = i == len(frames) - 1
        until = end_s if last else frames[i + 1].pts_s
        cap = gaps[i] if i < len(gaps) else None
        if cap is not None and cap.text:
            kept = _kept_beside_caption(groups.get(i, []), motion_text == "both", shown)
            text = _captioned(kf, until, cap, kept)
        else:
            text = _segment(kf, until, groups.get(i, []), last)
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
    if motion_text == "detectors" or captions is None:
        return []
    if len(captions) != max(0, n_frames - 1):
        raise ValueError(f"got {len(captions)} captions for {n_frames} keyframes; build them "
                         "with caption_requests() from the same keyframes and window")
    return list(captions)
