"""Command-line arguments of ``affectstream eval calibrate`` and ``affectstream finetune``
(DESIGN §4), kept beside their commands so that :mod:`affectstream.cli` stays a dispatcher.
Only argparse, the sampler names and the dataset flags are imported here: building the parser
stays cheap."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def calibrate_args(esub: Any) -> None:
    """``affectstream eval calibrate``'s arguments, on the ``eval`` sub-parsers ``esub``."""
    cal = esub.add_parser("calibrate", help="fit per-class calibration offsets (vlm.calibration:"
                          " table) on labelled predictions; check them on held-out clips")
    cal.add_argument("--predictions", type=Path, required=True,
                     help="predictions.jsonl as eval dfer writes it")
    cal.add_argument("--condition", help="the (uncalibrated) condition to fit on, when the "
                     "file holds several")
    held = cal.add_mutually_exclusive_group()
    held.add_argument("--holdout", type=float, metavar="FRACTION",
                      help="keep this fraction of each class's clips out of the fit, to check on")
    held.add_argument("--heldout", type=Path, metavar="FILE",
                      help="a second predictions file to check on (other clips)")
    cal.add_argument("--seed", type=int, default=0, help="seed of the --holdout split")
    cal.add_argument("--output", type=Path, required=True,
                     help="the calibration table to write (for vlm.calibration_table)")
    cal.add_argument("--report", type=Path, help="the JSON report (default: beside --output, "
                     "NAME.report.json)")


def finetune_args(sub: Any) -> None:
    """``affectstream finetune``'s arguments, on the command sub-parsers ``sub``."""
    from affectstream.eval.datasets.args import dataset_args
    from affectstream.eval.samplers import STRATEGIES

    ft = sub.add_parser("finetune", help="LoRA fine-tuning of a transformers VLM on labelled "
                        "clips, with class-balanced samplers (docs/finetune.md)")
    ft.add_argument("--dataset", type=Path, required=True,
                    help="dataset folder or manifest file, read as eval dfer reads it: class "
                    "folders of videos or frame folders, a CSV/JSONL manifest, DFEW, MAFW, "
                    "FERV39k (--format)")
    # finetune's own --split help: it has no test-split default for the official layouts
    dataset_args(ft, format_default=None, split_help="dfew/mafw: train-K (or all-K, test-K); "
                 "ferv39k: train or test; required for these three; folder: a subfolder; "
                 "manifest: the split column (default: every row)")
    ft.add_argument("--vlm-model", required=True, help="base model: hub id or local directory")
    ft.add_argument("--output", type=Path, required=True, help="folder for the adapter, "
                    "checkpoints and train_log.jsonl")
    ft.add_argument("--sampler", choices=STRATEGIES, default="natural",
                    help="class sampling: natural, balanced, sqrt, progressive (natural → "
                    "balanced over the epochs) or decoupled (natural, then balanced)")
    ft.add_argument("--switch-epoch", type=int, help="decoupled: epochs of natural sampling "
                    "before balanced (default: half, rounded up)")
    ft.add_argument("--epochs", type=int, help="epochs (default 3, or enough for --steps)")
    ft.add_argument("--steps", type=int, help="stop after this many optimizer steps")
    ft.add_argument("--batch-size", type=int, default=4, help="clips per optimizer step")
    ft.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    ft.add_argument("--lora-r", type=int, default=8, help="LoRA rank")
    ft.add_argument("--lora-alpha", type=float, help="LoRA alpha (default 2 × rank)")
    ft.add_argument("--lora-targets", help="regex of the modules to adapt (default: the "
                    "language model's attention projections)")
    ft.add_argument("--frames", type=int, default=4, help="frames sampled uniformly per clip")
    ft.add_argument("--max-side", type=int, default=448, help="longest side of a frame (px)")
    ft.add_argument("--labels", choices=["dfew7", "mafw11"], default="dfew7", help="label set")
    ft.add_argument("--seed", type=int, default=0, help="seed of the sampler and LoRA init")
    ft.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    ft.add_argument("--dtype", choices=["float32", "float16", "bfloat16"],
                    help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    ft.add_argument("--merge", action="store_true", help="also write merged full weights to "
                    "OUTPUT/merged (for vLLM and other servers)")
