"""Parse a VLM's text answer into a validated emotion estimate (DESIGN §8, "Output").

The VLM is asked for one JSON object ``{label, probs, valence, arousal, confidence, rationale}``
over a label set (:func:`json_schema` is that object's schema, for ``response_format`` or guided
decoding). Real answers are messier; :func:`parse_emotion` repairs what has one sensible reading
and says so (``repaired=True``, with the list in ``repairs``):

- reasoning blocks (``<think>…</think>``) and chat special tokens are removed first; that alone
  is not a repair;
- JSON in ```` ```json ```` fences or surrounded by prose (the first balanced ``{…}`` that reads
  as an emotion object), an object left unclosed by a token limit, single quotes, trailing
  commas, unquoted keys, Python literals (``True``/``None``), curly quotes;
- key names by alias and case (``Emotion`` → label, ``probabilities`` → probs, …);
- label words by case, whitespace and synonyms (``"Happy"`` → happiness, ``"scared"`` → fear,
  ``"calm"`` → neutral; see :mod:`affectstream.labels`), both for ``label`` and for the keys
  of ``probs``; MAFW-only words fold onto DFEW labels when the set has only those;
- ``probs``: unknown keys dropped, missing labels 0, negative or non-numeric values 0,
  a sum other than 1 renormalised; when ``probs`` is missing, the stated label gets the
  confidence as its mass (at least 1/n, so it stays the most probable) and the rest is spread
  uniformly;
- ``label`` missing, unknown, or not the argmax of ``probs`` → the argmax. The distribution is
  what calibration and smoothing act on, so the published label must agree with it;
- ``valence``/``arousal``/``confidence`` out of range → clipped; ``valence``/``arousal``
  missing → :func:`~affectstream.labels.valence_arousal` of the probabilities;
  ``confidence`` missing → the largest probability; ``rationale`` missing → empty;
- a bare label word as the whole answer (``"Happy."``, ``"Emotion: fear"``) → one-hot.

Anything else — prose without JSON, an object naming no label of the set, probabilities that
are all zero — raises :class:`OutputError` so that the caller retries once with
:func:`strict_retry_prompt`, then counts a failure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from affectstream.errors import AffectStreamError
from affectstream.labels import canonical_label, normalise_word, valence_arousal
from affectstream.vlm.extraction import SPECIAL_TOKEN, bare_label, find_object, strip_thinking

_ALIASES: dict[str, tuple[str, ...]] = {
    "label": ("label", "emotion", "predicted_label", "prediction", "predicted_emotion", "class",
              "category", "answer"),
    "probs": ("probs", "probabilities", "probability", "probs_by_label", "scores",
              "distribution", "emotion_probs"),
    "valence": ("valence",),
    "arousal": ("arousal",),
    "confidence": ("confidence", "certainty"),
    "rationale": ("rationale", "reason", "reasoning", "explanation", "justification"),
}
_EPS = 1e-3


class OutputError(AffectStreamError):
    """A VLM answer that cannot be repaired into an emotion estimate; the message says why."""


@dataclass(frozen=True, slots=True)
class ParsedEmotion:
    """A validated emotion estimate over one label set."""

    label: str
    probs: dict[str, float]
    """Exactly the label set, in its order; non-negative, sums to 1."""
    valence: float
    arousal: float
    confidence: float
    rationale: str
    repaired: bool
    repairs: tuple[str, ...] = field(default=())
    """What was repaired, in order (empty when the answer was valid as given)."""


def parse_emotion(text: str, labels: Sequence[str]) -> ParsedEmotion:
    """Parse and validate ``text`` against ``labels``; repair what has one sensible reading."""
    names = _check_labels(labels)
    repairs: list[str] = []
    body = SPECIAL_TOKEN.sub("", strip_thinking(text)).strip()
    if not body:
        raise OutputError("the VLM answer is empty (after removing any <think> block)")
    obj = find_object(body, repairs, _is_emotion)
    if obj is None:
        label = bare_label(body, names)
        if label is None:
            raise OutputError(f"the VLM answer has no JSON object and names no label of "
                              f"{', '.join(names)}: {preview(body)}")
        repairs.append(f"bare label word {body!r}")
        obj = {"label": label}
    return _validate(obj, names, repairs, body)


def json_schema(labels: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the expected answer (OpenAI ``response_format`` / guided decoding)."""
    names = list(_check_labels(labels))
    unit = {"type": "number", "minimum": 0.0, "maximum": 1.0}
    return {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": names},
            "probs": {
                "type": "object",
                "properties": {name: dict(unit) for name in names},
                "required": names,
                "additionalProperties": False,
            },
            "valence": {"type": "number", "minimum": -1.0, "maximum": 1.0},
            "arousal": dict(unit),
            "confidence": dict(unit),
            "rationale": {"type": "string"},
        },
        "required": ["label", "probs", "valence", "arousal", "confidence", "rationale"],
        "additionalProperties": False,
    }


def strict_retry_prompt(labels: Sequence[str]) -> str:
    """The instruction for the single stricter retry after an unparseable answer."""
    names = _check_labels(labels)
    listed = ", ".join(f'"{n}"' for n in names)
    return (
        "Your previous answer could not be used. Reply again with exactly one JSON object and "
        "nothing else: no prose, no markdown code fences, no thinking. Use double quotes and "
        "these keys only: \"label\" (exactly one of " + listed + "); \"probs\" (an object "
        "with exactly these keys: " + listed + ", each a number from 0 to 1, all summing to "
        "1, largest for \"label\"); \"valence\" (a number from -1 for very unpleasant to 1 for "
        "very pleasant); \"arousal\" (a number from 0 for calm to 1 for highly activated); "
        "\"confidence\" (a number from 0 to 1); \"rationale\" (one short sentence naming the "
        "visible facial cues)."
    )


# ------------------------------------------------------------------------ validation


def _is_emotion(obj: dict[str, Any]) -> bool:
    return _field(obj, "label") is not None or _field(obj, "probs") is not None


def _field(obj: dict[str, Any], name: str) -> tuple[str, Any] | None:
    """(key as written, value) of the first key that names ``name`` by alias, any case."""
    for alias in _ALIASES[name]:
        for key, value in obj.items():
            if isinstance(key, str) and normalise_word(key).replace(" ", "_") == alias:
                return key, value
    return None


def _get(obj: dict[str, Any], name: str, repairs: list[str]) -> Any:
    found = _field(obj, name)
    if found is None:
        return None
    key, value = found
    if key != name:
        repairs.append(f"key {key!r} read as {name!r}")
    return value


def _validate(obj: dict[str, Any], labels: tuple[str, ...], repairs: list[str],
              body: str) -> ParsedEmotion:
    obj = _unwrap(obj, labels, repairs)
    raw_label = _get(obj, "label", repairs)
    raw_probs = _get(obj, "probs", repairs)
    label = None
    if raw_label is not None:
        label = canonical_label(raw_label, labels) if isinstance(raw_label, str) else None
        if label is None:
            repairs.append(f"unknown label {raw_label!r} ignored")
        elif label != raw_label:
            repairs.append(f"label {raw_label!r} read as {label!r}")
    confidence = _unit(_get(obj, "confidence", repairs), "confidence", 0.0, 1.0, repairs)
    probs = _probs(raw_probs, labels, repairs) if raw_probs is not None else None
    if probs is None:
        if label is None:
            raise OutputError(f"the VLM answer names no label of {', '.join(labels)} and has no "
                              f"usable probs: {preview(body)}")
        mass = max(1.0 if confidence is None else confidence, 1.0 / len(labels))
        rest = (1.0 - mass) / (len(labels) - 1) if len(labels) > 1 else 0.0
        probs = {name: mass if name == label else rest for name in labels}
        repairs.append("probs missing: one-hot on the label")
    best = max(labels, key=lambda k: probs[k])
    if label is None:
        label = best
        repairs.append(f"label taken from the most probable class {best!r}")
    elif probs[label] < probs[best] - 1e-9:
        repairs.append(f"label {label!r} is not the most probable; replaced by {best!r}")
        label = best
    if confidence is None:
        confidence = probs[label]
        repairs.append("confidence missing: the largest probability")
    default_v, default_a = valence_arousal(probs)
    valence = _unit(_get(obj, "valence", repairs), "valence", -1.0, 1.0, repairs)
    arousal = _unit(_get(obj, "arousal", repairs), "arousal", 0.0, 1.0, repairs)
    if valence is None:
        valence = default_v
        repairs.append("valence missing: from the probabilities")
    if arousal is None:
        arousal = default_a
        repairs.append("arousal missing: from the probabilities")
    rationale = _get(obj, "rationale", repairs)
    if not isinstance(rationale, str):
        repairs.append("rationale missing" if rationale is None else "rationale not a string")
        rationale = "" if rationale is None else json.dumps(rationale)
    return ParsedEmotion(label=label, probs=probs, valence=valence, arousal=arousal,
                         confidence=confidence, rationale=rationale.strip(),
                         repaired=bool(repairs), repairs=tuple(repairs))


def _unwrap(obj: dict[str, Any], labels: tuple[str, ...], repairs: list[str]) -> dict[str, Any]:
    """``{"result": {…}}`` → the inner object; ``{"happiness": 0.7, …}`` → ``{"probs": …}``."""
    for _ in range(3):
        found = _field(obj, "label")
        if _field(obj, "probs") is not None or (found is not None
                                                 and not isinstance(found[1], dict)):
            return obj
        inner = [v for v in obj.values() if isinstance(v, dict)]
        if obj and all(isinstance(k, str) and canonical_label(k, labels) for k in obj):
            repairs.append("the object is the probs: read as such")
            return {"probs": obj}
        if len(inner) != 1:
            return obj
        repairs.append("unwrapped a nested object")
        obj = inner[0]
    return obj


def _number(value: Any) -> float | None:
    """A finite float from a number or a numeric string (``"0.4"``, ``"40%"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        scale = 0.01 if text.endswith("%") else 1.0
        try:
            number = float(text.rstrip("%").strip()) * scale
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _unit(value: Any, name: str, lo: float, hi: float, repairs: list[str]) -> float | None:
    if value is None:
        return None
    number = _number(value)
    if number is None:
        repairs.append(f"{name} {value!r} is not a number")
        return None
    if not isinstance(value, int | float):
        repairs.append(f"{name} {value!r} read as a number")
    if not lo <= number <= hi:
        repairs.append(f"{name} {number:g} clipped to [{lo:g}, {hi:g}]")
        number = min(hi, max(lo, number))
    return number


def _probs(raw: Any, labels: tuple[str, ...], repairs: list[str]) -> dict[str, float] | None:
    """The distribution over ``labels`` from ``raw``; None when it names no label at all."""
    items: list[tuple[Any, Any]]
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list) and len(raw) == len(labels):
        items = list(zip(labels, raw, strict=True))
        repairs.append("probs given as a list: read in label order")
    else:
        repairs.append("probs is not an object: ignored")
        return None
    acc = dict.fromkeys(labels, 0.0)
    seen: set[str] = set()
    for key, value in items:
        name = canonical_label(key, labels) if isinstance(key, str) else None
        if name is None:
            repairs.append(f"unknown prob key {key!r} dropped")
            continue
        if name != key:
            repairs.append(f"prob key {key!r} read as {name!r}")
        number = _number(value)
        if number is None or number < 0.0:
            repairs.append(f"prob {key!r}={value!r} set to 0")
            number = 0.0
        elif not isinstance(value, int | float):
            repairs.append(f"prob {key!r}={value!r} read as a number")
        acc[name] += number
        seen.add(name)
    if not seen:
        repairs.append("probs name no label of the set: ignored")
        return None
    if len(seen) < len(labels):
        repairs.append(f"probs missing for {', '.join(n for n in labels if n not in seen)}: 0")
    total = sum(acc.values())
    if total <= 0.0:
        raise OutputError("the VLM answer's probs are all zero")
    if abs(total - 1.0) > _EPS:
        repairs.append(f"probs summed to {total:.4g}: renormalised")
    return {name: p / total for name, p in acc.items()}


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    names = tuple(labels)
    if not names or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"labels must be distinct strings, got {names!r}")
    return names


def preview(text: str, n: int = 120) -> str:
    """``text`` on one line, cut to ``n`` characters (for error messages)."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= n else flat[:n] + "…")
