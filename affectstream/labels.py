"""Emotion label sets, their synonyms and their place on the valence–arousal circumplex.

Label sets follow the DFER benchmarks the design evaluates on (DESIGN §5): DFEW's seven basic
emotions and MAFW's eleven (DFEW's seven plus contempt, anxiety, helplessness and
disappointment). :data:`SYNONYMS` maps the words VLMs actually answer with ("happy", "scared",
"calm") to the canonical label names; :func:`canonical_label` resolves a word against one label
set and folds MAFW-only labels onto their nearest DFEW label when the set lacks them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from affectstream.errors import ConfigError

DFEW7: tuple[str, ...] = (
    "happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear",
)
MAFW11: tuple[str, ...] = (*DFEW7, "contempt", "anxiety", "helplessness", "disappointment")
LABEL_SETS: dict[str, tuple[str, ...]] = {"dfew7": DFEW7, "mafw11": MAFW11}

# Valence in [-1, 1] and arousal in [0, 1] per label. Sources: the pleasure/arousal ratings of
# Russell & Mehrabian (1977, "Evidence for a three-factor theory of emotions", J. Res.
# Personality 11:273–294) for happy, sad, angry, disgusted and afraid; Russell's circumplex
# (1980, "A circumplex model of affect", JPSP 39:1161–1178, Fig. 4: "astonished") for surprise;
# the PAD value of Gebhard's ALMA model (2005, derived from the same ratings) for
# disappointment. Contempt, anxiety ("tense"/"alarmed" region of the circumplex) and
# helplessness have no single rating there and are placed approximately from the circumplex.
# Neutral is the centre. Arousal is rescaled from the literature's [-1, 1] as (a + 1) / 2.
AFFECT: dict[str, tuple[float, float]] = {
    "happiness": (0.81, 0.76),
    "sadness": (-0.63, 0.37),
    "neutral": (0.00, 0.50),
    "anger": (-0.51, 0.80),
    "surprise": (0.16, 0.94),
    "disgust": (-0.60, 0.68),
    "fear": (-0.64, 0.80),
    "contempt": (-0.55, 0.60),
    "anxiety": (-0.45, 0.77),
    "helplessness": (-0.60, 0.40),
    "disappointment": (-0.30, 0.55),
}

_SYNONYM_WORDS: dict[str, tuple[str, ...]] = {
    "happiness": ("happy", "joy", "joyful", "joyous", "glad", "pleased", "amused", "amusement",
                  "delighted", "delight", "cheerful", "smiling", "smile", "content",
                  "contentment"),
    "sadness": ("sad", "sorrow", "sorrowful", "unhappy", "unhappiness", "grief", "grieving",
                "depressed", "melancholy", "crying", "gloomy"),
    "neutral": ("neutrality", "calm", "none", "no emotion", "neutral expression",
                "expressionless", "blank", "relaxed", "composed", "indifferent", "indifference",
                "emotionless"),
    "anger": ("angry", "mad", "rage", "furious", "fury", "annoyed", "annoyance", "irritated",
              "irritation", "frustrated", "frustration", "hostile", "hostility"),
    "surprise": ("surprised", "astonished", "astonishment", "amazed", "amazement", "shocked",
                 "shock", "startled"),
    "disgust": ("disgusted", "revulsion", "repulsed", "revolted", "aversion", "grossed out"),
    "fear": ("fearful", "afraid", "scared", "frightened", "fright", "terrified", "terror",
             "panic", "panicked"),
    "contempt": ("contemptuous", "scorn", "scornful", "disdain", "disdainful", "sneer",
                 "sneering"),
    "anxiety": ("anxious", "nervous", "nervousness", "worried", "worry", "tense", "tension",
                "uneasy", "unease", "stressed", "stress", "apprehensive", "apprehension"),
    "helplessness": ("helpless", "powerless", "powerlessness", "hopeless", "hopelessness",
                     "resigned", "resignation"),
    "disappointment": ("disappointed", "let down", "letdown", "dismayed", "dismay"),
}
SYNONYMS: dict[str, str] = {
    word: label for label, words in _SYNONYM_WORDS.items() for word in (label, *words)
}
"""Normalised word → canonical label (every label maps to itself)."""

FALLBACK: dict[str, str] = {
    "contempt": "disgust",
    "anxiety": "fear",
    "helplessness": "sadness",
    "disappointment": "sadness",
}
"""Where a MAFW-only label goes when the label set lacks it (DFEW's seven)."""

_STRIP = re.compile(r"^[\s\"'`*_.,;:!?()\[\]<>-]+|[\s\"'`*_.,;:!?()\[\]<>-]+$")
_SPACES = re.compile(r"[\s_-]+")


def normalise_word(word: str) -> str:
    """Lower case, surrounding quotes/markdown/punctuation removed, inner separators one space."""
    return _SPACES.sub(" ", _STRIP.sub("", word.strip().lower()))


def canonical_label(word: str, labels: Sequence[str]) -> str | None:
    """The label of ``labels`` that ``word`` names (case, whitespace and synonyms ignored).

    Order: the label itself, a synonym (:data:`SYNONYMS`), then the :data:`FALLBACK` of a
    MAFW-only label when ``labels`` lacks it. ``None`` when the word names no label of the set.
    """
    key = normalise_word(word)
    by_norm = {normalise_word(label): label for label in labels}
    if key in by_norm:
        return by_norm[key]
    canonical = SYNONYMS.get(key)
    if canonical is None:
        return None
    for candidate in (canonical, FALLBACK.get(canonical)):
        if candidate is not None and normalise_word(candidate) in by_norm:
            return by_norm[normalise_word(candidate)]
    return None


def label_set(name: str) -> tuple[str, ...]:
    """The labels of a named set (``dfew7`` or ``mafw11``)."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown label set {name!r}: use one of {', '.join(sorted(LABEL_SETS))}"
        ) from None


def top_label(probs: Mapping[str, float]) -> str:
    """The label with the highest probability (the first of equals, in mapping order)."""
    if not probs:
        raise ValueError("top_label of an empty distribution")
    return max(probs, key=lambda k: probs[k])


def valence_arousal(probs: Mapping[str, float]) -> tuple[float, float]:
    """Probability-weighted (valence, arousal) over the labels in :data:`AFFECT`.

    Labels without coordinates are ignored and the rest renormalised; with no usable mass the
    result is neutral's coordinates.
    """
    total = valence = arousal = 0.0
    for label, p in probs.items():
        coords = AFFECT.get(label)
        if coords is None or not p > 0.0:
            continue
        total += p
        valence += p * coords[0]
        arousal += p * coords[1]
    if total <= 0.0:
        return AFFECT["neutral"]
    return (min(1.0, max(-1.0, valence / total)), min(1.0, max(0.0, arousal / total)))


def top_labels(probs: dict[str, float], n: int = 3, min_p: float = 0.01) -> str:
    """The ``n`` most probable labels with their probabilities, e.g. ``happiness 0.90,
    neutral 0.10`` (labels under ``min_p`` are left out)."""
    top = sorted(probs.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{label} {p:.2f}" for label, p in top if p >= min_p)
