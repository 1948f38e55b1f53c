"""The ``affectstream eval …`` commands: argument handling, progress and output."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from rich.console import Console

from affectstream.config import Config
from affectstream.errors import ConfigError, SourceError
from affectstream.eval.spotbench import (
    BenchClip,
    ClipResult,
    clip_from_files,
    clip_from_manifest,
)
from affectstream.report import check_report_path
from affectstream.terminal import current


def _clips(args: argparse.Namespace, cfg: Config, model_paths: dict[str, Path],
           console: Console) -> tuple[list[BenchClip], Path | None]:
    """The clips to score and the benchmark folder they come from (None for --videos)."""
    from affectstream import models
    from affectstream.eval import benchset
    from affectstream.eval.benchclips import SETS

    if args.truth and not args.videos:
        raise ConfigError("--truth given without --videos; give the videos the truth files "
                          "belong to, in the same order")
    if args.videos:
        truths = args.truth or []
        if len(truths) != len(args.videos):
            raise ConfigError(f"{len(args.videos)} --videos but {len(truths)} --truth files; "
                              "give one truth JSON per video, in the same order")
        return [clip_from_files(v, t) for v, t in zip(args.videos, truths, strict=True)], None
    if args.bench:
        bench = benchset.load_manifest(args.bench)
    else:
        from rich.progress import Progress

        home = models.models_dir(cfg.models.home).parent
        with Progress(console=console, transient=True, disable=not current().progress) as bar:
            task = bar.add_task("benchmark set", total=None)

            def step(label: str, done: int, total: int) -> None:
                bar.update(task, description=label, completed=done, total=total)

            # the set's truth is tracked with CenterFace, whatever detector the run uses
            centerface = models.resolve_from_config("face-centerface", cfg.models)
            bench = benchset.build(home, centerface,
                                   model_paths["face-landmarker"], media=args.media,
                                   progress=step, specs=SETS[args.set], name=args.set)
    if bench.missing:
        logging.getLogger("affectstream.eval").warning(
            "benchmark sources missing (their clips are left out): %s; put them in a folder "
            "given by --media", ", ".join(bench.missing))
    clips = [clip_from_manifest(bench.folder, e) for e in bench.clips]
    if args.clips:
        unknown = set(args.clips) - {c.name for c in clips}
        if unknown:
            raise SourceError(f"no clip named {', '.join(sorted(unknown))} in {bench.folder}; "
                              f"use one of {', '.join(c.name for c in clips)}")
        clips = [c for c in clips if c.name in args.clips]
    return clips, bench.folder


def eval_spotting(args: argparse.Namespace, cfg: Config) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from affectstream.eval.spotbench import evaluate, table
    from affectstream.prepare import resolve_models

    term = current()
    console = term.console()
    if not cfg.landmarks.enabled:
        raise ConfigError("the spotting benchmark needs landmarks; set landmarks.enabled: true")
    report = check_report_path(args.report) if args.report else None  # before the long part
    model_paths = resolve_models(cfg)
    clips, folder = _clips(args, cfg, model_paths, console)
    if not clips:
        raise SourceError("no clips to score; give --videos with --truth, or --media with the "
                          "benchmark's source clips")
    plots = args.plots or (folder / "plots" if folder is not None else None)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not term.progress) as bar:
        task = bar.add_task("spotting", total=sum(c.frames for c in clips))
        done: dict[str, int] = {}

        def progress(name: str, frames: int) -> None:
            done[name] = frames
            bar.update(task, completed=sum(done.values()), description=name)

        doc, results = evaluate(cfg, model_paths, clips, plots=plots, progress=progress)
    if report is not None:
        _write_report(report, doc, results)
        term.note(f"report: {report}")
    if args.json:
        print(json.dumps(doc, ensure_ascii=False))
    else:
        Console().print(table(doc))
    if plots is not None:
        term.note(f"plots: {plots}")
    return 0


def _write_report(path: Path, doc: dict[str, Any], results: list[ClipResult]) -> None:
    """The benchmark's HTML report: the scores and each clip's signal and intervals."""
    from affectstream import __version__
    from affectstream.eval.spotbench import notes
    from affectstream.report import write_atomic
    from affectstream.report.bench import ClipPlot, render_benchmark

    clips = [ClipPlot(r.live.name, r.live.fps, r.live.frames, r.live.category,
                      [(t.onset, t.offset, t.kind) for t in r.live.truth],
                      [(p.onset, p.offset, p.kind) for p in r.live.preds],
                      [(p.onset, p.offset, p.kind) for p in r.baseline.preds],
                      r.live_signal.tolist()) for r in results]
    write_atomic(path, render_benchmark(doc, clips, __version__, notes(doc)))
