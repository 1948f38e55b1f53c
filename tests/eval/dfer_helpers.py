"""Shared by the DFER evaluation tests: a tiny folder dataset cut from a real clip, and an
independent recomputation of the metrics from ``predictions.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2

SEGMENTS = {"neutral": (0, 24), "happiness": (30, 54), "sadness": (48, 72)}
"""Frame ranges of ``single_face.mp4`` (30 fps: neutral → smile → neutral), 0.8 s each."""


def cut(src: Path, dst: Path, start: int, end: int) -> Path:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    index = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if start <= index < end:
            frames.append(image)
        index += 1
    cap.release()
    dst.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for image in frames:
        out.write(image)
    out.release()
    return dst


def tiny_dataset(root: Path, media: Path, broken: bool = True) -> Path:
    """One clip per class folder, and (``broken``) an unreadable one under fear/."""
    for label, (a, b) in SEGMENTS.items():
        cut(media / "single_face.mp4", root / label / f"{label}_01.mp4", a, b)
    if broken:
        (root / "fear").mkdir()
        (root / "fear" / "broken.mp4").write_bytes(b"\x00not a video" * 64)
    return root


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def recompute(records: list[dict[str, Any]], labels: list[str]) -> dict[str, float | None]:
    """UAR, WAR, macro-F1 and neutral sink written out again, without the library."""
    truth = [r["label"] for r in records]
    pred = [r["pred"] for r in records]
    present = [x for x in labels if x in truth]
    recalls, f1s = [], []
    for x in present:
        tp = sum(t == p == x for t, p in zip(truth, pred, strict=True))
        recall = tp / truth.count(x)
        precision = tp / pred.count(x) if pred.count(x) else 0.0
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    others = [p for t, p in zip(truth, pred, strict=True) if t != "neutral"]
    return {"war": sum(t == p for t, p in zip(truth, pred, strict=True)) / len(truth),
            "uar": sum(recalls) / len(recalls), "macro_f1": sum(f1s) / len(f1s),
            "neutral_sink": others.count("neutral") / len(others) if others else None}


def check_metrics_follow(out: Path) -> dict[str, Any]:
    """Every metric in metrics.json equals its recomputation from predictions.jsonl."""
    records = read_jsonl(out / "predictions.jsonl")
    metrics = json.loads((out / "metrics.json").read_text())
    for name, m in metrics.items():
        mine = [r for r in records if r["condition"] == name]
        again = recompute(mine, m["labels"])
        assert m["n"] == len(mine)
        for key, value in again.items():
            assert m[key] == (None if value is None else __import__("pytest").approx(value)), \
                (name, key)
        for r in mine:
            assert r["pred"] == max(r["probs"], key=r["probs"].get)
            assert abs(sum(r["probs"].values()) - 1.0) < 1e-6
    return metrics
