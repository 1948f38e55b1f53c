"""The run's in-process hooks: frame taps (preview, report) and extra sinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import read_jsonl

from affectstream.app import Runner
from affectstream.config import Config
from affectstream.publish.messages import Message
from affectstream.types import Frame, FrameResult


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.started = self.closed = 0

    async def start(self) -> None:
        self.started += 1

    async def publish(self, message: Message) -> None:
        self.messages.append(message)

    async def close(self) -> None:
        self.closed += 1

    def stats(self) -> dict[str, Any]:
        return {"queued": 0, "dropped": 0, "connected": True}


@pytest.mark.e2e  # a whole run on video
def test_taps_see_every_frame_and_a_failing_tap_is_dropped(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    seen: list[tuple[str, int, int]] = []
    flushes: list[FrameResult] = []

    def tap(camera: str, frame: Frame | None, result: FrameResult) -> None:
        if frame is None:  # the end of the stream: what perception still held
            flushes.append(result)
            return
        assert frame.image.ndim == 3
        seen.append((camera, frame.index, result.frame_index))

    def broken(camera: str, frame: Frame | None, result: FrameResult) -> None:
        raise RuntimeError("a viewer bug")

    out = tmp_path / "run.jsonl"
    sink = ListSink()
    cfg = Config.model_validate({
        "camera_id": "door",
        "source": {"url": str(media_dir / "single_face.mp4"), "realtime": False},
        "sinks": [f"jsonl:{out}"]})
    summary = Runner(cfg, taps=[broken, tap], sinks=[sink]).run_sync()

    assert len(seen) == summary.frames
    assert all(cam == "door" and a == b for cam, a, b in seen)
    assert len(flushes) == 1 and flushes[0].frame_index == seen[-1][1]
    assert [e.type for e in flushes[0].track_events] == ["end"]  # the stream's end ends it
    assert sink.started == 1 and sink.closed == 1
    written = [m["topic"] for m in read_jsonl(out)]
    assert [m.topic for m in sink.messages if not m.broker_only] == written
