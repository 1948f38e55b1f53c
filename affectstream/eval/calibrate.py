"""``affectstream eval calibrate``: fit per-class log-prior offsets on labelled predictions and
check them on held-out clips (DESIGN §8 ``calibration: table``, §9; issue 12 item 4).

Input is ``predictions.jsonl`` as ``eval dfer`` writes it: one line per clip and condition,
``{clip, condition, label, pred, probs}``. Fit on the *uncalibrated* condition whose prompt the
live stage will use (``--condition``): the offsets correct that prompt's label prior. The fit is
:meth:`TableCalibration.fit <affectstream.vlm.calibration.TableCalibration.fit>`: offsets ``b``
maximising the class-balanced log-likelihood of ``softmax(log p + b)``, so a long-tailed
fitting split does not pull them back toward its head classes.

Held-out check: ``--holdout F`` keeps a stratified, seeded fraction F of the clips out of the
fit, or ``--heldout FILE`` takes a second predictions file; before/after UAR, WAR and macro-F1
(and per-class recall) on it go to the printed table and the JSON report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.errors import ConfigError
from affectstream.eval.classify import class_metrics
from affectstream.labels import top_label
from affectstream.vlm.calibration import TableCalibration, table_document


@dataclass(frozen=True, slots=True)
class Prediction:
    """One line of ``predictions.jsonl``."""

    clip: str
    condition: str
    label: str
    probs: dict[str, float]


def _parse_line(raw: str, where: str) -> Prediction:
    try:
        obj = json.loads(raw)
        probs = {str(k): float(v) for k, v in obj["probs"].items()}
        pred = Prediction(str(obj["clip"]), str(obj.get("condition", "")), str(obj["label"]),
                          probs)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{where} is not a prediction line {{clip, condition, label, probs}} "
                          f"({type(exc).__name__}: {exc}); pass predictions.jsonl as eval "
                          "dfer writes it") from exc
    if not probs or not all(math.isfinite(p) and p >= 0 for p in probs.values()) \
            or not math.fsum(probs.values()) > 0:
        raise ConfigError(f"{where} has no valid probabilities; pass predictions with "
                          "finite, non-negative probs")
    if pred.label not in probs:
        raise ConfigError(f"{where}: true label {pred.label!r} is not among the labels of its "
                          f"probs ({', '.join(probs)}); use predictions over the same label set")
    return pred


def read_predictions(path: Path, condition: str | None = None) -> list[Prediction]:
    """The predictions of one condition in ``path`` (the only one when ``condition`` is
    None; with several, naming one is required)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read predictions file {path} ({exc.strerror}); pass the "
                          "predictions.jsonl that eval dfer wrote") from exc
    preds = [_parse_line(raw, f"{path}:{n}") for n, raw in enumerate(lines, 1) if raw.strip()]
    conditions = sorted({p.condition for p in preds})
    if condition is None and len(conditions) > 1:
        raise ConfigError(f"{path} holds several conditions ({', '.join(conditions)}); choose "
                          "the uncalibrated one to fit with --condition")
    chosen = [p for p in preds if condition is None or p.condition == condition]
    if not chosen:
        found = ", ".join(conditions) or "none"
        raise ConfigError(f"{path} has no predictions for condition {condition!r} (found: "
                          f"{found}); pass one of those to --condition")
    return chosen


def label_set(preds: Sequence[Prediction]) -> tuple[str, ...]:
    """The labels of the predictions' probs, in first-seen order; every line must agree."""
    labels = tuple(preds[0].probs)
    odd = next((p for p in preds if set(p.probs) != set(labels)), None)
    if odd is not None:
        raise ConfigError(f"clip {odd.clip} is scored over other labels than the first line "
                          "(" + ", ".join(labels) + "); use predictions over one label set")
    return labels


def holdout_split(preds: Sequence[Prediction], fraction: float,
                  seed: int) -> tuple[list[Prediction], list[Prediction]]:
    """(fit, held-out): per class, a seeded ``round(fraction · n)`` of its clips held out
    (at least one, and at least one left to fit, when the class has two or more)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--holdout must be a fraction in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    fit: list[Prediction] = []
    held: list[Prediction] = []
    for label in dict.fromkeys(p.label for p in preds):
        members = [p for p in preds if p.label == label]
        n = len(members)
        k = min(max(round(fraction * n), 1), n - 1) if n > 1 else 0
        order = rng.permutation(n)
        held += [members[i] for i in order[:k]]
        fit += [members[i] for i in order[k:]]
    return fit, held


def _metrics(preds: Sequence[Prediction], labels: Sequence[str],
             table: TableCalibration | None) -> dict[str, Any]:
    pred = [top_label(table(p.probs) if table else p.probs) for p in preds]
    return class_metrics([p.label for p in preds], pred, labels)


def fit_report(fit: Sequence[Prediction], held: Sequence[Prediction], labels: Sequence[str],
               *, l2: float = 1e-3) -> tuple[TableCalibration, dict[str, Any]]:
    """The fitted table and the report: offsets, and before/after metrics on the fitting
    clips and (when any) the held-out ones."""
    table = TableCalibration.fit([p.probs for p in fit], [p.label for p in fit], labels,
                                 l2=l2)
    report: dict[str, Any] = {
        "labels": list(labels),
        "offsets": table.offsets,
        "fit": {"clips": len(fit), "before": _metrics(fit, labels, None),
                "after": _metrics(fit, labels, table)},
    }
    if held:
        report["heldout"] = {"clips": len(held), "before": _metrics(held, labels, None),
                             "after": _metrics(held, labels, table)}
    return table, report


def calibrate(predictions: Path, output: Path, *, condition: str | None = None,
              holdout: float | None = None, heldout: Path | None = None, seed: int = 0,
              l2: float = 1e-3) -> dict[str, Any]:
    """Fit, write the table to ``output`` and return the report (see the module docstring)."""
    if holdout is not None and heldout is not None:
        raise ConfigError("--holdout and --heldout both given; hold out a fraction of the "
                          "predictions or pass a second file, not both")
    preds = read_predictions(predictions, condition)
    labels = label_set(preds)
    if heldout is not None:
        fit, held = preds, read_predictions(heldout, condition or preds[0].condition)
        if set(label_set(held)) != set(labels):
            raise ConfigError(f"{heldout} is scored over other labels than {predictions}; "
                              "use predictions of the same model and label set")
        overlap = {p.clip for p in fit} & {p.clip for p in held}
        if overlap:
            raise ConfigError(f"{len(overlap)} clips (e.g. {min(overlap)}) are in both files; "
                              "held-out clips must not be fitted on")
        source: dict[str, Any] = {"file": str(heldout)}
    elif holdout is not None:
        fit, held = holdout_split(preds, holdout, seed)
        source = {"fraction": holdout, "seed": seed}
    else:
        fit, held, source = preds, [], {}
    table, report = fit_report(fit, held, labels, l2=l2)
    report["condition"] = preds[0].condition
    report["predictions"] = str(predictions)
    if held:
        report["heldout"]["source"] = source
    doc = table_document(table.offsets, labels=list(labels), condition=preds[0].condition,
                         fitted_on={"predictions": str(predictions), "clips": len(fit)},
                         objective="class-balanced log-likelihood")
    _write_json(output, doc)
    return report


def _write_json(path: Path, obj: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror}); choose a writable "
                          "path") from exc


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, before, after) rows of the held-out part (the fitting part when none)."""
    part = report.get("heldout") or report["fit"]
    before, after = part["before"], part["after"]
    rows = [(name, f"{before[key]:.4f}", f"{after[key]:.4f}")
            for name, key in (("UAR", "uar"), ("WAR", "war"), ("macro-F1", "macro_f1"))]
    for label in report["labels"]:
        if before["per_class"][label]["support"]:
            rows.append((f"recall {label}", f"{before['per_class'][label]['recall']:.3f}",
                         f"{after['per_class'][label]['recall']:.3f}"))
    return rows


def calibrate_command(args: Any) -> int:
    """The CLI command: fit, write the table and the report, print the before/after table."""
    from rich.console import Console
    from rich.table import Table

    from affectstream.terminal import current

    report = calibrate(args.predictions, args.output, condition=args.condition,
                       holdout=args.holdout, heldout=args.heldout, seed=args.seed)
    report_path = args.report or args.output.with_name(args.output.stem + ".report.json")
    _write_json(report_path, report)
    part = "held-out" if "heldout" in report else "fitting (in-sample: no --holdout)"
    clips = (report.get("heldout") or report["fit"])["clips"]
    table = Table(title=f"calibration, {part} clips: {clips}")
    for column in ("metric", "before", "after"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in report_rows(report):
        table.add_row(*row)
    Console(soft_wrap=True).print(table)
    offsets = ", ".join(f"{k} {v:+.3f}" for k, v in report["offsets"].items())
    current().note(f"offsets: {offsets}")
    current().note(f"wrote {args.output} (vlm.calibration_table) and {report_path}")
    return 0
