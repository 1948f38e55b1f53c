"""``affectstream eval dfer``: the dataset, the conditions and the VLM from the command line,
a progress bar over every (clip, condition) request, the outputs and a short summary."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from affectstream.config import Config, OpenAIVlmConfig, TransformersVlmConfig
from affectstream.errors import ConfigError
from affectstream.terminal import current

DEFAULT_CONDITIONS = ("uniform-4", "dense-5", "enriched-detectors", "enriched-vlm", "events")
"""Imported by the CLI's parser, so kept here, away from the heavy condition builders."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's flags (the CLI adds ``--config`` and the VLM flags)."""
    from affectstream.eval.datasets.args import dataset_args

    p.add_argument("--dataset", type=Path, required=True,
                   help="dataset folder (or manifest file)")
    dataset_args(p, format_default="folder")
    p.add_argument("--conditions", nargs="+", default=list(DEFAULT_CONDITIONS), metavar="C",
                   help="uniform-K, dense-F (1, 5, 10), enriched-detectors, enriched-vlm, "
                   "events; +cal adds the calibrated twin (default: %(default)s)")
    p.add_argument("--labels", choices=["dfew7", "mafw11"],
                   help="label set (default: mafw11 for --format mafw, else vlm.labels)")
    p.add_argument("--balanced", type=int, metavar="N", help="N clips per class (seeded)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N clips (seeded sample)")
    p.add_argument("--seed", type=int, default=0, help="seed of --balanced and --limit")
    p.add_argument("--decode", choices=["generate", "score"], help="vlm.decode")
    p.add_argument("--calibration-table", type=Path, metavar="F.json",
                   help="offsets for the +cal conditions (default: contextual calibration)")
    p.add_argument("--concurrency", type=int, default=1, metavar="N",
                   help="requests in flight at once (a server backend; default 1)")
    p.add_argument("--output", type=Path, required=True, help="folder for the results "
                   "(reruns resume from its cache)")


def _vlm(cfg: Config, args: argparse.Namespace) -> OpenAIVlmConfig | TransformersVlmConfig:
    vlm = cfg.vlm
    if not isinstance(vlm, OpenAIVlmConfig | TransformersVlmConfig):
        raise ConfigError("eval dfer needs a VLM: give --vlm-backend openai (with --vlm-url) or "
                          "transformers (with --vlm-model)")
    if args.decode:
        vlm = vlm.model_copy(update={"decode": args.decode})
    return vlm


def eval_dfer(args: argparse.Namespace, cfg: Config) -> int:
    from affectstream.eval.datasets import load_dataset
    from affectstream.eval.dfer_conditions import parse_conditions
    from affectstream.eval.dfer_report import write_outputs
    from affectstream.eval.dfer_run import EvalJob
    from affectstream.labels import label_set
    from affectstream.prepare import resolve_models

    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    vlm = _vlm(cfg, args)
    labels = label_set(args.labels or ("mafw11" if args.format == "mafw" else vlm.labels))
    conditions, wanted = parse_conditions(args.conditions, vlm.keyframes)
    dataset = load_dataset(args.dataset, args.format, args.split, labels,
                           skip_bad=args.skip_bad, balanced=args.balanced, limit=args.limit,
                           seed=args.seed)
    job = EvalJob(cfg, vlm, resolve_models(cfg), dataset, conditions, wanted, args.output,
                  args.concurrency, args.skip_bad, args.calibration_table)
    result = _run(job)
    served = next((r["model"] for r in result.records if r.get("model")), vlm.model or "")
    metrics = write_outputs(args.output, dataset, result.records, wanted, model=served,
                            backend=vlm.type, calibration=result.calibration,
                            failures=result.failures, skipped=result.skipped)
    _summary(metrics, args.output)
    return 0


def _run(job: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from affectstream.eval.dfer_run import evaluate

    term = current()
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    total = len(job.dataset.clips) * len(job.conditions)
    with Progress(*columns, console=term.console(), transient=True,
                  disable=not term.progress) as bar:
        task = bar.add_task("eval dfer", total=total)

        def progress(clip: str, done: int) -> None:
            bar.update(task, advance=done, description=clip)

        return asyncio.run(evaluate(job, progress))


def _summary(metrics: dict[str, dict[str, Any]], output: Path) -> None:
    term = current()
    for name, m in metrics.items():
        term.note(f"{name}: UAR {m['uar']:.3f}  WAR {m['war']:.3f}  macro-F1 "
                  f"{m['macro_f1']:.3f}  ({m['n']} clips)")
    term.note(f"report: {output / 'report.md'}")
