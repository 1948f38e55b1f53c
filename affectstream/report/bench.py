"""The spotting benchmark's report (``eval spotting --report F.html``): the score table and,
per clip, the live spotter's signal over the truth, the live bursts and the baseline's.

It takes plain data (:class:`ClipPlot`, the report dict of DESIGN §4), not the benchmark's
types, so the report package stays independent of ``eval/``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from affectstream.report.page import CSS, table
from affectstream.report.svg import MACRO, MICRO, WIDTH, X0, X1, Axis, esc

Interval = tuple[int, int, str]
"""(onset frame, offset frame, kind or label), inclusive frames."""


@dataclass(frozen=True, slots=True)
class ClipPlot:
    name: str
    fps: float
    frames: int
    category: str
    truth: Sequence[Interval]
    live: Sequence[Interval]
    baseline: Sequence[Interval]
    live_signal: Sequence[float]
    """The live spotter's score per frame; NaN where the main track had no face."""


def _lane(intervals: Sequence[Interval], axis: Axis, fps: float, top: float, label: str,
          colour: str | None = None) -> list[str]:
    out = [f'<text x="{X0 - 8}" y="{top + 13}" class="lane">{esc(label)}</text>']
    for onset, offset, kind in intervals:
        x0, x1 = axis.x(onset / fps), axis.x((offset + 1) / fps)
        fill = colour or (MICRO if kind == "micro" else MACRO)
        out.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 2):.1f}" height="16" '
                   f'fill="{fill}"><title>{esc(f"frames {onset}–{offset} {kind}")}</title>'
                   "</rect>")
    return out


def clip_svg(clip: ClipPlot) -> str:
    """Signal on top, then the truth, live and baseline lanes, then the time axis."""
    axis = Axis(clip.frames / clip.fps)
    top, plot_h = 8.0, 100.0
    finite = [v for v in clip.live_signal if math.isfinite(v)]
    vmax = max([*finite, 1.0])
    out = [f'<svg class="clip" data-clip="{esc(clip.name)}" viewBox="0 0 {WIDTH} 210" '
           f'width="{WIDTH}" height="210" role="img" aria-label="clip {esc(clip.name)}">',
           f'<rect x="{X0}" y="{top}" width="{X1 - X0}" height="{plot_h}" class="plot"/>',
           f'<text x="{X0 - 8}" y="{top + 12}" class="lane">{esc(f"{vmax:.3g}")}</text>']
    for onset, offset, _kind in clip.truth:  # shade the truth behind the signal
        x0, x1 = axis.x(onset / clip.fps), axis.x((offset + 1) / clip.fps)
        out.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 2):.1f}" '
                   f'height="{plot_h}" fill="#2ca02c" fill-opacity="0.12"/>')
    segments: list[list[str]] = [[]]
    for i, v in enumerate(clip.live_signal):
        if not math.isfinite(v):  # no face: a gap in the line
            segments.append([])
            continue
        y = top + plot_h * (1 - max(v, 0.0) / vmax)
        segments[-1].append(f"{axis.x(i / clip.fps):.1f},{y:.1f}")
    for seg in (s for s in segments if len(s) > 1):
        out.append(f'<polyline class="score" points="{" ".join(seg)}" fill="none" '
                   'stroke="#222" stroke-width="1.4"/>')
    out += _lane(clip.truth, axis, clip.fps, 116, "truth", "#2ca02c")
    out += _lane(clip.live, axis, clip.fps, 138, "live")
    out += _lane(clip.baseline, axis, clip.fps, 160, "baseline", "#96a")
    out += axis.draw(182)
    out.append("</svg>")
    return "".join(out)


def _prf(r: dict[str, Any]) -> str:
    return f"{r['precision']:.2f} / {r['recall']:.2f} / {r['f1']:.2f}"


def _scores(doc: dict[str, Any]) -> str:
    rows = []
    for name, r in doc["spotters"].items():
        lat = r.get("latency_ms", {})
        fpm = r.get("controls_fpm", {}).get("all")
        rows.append([esc(name), esc(_prf(r["overall"])), esc(_prf(r["micro"])),
                     esc(_prf(r["macro"])), esc("—" if fpm is None else f"{fpm:.1f}"),
                     esc("offline" if lat.get("p50") is None
                         else f"{lat['p50']:.0f} / {lat['p95']:.0f}")])
    return table(["spotter", "overall P / R / F1", "micro P / R / F1", "macro P / R / F1",
                   "false bursts/min on controls", "latency p50 / p95 ms"], rows, "scores")


def _per_clip(doc: dict[str, Any]) -> str:
    live = {r["name"]: r for r in doc.get("per_clip", {}).get("live", [])}
    base = {r["name"]: r for r in doc.get("per_clip", {}).get("baseline", [])}

    def counts(r: dict[str, Any] | None) -> str:
        if r is None:
            return "—"
        if r["control"]:
            return f"{r['preds']} bursts ({r['bursts_per_min']}/min)"
        return f"{r['tp']} / {r['fp']} / {r['fn']}"

    rows = [[esc(name), esc(r["category"]), esc(r["truth"]), esc(counts(r)),
             esc(counts(base.get(name)))] for name, r in live.items()]
    return table(["clip", "category", "truth events", "live TP / FP / FN",
                   "baseline TP / FP / FN"], rows, "per-clip")


def render_benchmark(doc: dict[str, Any], clips: Sequence[ClipPlot], version: str,
                     note: str = "") -> str:
    """The benchmark report page; ``note`` (e.g. the figures' intervals) goes under the scores,
    a paragraph per line."""
    title = "affectstream spotting benchmark"
    head = (f"{doc['clips']} clips, {doc['events']} injected events "
            f"({doc.get('micro_events', 0)} micro), {doc.get('control_minutes', 0):.2f} min of "
            "controls; MEGC matching at IoU ≥ 0.5")
    plots = "".join(f'<h3>{esc(c.name)} <small class="meta">{esc(c.category)}, '
                    f"{c.frames} frames at {c.fps:g} fps</small></h3>{clip_svg(c)}"
                    for c in clips)
    note_html = "".join(f"<p class=\"note\">{esc(line)}</p>" for line in note.splitlines())
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{esc(title)}</h1><p class=\"meta\">affectstream {esc(version)}, "
            f"{esc(time.strftime('%Y-%m-%d %H:%M:%S'))}. {esc(head)}</p>"
            f"<h2>Scores</h2>{_scores(doc)}{note_html}<h2>Per clip</h2>{_per_clip(doc)}"
            "<h2>Signals</h2><p class=\"note\">The live spotter's score per frame of each "
            "clip's main track (gaps: no face), the injected truth shaded behind it, then "
            "the truth, the live bursts (orange micro, blue macro) and the baseline's.</p>"
            f"{plots}</body></html>\n")
