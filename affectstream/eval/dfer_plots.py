"""The DFER report's PNG plots, drawn with matplotlib's object API on an Agg canvas (no
pyplot, so no global figure state; matplotlib comes with mediapipe and is imported only here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from affectstream.errors import SinkError


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise SinkError("the DFER report's plots need matplotlib; pip install matplotlib") from exc
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def confusion_png(path: Path, name: str, labels: Sequence[str],
                  confusion: Sequence[Sequence[int]]) -> None:
    """Row-normalised confusion matrix (truth rows, prediction columns) with the counts."""
    fig = _figure(1.0 + 0.7 * len(labels), 0.8 + 0.6 * len(labels))
    ax = fig.add_subplot()
    rows = [[c / max(1, sum(row)) for c in row] for row in confusion]
    ax.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0)
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                        color="white" if rows[i][j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title(name, fontsize=10)
    fig.savefig(path)


def grouped_bars_png(path: Path, title: str, labels: Sequence[str],
                     series: Mapping[str, Sequence[float]], ylabel: str) -> None:
    """One group of bars per label, one bar per series (conditions, or truth vs them)."""
    fig = _figure(max(6.0, 0.9 * len(labels) * max(1, len(series)) ** 0.5 + 2), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for n, (name, values) in enumerate(series.items()):
        ax.bar([i + n * width for i in range(len(labels))], values, width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=30,
                  ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncols=2)
    fig.savefig(path)


def write_plots(folder: Path, metrics: dict[str, dict[str, Any]],
                labels: Sequence[str]) -> dict[str, list[str]]:
    """Every plot of the report into ``folder``; their file names by kind."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"cannot write plots to {folder} ({exc})") from exc
    out: dict[str, list[str]] = {"confusion": []}
    for name, m in metrics.items():
        file = f"confusion_{_safe(name)}.png"
        confusion_png(folder / file, name, labels, m["confusion"])
        out["confusion"].append(file)
    f1 = {name: [m["per_class"][x]["f1"] for x in labels] for name, m in metrics.items()}
    grouped_bars_png(folder / "per_class_f1.png", "per-class F1", labels, f1, "F1")
    first = next(iter(metrics.values()))
    dist = {"truth": [first["distribution"]["truth"][x] for x in labels]}
    dist |= {name: [m["distribution"]["pred"][x] for x in labels] for name, m in metrics.items()}
    grouped_bars_png(folder / "pred_distribution.png", "predicted labels vs the truth", labels,
                     dist, "clips")
    out["summary"] = ["per_class_f1.png", "pred_distribution.png"]
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
