"""The report's collector and page on hand-made messages and frames (no models): what is kept,
the caps, the thumbnails switch, escaping, and that nothing in the page is an http(s) URL."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from message_schemas import stats_payload

from affectstream.config import Config, ReportConfig
from affectstream.errors import ConfigError
from affectstream.publish import messages
from affectstream.report import Report, check_report_path
from affectstream.report.collect import Collector
from affectstream.report.page import RunInfo, render
from affectstream.types import Burst, EmotionUpdate, Face, Frame, FrameResult, Keyframe

URL = re.compile(r"https?://", re.IGNORECASE)


def _burst(i: int, track: int = 1, text: str = "lips pulled up") -> Burst:
    return Burst(id=f"cam0-x-t{track}-f{i}", camera="cam0", track_id=track, onset_frame=i,
                 apex_frame=i + 2, offset_frame=i + 5, onset_s=i / 30, apex_s=(i + 2) / 30,
                 offset_s=(i + 5) / 30, kind="micro", regions=("mouth",), action_units=(),
                 peak_motion=1.0, text=text, ts=0.0)


def _update(end_s: float, rationale: str = "AU12 up", model: str = "facs-rules/1") -> EmotionUpdate:
    return EmotionUpdate(camera="cam0", track_id=1, ts=0.0, window_start_s=end_s - 1,
                         window_end_s=end_s, label="happiness",
                         probs={"happiness": 0.8, "neutral": 0.2}, valence=0.7, arousal=0.5,
                         confidence=0.8, rationale=rationale, source="facs", model=model,
                         calibrated=False, keyframes_s=(), bursts=(), latency_ms=0.1,
                         prompt_tokens=0)


def _frame(index: int) -> Frame:
    image = np.zeros((240, 320, 3), np.uint8)
    image[60:180, 100:220] = 200
    return Frame(index=index, pts_s=index / 30, ts=0.0, image=image)


def _result(index: int, bursts: tuple[Burst, ...] = (), *,
            apex: bool = True) -> FrameResult:
    """A frame's result with its bursts and, as perception makes them, their apex keyframes
    (the aligned face crop the VLM sees)."""
    face = Face(track_id=1, frame_index=index, pts_s=index / 30, bbox=(100, 60, 220, 180),
                score=0.9)
    crop = np.zeros((224, 224, 3), np.uint8)
    crop[56:168, 56:168] = 200
    keyframes = tuple(Keyframe(b.track_id, b.apex_frame, b.apex_s, "apex", crop, b.id)
                      for b in bursts) if apex else ()
    return FrameResult(frame_index=index, pts_s=index / 30, ts=0.0, faces=(face,),
                       bursts=bursts, keyframes=keyframes)


def test_messages_are_sorted_by_camera_and_kind() -> None:
    c = Collector(ReportConfig())
    c.publish(messages.availability("cam0", True))
    c.publish(messages.burst(_burst(10)))
    c.publish(messages.emotion(_update(2.0)))
    c.publish(messages.emotion_cleared("cam0", 1))
    c.publish(messages.stats("cam0", stats_payload(frames=5, stages_ms={})))
    c.publish(messages.process_stats({}, 0.0))
    (rec,) = c.cameras()
    assert [b["id"] for b in rec.bursts] == ["cam0-x-t1-f10"]
    assert len(rec.emotions) == 1
    assert rec.stats is not None and rec.stats["frames"] == 5
    assert rec.last_s == pytest.approx(2.0)


def test_events_are_capped_and_counted() -> None:
    c = Collector(ReportConfig(max_events=10))
    for i in range(25):
        c.publish(messages.burst(_burst(i)))
    (rec,) = c.cameras()
    assert len(rec.bursts) == 10 and rec.bursts_left_out == 15
    assert rec.bursts[0]["onset_frame"] == 15, "the latest bursts are the ones kept"
    assert "15 earlier bursts are left out" in render(RunInfo("run"), [rec])


def test_tap_picks_the_apex_crop_and_caps_thumbnails() -> None:
    c = Collector(ReportConfig(max_thumbnails=2))
    for i in range(12):
        bursts = (_burst(i - 5),) if i >= 5 else ()
        c.tap("cam0", _frame(i), _result(i, bursts))
    (rec,) = c.cameras()
    assert list(rec.thumbs) == ["cam0-x-t1-f5", "cam0-x-t1-f6"]
    assert rec.thumbs_left_out == 5
    crop = rec.thumbs["cam0-x-t1-f6"]
    assert crop.shape[0] >= 64 and crop.std() > 20, "the crop holds the bright face box"


def test_a_burst_flushed_at_the_end_gets_its_thumbnail() -> None:
    c = Collector(ReportConfig())
    for i in range(8):
        c.tap("cam0", _frame(i), _result(i))
    c.tap("cam0", None, _result(7, (_burst(1),)))  # the end's flush: no frame
    c.publish(messages.burst(_burst(1)))
    (rec,) = c.cameras()
    assert "cam0-x-t1-f1" in rec.thumbs


def test_thumbnails_off_keeps_no_face_image() -> None:
    c = Collector(ReportConfig(thumbnails=False))
    for i in range(8):
        c.tap("cam0", _frame(i), _result(i, (_burst(0),) if i == 6 else ()))
    c.publish(messages.burst(_burst(0)))
    (rec,) = c.cameras()
    assert rec.thumbs == {}
    page = render(RunInfo("run", thumbnails=False), [rec])
    assert "data:image" not in page and "contains no face images" in page


def test_text_is_escaped_and_no_url_survives_as_one() -> None:
    c = Collector(ReportConfig())
    c.publish(messages.burst(_burst(3, text='<script>alert("x")</script>')))
    c.publish(messages.emotion(_update(2.0, rationale="see https://example.com/x & more",
                                       model="http://127.0.0.1:8000/v1 qwen")))
    page = render(RunInfo("run", sources={"cam0": "rtsp://user:***@cam/stream"}),
                  c.cameras())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert not URL.search(page), URL.search(page)
    assert "example.com/x &amp; more" in page
    assert "rtsp&#58;&#47;&#47;user:***@cam" in page


def test_spotting_signal_is_drawn_per_track() -> None:
    c = Collector(ReportConfig())
    c.camera("cam0", fps=30.0)
    for i in range(60):
        c.signal("cam0", 1, i, float(i % 7))
    c.signal("cam0", 1, -1, 99.0)  # no score yet: ignored
    page = render(RunInfo("spot"), c.cameras())
    assert page.count('<svg class="signal" data-track="1"') == 1
    (rec,) = c.cameras()
    assert len(rec.signals[1]) == 60


def test_several_cameras_get_one_section_each(tmp_path: Path) -> None:
    cfg = Config.model_validate({"cameras": [
        {"id": "door", "source": {"url": "rtsp://u:secret@door/s"}},
        {"id": "lab", "source": {"url": "0"}}]})
    report = Report(tmp_path / "r.html", cfg, "run")
    report.publish(messages.burst(_burst(1)))  # camera cam0 is not one of them; kept anyway
    page = report.write().read_text(encoding="utf-8")
    for camera in ("door", "lab", "cam0"):
        assert f'<section class="camera" id="camera-{camera}">' in page
    assert "secret" not in page


def test_report_path_must_be_in_an_existing_folder(tmp_path: Path) -> None:
    assert check_report_path(tmp_path / "r.html") == tmp_path / "r.html"
    with pytest.raises(ConfigError, match="does not exist; create it"):
        check_report_path(tmp_path / "missing" / "r.html")
    with pytest.raises(ConfigError, match="is a folder"):
        check_report_path(tmp_path)


def test_a_burst_while_speaking_says_so_in_the_bursts_table() -> None:
    c = Collector(ReportConfig())
    c.publish(messages.burst(_burst(1, text="lips parted")))
    talking = dataclasses.replace(_burst(40), speaking=True, text="lips stretched")
    c.publish(messages.burst(talking))
    page = render(RunInfo("run"), c.cameras())
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.DOTALL)
    assert any("lips stretched" in r and "micro, speaking" in r for r in rows)
    assert any("lips parted" in r and "micro, speaking" not in r for r in rows)
