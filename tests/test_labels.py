"""Label sets, synonyms and circumplex coordinates (affectstream.labels)."""

from __future__ import annotations

import math

import pytest

from affectstream.errors import ConfigError
from affectstream.labels import (
    AFFECT,
    DFEW7,
    LABEL_SETS,
    MAFW11,
    SYNONYMS,
    canonical_label,
    label_set,
    top_label,
    valence_arousal,
)


def test_label_sets() -> None:
    assert DFEW7 == ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")
    assert MAFW11[:7] == DFEW7
    assert MAFW11[7:] == ("contempt", "anxiety", "helplessness", "disappointment")
    assert LABEL_SETS == {"dfew7": DFEW7, "mafw11": MAFW11}
    assert label_set("mafw11") is MAFW11
    with pytest.raises(ConfigError, match="dfew7"):
        label_set("fer2013")


def test_affect_covers_every_label_within_range() -> None:
    assert set(AFFECT) == set(MAFW11)
    for valence, arousal in AFFECT.values():
        assert -1.0 <= valence <= 1.0 and 0.0 <= arousal <= 1.0


def test_affect_matches_the_circumplex_quadrants() -> None:
    v = {k: c[0] for k, c in AFFECT.items()}
    a = {k: c[1] for k, c in AFFECT.items()}
    assert AFFECT["neutral"] == (0.0, 0.5)
    assert max(v, key=lambda k: v[k]) == "happiness"
    for label in ("sadness", "anger", "disgust", "fear", "contempt", "anxiety", "helplessness",
                  "disappointment"):
        assert v[label] < 0.0, label
    for label in ("anger", "fear", "surprise", "anxiety", "happiness"):  # activated
        assert a[label] > a["neutral"], label
    for label in ("sadness", "helplessness"):  # deactivated
        assert a[label] < a["neutral"], label
    assert max(a, key=lambda k: a[k]) == "surprise"


def test_valence_arousal_is_probability_weighted() -> None:
    assert valence_arousal({"happiness": 1.0}) == AFFECT["happiness"]
    v, a = valence_arousal({"happiness": 0.5, "sadness": 0.5})
    assert math.isclose(v, (0.81 - 0.63) / 2) and math.isclose(a, (0.76 + 0.37) / 2)
    v, a = valence_arousal({"anger": 0.25, "fear": 0.75, "neutral": 0.0})
    assert math.isclose(v, 0.25 * -0.51 + 0.75 * -0.64)
    assert math.isclose(a, 0.25 * 0.80 + 0.75 * 0.80)


def test_valence_arousal_ignores_unknown_labels_and_renormalises() -> None:
    v, a = valence_arousal({"anger": 0.2, "boredom": 0.8})
    assert (v, a) == pytest.approx(AFFECT["anger"])
    assert valence_arousal({}) == AFFECT["neutral"]
    assert valence_arousal({"boredom": 1.0, "fear": 0.0}) == AFFECT["neutral"]
    v, a = valence_arousal({"happiness": 2.0, "sadness": 2.0})  # unnormalised input
    assert math.isclose(v, 0.09) and math.isclose(a, 0.565)


@pytest.mark.parametrize(
    ("word", "labels", "expected"),
    [
        ("happiness", DFEW7, "happiness"),
        ("  Happy ", DFEW7, "happiness"),
        ("HAPPY.", DFEW7, "happiness"),
        ("**Sad**", DFEW7, "sadness"),
        ("angry", DFEW7, "anger"),
        ("Surprised!", DFEW7, "surprise"),
        ("disgusted", DFEW7, "disgust"),
        ("fearful", DFEW7, "fear"),
        ("afraid", DFEW7, "fear"),
        ("scared", DFEW7, "fear"),
        ("calm", DFEW7, "neutral"),
        ("none", DFEW7, "neutral"),
        ("No_Emotion", DFEW7, "neutral"),
        ("contemptuous", MAFW11, "contempt"),
        ("anxious", MAFW11, "anxiety"),
        ("helpless", MAFW11, "helplessness"),
        ("let-down", MAFW11, "disappointment"),
        # MAFW-only words fold onto their nearest DFEW label when the set lacks them
        ("contempt", DFEW7, "disgust"),
        ("nervous", DFEW7, "fear"),
        ("helplessness", DFEW7, "sadness"),
        ("disappointed", DFEW7, "sadness"),
        ("confused", DFEW7, None),
        ("", DFEW7, None),
        ("happy", ("neutral", "anger"), None),
        ("Pos", ("pos", "neg"), "pos"),
    ],
)
def test_canonical_label(word: str, labels: tuple[str, ...], expected: str | None) -> None:
    assert canonical_label(word, labels) == expected


def test_every_synonym_resolves_in_mafw() -> None:
    for word, label in SYNONYMS.items():
        assert canonical_label(word, MAFW11) == label, word


def test_top_label() -> None:
    assert top_label({"a": 0.2, "b": 0.5, "c": 0.3}) == "b"
    assert top_label({"a": 0.5, "b": 0.5}) == "a"
    with pytest.raises(ValueError):
        top_label({})
