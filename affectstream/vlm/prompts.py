"""Prompt text for the VLM stage (DESIGN §1, §8).

The system prompt tells the model what the interleaved context is (aligned face crops in time
order with FACS-style motion text between them) and that it must answer with JSON only. The
question names the exact label set and warns against the neutral "sink" (head-class bias): VLMs
collapse rare emotions into common ones and default to neutral when a face is only subtly
expressive. Both are kept short, since every token counts against the P3 budget.
"""

from __future__ import annotations

from collections.abc import Sequence

SYSTEM_PROMPT = (
    "You are a facial-expression analyst. The images are one person's aligned face crops in "
    "time order; the text between them is FACS-style motion (action units, times in seconds) "
    "detected on every frame, including micro-expressions the images may miss. Judge the "
    "whole window. Answer ONLY with the JSON object asked for."
)


def _check_labels(labels: Sequence[str]) -> list[str]:
    out = [str(label).strip() for label in labels]
    if not out:
        raise ValueError("labels must not be empty")
    if any(not label for label in out):
        raise ValueError("labels must be non-empty strings")
    if len(set(out)) != len(out):
        raise ValueError(f"labels must be unique, got {out}")
    return out


def question(labels: Sequence[str]) -> str:
    """The final user turn: the JSON reply format over exactly ``labels``.

    Raises ValueError when ``labels`` is empty, has blanks or duplicates.
    """
    names = _check_labels(labels)
    neutral = next((n for n in names if n.lower() == "neutral"), None)
    bias = (f"Do not default to {neutral} unless no expression is seen or described; "
            if neutral is not None else "Do not default to the most common label; ")
    return (
        "Emotion over the window? Reply only "
        '{"label": one of [' + ", ".join(names) + '], "probs": {each label: p, sum 1}, '
        '"valence": -1..1, "arousal": 0..1, "confidence": 0..1, "rationale": one sentence}. '
        + bias
        + "subtle movements and rare emotions count."
    )


SCORE_SYSTEM_SUFFIX = " Here the answer is one label word, not JSON."
"""Appended to the system prompt when scoring: otherwise '{' is the likely first token."""


def score_question(labels: Sequence[str]) -> str:
    """The last user part when scoring (it replaces :func:`question`): the label words."""
    return "Answer with one word from: " + ", ".join(_check_labels(labels)) + "."


CAPTION_PROMPT = (
    "You describe facial movement. The images are aligned crops of one person's face in time "
    "order, each at the time given. Answer with ONE short sentence saying how the face moves "
    "(brows, eyes, lids, nose, lips, jaw), or \"no visible movement\". No emotion words."
)
"""System prompt of a caption request (the paper's stage 1: in-between frames → motion text).
It is also how the test server recognises caption requests."""


def caption_intro(times_s: Sequence[float], start_s: float, end_s: float) -> str:
    """The first user part of a caption request: the frame times, between two keyframes."""
    listed = ", ".join(f"{t:.2f}" for t in times_s)
    return (f"{len(times_s)} frame{'' if len(times_s) == 1 else 's'} at {listed} s, between "
            f"keyframes at {start_s:.2f} s and {end_s:.2f} s:")


CAPTION_QUESTION = "How does the face move across these frames? One short sentence."
