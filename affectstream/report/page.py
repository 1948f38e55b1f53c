"""The report's HTML: one self-contained page, built from escaped strings.

No template engine: the page is a handful of tables and inline SVGs, and building it with
:func:`~affectstream.report.svg.esc` on every piece of text keeps escaping in one place. Styles
are inline, images are ``data:`` URIs and there is no script, so the file makes no request when
opened and can be mailed or archived as is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from affectstream.report.collect import CameraRecord
from affectstream.report.svg import MACRO, MICRO, esc, label_colour, signal_plot, timeline
from affectstream.report.thumbs import data_uri

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222;
padding:0 12px}
h1{font-size:22px;margin-bottom:4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;
margin-top:36px}h3{margin-top:24px}.meta{color:#555}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{border-bottom:1px solid #e4e4e4;
padding:4px 6px;text-align:left;vertical-align:top}th{background:#f6f6f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
dl.summary{display:grid;grid-template-columns:repeat(4,auto);gap:4px 18px;margin:8px 0}
dl.summary dt{color:#666}dl.summary dd{margin:0;font-weight:600}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .tick{text-anchor:middle}
svg .lane{text-anchor:end}svg .axis{stroke:#888}svg .plot{fill:#fafafa;stroke:#ddd}
svg .span{fill:#e9e9e9}.legend span{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
img.thumb{width:96px;height:96px;border-radius:4px;background:#000}
.note{color:#666;font-size:13px}footer{margin-top:40px;border-top:1px solid #ddd;color:#555;
font-size:13px}
"""

RESPONSIBLE_USE = (
    "Facial movements are not reliable read-outs of inner states: the same expression can "
    "mean different things in different contexts, cultures and people, and many feelings "
    "show no visible movement at all. The bursts above are measured facial movements; the "
    "emotion labels are estimates (a VLM's or a classifier's guesses, with their calibration), "
    "not facts about the person. Emotion recognition in workplaces and education institutions "
    "is restricted in some jurisdictions: the EU AI Act (Art. 5(1)(f)) prohibits it there "
    "except for medical or safety reasons.")


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What the report says about the run as a whole."""

    command: str
    """``run``, ``spot`` or ``demo``."""
    sources: dict[str, str] = field(default_factory=dict)
    """camera id → source, credentials already redacted."""
    started: float = 0.0
    ended: float = 0.0
    thumbnails: bool = True
    version: str = ""


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    """A table of already-escaped cells."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _summary(rec: CameraRecord) -> str:
    stats = rec.stats or {}
    items = [("frames", stats.get("frames")), ("duration", f"{rec.last_s:.1f} s"),
             ("fps", stats.get("fps")), ("tracks", len(rec.tracks)),
             ("bursts", len(rec.bursts) + rec.bursts_left_out),
             ("emotion updates", len(rec.emotions) + rec.emotions_left_out),
             ("dropped frames", stats.get("dropped")), ("reconnects", stats.get("reconnects"))]
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(_num(v))}</dd>" for k, v in items)
    return f'<dl class="summary">{cells}</dl>'


def _legend(labels: Sequence[str]) -> str:
    spans = [f'<span><i class="swatch" style="background:{MICRO};opacity:.5"></i>micro burst'
             '</span>', f'<span><i class="swatch" style="background:{MACRO};opacity:.5"></i>'
             'macro burst</span>']
    spans += [f'<span><i class="swatch" style="background:{label_colour(lab, labels)}"></i>'
              f"{esc(lab)}</span>" for lab in labels]
    return f'<p class="legend">{"".join(spans)}</p>'


def _kind(b: dict[str, Any]) -> str:
    """micro or macro, and "speaking" when the face was (a mouth burst may be speech)."""
    return f"{b['kind']}, speaking" if b.get("speaking") else str(b["kind"])


def _aus(burst: dict[str, Any]) -> str:
    return ", ".join(f"AU{u['au']} {u['name']} ({u['side']}, {float(u['intensity']):.2f})"
                     for u in burst.get("action_units", []))


def _bursts(rec: CameraRecord, thumbnails: bool) -> str:
    if not rec.bursts:
        return '<p class="note">No bursts.</p>'
    rows = []
    for b in rec.bursts:
        crop = rec.thumbs.get(str(b["id"]))
        if crop is not None:
            thumb = (f'<img class="thumb" alt="apex of burst {esc(b["id"])}" '
                     f'src="{data_uri(crop)}">')
        else:
            thumb = "—" if thumbnails else "(off)"
        rows.append([thumb, esc(f"{float(b['onset_s']):.2f}–{float(b['offset_s']):.2f} s"),
                     esc(f"{b['onset_frame']}–{b['offset_frame']} (apex {b['apex_frame']})"),
                     esc(b["track_id"]), esc(_kind(b)), esc(b["text"]), esc(_aus(b))])
    note = (f'<p class="note">{rec.bursts_left_out} earlier bursts are left out '
            "(report.max_events).</p>" if rec.bursts_left_out else "")
    if rec.thumbs_left_out:
        note += (f'<p class="note">{rec.thumbs_left_out} earlier thumbnails are left out '
                 "(report.max_thumbnails).</p>")
    return note + table(["apex", "time", "frames", "track", "kind", "text", "action units"],
                         rows, "bursts")


def _emotions(rec: CameraRecord) -> str:
    if not rec.emotions:
        return '<p class="note">No emotion updates.</p>'
    rows = []
    for e in rec.emotions:
        top = sorted(e["probs"].items(), key=lambda kv: -float(kv[1]))[:3]
        probs = ", ".join(f"{k} {float(v):.2f}" for k, v in top)
        source = f"{e['source']} ({e['model']}{', calibrated' if e.get('calibrated') else ''})"
        rows.append([esc(f"{float(e['window']['start_s']):.2f}–{float(e['window']['end_s']):.2f}"
                         " s"), esc(e["track_id"]), f"<b>{esc(e['label'])}</b>", esc(probs),
                     esc(_num(e.get("confidence"))),
                     esc(f"{_num(e.get('valence'))} / {_num(e.get('arousal'))}"),
                     esc(source), esc(e.get("rationale", ""))])
    note = (f'<p class="note">{rec.emotions_left_out} earlier updates are left out '
            "(report.max_events).</p>" if rec.emotions_left_out else "")
    return note + table(["window", "track", "label", "top probabilities", "confidence",
                          "valence / arousal", "source", "rationale"], rows, "emotions")


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flat(f"{prefix}.{k}" if prefix else k, v)]
    return [(prefix, value)]


def _stats(rec: CameraRecord) -> str:
    stats = rec.stats
    if not stats:
        return '<p class="note">No stats message was received.</p>'
    stages = stats.get("stages_ms") or {}
    rows = [[esc(stage), f'<span class="num">{esc(_num(p.get("p50")))}</span>',
             f'<span class="num">{esc(_num(p.get("p95")))}</span>']
            for stage, p in stages.items() if isinstance(p, dict)]
    out = table(["stage", "p50 ms", "p95 ms"], rows, "latency") if rows else ""
    skip = {"schema", "camera", "ts", "stages_ms"}
    flat = [kv for k, v in stats.items() if k not in skip for kv in _flat(k, v)]
    out += table(["stat", "value"], [[esc(k), esc(_num(v))] for k, v in flat], "stats")
    return out


def _signals(rec: CameraRecord) -> str:
    if not rec.signals:
        return ""
    fps = rec.fps or 30.0
    parts = ["<h3>Spotting signal</h3><p class='note'>The live spotter's onset score per frame "
             "for each track (the higher, the more unusual the movement for that face); "
             "bursts shaded.</p>"]
    for track_id in sorted(rec.signals):
        bursts = [b for b in rec.bursts if int(b["track_id"]) == track_id]
        parts.append(f"<h4>track {track_id}</h4>")
        parts.append(signal_plot(track_id, rec.signals[track_id], fps, bursts, rec.last_s))
    return "".join(parts)


def _camera(rec: CameraRecord, info: RunInfo) -> str:
    svg, labels, left_out = timeline(list(rec.bursts), list(rec.emotions), rec.tracks,
                                     rec.last_s)
    more = (f'<p class="note">{left_out} tracks with fewer events are not drawn.</p>'
            if left_out else "")
    source = info.sources.get(rec.camera, "")
    return (f'<section class="camera" id="camera-{esc(rec.camera)}">'
            f'<h2>Camera {esc(rec.camera)} <small class="meta">{esc(source)}</small></h2>'
            f"{_summary(rec)}"
            f'<h3>Timeline</h3><div class="timeline" id="timeline-{esc(rec.camera)}">'
            f"{svg}</div>{_legend(labels)}{more}"
            f"<h3>Bursts</h3>{_bursts(rec, info.thumbnails)}"
            f"<h3>Emotion updates</h3>{_emotions(rec)}"
            f"{_signals(rec)}"
            f"<h3>Latency and stats</h3>{_stats(rec)}</section>")


def render(info: RunInfo, records: Sequence[CameraRecord]) -> str:
    """The whole page."""
    cams = "".join(_camera(r, info) for r in records) or \
        '<p class="note">The run produced nothing to report.</p>'
    privacy = ("This file contains face images: the apex thumbnail of each burst. Share it "
               "only with the consent of the people shown; set report.thumbnails: false to "
               "leave them out." if info.thumbnails else
               "Thumbnails are off (report.thumbnails: false): this file contains no face "
               "images.")
    title = f"affectstream {info.command} report"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{esc(title)}</h1><p class=\"meta\">affectstream {esc(info.version)}, "
            f"{esc(_when(info.started))} – {esc(_when(info.ended))}, "
            f"{len(records)} camera(s)</p>{cams}"
            f"<footer><h3>Privacy</h3><p>{esc(privacy)}</p>"
            f"<h3>Responsible use</h3><p>{esc(RESPONSIBLE_USE)}</p></footer></body></html>\n")
