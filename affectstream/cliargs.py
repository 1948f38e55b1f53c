"""The command line's argument definitions (DESIGN §4), shared by its commands; the commands
themselves are in :mod:`affectstream.cli`."""

from __future__ import annotations

import argparse
from pathlib import Path

from affectstream.eval.dfer_command import add_arguments
from affectstream.eval.tuneargs import calibrate_args, finetune_args


def common_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML config file (see configs/default.yaml)")
    p.add_argument("--camera-id", help="camera name used in topics and messages")


def terminal_args(p: argparse.ArgumentParser, *, top: bool) -> None:
    """On the program and on every command (``affectstream --quiet run`` and ``affectstream
    run --quiet`` alike); a command's copy defaults to SUPPRESS so it never undoes the
    program's."""
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS
    p.add_argument("-q", "--quiet", action="store_true", default=default(False),
                   help="warnings and errors only: no progress bars, no notes")
    p.add_argument("--log-format", choices=["text", "json"], default=default("text"),
                   help="json: one JSON object per stderr line (ts, level, logger, message)")
    p.add_argument("--progress", action="store_true", default=default(False),
                   help="draw progress bars even when stderr is not a terminal")


def report_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", type=Path, metavar="F.html",
                   help="write a self-contained HTML report of the run to this file when it "
                   "ends")


def web_args(p: argparse.ArgumentParser, *, metrics: bool = True) -> None:
    p.add_argument("--preview", metavar="HOST:PORT",
                   help="serve the live preview page (annotated video, events, /metrics) on "
                   "HOST:PORT, :PORT or PORT (host 127.0.0.1)")
    if metrics:
        p.add_argument("--metrics", metavar="HOST:PORT",
                       help="serve Prometheus /metrics and /healthz on a port of their own")


def research_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``eval spotting``, ``eval dfer``, ``eval calibrate`` and ``finetune``."""
    ev = sub.add_parser("eval", help="research tools: benchmarks and evaluations")
    esub = ev.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    sp = esub.add_parser("spotting", help="spotting benchmark: live spotter vs the LBP baseline, "
                         "MEGC scoring (builds the default set once when no clips are given)")
    common_run_args(sp)
    sp.add_argument("--bench", type=Path, help="a built benchmark folder (with manifest.json)")
    sp.add_argument("--videos", type=Path, nargs="+", help="video files to score instead")
    sp.add_argument("--truth", type=Path, nargs="+", help="one truth JSON per --videos file")
    sp.add_argument("--media", type=Path, help="folder holding the benchmark's source clips")
    sp.add_argument("--set", choices=["default", "heldout"], default="default",
                    help="the built-in set to build and score: default, or heldout (the same "
                    "footage with other injections, no controls)")
    sp.add_argument("--clips", nargs="+", help="only these clips of the set (by name)")
    sp.add_argument("--plots", type=Path,
                    help="folder for one PNG per clip (default: plots/ in the benchmark folder)")
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    report_arg(sp)
    dfer = esub.add_parser("dfer", help="VLM emotion recognition on a DFER dataset under the "
                           "paper's conditions (sparse, dense, enriched, events; calibrated)")
    common_run_args(dfer)
    dfer.add_argument("--vlm-backend", choices=["transformers", "openai"])
    dfer.add_argument("--vlm-model", help="served model name or model directory")
    dfer.add_argument("--vlm-url", help="OpenAI-compatible server URL (…/v1)")
    add_arguments(dfer)

    calibrate_args(esub)
    finetune_args(sub)


def subscriber_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``schema``, ``replay`` and ``watch``: for the apps that subscribe to a run."""
    schema = sub.add_parser("schema", help="JSON Schemas of the published messages")
    ssub = schema.add_subparsers(dest="schema_command", required=True, metavar="ACTION")
    msgs = ssub.add_parser("messages", help="one JSON Schema per message (as shipped)")
    msgs.add_argument("--out", type=Path, help="write one file per message into this folder "
                      "(default: print them all as one JSON object)")
    replay = sub.add_parser("replay", help="republish a recorded run (a JSONL sink's file) "
                            "at its original pace")
    replay.add_argument("file", type=Path, metavar="FILE.jsonl")
    replay.add_argument("--sink", action="append", required=True,
                        help="mqtt://[user:pass@]host[:port][/prefix], mqtts://…, jsonl:PATH "
                        "or stdout (repeatable)")
    replay.add_argument("--speed", type=float, default=1.0,
                        help="pace factor: 2 replays twice as fast (default 1)")
    replay.add_argument("--loop", action="store_true", help="start over at the end, forever")
    replay.add_argument("--camera-id", help="publish as this camera (a one-camera recording)")
    replay.add_argument("--prefix", help="topic prefix (default: the sink URL's, else "
                        "affectstream)")
    watch = sub.add_parser("watch", help="live terminal view of every camera on a broker")
    watch.add_argument("url", metavar="mqtt://host[:port][/prefix]")
    watch.add_argument("--seconds", type=float,
                       help="stop after this many seconds (default: until Ctrl-C)")
    for p in (replay, watch):
        p.add_argument("--config", type=Path, help="YAML config (its mqtt section: TLS, "
                       "credentials)")


def subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command and action parser below ``parser``."""
    out = []
    for action in parser._actions:  # argparse has no public walk of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                out += [child, *subparsers(child)]
    return out
