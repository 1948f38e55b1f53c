"""Class-aware samplers for fine-tuning on long-tailed emotion data (DESIGN §1, §9).

Emotion datasets are long-tailed and a VLM's pretraining makes the head heavier still, so the
order in which training clips are drawn decides how much the rare classes are seen. Each
strategy gives, per epoch, the probability of drawing each class; an epoch is as many draws
as there are clips. With ``n_j`` clips of class ``j``, ``t`` the epoch (0-based) and ``T`` the
number of epochs:

* ``natural``: ``p_j ∝ n_j`` — every clip exactly once per epoch, shuffled (instance-balanced).
* ``balanced``: ``p_j = 1/C`` over the C classes present (class-balanced).
* ``sqrt``: ``p_j ∝ √n_j`` (square-root sampling, Mahajan et al. 2018).
* ``progressive``: ``p_j(t) = (1 − t/(T−1))·n_j/N + t/(T−1)·1/C``, natural in the first epoch
  and balanced in the last (progressively-balanced sampling, Kang et al. 2020, *Decoupling
  Representation and Classifier for Long-Tailed Recognition*).
* ``decoupled``: natural for the first ``switch`` epochs (default: half, rounded up), balanced
  after — the paper's recipe, representation learned on the natural distribution, then the
  decision re-balanced (Kang et al. 2020's classifier re-training stage, here on LoRA).

Pure numpy and seeded: epoch ``t`` of seed ``s`` is always the same sequence, whatever was
drawn before, so a resumed run or a test can ask for any epoch directly.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal, get_args

import numpy as np

from affectstream.errors import ConfigError

Strategy = Literal["natural", "balanced", "sqrt", "progressive", "decoupled"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


class ClassSampler:
    """Indices of training clips per epoch under one strategy (see the module docstring)."""

    def __init__(self, labels: Sequence[Hashable], strategy: str, *, epochs: int,
                 seed: int = 0, switch: int | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown sampler {strategy!r}; use one of "
                              f"{', '.join(STRATEGIES)}")
        if not labels:
            raise ConfigError("the sampler needs at least one labelled clip")
        if epochs < 1:
            raise ConfigError(f"epochs must be ≥ 1, got {epochs}")
        self.strategy = strategy
        self.epochs = epochs
        self.seed = seed
        self.switch = (epochs + 1) // 2 if switch is None else switch
        if strategy == "decoupled" and not 0 <= self.switch <= epochs:
            raise ConfigError(f"the decoupled switch epoch must be in 0..{epochs}, "
                              f"got {self.switch}")
        self.classes: tuple[Hashable, ...] = tuple(dict.fromkeys(labels))
        index = {c: i for i, c in enumerate(self.classes)}
        codes = np.array([index[y] for y in labels])
        # members[j]: the clip indices of class j, in data order
        self.members: list[np.ndarray] = [np.flatnonzero(codes == j)
                                          for j in range(len(self.classes))]
        self.counts = np.array([len(m) for m in self.members], np.float64)

    def __len__(self) -> int:
        """Draws per epoch: the number of clips."""
        return int(self.counts.sum())

    def phase(self, epoch: int) -> str:
        """The plain strategy in force at ``epoch`` (``decoupled`` resolves to natural or
        balanced; the others are themselves)."""
        if self.strategy == "decoupled":
            return "natural" if epoch < self.switch else "balanced"
        return self.strategy

    def class_probs(self, epoch: int) -> np.ndarray:
        """The probability of drawing each class (in :attr:`classes` order) at ``epoch``."""
        natural: np.ndarray = self.counts / self.counts.sum()
        balanced: np.ndarray = np.full(len(natural), 1.0 / len(natural))
        phase = self.phase(epoch)
        if phase == "natural":
            return natural
        if phase == "balanced":
            return balanced
        if phase == "sqrt":
            root = np.sqrt(self.counts)
            return np.asarray(root / root.sum())
        # progressive: linear from natural (first epoch) to balanced (last epoch)
        alpha = min(max(epoch, 0), self.epochs - 1) / max(self.epochs - 1, 1)
        return np.asarray((1.0 - alpha) * natural + alpha * balanced)

    def epoch(self, epoch: int) -> np.ndarray:
        """The clip indices of ``epoch``, in the order to train on them."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.phase(epoch) == "natural":
            return rng.permutation(len(self))  # every clip once: exactly the data frequencies
        draws = rng.multinomial(len(self), self.class_probs(epoch))
        picked: list[np.ndarray] = []
        for members, n in zip(self.members, draws, strict=True):
            picked.append(_cycle(members, int(n), rng))
        order = np.concatenate(picked) if picked else np.zeros(0, np.int64)
        return rng.permutation(order)


def _cycle(members: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` clips of one class: whole shuffled passes over its members, then part of one
    more, so an over-sampled rare class repeats each clip evenly instead of at random."""
    if n == 0 or len(members) == 0:
        return np.zeros(0, np.int64)
    passes = [rng.permutation(members) for _ in range(-(-n // len(members)))]
    return np.concatenate(passes)[:n].astype(np.int64)
