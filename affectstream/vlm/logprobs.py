"""Label probabilities from a server's first-token logprobs (``decode: score`` with an
OpenAI-compatible server): map each alternative token of the answer's first token onto the
labels it can start, and sum their probabilities per label."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from affectstream.labels import canonical_label

TOP_LOGPROBS = 20
"""Alternatives asked for (``top_logprobs``): OpenAI's maximum, and vLLM's default cap."""
_TOKEN_LEAD = " \t\n▁Ġ\"'`*"


def top_logprobs(data: dict[str, Any]) -> list[tuple[str, float]]:
    """(token, logprob) alternatives of the first answer token, best first: its
    ``choices[0].logprobs.content[0].top_logprobs`` plus the sampled token; empty if none."""
    try:
        first = data["choices"][0]["logprobs"]["content"][0]
        pairs = [(alt["token"], alt["logprob"]) for alt in [*first["top_logprobs"], first]]
    except (KeyError, IndexError, TypeError):
        return []
    out: dict[str, float] = {}
    for tok, lp in pairs:
        if isinstance(tok, str) and isinstance(lp, int | float) and math.isfinite(lp):
            out.setdefault(tok, float(lp))
    return sorted(out.items(), key=lambda e: -e[1])


def label_logprobs(entries: Sequence[tuple[str, float]],
                   labels: Sequence[str]) -> dict[str, float] | None:
    """Each label's log-probability from the first token's (token, logprob) alternatives.

    A token (leading spaces, ``▁``/``Ġ`` markers and quotes stripped, any case) counts for the
    labels it is a prefix of (``" happ"``, ``"Happiness"``), else for a label it starts with
    (``"fear."``), else for the label it names as a synonym (``"happy"``, ``"scared"``); a token
    that fits several labels (``"s"``: sadness, surprise) gives each an equal share. A label's
    probability is the sum of its shares. A label no listed token fits gets the smallest listed
    logprob minus log(20): it lies below every listed alternative, and 1/20 of the smallest is a
    conservative share of the unlisted mass that keeps it finite for calibration. None when no
    token fits any label.
    """
    names = list(labels)
    low = [name.lower() for name in names]
    mass = dict.fromkeys(names, 0.0)
    for token, lp in entries:
        word = token.strip().lstrip(_TOKEN_LEAD).lower()
        if not word:
            continue
        fit = [n for n, lw in zip(names, low, strict=True) if lw.startswith(word)]
        if not fit:
            stem = word.rstrip(".,;:!\"'`*")
            fit = [n for n, lw in zip(names, low, strict=True) if stem.startswith(lw)]
            named = canonical_label(stem, names) if not fit and stem else None
            fit = [named] if named is not None else fit
        for name in fit:
            mass[name] += math.exp(lp) / len(fit)
    if not any(mass.values()):
        return None
    floor = min(lp for _, lp in entries) - math.log(TOP_LOGPROBS)
    return {name: math.log(p) if p > 0.0 else floor for name, p in mass.items()}


def softmax(logprobs: dict[str, float]) -> dict[str, float]:
    """Probabilities from per-label log-likelihoods (scoring mode)."""
    top = max(logprobs.values())
    weights = {k: math.exp(v - top) for k, v in logprobs.items()}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}
