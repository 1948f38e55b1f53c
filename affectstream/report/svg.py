"""Inline SVG plots of the report: a timeline per camera (bursts and emotion probabilities,
one panel per track) and the spotting signal per track (``spot``).

Plain SVG elements, no script: a burst's text shows on hover through its ``<title>``, which
browsers render as a tooltip. The ``svg`` elements carry no ``xmlns`` (HTML5 does not need it),
so the file holds no ``http://`` reference at all. Every text goes through :func:`esc`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

WIDTH = 960
X0, X1 = 64, WIDTH - 16
"""Plot area left/right edges (the left margin holds the lane labels)."""
MICRO, MACRO = "#e8871e", "#3c78c8"
LABEL_COLOURS = {
    "happiness": "#2ca02c", "sadness": "#1f77b4", "neutral": "#7f7f7f", "anger": "#d62728",
    "surprise": "#ff7f0e", "disgust": "#8c564b", "fear": "#9467bd", "contempt": "#e377c2",
    "anxiety": "#bcbd22", "helplessness": "#17becf", "disappointment": "#393b79",
}
_FALLBACK = ("#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")
_TICK_STEPS_S = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
MAX_POINTS = 1500
"""Signal points drawn per track: longer signals keep each bucket's maximum (peaks survive)."""


def esc(text: object) -> str:
    """HTML-escaped text; ``://`` written as character references, so no user-supplied text
    (a URL in a VLM rationale, a model name) reads as an ``http://`` reference in the file."""
    return html.escape(str(text), quote=True).replace("://", "&#58;&#47;&#47;")


def label_colour(label: str, labels: Sequence[str]) -> str:
    if label in LABEL_COLOURS:
        return LABEL_COLOURS[label]
    return _FALLBACK[list(labels).index(label) % len(_FALLBACK)] if label in labels \
        else _FALLBACK[0]


class Axis:
    """Stream time ``[0, end_s]`` onto the plot's x range."""

    def __init__(self, end_s: float) -> None:
        self.end_s = max(end_s, 0.1)

    def x(self, t: float) -> float:
        return X0 + max(0.0, min(t, self.end_s)) * (X1 - X0) / self.end_s

    def ticks(self) -> list[float]:
        step = next((s for s in _TICK_STEPS_S if self.end_s / s <= 10), _TICK_STEPS_S[-1])
        return [i * step for i in range(int(self.end_s / step) + 1)]

    def draw(self, y: float) -> list[str]:
        out = [f'<line x1="{X0}" y1="{y}" x2="{X1}" y2="{y}" class="axis"/>']
        for t in self.ticks():
            x = self.x(t)
            label = f"{t:g} s"
            out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" class="axis"/>'
                       f'<text x="{x:.1f}" y="{y + 15}" class="tick">{esc(label)}</text>')
        return out


def _burst_rect(b: dict[str, Any], axis: Axis, top: float, height: float) -> str:
    x0, x1 = axis.x(float(b["onset_s"])), axis.x(float(b["offset_s"]))
    colour = MICRO if b.get("kind") == "micro" else MACRO
    tip = (f"{float(b['onset_s']):.2f}–{float(b['offset_s']):.2f} s, {b.get('kind')}: "
           f"{b.get('text', '')}")
    return (f'<rect class="burst" data-burst="{esc(b["id"])}" x="{x0:.1f}" y="{top}" '
            f'width="{max(x1 - x0, 2):.1f}" height="{height}" fill="{colour}" '
            f'fill-opacity="0.35"><title>{esc(tip)}</title></rect>')


def _polyline(points: Sequence[tuple[float, float]], colour: str, cls: str,
              title: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    if len(points) == 1:  # one update: a dot, or nothing would show
        x, y = points[0]
        return (f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
                f'<title>{esc(title)}</title></circle>')
    return (f'<polyline class="{cls}" points="{coords}" fill="none" stroke="{colour}" '
            f'stroke-width="1.6"><title>{esc(title)}</title></polyline>')


def _track_panel(track_id: int, bursts: list[dict[str, Any]], emotions: list[dict[str, Any]],
                 span: dict[str, float] | None, axis: Axis, top: float,
                 labels: Sequence[str]) -> list[str]:
    """One track: its span, its bursts on a band and behind the curves, and one curve per
    emotion label (each update drawn over its window)."""
    band, plot_top, plot_h = top + 4, top + 28, 100.0
    out = [f'<text x="{X0 - 8}" y="{band + 12}" class="lane">track {track_id}</text>',
           f'<text x="{X0 - 8}" y="{plot_top + 10}" class="lane">p</text>',
           f'<rect x="{X0}" y="{plot_top}" width="{X1 - X0}" height="{plot_h}" class="plot"/>']
    if span is not None:
        x0 = axis.x(span.get("first_s", 0.0))
        x1 = axis.x(span.get("last_s", axis.end_s))
        out.append(f'<rect x="{x0:.1f}" y="{band}" width="{max(x1 - x0, 1):.1f}" height="18" '
                   'class="span"><title>track visible</title></rect>')
    for b in bursts:
        out.append(_burst_rect(b, axis, band, 18))
        out.append(_burst_rect(b, axis, plot_top, plot_h).replace('class="burst"',
                                                                  'class="burst-shade"'))
    for label in labels:
        steps = [(axis.x(float(e["window"]["start_s"])), axis.x(float(e["window"]["end_s"])),
                  plot_top + plot_h * (1 - float(e["probs"].get(label, 0.0))))
                 for e in emotions if label in e["probs"]]
        if steps:
            out.append(_steps(steps, label_colour(label, labels),
                              f"track {track_id}: p({label}) per update window"))
    return out


def _steps(steps: Sequence[tuple[float, float, float]], colour: str, title: str) -> str:
    """One horizontal segment per update, over its window: an estimate holds for the window
    it was made on, not at a point in time."""
    d = " ".join(f"M{x0:.1f},{y:.1f}H{max(x1, x0 + 2):.1f}" for x0, x1, y in steps)
    return (f'<path class="prob" d="{d}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{esc(title)}</title></path>")


def timeline(record_bursts: Sequence[dict[str, Any]], emotions: Sequence[dict[str, Any]],
             tracks: dict[int, dict[str, float]], end_s: float,
             max_tracks: int = 12) -> tuple[str, list[str], int]:
    """The camera's timeline SVG, the labels it draws, and how many tracks were left out
    (those with the fewest bursts and updates, beyond ``max_tracks``)."""
    axis = Axis(end_s)
    ids = set(tracks) | {int(b["track_id"]) for b in record_bursts} \
        | {int(e["track_id"]) for e in emotions}
    weight = {t: sum(int(b["track_id"]) == t for b in record_bursts)
              + sum(int(e["track_id"]) == t for e in emotions) for t in ids}
    shown = sorted(sorted(ids, key=lambda t: -weight[t])[:max_tracks])
    labels = list(dict.fromkeys(k for e in emotions for k in e["probs"]))
    panel_h = 140
    height = 12 + panel_h * max(len(shown), 1) + 28
    out = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
           f'height="{height}" role="img" aria-label="timeline of bursts and emotion '
           'probabilities">']
    if not shown:
        out.append(f'<text x="{X0}" y="40" class="empty">no faces were tracked</text>')
    for i, track_id in enumerate(shown):
        out += _track_panel(track_id, [b for b in record_bursts if int(b["track_id"]) == track_id],
                            [e for e in emotions if int(e["track_id"]) == track_id],
                            tracks.get(track_id), axis, 12 + i * panel_h, labels)
    out += axis.draw(12 + panel_h * max(len(shown), 1))
    out.append("</svg>")
    return "".join(out), labels, len(ids) - len(shown)


def _downsample(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return list(points)
    size = math.ceil(len(points) / MAX_POINTS)
    return [max(points[i:i + size], key=lambda p: p[1]) for i in range(0, len(points), size)]


def signal_plot(track_id: int, points: Sequence[tuple[int, float]], fps: float,
                bursts: Sequence[dict[str, Any]], end_s: float) -> str:
    """The spotter's score over time for one track, with its bursts shaded behind it."""
    axis = Axis(end_s)
    top, plot_h = 8.0, 120.0
    values = [v for _, v in points if math.isfinite(v)]
    vmax = max([*values, 1.0])  # scores are multiples of a region's noise: 1 is the floor
    series = _downsample([(i / fps, v) for i, v in points if math.isfinite(v)])
    out = [f'<svg class="signal" data-track="{track_id}" viewBox="0 0 {WIDTH} 160" '
           f'width="{WIDTH}" height="160" role="img" aria-label="spotting signal of track '
           f'{track_id}">',
           f'<rect x="{X0}" y="{top}" width="{X1 - X0}" height="{plot_h}" class="plot"/>',
           f'<text x="{X0 - 8}" y="{top + 12}" class="lane">{esc(f"{vmax:.3g}")}</text>',
           f'<text x="{X0 - 8}" y="{top + plot_h}" class="lane">0</text>']
    out += [_burst_rect(b, axis, top, plot_h) for b in bursts]
    pts = [(axis.x(t), top + plot_h * (1 - max(v, 0.0) / vmax)) for t, v in series]
    if pts:
        out.append(_polyline(pts, "#222", "score", f"track {track_id}: spotter score"))
    out += axis.draw(top + plot_h)
    out.append("</svg>")
    return "".join(out)
