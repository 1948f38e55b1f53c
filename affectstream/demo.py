"""``affectstream demo``: the full pipeline on the built-in clip, a live table, and a summary
that compares the bursts found with the expressions injected into the clip."""

from __future__ import annotations

import sys
import time
from collections import deque
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from affectstream import app, prepare
from affectstream.config import Config
from affectstream.eval.democlip import DemoClip, load_demo_truth
from affectstream.eval.metrics import interval_iou, score_spotting
from affectstream.report import open_report
from affectstream.terminal import current
from affectstream.types import Burst, FrameResult


class _LiveView:
    def __init__(self, console: Console) -> None:
        self.frames = 0
        self.faces = 0
        self.started = time.monotonic()
        self.recent: deque[Burst] = deque(maxlen=8)
        self.count = 0
        self.live = Live(self.render(), console=console, refresh_per_second=4, transient=False)

    def on_result(self, result: FrameResult) -> None:
        if result.faces or result.bursts or result.log_lines or result.track_events:
            self.frames = max(self.frames, result.frame_index + 1)
        self.faces = len(result.faces)
        for burst in result.bursts:
            self.recent.append(burst)
            self.count += 1
        self.live.update(self.render())

    def render(self) -> Group:
        elapsed = time.monotonic() - self.started
        head = Text(f"affectstream demo — frame {self.frames}, {elapsed:4.1f} s, "
                    f"faces {self.faces}, bursts {self.count}", style="bold")
        table = Table(expand=True)
        for col in ("track", "frames", "kind", "description"):
            table.add_column(col)
        for b in self.recent:
            table.add_row(str(b.track_id), f"{b.onset_frame}–{b.offset_frame}", b.kind, b.text)
        return Group(head, table)


def summarize(clip: DemoClip, bursts: list[Burst]) -> tuple[Table, str]:
    truth = [(e.onset_frame, e.offset_frame) for e in clip.truth]
    pred = [(b.onset_frame, b.offset_frame) for b in bursts]
    score = score_spotting(pred, truth, 0.5)
    table = Table(title="injected expressions vs found bursts")
    for col in ("injected", "frames", "kind", "best found", "IoU", "found?"):
        table.add_column(col)
    hits_any = 0
    for expr, interval in zip(clip.truth, truth, strict=True):
        best = max(pred, key=lambda p: interval_iou(p, interval), default=None)
        iou = interval_iou(best, interval) if best else 0.0
        hits_any += iou > 0
        found = "yes" if iou >= 0.5 else ("overlaps" if iou > 0 else "missed")
        table.add_row(expr.action, f"{interval[0]}–{interval[1]}", expr.kind,
                      f"{best[0]}–{best[1]}" if best and iou > 0 else "—", f"{iou:.2f}", found)
    line = (f"injected {len(truth)}, found {len(pred)} bursts; "
            f"matched at IoU ≥ 0.5: {score.tp}/{len(truth)} (recall {score.recall:.2f}, "
            f"precision {score.precision:.2f}, F1 {score.f1:.2f}); "
            f"overlapping any burst: {hits_any}/{len(truth)}")
    return table, line


def run_demo(cfg: Config, report: Path | None = None) -> int:
    """The demo; ``report``: also write the run report there. With ``--quiet`` or JSON logs
    the live table and the summary table are left out (the summary line is a note)."""
    term = current()
    console = Console(file=sys.stderr, quiet=term.quiet or term.json)
    model_paths = prepare.resolve_models(cfg)
    console.print("[dim]preparing the demo clip (built once from scikit-image's astronaut "
                  "photo)…[/dim]")
    clip = load_demo_truth(prepare.demo_clip_path(cfg, model_paths["face-landmarker"]))
    console.print(f"demo clip: {clip.path} ({clip.frames} frames at {clip.fps:g} fps, "
                  f"{len(clip.truth)} injected expressions)")
    view = _LiveView(console)
    with open_report(report, cfg, "demo") as rep:
        if rep is not None:
            rep.source(cfg.camera_id, f"demo clip {clip.path}")
        with view.live:
            summary = app.Runner(cfg, on_result=view.on_result, keep_bursts=True,
                                 taps=rep.taps if rep else [],
                                 sinks=rep.sinks if rep else []).run_sync()
    table, line = summarize(clip, summary.bursts)
    console.print(table)
    term.note(line)
    fps = summary.stats.get("fps", 0.0)
    term.note(f"processed {summary.frames} frames in {summary.duration_s:.1f} s "
              f"(perception {fps} fps), {summary.tracks} track(s)")
    if rep is not None:
        term.note(f"report: {rep.path}")
    return 0
