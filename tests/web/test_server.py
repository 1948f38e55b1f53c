"""The preview server's endpoints on a real run of ``single_face.mp4`` (real models, real
aiohttp server on 127.0.0.1)."""

from __future__ import annotations

import re
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from web_helpers import mjpeg_parts, sse_messages

pytestmark = pytest.mark.e2e


def test_stream_yields_jpeg_frames(preview_url: str) -> None:
    parts = mjpeg_parts(f"{preview_url}/stream.mjpg", 4)
    for headers, body in parts:
        assert headers["Content-Type"] == "image/jpeg"
        assert body[:2] == b"\xff\xd8" and body[-2:] == b"\xff\xd9", "not a whole JPEG"
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (360, 640, 3)
    # the same camera under its own path
    assert len(mjpeg_parts(f"{preview_url}/camera/cam0/stream.mjpg", 1)) == 1


def test_video_frames_carry_the_face_box(preview_url: str) -> None:
    (_, body), = mjpeg_parts(f"{preview_url}/stream.mjpg", 1)
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).astype(int)
    b, g, r = image[..., 0], image[..., 1], image[..., 2]
    green = (g > 170) & (r < 90) & (b < 90)  # the box colour (annotate.BOX) after JPEG
    assert green.sum() > 200, f"only {green.sum()} box-coloured pixels"


def _topics(events: list[tuple[str, Any]]) -> set[str]:
    return {d["topic"].rsplit("/", 1)[-1] for name, d in events if name == "message"}


def test_events_stream_parseable_messages(preview_url: str) -> None:
    events = sse_messages(f"{preview_url}/events",
                          lambda ev: {"tracks", "bursts", "stats", "emotion"} <= _topics(ev))
    for name, data in events:
        if name == "message":
            assert set(data) == {"topic", "payload"}
            assert data["topic"].startswith("cam0/")
    bursts = [d["payload"] for n, d in events if n == "message" and
              d["topic"] == "cam0/bursts"]
    assert bursts[0]["schema"] == "affectstream.burst/1" and bursts[0]["text"]
    frames = [d for n, d in events if n == "frame"]
    assert not frames or frames[0]["camera"] == "cam0"


def test_camera_events_name_the_face_boxes_of_the_video(preview_url: str) -> None:
    # frame events come only while someone watches: watch, then listen
    with httpx.stream("GET", f"{preview_url}/stream.mjpg", timeout=30):
        events = sse_messages(f"{preview_url}/camera/cam0/events",
                              lambda ev: any(n == "frame" and d["faces"] for n, d in ev))
    frame = next(d for n, d in events if n == "frame" and d["faces"])
    x1, y1, x2, y2 = frame["faces"][0]["bbox"]
    assert 0 <= x1 < x2 <= frame["width"] and 0 <= y1 < y2 <= frame["height"]


def test_metrics_parse(preview_url: str) -> None:
    text = httpx.get(f"{preview_url}/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("affectstream_frames", "affectstream_fps", "affectstream_dropped_frames",
                 "affectstream_stage_latency_seconds", "affectstream_bursts",
                 "affectstream_vlm_calls", "affectstream_sink_queued"):
        assert name in families, f"{name} missing from /metrics"
    frames = families["affectstream_frames"].samples
    assert frames[0].labels == {"camera": "cam0"} and frames[0].value > 0
    stages = {s.labels["stage"] for s in families["affectstream_stage_latency_seconds"].samples}
    assert {"detect", "landmarks", "end_to_end"} <= stages
    assert all(name.startswith("affectstream_") for name in families)


def test_healthz_reports_the_source_state(preview_url: str) -> None:
    response = httpx.get(f"{preview_url}/healthz", timeout=10)
    assert response.status_code == 200
    health = response.json()
    cam = health["cameras"]["cam0"]
    assert health["status"] == "ok" and cam["state"] == "running"
    assert cam["source"].endswith("single_face.mp4") and cam["frames"] > 0


def test_page_makes_no_external_requests(preview_url: str) -> None:
    page = httpx.get(f"{preview_url}/", timeout=10).text
    assert 'src="/stream.mjpg"' in page and "Responsible use" in page
    texts = [page] + [httpx.get(f"{preview_url}{path}", timeout=10).text
                      for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', page)]
    assert len(texts) == 3  # the page, its script and its style sheet
    for text in texts:
        # the SVG namespace is a name, never fetched
        urls = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, urls


def test_unknown_camera_is_404(preview_url: str) -> None:
    assert httpx.get(f"{preview_url}/camera/nope", timeout=10).status_code == 404
    assert httpx.get(f"{preview_url}/static/../hub.py", timeout=10).status_code == 404
