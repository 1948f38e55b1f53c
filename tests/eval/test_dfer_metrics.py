"""DFER metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from affectstream.eval.dfer_metrics import dfer_metrics, entropy_bits
from affectstream.labels import DFEW7

TRUTH = ["happiness", "happiness", "sadness", "sadness", "neutral", "anger"]
PRED = ["happiness", "neutral", "sadness", "neutral", "neutral", "happiness"]


def test_hand_computed_example_with_absent_classes() -> None:
    m = dfer_metrics(TRUTH, PRED, DFEW7)
    pc = m["per_class"]
    # happiness: tp 1 of 2 true, 2 predicted; sadness: tp 1 of 2, 1 predicted;
    # neutral: tp 1 of 1, 3 predicted; anger: never right, never predicted
    assert (pc["happiness"]["precision"], pc["happiness"]["recall"]) == (0.5, 0.5)
    assert (pc["sadness"]["precision"], pc["sadness"]["recall"]) == (1.0, 0.5)
    assert pc["sadness"]["f1"] == pytest.approx(2 / 3)
    assert pc["neutral"]["precision"] == pytest.approx(1 / 3) and pc["neutral"]["f1"] == 0.5
    assert pc["anger"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1,
                           "predicted": 0}
    assert pc["fear"]["support"] == 0  # absent: listed, not averaged
    assert m["war"] == 0.5  # 3 of 6
    assert m["uar"] == pytest.approx((0.5 + 0.5 + 1.0 + 0.0) / 4)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.5 + 0.0) / 4)
    assert m["neutral_sink"] == pytest.approx(2 / 5)  # 2 of the 5 non-neutral clips
    assert m["entropy"]["pred"] == pytest.approx(
        (1 / 3) * math.log2(3) + 0.5 + (1 / 6) * math.log2(6))
    assert m["entropy"]["truth"] == pytest.approx(
        2 * (1 / 3) * math.log2(3) + 2 * (1 / 6) * math.log2(6))
    conf = m["confusion"]
    i = {x: n for n, x in enumerate(DFEW7)}
    assert conf[i["sadness"]][i["neutral"]] == 1 and conf[i["anger"]][i["happiness"]] == 1
    assert sum(map(sum, conf)) == 6 and m["n"] == 6


def test_prediction_of_an_absent_class_is_an_error_not_a_class() -> None:
    m = dfer_metrics(["fear", "fear"], ["surprise", "fear"], DFEW7)
    assert m["uar"] == 0.5 and m["war"] == 0.5
    assert m["macro_f1"] == pytest.approx(2 / 3)  # fear only: P 1, R 0.5
    assert m["per_class"]["surprise"]["predicted"] == 1
    assert m["neutral_sink"] == 0.0


def test_neutral_sink_undefined_and_errors() -> None:
    assert dfer_metrics(["neutral"], ["happiness"], DFEW7)["neutral_sink"] is None
    assert dfer_metrics(["anger"], ["anger"], ("anger", "fear"))["neutral_sink"] is None
    assert entropy_bits([0, 0]) == 0.0 and entropy_bits([1, 1, 1, 1]) == 2.0
    with pytest.raises(ValueError, match="boredom"):
        dfer_metrics(["boredom"], ["anger"], DFEW7)
