"""Fast spotter iteration on the spotting benchmark (a development tool, not product code).

``cache``: runs every benchmark clip once through the real perception code of ``run`` and keeps,
per track, what the spotter saw (aligned grey crops, blendshapes, frame index and time) and the
track's alignment template. ``score``: replays those samples through a fresh
:class:`BurstSpotter` and the same blink masking and describer as perception, and scores the
bursts with the benchmark's scorer. A spotter change can then be tried in seconds; the figures
that count are always those of ``affectstream eval spotting`` (the whole perception path).

    python scripts/spotdev.py cache [--bench DIR] [--out FILE]
    python scripts/spotdev.py score [--cache FILE] [--set spotter.min_z=3 ...] [--clips ...]
    python scripts/spotdev.py score --set spotter.min_z=2.5 --paired   # against the defaults

``--paired`` also scores the default configuration on the same samples and prints the paired
95 % bootstrap interval of the F1 difference over the injected clips: a change whose interval
holds zero is inside the noise of this benchmark.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.config import Config
from affectstream.detectors.align import FaceAligner
from affectstream.detectors.describer import describe_burst
from affectstream.detectors.motion import RegionMotion
from affectstream.detectors.samples import Sample
from affectstream.detectors.spotter import BurstSpotter
from affectstream.eval.scoring import ClipRun, PredEvent, per_clip_rows, score_runs
from affectstream.eval.spotbench import (
    Positions,
    clip_from_manifest,
    f1_lead,
    region_positions,
)
from affectstream.eval.visibility import stands_out
from affectstream.prepare import resolve_models
from affectstream.stream.offline import perceive_file

DEFAULT_BENCH = Path.home() / ".cache/affectstream/bench/spotting-v2"
EMPTY = np.zeros((1, 1, 3), np.uint8)


def cache(bench: Path, out: Path) -> None:
    cfg = Config()
    models = resolve_models(cfg)
    manifest = json.loads((bench / "manifest.json").read_text())
    clips: dict[str, Any] = {}
    for entry in manifest["clips"]:
        clip = clip_from_manifest(bench, entry)
        tracks: dict[int, dict[str, Any]] = {}

        def observe(track_id: int, sample: Sample, score: tuple[int, float],
                    tracks: dict[int, dict[str, Any]] = tracks) -> None:
            t = tracks.setdefault(track_id, {"samples": []})
            t["samples"].append((sample.index, sample.pts_s, sample.gray, sample.blendshapes))

        first: dict[int, Any] = {}
        frames = 0
        for item in perceive_file(cfg, models, clip.video, observer=observe):
            if item.frame is not None:
                frames += 1
            for face in item.result.faces:
                if face.track_id not in first and face.landmarks is not None:
                    first[face.track_id] = face.landmarks
        for tid, t in tracks.items():
            t["template"] = FaceAligner(first[tid]).template
        clips[clip.name] = {"entry": entry, "tracks": tracks, "frames": frames}
        print(clip.name, frames, {k: len(v["samples"]) for k, v in tracks.items()}, flush=True)
    out.write_bytes(pickle.dumps({"bench": str(bench), "clips": clips}))


def replay(cfg: Config, data: dict[str, Any], only: list[str] | None) -> list[ClipRun]:
    bench = Path(data["bench"])
    runs = []
    for name, doc in data["clips"].items():
        if only and name not in only:
            continue
        clip = clip_from_manifest(bench, doc["entry"])
        preds: list[PredEvent] = []
        for tid, t in doc["tracks"].items():
            motion = RegionMotion(t["template"], cfg.motion.crop_size)
            spotter = BurstSpotter(cfg.spotter, motion, clip.fps)
            for index, pts, gray, shapes, *_ in t["samples"]:
                raws = spotter.update(Sample(index, pts, gray, EMPTY, shapes))
                preds.extend(_preds(cfg, raws, tid, index))
            preds.extend(_preds(cfg, spotter.flush(), tid, t["samples"][-1][0]))
        total = max(doc["frames"], clip.frames)
        runs.append(ClipRun(name=clip.name, fps=clip.fps, frames=total, category=clip.category,
                            control=clip.control, truth=clip.truth, preds=tuple(preds),
                            natural=clip.natural))
    return runs


def _preds(cfg: Config, raws: list[Any], tid: int, last: int) -> list[PredEvent]:
    out = []
    for raw in raws:
        b = describe_burst(raw, burst_id="x", camera="c", track_id=tid, ts=0.0,
                           crop_size=cfg.motion.crop_size, micro_max_s=cfg.spotter.micro_max_s)
        out.append(PredEvent.of_burst(b, last))
    return out


def _config(sets: list[str]) -> Config:
    raw: dict[str, Any] = {}
    for item in sets:
        key, value = item.split("=", 1)
        node = raw
        *path, leaf = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = json.loads(value)
    return Config.model_validate(raw)


def summary(runs: list[ClipRun], verbose: bool) -> dict[str, Any]:
    r = score_runs(runs)
    o, mi, ma = r["overall"], r["micro"], r["macro"]
    fpm = r["controls_fpm"]
    print(f"overall P {o['precision']:.2f} R {o['recall']:.2f} F1 {o['f1']:.3f} | "
          f"micro P {mi['precision']:.2f} R {mi['recall']:.2f} | macro P {ma['precision']:.2f} "
          f"R {ma['recall']:.2f} | fpm " + " ".join(f"{k} {v:.1f}" for k, v in fpm.items()
                                                     if v is not None)
          + f" | attr {r['attribution']}")
    if verbose:
        for row in per_clip_rows(runs):
            print("  ", row)
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["cache", "score"])
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/spotcache.pkl"))
    ap.add_argument("--set", nargs="*", default=[])
    ap.add_argument("--clips", nargs="*")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--visibility", action="store_true",
                    help="recall among events that stand out from natural motion and among "
                    "buried ones (needs the controls: --controls CACHE for the held-out set)")
    ap.add_argument("--controls", type=Path, help="the default set's cache, for its controls")
    ap.add_argument("--paired", action="store_true",
                    help="also score the defaults and print the paired interval of the F1 change")
    args = ap.parse_args()
    if args.command == "cache":
        cache(args.bench, args.cache)
        return
    data = pickle.loads(args.cache.read_bytes())
    t0 = time.time()
    runs = replay(_config(args.set), data, args.clips)
    summary(runs, args.v)
    if args.paired:
        paired(runs, replay(Config(), data, args.clips))
    if args.visibility:
        controls = pickle.loads(args.controls.read_bytes())["clips"] if args.controls \
            else data["clips"]
        visibility(runs, data, controls)
    if args.explain:
        explain(runs)
    print(f"({time.time() - t0:.1f} s)", file=sys.stderr)


def paired(runs: list[ClipRun], reference: list[ClipRun]) -> None:
    """The F1 change against the reference runs, with its paired bootstrap interval."""
    lead = f1_lead(runs, reference)
    low, high = lead["interval"] or (0.0, 0.0)
    print(f"F1 change against the defaults {lead['f1_difference']:+.3f}, 95 % paired interval "
          f"{low:+.3f} to {high:+.3f}")


def explain(runs: list[ClipRun]) -> None:
    """Each injected clip's truth and predictions side by side, with the best IoU of each."""
    from affectstream.detectors.samples import frame_iou

    for run in runs:
        if run.control:
            continue
        print(f"{run.name} ({run.category})")
        for t in run.truth:
            best = max((frame_iou((t.onset, t.offset), (p.onset, p.offset)) for p in run.preds),
                       default=0.0)
            print(f"   truth {t.onset:4d}-{t.apex:4d}-{t.offset:4d} {t.kind:5s} {t.action:14s}"
                  f" best IoU {best:.2f}")
        for p in run.preds:
            best = max((frame_iou((t.onset, t.offset), (p.onset, p.offset)) for t in run.truth),
                       default=0.0)
            nat = any(a <= p.apex <= b for a, b in run.natural)
            print(f"   pred  {p.onset:4d}-{p.apex:4d}-{p.offset:4d} {p.kind:5s} "
                  f"{','.join(p.regions)[:40]:40s} IoU {best:.2f}{' natural' if nat else ''}")


def _positions(doc: dict[str, Any]) -> Positions:
    """Each frame's region positions (summed frame-to-frame flow) on the clip's main track."""
    t = max(doc["tracks"].values(), key=lambda t: len(t["samples"]))
    crops = [(sample[0], sample[2]) for sample in t["samples"]]
    return region_positions(RegionMotion(t["template"], 128), crops)


def visibility(runs: list[ClipRun], data: dict[str, Any], controls: dict[str, Any]) -> None:
    """Recall among the injected events that stand out from the footage's own motion and among
    the buried ones (:mod:`affectstream.eval.visibility`, which ``eval spotting`` reports where
    its run holds the controls; here the held-out set can borrow the default set's)."""
    from affectstream.detectors.samples import frame_iou

    rows = []
    cache: dict[str, Positions] = {}
    for run in runs:
        base = run.name.removesuffix("-h")
        control = f"{base.rsplit('-', 1)[0]}-control" if not base.endswith("-small") \
            else f"{base}-control"
        if run.control or control not in controls or base.startswith("still"):
            continue
        if control not in cache:
            cache[control] = _positions(controls[control])
        injected = _positions(data["clips"][run.name])
        for e in run.truth:
            visible = stands_out(e, injected, cache[control])
            if visible is None:
                continue
            hit = any(frame_iou((e.onset, e.offset), (p.onset, p.offset)) >= 0.5
                      and p.kind == e.kind for p in run.preds)
            rows.append((visible, hit, e.kind))
    for label, keep in (("stand out", True), ("buried", False)):
        sel = [h for v, h, _ in rows if v == keep]
        micro = [h for v, h, k in rows if v == keep and k == "micro"]
        print(f"{label}: {len(sel)} events, recall {np.mean(sel):.2f}; micro {len(micro)}, "
              f"recall {np.mean(micro):.2f}")


if __name__ == "__main__":
    main()
