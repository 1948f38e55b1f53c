"""``eval spotting --report``: the benchmark table and each clip's signal plot in one
self-contained HTML file."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from cli_helpers import cli

from affectstream.config import Config
from affectstream.prepare import demo_clip_path
from affectstream.report.bench import ClipPlot, clip_svg, render_benchmark

pytestmark = pytest.mark.timeout(300)


def test_each_line_of_the_note_is_a_paragraph_under_the_scores() -> None:
    doc = {"clips": 0, "events": 0, "spotters": {}, "per_clip": {}}
    page = render_benchmark(doc, [], "0", "intervals <1>\nvisibility")
    scores = page.index('<table class="scores">')
    assert page.index('<p class="note">intervals &lt;1&gt;</p><p class="note">visibility</p>') \
        > scores
    assert '<p class="note"></p>' not in render_benchmark(doc, [], "0")


def test_clip_plot_breaks_the_line_where_there_is_no_face() -> None:
    signal = [0.0, 1.0, 2.0, math.nan, math.nan, 3.0, 1.0, 0.5]
    svg = clip_svg(ClipPlot("c<1>", 30.0, 8, "custom", [(1, 2, "micro")], [(1, 3, "micro")],
                            [(5, 6, "-")], signal))
    assert svg.count('<polyline class="score"') == 2
    assert 'data-clip="c&lt;1&gt;"' in svg
    assert "frames 1–3 micro" in svg and "frames 5–6 -" in svg


@pytest.mark.e2e
def test_eval_spotting_report_on_the_demo_clip(model_paths: dict[str, Path],
                                               tmp_path: Path) -> None:
    clip = demo_clip_path(Config(), model_paths["face-landmarker"])
    report = tmp_path / "bench.html"
    proc = cli("eval", "spotting", "--videos", str(clip), "--truth",
               str(clip.with_suffix(".json")), "--json", "--plots", str(tmp_path / "plots"),
               "--report", str(report), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    page = report.read_text(encoding="utf-8")
    assert not re.search(r"https?://", page)
    scores = page.split('<table class="scores">')[1].split("</table>")[0]
    live = doc["spotters"]["live"]["overall"]
    assert (f"<td>live</td><td>{live['precision']:.2f} / {live['recall']:.2f} / "
            f"{live['f1']:.2f}</td>") in scores
    assert "<td>baseline</td>" in scores
    f1 = doc["spotters"]["live"]["intervals"]["overall"]["f1"]
    assert "95 % intervals of the live spotter" in page
    assert f"overall F1 {f1[0]:.2f}–{f1[1]:.2f}" in page
    svg = re.search(r'<svg class="clip" data-clip="demo_v1".*?</svg>', page)
    assert svg and '<polyline class="score"' in svg.group(0)
    assert svg.group(0).count("<title>frames") >= 2 * doc["events"] - 2, \
        "truth and live intervals are drawn"
