"""Label-prior calibration and emotion smoothing (affectstream.vlm.calibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from affectstream.errors import ConfigError
from affectstream.labels import DFEW7, top_label
from affectstream.vlm.calibration import (
    ContextualCalibration,
    EmotionSmoother,
    NoCalibration,
    TableCalibration,
    make_calibrator,
)

UNIFORM = {k: 1 / 7 for k in DFEW7}
# a content-free prior biased 0.6 to neutral, the rest spread evenly (0.4 / 6 each)
NEUTRAL_SINK = {k: 0.6 if k == "neutral" else 0.4 / 6 for k in DFEW7}


def _normalise(d: dict[str, float]) -> dict[str, float]:
    total = sum(d.values())
    return {k: v / total for k, v in d.items()}


def _random_dist(rng: np.random.Generator, labels: tuple[str, ...] = DFEW7) -> dict[str, float]:
    return _normalise({k: float(v) for k, v in zip(labels, rng.dirichlet(np.ones(len(labels))),
                                                   strict=True)})


# ---------------------------------------------------------------------------- contextual


def test_contextual_turns_the_biased_prior_back_to_balanced() -> None:
    cal = ContextualCalibration(NEUTRAL_SINK)
    # the model's answer on a real input equals its content-free prior: no evidence at all
    assert cal(NEUTRAL_SINK) == pytest.approx(UNIFORM)
    # evidence x seen through the prior: p ∝ x · p_cf → calibration recovers x
    x = {"happiness": 0.1, "sadness": 0.3, "neutral": 0.05, "anger": 0.2, "surprise": 0.15,
         "disgust": 0.1, "fear": 0.1}
    biased = _normalise({k: x[k] * NEUTRAL_SINK[k] for k in DFEW7})
    assert top_label(biased) == "neutral"  # the sink wins before calibration
    out = cal(biased)
    assert out == pytest.approx(x)
    assert top_label(out) == "sadness"


def test_contextual_exact_numbers() -> None:
    cal = ContextualCalibration({"a": 0.6, "b": 0.2, "c": 0.2})
    # ratios 0.5/0.6, 0.3/0.2, 0.2/0.2 = 5/6, 3/2, 1 → sum 10/3
    assert cal({"a": 0.5, "b": 0.3, "c": 0.2}) == pytest.approx({"a": 0.25, "b": 0.45, "c": 0.3})


def test_contextual_uniform_prior_is_identity_and_output_sums_to_one() -> None:
    rng = np.random.default_rng(0)
    ident = ContextualCalibration(UNIFORM)
    sink = ContextualCalibration(NEUTRAL_SINK)
    for _ in range(50):
        p = _random_dist(rng)
        assert ident(p) == pytest.approx(p)
        out = sink(p)
        assert math.isclose(sum(out.values()), 1.0) and set(out) == set(DFEW7)
        assert out["neutral"] < p["neutral"]  # the sink is always discounted


def test_contextual_unnormalised_prior_is_normalised() -> None:
    a = ContextualCalibration({k: 10 * v for k, v in NEUTRAL_SINK.items()})
    b = ContextualCalibration(NEUTRAL_SINK)
    p = _random_dist(np.random.default_rng(1))
    assert a(p) == pytest.approx(b(p))


def test_contextual_floor_avoids_division_by_zero() -> None:
    cf = {"a": 0.5, "b": 0.5, "c": 0.0}
    cal = ContextualCalibration(cf, floor=1e-2)
    out = cal({"a": 0.5, "b": 0.49, "c": 0.01})
    assert all(math.isfinite(v) for v in out.values())
    # c is divided by the floor: 0.01 / 0.01 = 1 against 1 and 0.98
    assert out == pytest.approx({"a": 1 / 2.98, "b": 0.98 / 2.98, "c": 1 / 2.98})
    assert ContextualCalibration(cf)({"a": 0.5, "b": 0.5, "c": 0.0})["c"] == 0.0


@pytest.mark.parametrize(
    ("cf", "floor"),
    [({"a": 0.0, "b": 0.0}, 1e-4), ({"a": -0.1, "b": 1.0}, 1e-4), ({"a": float("nan")}, 1e-4),
     ({"a": 1.0}, 0.0), ({"a": 1.0}, 1.0)],
)
def test_contextual_rejects_bad_priors(cf: dict[str, float], floor: float) -> None:
    with pytest.raises(ValueError):
        ContextualCalibration(cf, floor=floor)


def test_contextual_rejects_labels_without_a_prior() -> None:
    with pytest.raises(ValueError, match="contempt"):
        ContextualCalibration(NEUTRAL_SINK)({"contempt": 1.0})


# ---------------------------------------------------------------------------------- table


def test_table_applies_log_offsets() -> None:
    cal = TableCalibration({"a": math.log(2.0), "b": 0.0})
    # p · exp(b): 0.25·2, 0.25·1, 0.5·1 (c has no offset) → 0.5, 0.25, 0.5 → /1.25
    assert cal({"a": 0.25, "b": 0.25, "c": 0.5}) == pytest.approx({"a": 0.4, "b": 0.2, "c": 0.4})
    big = TableCalibration({"a": 1000.0, "b": -1000.0})({"a": 0.5, "b": 0.5})
    assert big == pytest.approx({"a": 1.0, "b": 0.0})  # no overflow
    with pytest.raises(ValueError):
        TableCalibration({"a": float("inf")})


def _sample(rng: np.random.Generator, n_per_class: int, bias: np.ndarray,
            signal: float = 1.5) -> tuple[list[dict[str, float]], list[str]]:
    """Balanced true labels; the model's log-probs = class signal + noise + a per-class bias."""
    y = np.repeat(np.arange(len(DFEW7)), n_per_class)
    z = rng.normal(0.0, 1.0, (len(y), len(DFEW7))) + bias
    z[np.arange(len(y)), y] += signal
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return ([dict(zip(DFEW7, map(float, row), strict=True)) for row in p],
            [DFEW7[i] for i in y])


def _uar(probs: list[dict[str, float]], truth: list[str]) -> float:
    recalls = []
    for label in set(truth):
        idx = [i for i, t in enumerate(truth) if t == label]
        recalls.append(sum(top_label(probs[i]) == label for i in idx) / len(idx))
    return float(np.mean(recalls))


HEAD_BIAS = np.array([0.5, 0.0, 2.0, 0.0, 0.0, -1.0, -1.0])  # neutral sink, rare disgust/fear


def test_table_fit_improves_uar_on_a_biased_model() -> None:
    rng = np.random.default_rng(42)
    train, train_y = _sample(rng, 300, HEAD_BIAS)
    test, test_y = _sample(rng, 300, HEAD_BIAS)
    cal = TableCalibration.fit(train, train_y, DFEW7)
    before, after = _uar(test, test_y), _uar([cal(p) for p in test], test_y)
    assert after > before + 0.1, (before, after)
    sink_before = np.mean([top_label(p) == "neutral" for p in test])
    sink_after = np.mean([top_label(cal(p)) == "neutral" for p in test])
    assert sink_before > 0.4 and sink_after < 0.25, (sink_before, sink_after)
    # the offsets undo the bias (up to a constant)
    offsets = np.array([cal.offsets[k] for k in DFEW7])
    np.testing.assert_allclose(offsets, -(HEAD_BIAS - HEAD_BIAS.mean()), atol=0.3)


def test_table_fit_leaves_an_unbiased_model_unchanged() -> None:
    rng = np.random.default_rng(7)
    train, train_y = _sample(rng, 300, np.zeros(7))
    test, test_y = _sample(rng, 300, np.zeros(7))
    cal = TableCalibration.fit(train, train_y, DFEW7)
    assert max(abs(v) for v in cal.offsets.values()) < 0.1, cal.offsets
    assert abs(_uar([cal(p) for p in test], test_y) - _uar(test, test_y)) < 0.02


def test_table_fit_is_balanced_so_class_frequencies_do_not_become_offsets() -> None:
    # an unbiased model, but fitting data with five times more neutral clips: a plain
    # likelihood fit would learn that prior (neutral offset ≈ log 5); the balanced one does not
    rng = np.random.default_rng(9)
    probs, truth = _sample(rng, 200, np.zeros(7))
    extra, extra_y = _sample(rng, 200, np.zeros(7))
    for _ in range(3):
        more, more_y = _sample(rng, 200, np.zeros(7))
        extra += more
        extra_y += more_y
    probs += [p for p, y in zip(extra, extra_y, strict=True) if y == "neutral"]
    truth += [y for y in extra_y if y == "neutral"]
    assert truth.count("neutral") == 5 * truth.count("fear")
    cal = TableCalibration.fit(probs, truth, DFEW7)
    assert max(abs(v) for v in cal.offsets.values()) < 0.15, cal.offsets


def test_table_fit_recovers_a_known_bias_on_a_calibrated_model() -> None:
    # y is drawn from softmax(z) (a perfectly calibrated model with a uniform class prior);
    # the model reports softmax(z + β). The balanced maximum-likelihood offsets are −β.
    rng = np.random.default_rng(3)
    beta = np.array([0.8, -0.4, 1.2, 0.0, -0.6, -0.5, -0.5])
    z = rng.normal(0.0, 2.0, (20000, 7))
    q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = [DFEW7[int(rng.choice(7, p=row))] for row in q]
    reported = np.exp(z + beta)
    reported /= reported.sum(axis=1, keepdims=True)
    probs = [dict(zip(DFEW7, map(float, row), strict=True)) for row in reported]
    cal = TableCalibration.fit(probs, y, DFEW7)
    offsets = np.array([cal.offsets[k] for k in DFEW7])
    assert abs(offsets.mean()) < 1e-9  # centred
    np.testing.assert_allclose(offsets, -(beta - beta.mean()), atol=0.1)


def test_table_fit_keeps_absent_classes_at_zero_and_checks_input() -> None:
    probs = [{"a": 0.9, "b": 0.1, "c": 0.0}, {"a": 0.6, "b": 0.4, "c": 0.0}]
    cal = TableCalibration.fit(probs, ["a", "b"], ("a", "b", "c"))
    assert cal.offsets["c"] == 0.0
    assert all(math.isfinite(v) for v in cal.offsets.values())
    assert cal.offsets["b"] > cal.offsets["a"]  # b's sample was misclassified as a
    with pytest.raises(ValueError, match="z"):
        TableCalibration.fit(probs, ["a", "z"], ("a", "b", "c"))
    with pytest.raises(ValueError):
        TableCalibration.fit(probs, ["a"], ("a", "b", "c"))


# ------------------------------------------------------------------------------- factory


def test_make_calibrator() -> None:
    assert isinstance(make_calibrator("none"), NoCalibration)
    ctx = make_calibrator("contextual", content_free=NEUTRAL_SINK)
    assert isinstance(ctx, ContextualCalibration)
    assert ctx(NEUTRAL_SINK) == pytest.approx(UNIFORM)
    table = make_calibrator("table", offsets={"neutral": -1.0})
    assert isinstance(table, TableCalibration)
    assert NoCalibration()({"a": 2.0, "b": 2.0}) == {"a": 0.5, "b": 0.5}
    with pytest.raises(ConfigError, match="content-free"):
        make_calibrator("contextual")
    with pytest.raises(ConfigError, match="offsets"):
        make_calibrator("table")
    with pytest.raises(ConfigError, match="unknown"):
        make_calibrator("platt")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ smoother


def test_smoother_tau_zero_is_identity() -> None:
    sm = EmotionSmoother(0.0)
    rng = np.random.default_rng(5)
    for t in range(10):
        p = _random_dist(rng)
        assert sm.update(1, float(t), p) == pytest.approx(p)


def test_smoother_exact_step_and_convergence() -> None:
    sm = EmotionSmoother(tau_s=1.0)
    assert sm.update(1, 0.0, {"a": 1.0, "b": 0.0}) == {"a": 1.0, "b": 0.0}  # first: as given
    out = sm.update(1, 1.0, {"a": 0.0, "b": 1.0})
    assert out == pytest.approx({"a": math.exp(-1.0), "b": 1.0 - math.exp(-1.0)})
    for t in range(2, 30):
        out = sm.update(1, float(t), {"a": 0.0, "b": 1.0})
    assert out == pytest.approx({"a": math.exp(-29.0), "b": 1.0 - math.exp(-29.0)}, abs=1e-12)
    assert top_label(out) == "b"


def test_smoother_depends_on_elapsed_time_not_update_count() -> None:
    p0, p1 = {"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}
    one, many = EmotionSmoother(2.0), EmotionSmoother(2.0)
    one.update(1, 0.0, p0)
    many.update(1, 0.0, p0)
    for t in (0.25, 0.5, 1.0, 1.5, 3.0):
        many.update(1, t, p1)
    assert one.update(1, 3.0, p1) == pytest.approx(many.state(1))
    # a longer gap moves further toward the new input
    a, b = EmotionSmoother(2.0), EmotionSmoother(2.0)
    a.update(1, 0.0, p0)
    b.update(1, 0.0, p0)
    assert a.update(1, 0.5, p1)["b"] < b.update(1, 4.0, p1)["b"]


def test_smoother_dt_edge_cases() -> None:
    sm = EmotionSmoother(1.0)
    sm.update(1, 5.0, {"a": 1.0, "b": 0.0})
    assert sm.update(1, 5.0, {"a": 0.0, "b": 1.0}) == {"a": 1.0, "b": 0.0}  # dt = 0
    assert sm.update(1, 2.0, {"a": 0.0, "b": 1.0}) == {"a": 0.0, "b": 1.0}  # time went back
    assert sm.update(1, 3.0, {"x": 1.0}) == {"x": 1.0}  # label set changed: reset


def test_smoother_tracks_are_independent_and_forgettable() -> None:
    sm = EmotionSmoother(1.0)
    sm.update(1, 0.0, {"a": 1.0, "b": 0.0})
    sm.update(2, 0.0, {"a": 0.0, "b": 1.0})
    assert len(sm) == 2
    out1 = sm.update(1, 1.0, {"a": 0.0, "b": 1.0})
    assert sm.state(2) == {"a": 0.0, "b": 1.0}
    assert out1["a"] == pytest.approx(math.exp(-1.0))
    sm.forget(1)
    sm.forget(99)  # unknown: no error
    assert sm.state(1) is None and len(sm) == 1
    assert sm.update(1, 2.0, {"a": 0.3, "b": 0.7}) == pytest.approx({"a": 0.3, "b": 0.7})


def test_smoother_output_is_a_distribution() -> None:
    sm = EmotionSmoother(1.5)
    rng = np.random.default_rng(11)
    for t in np.cumsum(rng.uniform(0.1, 3.0, 40)):
        out = sm.update(3, float(t), _random_dist(rng))
        assert math.isclose(sum(out.values()), 1.0) and min(out.values()) >= 0.0
    with pytest.raises(ValueError):
        EmotionSmoother(-1.0)
    with pytest.raises(ValueError):
        sm.update(3, 100.0, {"a": -1.0, "b": 2.0})
