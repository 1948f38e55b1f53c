"""Parsing and repair of VLM emotion answers (affectstream.vlm.parsing)."""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema
import pytest

from affectstream.errors import AffectStreamError
from affectstream.labels import AFFECT, DFEW7, MAFW11, valence_arousal
from affectstream.vlm.parsing import (
    OutputError,
    ParsedEmotion,
    json_schema,
    parse_emotion,
    strict_retry_prompt,
)

GOOD: dict[str, Any] = {
    "label": "happiness",
    "probs": {"happiness": 0.62, "sadness": 0.03, "neutral": 0.2, "anger": 0.02,
              "surprise": 0.1, "disgust": 0.01, "fear": 0.02},
    "valence": 0.55,
    "arousal": 0.6,
    "confidence": 0.62,
    "rationale": "Cheeks raise and lip corners pull up into a smile (AU6+AU12).",
}
GOOD_TEXT = json.dumps(GOOD)
MAFW_PROBS = ('{"happiness": 0.05, "sadness": 0.05, "neutral": 0.1, "anger": 0.05, '
              '"surprise": 0.02, "disgust": 0.08, "fear": 0.02, "contempt": 0.5, '
              '"anxiety": 0.05, "helplessness": 0.03, "disappointment": 0.05}')


def check_invariants(r: ParsedEmotion, labels: tuple[str, ...]) -> None:
    assert list(r.probs) == list(labels)
    assert math.isclose(sum(r.probs.values()), 1.0, abs_tol=1e-9)
    assert all(p >= 0.0 for p in r.probs.values())
    assert r.probs[r.label] == max(r.probs.values())
    assert -1.0 <= r.valence <= 1.0 and 0.0 <= r.arousal <= 1.0 and 0.0 <= r.confidence <= 1.0
    assert r.repaired == bool(r.repairs)


def test_valid_answer_is_taken_as_is() -> None:
    r = parse_emotion(GOOD_TEXT, DFEW7)
    check_invariants(r, DFEW7)
    assert not r.repaired and r.repairs == ()
    assert r.label == "happiness" and r.probs == GOOD["probs"]
    assert (r.valence, r.arousal, r.confidence) == (0.55, 0.6, 0.62)
    assert r.rationale == GOOD["rationale"]


# (answer, labels, label, probs that must match (others 0 unless None), valence, arousal,
#  confidence, repaired); None for "not checked here".
CASES: list[tuple[str, str, tuple[str, ...], str, dict[str, float] | None,
                  float | None, float | None, float | None, bool]] = [
    ("qwen-fenced",
     "```json\n" + json.dumps(GOOD, indent=2) + "\n```", DFEW7,
     "happiness", GOOD["probs"], 0.55, 0.6, 0.62, True),
    ("prose-around-json",
     "Based on the keyframes, the person shows a genuine smile.\n" + GOOD_TEXT
     + "\nLet me know if you need anything else.", DFEW7,
     "happiness", GOOD["probs"], 0.55, 0.6, 0.62, True),
    ("single-quotes-trailing-comma",
     "{'label': 'sadness', 'probs': {'sadness': 0.7, 'neutral': 0.3,}, 'valence': -0.6, "
     "'arousal': 0.3, 'confidence': 0.7, 'rationale': 'the person\\'s lip corners drop',}",
     DFEW7, "sadness", {"sadness": 0.7, "neutral": 0.3}, -0.6, 0.3, 0.7, True),
    ("trailing-comma-only",
     '{"label": "anger", "probs": {"anger": 0.9, "disgust": 0.1,}, "valence": -0.5, '
     '"arousal": 0.8, "confidence": 0.9, "rationale": "brows lowered",}',
     DFEW7, "anger", {"anger": 0.9, "disgust": 0.1}, -0.5, 0.8, 0.9, True),
    ("synonyms-in-label-and-keys",
     '{"label": " Surprised ", "probs": {"surprised": 0.6, "Happy": 0.3, "scared": 0.1}, '
     '"valence": 0.2, "arousal": 0.9, "confidence": 0.6, "rationale": "brows up, jaw drop"}',
     DFEW7, "surprise", {"surprise": 0.6, "happiness": 0.3, "fear": 0.1}, 0.2, 0.9, 0.6, True),
    ("mafw-labels",
     '{"label": "contempt", "probs": ' + MAFW_PROBS + ', "valence": -0.4, "arousal": 0.5, '
     '"confidence": 0.5, "rationale": "unilateral lip corner raise"}',
     MAFW11, "contempt", json.loads(MAFW_PROBS), -0.4, 0.5, 0.5, False),
    ("mafw-synonym",
     '{"label": "Anxious", "probs": {"anxious": 0.6, "helpless": 0.4}, "valence": -0.4, '
     '"arousal": 0.7, "confidence": 0.6, "rationale": "lip press"}',
     MAFW11, "anxiety", {"anxiety": 0.6, "helplessness": 0.4}, -0.4, 0.7, 0.6, True),
    ("mafw-word-in-dfew-set",  # contempt → disgust, anxiety → fear when the set lacks them
     '{"label": "contempt", "probs": {"contempt": 0.5, "anxiety": 0.3, "neutral": 0.2}, '
     '"valence": -0.4, "arousal": 0.5, "confidence": 0.5, "rationale": "smirk"}',
     DFEW7, "disgust", {"disgust": 0.5, "fear": 0.3, "neutral": 0.2}, -0.4, 0.5, 0.5, True),
    ("probs-sum-0.9",
     '{"label": "fear", "probs": {"fear": 0.45, "surprise": 0.27, "neutral": 0.18}, '
     '"valence": -0.6, "arousal": 0.8, "confidence": 0.5, "rationale": "eyes wide"}',
     DFEW7, "fear", {"fear": 0.5, "surprise": 0.3, "neutral": 0.2}, -0.6, 0.8, 0.5, True),
    ("probs-sum-1.3",
     '{"label": "neutral", "probs": {"neutral": 0.65, "sadness": 0.39, "happiness": 0.26}, '
     '"valence": 0.0, "arousal": 0.4, "confidence": 0.5, "rationale": "relaxed face"}',
     DFEW7, "neutral", {"neutral": 0.5, "sadness": 0.3, "happiness": 0.2}, 0.0, 0.4, 0.5, True),
    ("percent-probs",
     '{"label": "happiness", "probs": {"happiness": 80, "neutral": "20%"}, "valence": 0.5, '
     '"arousal": 0.6, "confidence": 0.8, "rationale": "smile"}',
     DFEW7, "happiness", {"happiness": 80 / 80.2, "neutral": 0.2 / 80.2}, 0.5, 0.6, 0.8, True),
    ("bare-word", "Happy.", DFEW7,
     "happiness", {"happiness": 1.0}, *AFFECT["happiness"], 1.0, True),
    ("bare-word-with-prefix", "Emotion: **Fearful**", DFEW7,
     "fear", {"fear": 1.0}, *AFFECT["fear"], 1.0, True),
    ("bare-word-emotion-label-prefix", "Emotion label: disgusted", DFEW7,
     "disgust", {"disgust": 1.0}, *AFFECT["disgust"], 1.0, True),
    ("bare-word-in-fence", "```\nneutral\n```", DFEW7,
     "neutral", {"neutral": 1.0}, *AFFECT["neutral"], 1.0, True),
    ("qwen3-think-prefix",
     "<think>\nThe brows are raised and the mouth opens; at first glance I'd say "
     '{"label": "fear"} but the cheeks are raised, so this is a pleasant surprise.\n</think>\n\n'
     + GOOD_TEXT, DFEW7,
     "happiness", GOOD["probs"], 0.55, 0.6, 0.62, False),
    ("think-opened-by-the-template",
     "Okay, let me look at the frames. The lips press together.\n</think>\n" + GOOD_TEXT
     + "<|im_end|>", DFEW7,
     "happiness", GOOD["probs"], 0.55, 0.6, 0.62, False),
    ("label-not-argmax",
     '{"label": "neutral", "probs": {"neutral": 0.3, "sadness": 0.7}, "valence": -0.5, '
     '"arousal": 0.3, "confidence": 0.7, "rationale": "inner brows raised"}',
     DFEW7, "sadness", {"sadness": 0.7, "neutral": 0.3}, -0.5, 0.3, 0.7, True),
    ("probs-missing",  # confidence 0.7 on the label, (1 - 0.7) / 6 = 0.05 on each other
     '{"label": "anger", "valence": -0.5, "arousal": 0.8, "confidence": 0.7, '
     '"rationale": "glare"}', DFEW7,
     "anger", {"anger": 0.7, **{k: 0.05 for k in DFEW7 if k != "anger"}}, -0.5, 0.8, 0.7, True),
    ("out-of-range-clipped",
     '{"label": "happiness", "probs": {"happiness": 1.0}, "valence": 1.5, "arousal": -0.2, '
     '"confidence": 1.2, "rationale": "grin"}', DFEW7,
     "happiness", {"happiness": 1.0}, 1.0, 0.0, 1.0, True),
    ("negative-and-unknown-keys",
     '{"label": "disgust", "probs": {"disgust": 0.8, "confusion": 0.5, "anger": -0.2, '
     '"neutral": 0.2}, "valence": -0.6, "arousal": 0.6, "confidence": 0.8, '
     '"rationale": "nose wrinkle"}', DFEW7,
     "disgust", {"disgust": 0.8, "neutral": 0.2}, -0.6, 0.6, 0.8, True),
    ("alias-keys-unquoted-python-literals",
     "{Emotion: 'sad', Probabilities: {sad: 0.6, neutral: 0.4}, valence: -0.5, arousal: 0.3,"
     " confidence: 0.6, rationale: 'droop', calibrated: False, notes: None}", DFEW7,
     "sadness", {"sadness": 0.6, "neutral": 0.4}, -0.5, 0.3, 0.6, True),
    ("truncated-by-token-limit",
     '{"label": "surprise", "probs": {"surprise": 0.8, "fear": 0.2}, "valence": 0.1, '
     '"arousal": 0.9, "confidence": 0.8, "rationale": "The eyebrows shoot up and the jaw',
     DFEW7, "surprise", {"surprise": 0.8, "fear": 0.2}, 0.1, 0.9, 0.8, True),
    ("probs-only-object",
     '{"happiness": 0.1, "neutral": 0.6, "sadness": 0.3}', DFEW7,
     "neutral", {"happiness": 0.1, "neutral": 0.6, "sadness": 0.3}, None, None, 0.6, True),
    ("curly-quotes", "{“label”: “fear”, “probs”: {“fear”: 1.0}}", DFEW7,
     "fear", {"fear": 1.0}, *AFFECT["fear"], 1.0, True),
]


@pytest.mark.parametrize(
    ("answer", "labels", "label", "probs", "valence", "arousal", "confidence", "repaired"),
    [c[1:] for c in CASES], ids=[c[0] for c in CASES],
)
def test_messy_answers(answer: str, labels: tuple[str, ...], label: str,
                       probs: dict[str, float] | None, valence: float | None,
                       arousal: float | None, confidence: float | None,
                       repaired: bool) -> None:
    r = parse_emotion(answer, labels)
    check_invariants(r, labels)
    assert r.label == label
    assert r.repaired is repaired, r.repairs
    if probs is not None:
        expected = {k: probs.get(k, 0.0) for k in labels}
        assert r.probs == pytest.approx(expected, abs=1e-9)
    if valence is not None:
        assert r.valence == pytest.approx(valence)
    if arousal is not None:
        assert r.arousal == pytest.approx(arousal)
    if confidence is not None:
        assert r.confidence == pytest.approx(confidence)


def test_missing_fields_are_derived_from_the_probabilities() -> None:
    r = parse_emotion('{"label": "anger", "probs": {"anger": 0.6, "fear": 0.4}}', DFEW7)
    assert (r.valence, r.arousal) == pytest.approx(valence_arousal(r.probs))
    assert r.valence == pytest.approx(0.6 * -0.51 + 0.4 * -0.64)
    assert r.confidence == pytest.approx(0.6)
    assert r.rationale == ""
    assert any("valence missing" in s for s in r.repairs)


def test_low_confidence_without_probs_keeps_the_label_most_probable() -> None:
    r = parse_emotion('{"label": "fear", "confidence": 0.05}', DFEW7)
    assert r.label == "fear" and r.confidence == pytest.approx(0.05)
    assert r.probs == pytest.approx({k: 1 / 7 for k in DFEW7})


def test_nested_object_is_unwrapped() -> None:
    r = parse_emotion('{"result": {"label": "sad", "probs": {"sad": 1}}}', DFEW7)
    assert r.label == "sadness" and r.probs["sadness"] == 1.0 and r.repaired


def test_label_only_inferred_from_probs_when_label_unknown() -> None:
    r = parse_emotion('{"label": "confused", "probs": {"neutral": 0.4, "surprise": 0.6}}', DFEW7)
    assert r.label == "surprise"
    assert any("confused" in s for s in r.repairs)


def test_valid_for_one_set_is_repaired_for_a_larger_one() -> None:
    r = parse_emotion(GOOD_TEXT, MAFW11)
    check_invariants(r, MAFW11)
    assert r.repaired and r.probs["contempt"] == 0.0
    assert r.probs["happiness"] == pytest.approx(0.62)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("I'm sorry, I can't determine emotions from images of people.", "no JSON"),
        ("The person is not happy; they look somewhat sad, maybe angry.", "no JSON"),
        ('{"label": "confused", "rationale": "frown"}', "names no label"),
        ('{"foo": 1, "bar": [1, 2]}', "names no label"),
        ('{"label": "happiness", "probs": {"happiness": 0, "sadness": 0.0}}', "all zero"),
        ('{"probs": {"happiness": -0.5, "neutral": "n/a"}}', "all zero"),
        ("<think>\nThe subject's expression is ambiguous; the brows", "empty"),
        ("[1, 2, 3]", "no JSON"),
        ("null", "no JSON"),
        ("{{{{", "no JSON"),
        ('{"label": ' + "[" * 100_000 + "]" * 100_000 + "}", "no JSON"),
    ],
)
def test_garbage_raises_output_error(answer: str, reason: str) -> None:
    with pytest.raises(OutputError, match=reason):
        parse_emotion(answer, DFEW7)


def test_output_error_is_an_affectstream_error() -> None:
    assert issubclass(OutputError, AffectStreamError)


def test_bad_label_sets_are_rejected() -> None:
    with pytest.raises(ValueError):
        parse_emotion(GOOD_TEXT, [])
    with pytest.raises(ValueError):
        parse_emotion(GOOD_TEXT, ["happiness", "happiness"])


# ---------------------------------------------------------------- schema and retry prompt


def test_json_schema_is_valid_and_accepts_a_good_answer() -> None:
    for labels in (DFEW7, MAFW11):
        schema = json_schema(labels)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["label"]["enum"] == list(labels)
        assert schema["properties"]["probs"]["required"] == list(labels)
    jsonschema.validate(GOOD, json_schema(DFEW7))
    mafw = dict(GOOD, probs=json.loads(MAFW_PROBS), label="contempt")
    jsonschema.validate(mafw, json_schema(MAFW11))


def _bad(**change: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(GOOD_TEXT)
    for key, value in change.items():
        if value is None:
            del obj[key]
        else:
            obj[key] = value
    return obj


@pytest.mark.parametrize(
    "obj",
    [
        _bad(label="happy"),
        _bad(label="contempt"),  # not in DFEW7
        _bad(probs=dict(GOOD["probs"], contempt=0.0)),
        _bad(probs={k: v for k, v in GOOD["probs"].items() if k != "fear"}),
        _bad(probs=dict(GOOD["probs"], fear=-0.1)),
        _bad(probs=dict(GOOD["probs"], fear="0.02")),
        _bad(valence=1.5),
        _bad(valence=-1.01),
        _bad(arousal=-0.1),
        _bad(confidence="high"),
        _bad(confidence=1.2),
        _bad(rationale=None),
        _bad(rationale=["smile"]),
        _bad(label=None),
        _bad(extra="field"),
    ],
)
def test_json_schema_rejects_bad_answers(obj: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, json_schema(DFEW7))


def test_schema_valid_answers_parse_without_repair() -> None:
    for label in DFEW7:
        obj = dict(GOOD, label=label,
                   probs={k: 0.4 if k == label else 0.1 for k in DFEW7})
        jsonschema.validate(obj, json_schema(DFEW7))
        r = parse_emotion(json.dumps(obj), DFEW7)
        assert r.label == label and not r.repaired, r.repairs


def test_strict_retry_prompt_names_every_label_in_one_paragraph() -> None:
    for labels in (DFEW7, MAFW11):
        prompt = strict_retry_prompt(labels)
        assert "\n" not in prompt and "JSON" in prompt
        for key in ("label", "probs", "valence", "arousal", "confidence", "rationale"):
            assert f'"{key}"' in prompt
        for label in labels:
            assert f'"{label}"' in prompt
    assert '"contempt"' not in strict_retry_prompt(DFEW7)
