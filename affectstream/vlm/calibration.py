"""Calibration of label distributions against head-class bias, and smoothing over updates.

VLMs collapse rare emotions into common ones and use neutral as a sink (DESIGN §1). Two
inference-time counters are offered (DESIGN §8, ``calibration: none | contextual | table``):

- :class:`ContextualCalibration` — Zhao et al. (2021), *Calibrate Before Use: Improving
  Few-Shot Performance of Language Models*: ask the model once per model + prompt for the label
  distribution ``p_cf`` it gives to content-free input (gray keyframes, empty log), then
  ``p_cal ∝ p / p_cf``. This is the paper's ``W = diag(p_cf)⁻¹, b = 0``, renormalised.
- :class:`TableCalibration` — per-class additive offsets on log-probabilities,
  ``p_cal ∝ exp(log p + b)``, fitted on labelled data by maximising the *balanced*
  log-likelihood (each class's mean log-likelihood, averaged over classes), so that frequent
  classes in the fitting data do not pull the offsets toward themselves.

:class:`EmotionSmoother` smooths a track's distribution over successive updates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Literal, Protocol

import numpy as np

from affectstream.errors import ConfigError

CalibrationKind = Literal["none", "contextual", "table"]


class Calibrator(Protocol):
    """Maps a label distribution to a calibrated one over the same labels (sums to 1)."""

    def __call__(self, probs: Mapping[str, float]) -> dict[str, float]: ...


def _normalised(weights: Mapping[str, float], what: str) -> dict[str, float]:
    total = math.fsum(weights.values())
    if not total > 0.0 or not math.isfinite(total):
        raise ValueError(f"{what} has no positive finite mass: {dict(weights)!r}")
    return {k: v / total for k, v in weights.items()}


def _checked(probs: Mapping[str, float]) -> dict[str, float]:
    bad = {k: v for k, v in probs.items() if not (v >= 0.0 and math.isfinite(v))}
    if bad:
        raise ValueError(f"probabilities must be finite and non-negative, got {bad!r}")
    return dict(probs)


class NoCalibration:
    """The identity (probabilities only renormalised)."""

    kind: ClassVar[str] = "none"

    def __call__(self, probs: Mapping[str, float]) -> dict[str, float]:
        return _normalised(_checked(probs), "probs")


class ContextualCalibration:
    """``p_cal ∝ p / max(p_cf, floor)`` (Zhao et al. 2021), ``p_cf`` from content-free input.

    ``floor`` keeps a class the model never gives to content-free input from dividing by zero
    (and from being boosted without bound). Labels of ``probs`` missing from
    ``content_free_probs`` are an error: the content-free pass must use the same label set.
    """

    kind: ClassVar[str] = "contextual"

    def __init__(self, content_free_probs: Mapping[str, float], floor: float = 1e-4) -> None:
        if not 0.0 < floor < 1.0:
            raise ValueError(f"floor must be in (0, 1), got {floor}")
        cf = _normalised(_checked(content_free_probs), "content-free probs")
        self.floor = floor
        self.content_free: dict[str, float] = {k: max(v, floor) for k, v in cf.items()}

    def __call__(self, probs: Mapping[str, float]) -> dict[str, float]:
        probs = _checked(probs)
        missing = [k for k in probs if k not in self.content_free]
        if missing:
            raise ValueError(f"no content-free probability for {', '.join(missing)}; "
                             "calibrate with the same label set")
        return _normalised({k: p / self.content_free[k] for k, p in probs.items()}, "probs")


class TableCalibration:
    """``p_cal ∝ p · exp(offset)`` per class: additive offsets on log-probabilities.

    Labels without an offset get 0. Offsets are defined up to a common constant.
    """

    kind: ClassVar[str] = "table"

    def __init__(self, offsets: Mapping[str, float]) -> None:
        bad = {k: v for k, v in offsets.items() if not math.isfinite(v)}
        if bad:
            raise ValueError(f"offsets must be finite, got {bad!r}")
        self.offsets: dict[str, float] = dict(offsets)

    def __call__(self, probs: Mapping[str, float]) -> dict[str, float]:
        probs = _checked(probs)
        if not probs:
            raise ValueError("probs is empty")
        shift = max(self.offsets.get(k, 0.0) for k in probs)  # avoid overflow in exp
        return _normalised(
            {k: p * math.exp(self.offsets.get(k, 0.0) - shift) for k, p in probs.items()},
            "probs",
        )

    @classmethod
    def fit(
        cls,
        probs_list: Sequence[Mapping[str, float]],
        true_labels: Sequence[str],
        labels: Sequence[str],
        iters: int = 500,
        lr: float = 1.0,
        l2: float = 1e-3,
        floor: float = 1e-6,
    ) -> TableCalibration:
        """Offsets maximising the balanced log-likelihood of ``true_labels``.

        Objective, with ``q_i = softmax(log max(p_i, floor) + b)`` and ``n_k`` the count of
        class ``k``: ``(1/K) Σ_k (1/n_k) Σ_{i: y_i=k} log q_{i,y_i} − (l2/2)·|b|²``, over the
        K classes present. It is concave in ``b``; plain gradient ascent (step ``lr``) converges.
        Classes absent from the data keep offset 0 (nothing to fit them on); offsets of the
        present classes are centred when every class is present.
        """
        names = tuple(labels)
        if len(probs_list) != len(true_labels) or not probs_list:
            raise ValueError("fit needs as many true labels as distributions (at least one)")
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted({y for y in true_labels if y not in index})
        if unknown:
            raise ValueError(f"true labels outside the label set: {', '.join(unknown)}")
        logp = np.log(np.maximum(np.array(
            [[float(p.get(name, 0.0)) for name in names] for p in probs_list], np.float64,
        ), floor))
        y = np.array([index[t] for t in true_labels])
        counts = np.bincount(y, minlength=len(names)).astype(np.float64)
        present = counts > 0
        k = float(present.sum())
        # weight of each sample in the balanced objective: 1 / (K · n_{y_i})
        w = 1.0 / (k * counts[y])
        onehot = np.zeros_like(logp)
        onehot[np.arange(len(y)), y] = 1.0
        target = (w[:, None] * onehot).sum(axis=0)
        b = np.zeros(len(names))
        for _ in range(iters):
            z = logp + b
            z -= z.max(axis=1, keepdims=True)
            q = np.exp(z)
            q /= q.sum(axis=1, keepdims=True)
            grad = target - (w[:, None] * q).sum(axis=0) - l2 * b
            grad[~present] = 0.0
            b += lr * grad
        if present.all():
            b -= b.mean()
        return cls({name: float(v) for name, v in zip(names, b, strict=True)})


TABLE_SCHEMA = "affectstream.calibration/1"
"""The ``schema`` of a calibration table written by ``affectstream eval calibrate``."""


def table_document(offsets: Mapping[str, float], **meta: object) -> dict[str, object]:
    """A calibration table file's content: ``{"schema", "offsets": {label: offset}, …meta}``
    (what the offsets were fitted on, for whoever reads the file later)."""
    return {"schema": TABLE_SCHEMA, "offsets": {k: float(v) for k, v in offsets.items()},
            **meta}


def read_table(path: Path, setting: str = "vlm.calibration_table") -> dict[str, float]:
    """The offsets of a calibration table file: either a plain JSON object ``{label: offset}``
    or a :func:`table_document` (``{"schema": …, "offsets": {…}, …}``). Raises ConfigError
    naming the file and ``setting`` (where its path came from) when it cannot be read or is not
    such an object of finite numbers."""
    fix = (f"point {setting} to a JSON file of label offsets (affectstream eval calibrate "
           "writes one)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {setting} {path} ({exc}); {fix}") from exc
    if isinstance(data, dict) and "schema" in data:
        if data["schema"] != TABLE_SCHEMA:
            raise ConfigError(f"{setting} {path} has schema {data['schema']!r}, "
                              f"not {TABLE_SCHEMA}; {fix}")
        data = data.get("offsets")
    ok = isinstance(data, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in data.values())
    if not ok or not data:
        raise ConfigError(f"{setting} {path} is not an object of finite label "
                          f"offsets; {fix}")
    return {str(k): float(v) for k, v in data.items()}


def make_calibrator(
    kind: CalibrationKind,
    *,
    content_free: Mapping[str, float] | None = None,
    offsets: Mapping[str, float] | None = None,
) -> Calibrator:
    """The calibrator of a config's ``calibration`` kind."""
    if kind == "none":
        return NoCalibration()
    if kind == "contextual":
        if content_free is None:
            raise ConfigError("contextual calibration needs the content-free label distribution "
                              "(run the content-free pass at start-up, or set calibration: none)")
        return ContextualCalibration(content_free)
    if kind == "table":
        if offsets is None:
            raise ConfigError("table calibration needs per-label offsets (fit them with "
                              "affectstream eval calibrate on labelled data, or set "
                              "calibration: none)")
        return TableCalibration(offsets)
    raise ConfigError(f"unknown calibration {kind!r}: use none, contextual or table")


class EmotionSmoother:
    """Per-track exponential moving average of label distributions in stream time.

    After ``dt`` seconds the state moves toward a new distribution by
    ``α = 1 − exp(−dt / tau_s)``, so the smoothing does not depend on how often updates come.
    ``tau_s = 0`` is no smoothing; with ``tau_s > 0`` a second update at the same stream time
    (``dt = 0``) leaves the state unchanged. The first update of a track, an update whose
    labels differ from the state's, and stream time going backwards (a restarted stream) reset
    the state to the new distribution. The smoothed label is the argmax of the result
    (:func:`affectstream.labels.top_label`).
    """

    def __init__(self, tau_s: float) -> None:
        if not (tau_s >= 0.0 and math.isfinite(tau_s)):
            raise ValueError(f"tau_s must be a finite number >= 0, got {tau_s}")
        self.tau_s = tau_s
        self._state: dict[int, tuple[float, dict[str, float]]] = {}

    def update(self, track_id: int, t_s: float, probs: Mapping[str, float]) -> dict[str, float]:
        """The smoothed distribution of ``track_id`` after ``probs`` observed at ``t_s``."""
        new = _normalised(_checked(probs), "probs")
        previous = self._state.get(track_id)
        if self.tau_s == 0.0 or previous is None or previous[1].keys() != new.keys() \
                or t_s < previous[0]:
            smoothed = new
        else:
            alpha = 1.0 - math.exp(-(t_s - previous[0]) / self.tau_s)
            old = previous[1]
            smoothed = _normalised(
                {k: old[k] + alpha * (new[k] - old[k]) for k in new}, "smoothed probs")
        self._state[track_id] = (t_s, smoothed)
        return dict(smoothed)

    def state(self, track_id: int) -> dict[str, float] | None:
        """The current smoothed distribution of a track (None when it has none)."""
        entry = self._state.get(track_id)
        return None if entry is None else dict(entry[1])

    def forget(self, track_id: int) -> None:
        """Drop a track's state (the track ended)."""
        self._state.pop(track_id, None)

    def __len__(self) -> int:
        return len(self._state)
