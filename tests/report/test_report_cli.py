"""``--report`` end to end: the real CLI on real media with the real models writes one
self-contained HTML file with the timeline, the bursts with their apex thumbnails, the emotion
updates and the stats, at the end of a file, after SIGTERM, for ``spot`` and for ``demo``."""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cli_helpers import cli, cli_env, payloads, read_jsonl

pytestmark = pytest.mark.timeout(300)

URL = re.compile(r"https?://", re.IGNORECASE)
THUMB = re.compile(r'<img class="thumb" alt="apex of burst ([^"]+)" '
                   r'src="data:image/(jpeg|png);base64,([A-Za-z0-9+/=]+)"')


def _thumbs(page: str) -> dict[str, np.ndarray]:
    out = {}
    for burst_id, _kind, data in THUMB.findall(page):
        raw = np.frombuffer(base64.b64decode(data), np.uint8)
        out[burst_id] = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    return out


def _has_face(image: np.ndarray) -> bool:
    """An independent check that a thumbnail shows a face filling most of it: OpenCV's Haar
    cascade (not the models that made the crop)."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades
                                    + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 1.1, 3)
    return any(w >= 0.4 * image.shape[1] for _x, _y, w, _h in faces)


def _assert_self_contained(folder: Path, page: str) -> None:
    assert not URL.search(page), f"an http(s) reference: …{page[URL.search(page).start():][:80]}"
    assert [p.name for p in folder.glob("*.html")] == ["report.html"]
    assert not list(folder.glob(".*.part")), "a temporary file was left behind"
    assert page.rstrip().endswith("</html>")


@pytest.fixture(scope="module")
def run_report(media_dir: Path, model_paths: dict[str, Path],
               tmp_path_factory: pytest.TempPathFactory,
               ) -> tuple[subprocess.CompletedProcess[str], Path, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("run_report")
    out = folder / "out.jsonl"
    proc = cli("run", "--source", str(media_dir / "single_face.mp4"), "--no-realtime",
               "--sink", f"jsonl:{out}", "--report", str(folder / "report.html"), cwd=folder)
    return proc, folder, (read_jsonl(out) if out.exists() else [])


@pytest.mark.e2e
def test_run_report_holds_timeline_burst_and_thumbnail(
        run_report: tuple[subprocess.CompletedProcess[str], Path, list[dict[str, Any]]]) -> None:
    proc, folder, lines = run_report
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = (folder / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(folder, page)
    assert '<div class="timeline" id="timeline-cam0"><svg class="timeline"' in page
    bursts = payloads(lines, "bursts")
    assert len(bursts) == 1, "single_face.mp4 has one smile burst"
    (burst,) = bursts
    assert page.count(f'data-burst="{burst["id"]}"') == 2, "the burst on the timeline"
    assert burst["text"].split(",")[0] in page
    thumbs = _thumbs(page)
    assert list(thumbs) == [burst["id"]]
    thumb = thumbs[burst["id"]]
    assert min(thumb.shape[:2]) >= 96 and thumb.std() > 20, "a blank or tiny thumbnail"
    assert _has_face(thumb), "the thumbnail shows no face"


@pytest.mark.e2e
def test_run_report_holds_emotions_and_stats(
        run_report: tuple[subprocess.CompletedProcess[str], Path, list[dict[str, Any]]]) -> None:
    proc, folder, lines = run_report
    page = (folder / "report.html").read_text(encoding="utf-8")
    updates = [p for p in payloads(lines, "faces/1/emotion") if isinstance(p, dict)]
    assert updates, "no emotion update to report"
    emotions = page.split('<table class="emotions">')[1].split("</table>")[0]
    assert emotions.count("<tr>") == len(updates) + 1  # the header row
    assert updates[0]["rationale"].split("(")[0].strip() in emotions
    assert f"{updates[0]['source']} ({updates[0]['model']}" in emotions
    latency = page.split('<table class="latency">')[1].split("</table>")[0]
    for stage in ("detect", "landmarks", "spot", "end_to_end"):
        assert f"<td>{stage}</td>" in latency
    final = payloads(lines, "stats")[-1]
    assert f"<dt>frames</dt><dd>{final['frames']}</dd>" in page
    assert "Responsible use" in page and "This file contains face images" in page
    assert f"report: {folder / 'report.html'}" in proc.stderr


@pytest.mark.e2e
def test_spot_report_shows_the_signal(media_dir: Path, model_paths: dict[str, Path],
                                      tmp_path: Path) -> None:
    proc = cli("spot", "--source", str(media_dir / "single_face.mp4"), "--json",
               "--report", str(tmp_path / "report.html"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("{"), "the report must not touch spot's JSON on stdout"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(tmp_path, page)
    assert "<h3>Spotting signal</h3>" in page
    signal_svg = re.search(r'<svg class="signal" data-track="1".*?</svg>', page)
    assert signal_svg and '<polyline class="score"' in signal_svg.group(0)
    thumbs = _thumbs(page)
    assert len(thumbs) == 1 and _has_face(next(iter(thumbs.values())))
    assert '<table class="latency">' in page


@pytest.mark.e2e
def test_report_is_written_after_sigterm(media_dir: Path, model_paths: dict[str, Path],
                                         tmp_path: Path) -> None:
    """A looped real-time run, stopped by SIGTERM once the first burst was published: the
    report holds what the sinks got, that burst's thumbnail included."""
    out, report = tmp_path / "out.jsonl", tmp_path / "report.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "affectstream", "run", "--source",
         str(media_dir / "single_face.mp4"), "--loop", "--sink", f"jsonl:{out}",
         "--report", str(report)],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and payloads(read_jsonl(out, tolerate_partial_tail=True), "bursts"):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it was stopped"
        assert not report.exists(), "the report is written at the end, not before"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr[-2000:]
    page = report.read_text(encoding="utf-8")
    _assert_self_contained(tmp_path, page)
    bursts = payloads(read_jsonl(out), "bursts")
    assert bursts
    thumbs = _thumbs(page)
    for burst in bursts:
        assert f'data-burst="{burst["id"]}"' in page
    assert bursts[0]["id"] in thumbs


@pytest.mark.e2e
def test_demo_report(model_paths: dict[str, Path], tmp_path: Path) -> None:
    proc = cli("demo", "--no-realtime", "--report", str(tmp_path / "report.html"),
               cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(tmp_path, page)
    rows = page.split('<table class="bursts">')[1].split("</table>")[0].count("<tr>") - 1
    thumbs = _thumbs(page)
    assert rows >= 7, "the demo clip has 8 injected expressions"
    assert len(thumbs) == rows, "every burst has its apex thumbnail"
    assert sum(_has_face(t) for t in thumbs.values()) >= rows // 2
    assert "demo clip" in page and '<svg class="timeline"' in page


def test_report_into_a_missing_folder_is_a_usage_error(tmp_path: Path,
                                                       media_dir: Path) -> None:
    for command in ("run", "spot"):
        proc = cli(command, "--source", str(media_dir / "single_face.mp4"), "--report",
                   str(tmp_path / "nope" / "r.html"), cwd=tmp_path, timeout=60)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("affectstream: error: --report"), lines
        assert "does not exist" in lines[0] and "create it" in lines[0]
