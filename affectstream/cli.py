"""Command line (DESIGN §4). Exit codes: 0 success, 2 bad usage/config/input (one line on
stderr naming the problem and the fix), 1 unexpected internal error, 130 interrupted."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from affectstream.cliargs import (
    common_run_args,
    report_arg,
    research_commands,
    subparsers,
    subscriber_commands,
    terminal_args,
    web_args,
)
from affectstream.errors import AffectStreamError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="affectstream",
        description="Real-time facial micro-expression bursts and emotion updates from video.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    terminal_args(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the main job: watch a source and publish what it finds")
    common_run_args(run)
    run.add_argument("--source", help="webcam index (0), rtsp://…, http(s)://…, a file, or demo")
    run.add_argument("--sink", action="append",
                     help="mqtt://[user:pass@]host[:port][/prefix], mqtts://…, mqtt://embedded, "
                     "jsonl:PATH or stdout (repeatable)")
    run.add_argument("--vlm-backend", choices=["none", "transformers", "openai"])
    run.add_argument("--vlm-model", help="VLM model id or local directory")
    run.add_argument("--vlm-url", help="OpenAI-compatible server URL")
    run.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    run.add_argument("--no-realtime", action="store_true", help="run a file as fast as possible")
    run.add_argument("--loop", action="store_true", help="repeat a file source")
    report_arg(run)
    web_args(run)

    demo = sub.add_parser("demo", help="the main job on the built-in demo clip (offline, CPU)")
    demo.add_argument("--no-realtime", action="store_true", help="run the clip as fast as possible")
    demo.add_argument("--sink", action="append", help="extra sinks (mqtt://…, jsonl:PATH, stdout)")
    report_arg(demo)
    web_args(demo)

    spot = sub.add_parser("spot", help="offline burst spotting on a file")
    common_run_args(spot)
    spot.add_argument("--source", required=True, help="video or image file")
    spot.add_argument("--json", action="store_true", help="print JSON")
    report_arg(spot)

    bench = sub.add_parser("bench", help="perception throughput and per-stage latency")
    common_run_args(bench)
    bench.add_argument("--source", required=True, help="video file")
    bench.add_argument("--frames", type=int, help="frames to process (loops the file)")
    bench.add_argument("--json", action="store_true", help="print JSON")
    bench.add_argument("--pipeline", choices=["perception", "full"],
                       help="perception alone (default without a VLM) or the whole run "
                       "pipeline with its emotion stage (default with --vlm-backend)")
    bench.add_argument("--vlm-backend", choices=["none", "transformers", "openai"])
    bench.add_argument("--vlm-model", help="VLM model id or local directory")
    bench.add_argument("--vlm-url", help="OpenAI-compatible server URL")
    web_args(bench, metrics=False)  # with --pipeline full: measures the preview's cost

    models = sub.add_parser("models", help="model registry")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    msub.add_parser("list", help="registered models and whether they are cached")
    fetch = msub.add_parser("fetch", help="download models into the cache")
    fetch.add_argument("name", nargs="?", help="model name (default: all)")
    path = msub.add_parser("path", help="print the local path of a model (fetching it if needed)")
    path.add_argument("name")

    research_commands(sub)

    config = sub.add_parser("config", help="configuration")
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    csub.add_parser("schema", help="print the JSON schema of the config")
    check = csub.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path)
    subscriber_commands(sub)
    for command in subparsers(parser):
        terminal_args(command, top=False)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    source: dict[str, Any] = {}
    if getattr(args, "source", None) is not None:
        source["url"] = args.source
        out["cameras"] = []  # --source runs one camera, whatever cameras: the file lists
    if getattr(args, "no_realtime", False):
        source["realtime"] = False
    if getattr(args, "loop", False):
        source["loop"] = True
    if source:
        out["source"] = source
    if getattr(args, "camera_id", None):
        out["camera_id"] = args.camera_id
    if getattr(args, "sink", None):
        out["sinks"] = args.sink
    if getattr(args, "max_seconds", None) is not None:
        out["max_seconds"] = args.max_seconds
    vlm = {k: v for k, v in (("type", getattr(args, "vlm_backend", None)),
                             ("model", getattr(args, "vlm_model", None)),
                             ("url", getattr(args, "vlm_url", None))) if v is not None}
    if vlm:
        out["vlm"] = vlm
    out.update(_web_overrides(args))
    return out


def _web_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from affectstream.webconfig import parse_address

    out: dict[str, Any] = {}
    for flag in ("preview", "metrics"):
        spec = getattr(args, flag, None)
        if spec is not None:
            host, port = parse_address(spec, f"--{flag}")
            out[flag] = {"host": host, "port": port}
    return out


def _load(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Any:
    from affectstream.config import load_config, merge_dicts

    return load_config(getattr(args, "config", None), merge_dicts(extra or {}, _overrides(args)))


def _cmd_run(args: argparse.Namespace) -> int:
    from affectstream.runs import run_command
    from affectstream.terminal import current

    summary = run_command(_load(args), args.report)
    current().note(f"processed {summary.frames} frames, {summary.burst_count} bursts, "
                   f"{summary.tracks} tracks in {summary.duration_s:.1f} s")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import importlib.util

    from affectstream.demo import run_demo

    # The demo publishes over an embedded broker when the optional `broker` extra is there.
    sinks = ["mqtt://embedded"] if importlib.util.find_spec("amqtt") is not None else []
    if not sinks:
        from affectstream.terminal import current

        current().note("affectstream: the demo runs without MQTT; pip install "
                       "'affectstream[broker]' to publish it over an embedded broker")
    extra, args.sink = list(args.sink or []), None  # --sink adds to the demo's sinks
    return run_demo(_load(args, {"source": {"url": "demo"}, "sinks": sinks + extra}),
                    report=args.report)


def _cmd_spot(args: argparse.Namespace) -> int:
    from affectstream.prepare import resolve_models
    from affectstream.runs import spot_command

    cfg = _load(args)
    result = spot_command(cfg, resolve_models(cfg), Path(args.source), args.report)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(f"{result.frames} frames at {result.fps:g} fps, {len(result.bursts)} bursts")
        for b in result.bursts:
            print(f"  track {b.track_id}  frames {b.onset_frame}–{b.offset_frame}  {b.text}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from affectstream.benchmark import bench_file, bench_pipeline
    from affectstream.prepare import resolve_models

    cfg = _load(args)
    pipeline = args.pipeline or ("full" if cfg.vlm.type != "none" else "perception")
    if args.preview is not None and pipeline != "full":
        from affectstream.errors import ConfigError

        raise ConfigError("--preview needs the run pipeline: add --pipeline full")
    if pipeline == "full":
        report = bench_pipeline(cfg, Path(args.source), args.frames or 300)
    else:
        report = bench_file(cfg, resolve_models(cfg), Path(args.source), args.frames)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['frames']} frames, {report['fps']} fps, providers "
              f"{', '.join(report['providers'])}"
              + (f", full pipeline, emotions from {report['emotion_source']}"
                 if pipeline == "full" else ""))
        for stage, pct in {**report["stages_ms"], "end_to_end": report["end_to_end_ms"]}.items():
            if pct["p50"] is not None:  # a stage that never ran (e.g. classify) is left out
                print(f"  {stage:<12} p50 {pct['p50']:7.2f} ms   p95 {pct['p95']:7.2f} ms")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from affectstream import models

    if args.models_command == "list":
        for spec, cached in models.list_models():
            where = str(cached) if cached else "not cached"
            print(f"{spec.name:<16} {spec.filename:<22} {spec.license:<11} {where}")
        return 0
    if args.models_command == "fetch":
        names = [args.name] if args.name else list(models.REGISTRY)
        for name in names:
            print(f"{name}: {models.resolve(name)}")
        return 0
    print(models.resolve(args.name))
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from affectstream.config import json_schema, load_config

    if args.config_command == "schema":
        print(json_schema())
        return 0
    load_config(args.file)
    print(f"{args.file}: ok")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.eval_command == "dfer":
        from affectstream.eval.dfer_command import eval_dfer

        return eval_dfer(args, _load(args))
    if args.eval_command == "calibrate":
        from affectstream.eval.calibrate import calibrate_command

        return calibrate_command(args)
    from affectstream.eval.commands import eval_spotting

    return eval_spotting(args, _load(args))


def _cmd_finetune(args: argparse.Namespace) -> int:
    from affectstream.eval.finetune import finetune_command

    return finetune_command(args)


def _cmd_schema(args: argparse.Namespace) -> int:
    from affectstream.schemas.export import all_schemas, write_schemas

    if args.out is None:
        print(json.dumps(all_schemas(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(map(str, write_schemas(args.out))))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from affectstream.publish.replay import ReplayOptions, replay_command
    from affectstream.terminal import current

    options = ReplayOptions(args.file, args.sink, args.speed, args.loop, args.camera_id,
                            args.prefix)
    sent = replay_command(options, _load(argparse.Namespace(config=args.config)).mqtt)
    current().note(f"replayed {sent} messages")
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    from affectstream.watch import watch_command

    return watch_command(args.url, _load(argparse.Namespace(config=args.config)).mqtt,
                         args.seconds)


_COMMANDS = {"run": _cmd_run, "demo": _cmd_demo, "spot": _cmd_spot, "bench": _cmd_bench,
             "models": _cmd_models, "config": _cmd_config, "eval": _cmd_eval,
             "finetune": _cmd_finetune, "schema": _cmd_schema, "replay": _cmd_replay,
             "watch": _cmd_watch}


def _quiet_native_logs() -> None:
    # MediaPipe/TFLite log through glog/absl to stderr; keep them to errors unless -v.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Our own one-line error says what failed; OpenCV/FFmpeg would add their own noise.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


# Config fields that a flag sets, with the flag and its argparse dest: library errors name the
# field, and the one line printed here adds the flag where this command has it.
_FLAGS = {"vlm.url": ("--vlm-url", "vlm_url"), "vlm.model": ("--vlm-model", "vlm_model"),
          "vlm.type": ("--vlm-backend", "vlm_backend"), "source.url": ("--source", "source"),
          "camera_id": ("--camera-id", "camera_id"),
          "max_seconds": ("--max-seconds", "max_seconds"), "sinks": ("--sink", "sink"),
          "preview.host": ("--preview", "preview"), "metrics.host": ("--metrics", "metrics")}
# A whole field name only: not vlm.context.captioner_url's tail, a path or a longer key.
_FIELD = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, _FLAGS)) + r")(?![\w/-]|\.\w)")


def _with_flags(message: str, args: argparse.Namespace) -> str:
    """``message`` with ``(--flag)`` after each config field that one of this command's
    flags sets: ``vlm.url`` → ``vlm.url (--vlm-url)``."""
    def add(m: re.Match[str]) -> str:
        flag, dest = _FLAGS[m.group(1)]
        return f"{m.group(1)} ({flag})" if dest in vars(args) else m.group(1)
    return _FIELD.sub(add, message)


def main(argv: list[str] | None = None) -> int:
    from affectstream.terminal import Terminal, session, setup_logging

    args = _build_parser().parse_args(argv)
    term = Terminal(quiet=args.quiet, log_format=args.log_format, force_progress=args.progress)
    setup_logging(term, args.verbose)
    if args.verbose < 2:
        _quiet_native_logs()
    with session(term):
        try:
            return _COMMANDS[args.command](args)
        except AffectStreamError as exc:
            term.error(f"affectstream: error: {_with_flags(str(exc), args)}")
            return 2
        except KeyboardInterrupt:
            term.error("affectstream: interrupted")
            return 130
        except Exception as exc:
            if args.debug:
                raise
            term.error(f"affectstream: internal error: {type(exc).__name__}: {exc}; rerun with "
                       "--debug and report it")
            return 1
