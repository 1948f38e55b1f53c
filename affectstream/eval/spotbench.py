"""``affectstream eval spotting``: the live spotter and the classic baseline on the same clips.

Each clip goes through the very perception code of ``run`` (:func:`perceive_file`), so the live
spotter's bursts are what a subscriber would get. The aligned crops the spotter saw are kept for
the clip's main track and handed to the LBP χ² baseline (:mod:`affectstream.eval.baseline`),
so both spotters see identical faces. Both are scored by :mod:`affectstream.eval.scoring`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from affectstream.config import Config
from affectstream.detectors.align import FaceAligner
from affectstream.detectors.motion import RegionMotion
from affectstream.detectors.samples import Sample
from affectstream.errors import SourceError
from affectstream.eval.baseline import BaselineConfig, signal, spot_baseline
from affectstream.eval.intervals import Counts, as_counts, bootstrap_f1_difference, summary
from affectstream.eval.metrics import from_counts
from affectstream.eval.scoring import (
    ClipRun,
    PredEvent,
    TruthEvent,
    clip_counts,
    per_clip_rows,
    score_runs,
    speech_filtered,
)
from affectstream.eval.visibility import describe, visibility
from affectstream.stream.offline import perceive_file
from affectstream.types import FloatArray, Image

Positions = dict[int, FloatArray]
"""Frame index → (R, 2) region positions of one track."""
Progress = Callable[[str, int], None]
"""progress(clip name, frames done in this clip)."""


@dataclass(frozen=True, slots=True)
class BenchClip:
    """A video with its truth: from the benchmark manifest, or ``--videos``/``--truth``."""

    name: str
    video: Path
    category: str
    control: bool
    fps: float
    frames: int
    truth: tuple[TruthEvent, ...]
    natural: tuple[tuple[int, int], ...] = ()
    footage: str | None = None
    """Which footage the clip shows (source and scale): an injected clip and a control with
    the same footage and length have the same natural motion (:mod:`.visibility`)."""


@dataclass(frozen=True, slots=True)
class ClipResult:
    live: ClipRun
    baseline: ClipRun
    live_signal: npt.NDArray[np.float64]
    """The live spotter's onset score per frame (NaN where the main track had no face)."""
    baseline_signal: npt.NDArray[np.float64]
    positions: Positions | None = None
    """Region positions of the main track per frame (:func:`region_positions`)."""


def _truth(records: Sequence[dict[str, Any]]) -> tuple[TruthEvent, ...]:
    return tuple(TruthEvent(int(e["onset_frame"]), int(e["apex_frame"]), int(e["offset_frame"]),
                            e["kind"], str(e["action"])) for e in records)


def clip_from_manifest(folder: Path, entry: dict[str, Any]) -> BenchClip:
    footage = f"{entry['source']} @ {entry.get('scale', 1.0)}" if entry.get("source") else None
    return BenchClip(entry["name"], folder / entry["video"], entry["category"],
                     bool(entry["control"]), float(entry["fps"]), int(entry["frames"]),
                     _truth(entry["truth"]),
                     tuple((int(a), int(b)) for a, b in entry.get("natural", [])), footage)


def clip_from_files(video: Path, truth_file: Path) -> BenchClip:
    """A clip given on the command line; its truth file is a benchmark manifest entry or a
    demo-clip sidecar: ``{"truth": [{onset_frame, apex_frame, offset_frame, kind, action}],
    "fps", "frames", optional "category" and "control"}``."""
    if not video.is_file():
        raise SourceError(f"video {video} not found; check the path given to --videos")
    try:
        doc = json.loads(truth_file.read_text(encoding="utf-8"))
        truth = _truth(doc["truth"])
        return BenchClip(video.stem, video, str(doc.get("category", "custom")),
                         bool(doc.get("control", not truth)), float(doc["fps"]),
                         int(doc["frames"]), truth,
                         tuple((int(a), int(b)) for a, b in doc.get("natural", [])))
    except FileNotFoundError as exc:
        raise SourceError(f"truth file {truth_file} not found; check --truth") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"truth file {truth_file} is not valid ({exc!r}); it needs fps, frames "
                          "and truth [{onset_frame, apex_frame, offset_frame, kind, action}]"
                          ) from exc


class _Recorder:
    """Keeps every track's small grey crops (what the baseline needs; the colour crops would
    cost ten times the memory) and the spotter's score per frame."""

    def __init__(self) -> None:
        self.crops: dict[int, list[tuple[int, Image]]] = {}
        self.scores: dict[int, dict[int, float]] = {}
        self.first_landmarks: dict[int, FloatArray] = {}
        """Each track's first landmarks, which fix its alignment template."""

    def __call__(self, track_id: int, sample: Sample, score: tuple[int, float]) -> None:
        self.crops.setdefault(track_id, []).append((sample.index, sample.gray))
        if score[0] >= 0:
            self.scores.setdefault(track_id, {})[score[0]] = score[1]

    def main_track(self) -> int | None:
        return max(self.crops, key=lambda t: len(self.crops[t]), default=None)


def run_clip(cfg: Config, model_paths: dict[str, Path], clip: BenchClip,
             baseline_cfg: BaselineConfig, progress: Progress | None = None) -> ClipResult:
    recorder = _Recorder()
    preds: list[PredEvent] = []
    frames = 0
    last = 0
    for item in perceive_file(cfg, model_paths, clip.video, observer=recorder):
        if item.frame is not None:
            frames += 1
            last = item.frame.index
            if progress is not None and frames % 10 == 0:
                progress(clip.name, frames)
        preds.extend(PredEvent.of_burst(b, last) for b in item.result.bursts)
        for face in item.result.faces:
            if face.landmarks is not None:
                recorder.first_landmarks.setdefault(face.track_id, face.landmarks)
    total = max(frames, clip.frames)
    main = recorder.main_track()
    live_signal = np.full(total, np.nan)
    base_signal = np.full(total, np.nan)
    base_preds: list[PredEvent] = []
    positions = None
    if main is not None and main in recorder.first_landmarks:
        template = FaceAligner(recorder.first_landmarks[main]).template
        positions = region_positions(RegionMotion(template, cfg.motion.crop_size),
                                     recorder.crops[main])
    if main is not None:
        index = np.array([i for i, _ in recorder.crops[main]])
        for frame, score in recorder.scores.get(main, {}).items():
            if frame < total:
                live_signal[frame] = score
        crops = [gray for _, gray in recorder.crops[main]]
        base_signal[index] = signal(crops, clip.fps, baseline_cfg)
        for onset, apex, offset, kind in spot_baseline(crops, clip.fps, baseline_cfg):
            base_preds.append(PredEvent(int(index[onset]), int(index[apex]), int(index[offset]),
                                        kind))

    def run(found: list[PredEvent]) -> ClipRun:
        return ClipRun(name=clip.name, fps=clip.fps, frames=total, category=clip.category,
                       control=clip.control, truth=clip.truth, preds=tuple(found),
                       natural=clip.natural)

    return ClipResult(run(preds), run(base_preds), live_signal, base_signal, positions)


def region_positions(motion: RegionMotion, crops: Sequence[tuple[int, Image]]) -> Positions:
    """Each frame's region positions (R, 2) relative to the first crop: the summed
    frame-to-frame region flow, head motion removed, as the spotter measures it."""
    if not crops:
        return {}
    out = {crops[0][0]: np.zeros((len(motion.names), 2), np.float32)}
    for (a, before), (b, after) in itertools.pairwise(crops):
        out[b] = out[a] + motion.vectors(before, after)
    return out


def report(results: Sequence[ClipResult],
           footage: Sequence[str | None] | None = None) -> dict[str, Any]:
    """The JSON of DESIGN §4, plus per-clip rows of both spotters. ``live-speech-filtered`` is
    the live spotter as a subscriber sees it who drops lower-face bursts made while speaking.
    ``footage`` (each clip's :attr:`BenchClip.footage`) pairs injected clips with controls of
    the same footage for ``visibility``."""
    live = [r.live for r in results]
    base = [r.baseline for r in results]
    filtered = [speech_filtered(r) for r in live]
    spotters = {"live": score_runs(live), "live-speech-filtered": score_runs(filtered),
                "baseline": score_runs(base)}
    return {
        "clips": len(results),
        "events": sum(len(r.live.truth) for r in results),
        "micro_events": sum(1 for r in results for t in r.live.truth if t.kind == "micro"),
        "control_minutes": round(sum(r.live.frames / r.live.fps for r in results
                                     if r.live.control) / 60, 3),
        "spotters": spotters,
        "live_vs_baseline": f1_lead(live, base),
        "visibility": visibility(list(zip(results, footage or [None] * len(results),
                                          strict=True))),
        "per_clip": {"live": per_clip_rows(live), "baseline": per_clip_rows(base)},
    }


def f1_lead(first: Sequence[ClipRun], second: Sequence[ClipRun]) -> dict[str, Any]:
    """How far ``first``'s overall F1 is above ``second``'s (the same clips, two spotters or
    two settings), with its paired 95 % bootstrap interval over the injected clips."""
    a, b = (as_counts([clip_counts(r) for r in runs if not r.control]) for runs in (first, second))

    def f1(counts: Counts) -> float:
        tp, fp, fn = (int(v) for v in counts.sum(axis=0))
        return from_counts(tp, fp, fn).f1

    lead = f1(a) - f1(b)
    return {"f1_difference": round(lead, 4), "interval": bootstrap_f1_difference(a, b)}


def evaluate(cfg: Config, model_paths: dict[str, Path], clips: Sequence[BenchClip], *,
             plots: Path | None = None, baseline_cfg: BaselineConfig | None = None,
             on_clip: Callable[[BenchClip], None] | None = None,
             progress: Progress | None = None) -> tuple[dict[str, Any], list[ClipResult]]:
    """Run both spotters on every clip; one PNG per clip into ``plots`` when given."""
    from affectstream.eval.plots import plot_clip

    bcfg = baseline_cfg or BaselineConfig()
    results = []
    for clip in clips:
        if on_clip is not None:
            on_clip(clip)
        result = run_clip(cfg, model_paths, clip, bcfg, progress)
        results.append(result)
        if plots is not None:
            base = [(p.onset, p.offset) for p in result.baseline.preds]
            plot_clip(plots / f"{clip.name}.png", result.live, result.live_signal.tolist(),
                      base, result.baseline_signal.tolist())
    return report(results, [c.footage for c in clips]), results


def notes(doc: dict[str, Any]) -> str:
    """What goes under the table: the figures' intervals, and what the spotters find of the
    events that stand out from the footage's own motion and of the buried ones."""
    return "\n".join(line for line in (summary(doc), describe(doc.get("visibility"))) if line)


def table(doc: dict[str, Any]) -> Any:
    """A rich table of the report: one row per spotter."""
    from rich.table import Table

    out = Table(title=f"spotting benchmark: {doc['clips']} clips, {doc['events']} injected events "
                f"({doc['micro_events']} micro), {doc['control_minutes']:.2f} min of controls; "
                "MEGC IoU ≥ 0.5", caption=notes(doc) or None)
    for col in ("spotter", "overall P / R / F1", "micro P / R / F1", "macro P / R / F1",
                "false/min still · moving · talking · all", "attribution region · AU",
                "latency p50/p95 ms"):
        out.add_column(col)
    for name, r in doc["spotters"].items():
        fpm = r["controls_fpm"]
        att = r["attribution"]

        def prf(k: str, r: dict[str, Any] = r) -> str:
            return f"{r[k]['precision']:.2f} / {r[k]['recall']:.2f} / {r[k]['f1']:.2f}"

        def rate(k: str, fpm: dict[str, Any] = fpm) -> str:
            v = fpm.get(k)
            return "—" if v is None else f"{v:.1f}"

        def share(v: float | None) -> str:
            return "—" if v is None else f"{v:.2f}"

        out.add_row(name, prf("overall"), prf("micro"), prf("macro"),
                    " · ".join(rate(k) for k in ("still", "moving-head", "talking", "all")),
                    f"{share(att['region_accuracy'])} · {share(att['au_accuracy'])}",
                    "offline" if r["latency_ms"]["p50"] is None else
                    f"{r['latency_ms']['p50']:.0f} / {r['latency_ms']['p95']:.0f}")
    return out
