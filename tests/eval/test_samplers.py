"""Class samplers for balanced fine-tuning: the class frequencies of an epoch follow each
strategy (DESIGN §9), and the draws are reproducible."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from affectstream.errors import ConfigError
from affectstream.eval.samplers import STRATEGIES, ClassSampler

# a long tail: 600 / 250 / 100 / 40 / 10 clips
COUNTS = {"neutral": 600, "happiness": 250, "sadness": 100, "fear": 40, "contempt": 10}
LABELS = [label for label, n in COUNTS.items() for _ in range(n)]
N = len(LABELS)
NATURAL = np.array(list(COUNTS.values())) / N
UNIFORM = np.full(len(COUNTS), 1 / len(COUNTS))
TOL = 0.03  # absolute, on class shares of 1000 draws per epoch (about 2 s.d. of the rarest)


def shares(sampler: ClassSampler, epoch: int, epochs_pooled: int = 1) -> np.ndarray:
    """Class shares of the clips drawn at ``epoch`` (pooled over seeds for a tighter test)."""
    counts: Counter[str] = Counter()
    for seed in range(epochs_pooled):
        s = ClassSampler(LABELS, sampler.strategy, epochs=sampler.epochs, seed=seed,
                         switch=sampler.switch)
        idx = s.epoch(epoch)
        assert len(idx) == N and idx.min() >= 0 and idx.max() < N
        counts.update(LABELS[i] for i in idx)
    total = sum(counts.values())
    return np.array([counts[label] / total for label in COUNTS])


def test_natural_is_every_clip_once() -> None:
    s = ClassSampler(LABELS, "natural", epochs=3, seed=1)
    for epoch in range(3):
        idx = s.epoch(epoch)
        assert sorted(idx.tolist()) == list(range(N))  # a permutation
        np.testing.assert_allclose(shares(s, epoch), NATURAL, atol=1e-12)
    assert not np.array_equal(s.epoch(0), s.epoch(1))  # reshuffled per epoch


def test_balanced_is_uniform_over_classes() -> None:
    s = ClassSampler(LABELS, "balanced", epochs=2)
    np.testing.assert_allclose(s.class_probs(0), UNIFORM)
    np.testing.assert_allclose(shares(s, 0, epochs_pooled=4), UNIFORM, atol=TOL)


def test_balanced_repeats_rare_clips_evenly() -> None:
    """The 10 contempt clips over-sampled ~20× each: whole passes, not random repeats."""
    s = ClassSampler(LABELS, "balanced", epochs=1, seed=3)
    idx = s.epoch(0)
    rare = Counter(int(i) for i in idx if LABELS[i] == "contempt")
    assert len(rare) == 10 and max(rare.values()) - min(rare.values()) <= 1


def test_sqrt_is_proportional_to_root_counts() -> None:
    root = np.sqrt(list(COUNTS.values()))
    expected = root / root.sum()
    s = ClassSampler(LABELS, "sqrt", epochs=1)
    np.testing.assert_allclose(s.class_probs(0), expected)
    np.testing.assert_allclose(shares(s, 0, epochs_pooled=4), expected, atol=TOL)


def test_progressive_moves_from_natural_to_balanced() -> None:
    s = ClassSampler(LABELS, "progressive", epochs=5)
    np.testing.assert_allclose(s.class_probs(0), NATURAL)
    np.testing.assert_allclose(s.class_probs(2), (NATURAL + UNIFORM) / 2)
    np.testing.assert_allclose(s.class_probs(4), UNIFORM)
    observed = [shares(s, e, epochs_pooled=4) for e in range(5)]
    for e in range(5):
        np.testing.assert_allclose(observed[e], s.class_probs(e), atol=TOL)
    head = [o[0] for o in observed]  # neutral's share falls epoch by epoch
    tail = [o[-1] for o in observed]  # contempt's rises
    assert head == sorted(head, reverse=True) and tail == sorted(tail)


def test_decoupled_is_natural_then_balanced() -> None:
    s = ClassSampler(LABELS, "decoupled", epochs=4)
    assert s.switch == 2 and [s.phase(e) for e in range(4)] == ["natural"] * 2 + ["balanced"] * 2
    for e in (0, 1):
        assert sorted(s.epoch(e).tolist()) == list(range(N))
    for e in (2, 3):
        np.testing.assert_allclose(shares(s, e, epochs_pooled=4), UNIFORM, atol=TOL)
    custom = ClassSampler(LABELS, "decoupled", epochs=4, switch=3)
    assert [custom.phase(e) for e in range(4)] == ["natural"] * 3 + ["balanced"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_seeded_and_per_epoch_reproducible(strategy: str) -> None:
    a = ClassSampler(LABELS, strategy, epochs=3, seed=7)
    b = ClassSampler(LABELS, strategy, epochs=3, seed=7)
    c = ClassSampler(LABELS, strategy, epochs=3, seed=8)
    np.testing.assert_array_equal(a.epoch(2), b.epoch(2))  # epoch 2 without epochs 0, 1
    assert not np.array_equal(a.epoch(1), c.epoch(1))


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown sampler"):
        ClassSampler(LABELS, "focal", epochs=1)
    with pytest.raises(ConfigError, match="at least one"):
        ClassSampler([], "natural", epochs=1)
    with pytest.raises(ConfigError, match="epochs"):
        ClassSampler(LABELS, "natural", epochs=0)
    with pytest.raises(ConfigError, match="switch"):
        ClassSampler(LABELS, "decoupled", epochs=2, switch=5)
