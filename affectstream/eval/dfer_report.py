"""The DFER evaluation's outputs (DESIGN §4): ``predictions.jsonl`` (one line per clip and
condition), ``metrics.json`` (``{condition: {uar, war, macro_f1, per_class, neutral_sink,
confusion, …}}``, every number computed from the predictions file's lines), ``report.md``
with the plots in ``plots/``, and the paper's reference numbers beside the results when the
dataset is DFEW or MAFW."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from affectstream.errors import SinkError
from affectstream.eval.datasets import Dataset, Skipped
from affectstream.eval.dfer_metrics import dfer_metrics

PAPER = "Agarwal et al. 2026, *Why Do Vision Language Models Struggle To Recognize Human " \
        "Emotions?* (arXiv 2604.15280)"
REFERENCE: dict[str, dict[str, float]] = {
    "Qwen2.5-VL": {"mafw": 0.2449, "dfew": 0.4552},
    "Qwen2.5-VL, with enrichment": {"mafw": 0.2731, "dfew": 0.4820},
    "MAE-DFER": {"mafw": 0.3602, "dfew": 0.5645},
    "HiCMAE": {"mafw": 0.3993, "dfew": 0.5725},
    "Gemini-2.5-Flash": {"mafw": 0.3758, "dfew": 0.6008},
}
"""Macro-F1 on the paper's balanced subsets (issue 12)."""


def metrics_by_condition(records: Sequence[dict[str, Any]], conditions: Sequence[str],
                         labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in conditions:
        mine = [r for r in records if r["condition"] == name]
        if mine:
            out[name] = dfer_metrics([r["label"] for r in mine], [r["pred"] for r in mine],
                                     labels)
            out[name]["images_mean"] = sum(r["images"] for r in mine) / len(mine)
            out[name]["prompt_tokens_mean"] = sum(r["prompt_tokens"] for r in mine) / len(mine)
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise SinkError(f"cannot write {path} ({exc}); choose a writable --output") from exc


def _f(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _results_table(metrics: dict[str, dict[str, Any]], failures: dict[str, int]) -> list[str]:
    rows = ["| condition | clips | UAR | WAR | macro-F1 | neutral sink | entropy pred / truth "
            "(bits) | images | prompt tokens | failed |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        ent = m["entropy"]
        rows.append(f"| {name} | {m['n']} | {_f(m['uar'])} | {_f(m['war'])} | "
                    f"{_f(m['macro_f1'])} | {_f(m['neutral_sink'], 3)} | "
                    f"{ent['pred']:.2f} / {ent['truth']:.2f} | {m['images_mean']:.1f} | "
                    f"{m['prompt_tokens_mean']:.0f} | "
                    f"{failures.get(name.removesuffix('+cal'), 0)} |")
    return rows


def _per_class_table(metrics: dict[str, dict[str, Any]], labels: Sequence[str]) -> list[str]:
    rows = ["| condition | " + " | ".join(labels) + " |",
            "|---|" + "---|" * len(labels)]
    for name, m in metrics.items():
        pc = m["per_class"]
        rows.append(f"| {name} | " + " | ".join(
            f"{pc[x]['f1']:.2f} ({pc[x]['precision']:.2f}/{pc[x]['recall']:.2f})"
            for x in labels) + " |")
    return rows


def _reference(dataset: Dataset) -> list[str]:
    key = dataset.format
    if key not in ("dfew", "mafw"):
        return []
    rows = ["", f"## The paper's numbers ({key.upper()}, macro-F1)", "",
            f"From {PAPER}, on its balanced subsets; compare with `--balanced` runs of the "
            "same label set. `uniform-K` and `dense-5` correspond to the plain VLM rows, "
            "`enriched-vlm` to the enriched row.", "", "| model / condition | macro-F1 |",
            "|---|---|"]
    rows += [f"| {name} | {values[key]:.4f} |" for name, values in REFERENCE.items()]
    return rows


def _dataset_lines(dataset: Dataset, skipped: Sequence[Skipped]) -> list[str]:
    counts = ", ".join(f"{k} {v}" for k, v in dataset.counts().items())
    lines = [f"- dataset: `{dataset.root}` (format {dataset.format}"
             + (f", split {dataset.split}" if dataset.split else "") + ")",
             f"- clips loaded: {len(dataset.clips)} ({counts})"]
    if skipped:
        lines.append(f"- skipped: {len(skipped)} (" + "; ".join(
            f"{s.id}: {s.reason}" for s in skipped[:5]) + (" …" if len(skipped) > 5 else "")
            + ")")
    return lines


def write_outputs(output: Path, dataset: Dataset, records: Sequence[dict[str, Any]],
                  conditions: Sequence[str], *, model: str, backend: str, calibration: str,
                  failures: dict[str, int], skipped: Sequence[Skipped]) -> dict[str, Any]:
    """Write every output; return the metrics."""
    from affectstream.eval.dfer_plots import write_plots

    keep = ("clip", "condition", "label", "pred", "probs", "images", "prompt_tokens", "aligned")
    _write(output / "predictions.jsonl", "".join(
        json.dumps({k: r[k] for k in keep if k in r}, ensure_ascii=False) + "\n"
        for r in records))
    metrics = metrics_by_condition(records, conditions, dataset.labels)
    _write(output / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    plots = write_plots(output / "plots", metrics, dataset.labels) if metrics else {}
    unaligned = len({r["clip"] for r in records if not r.get("aligned", True)})
    lines = ["# DFER evaluation", "", f"- model: `{model}` ({backend} backend)",
             *_dataset_lines(dataset, skipped),
             f"- calibration of the `+cal` conditions: {calibration}",
             f"- clips without a tracked face (whole frames sent instead): {unaligned}",
             "", "## Results", "", *_results_table(metrics, failures), *_reference(dataset),
             "", "## Per-class F1 (precision/recall)", "",
             *_per_class_table(metrics, dataset.labels), "", "## Plots", ""]
    lines += [f"![{f}](plots/{f})" for f in plots.get("summary", [])]
    lines += [f"![{f}](plots/{f})" for f in plots.get("confusion", [])]
    lines += ["", "How to read this report: docs/research.md."]
    _write(output / "report.md", "\n".join(lines) + "\n")
    return metrics
