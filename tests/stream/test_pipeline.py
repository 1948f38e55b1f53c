"""DetectAhead: order, end of stream, error hand-over and shutdown of the detect thread, with
the real CenterFace detector on real frames."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from affectstream.config import CenterFaceConfig
from affectstream.detectors.face import CenterFaceDetector
from affectstream.errors import SourceError
from affectstream.stream.pipeline import DetectAhead
from affectstream.stream.sources import FileSource
from affectstream.types import Frame


@pytest.fixture(scope="module")
def detector(model_paths: dict[str, Path]) -> CenterFaceDetector:
    return CenterFaceDetector(CenterFaceConfig(), model_paths["face-centerface"])


def test_every_frame_in_order_with_its_detections(media_dir: Path,
                                                  detector: CenterFaceDetector) -> None:
    source = FileSource(media_dir / "single_face.mp4")
    source.open()
    ahead = DetectAhead(source.read, detector.detect)
    try:
        items = list(ahead)
    finally:
        ahead.close()
        source.close()
    assert [i.frame.index for i in items] == list(range(72))
    assert sum(len(i.detections) == 1 for i in items) >= 70
    assert all(i.detect_ms > 0 and i.read_ms >= 0 for i in items)


def test_reader_error_reaches_the_consumer_after_earlier_frames(
        media_dir: Path, detector: CenterFaceDetector) -> None:
    source = FileSource(media_dir / "single_face.mp4")
    source.open()
    count = 0

    def read() -> Frame | None:
        nonlocal count
        count += 1
        if count > 3:
            raise SourceError("camera went away; reconnect it")
        return source.read()

    ahead = DetectAhead(read, detector.detect)
    seen = []
    with pytest.raises(SourceError, match="camera went away"):
        for item in ahead:
            seen.append(item.frame.index)
    ahead.close()
    source.close()
    assert seen == [0, 1, 2]


def test_close_while_the_producer_is_blocked_on_a_full_queue(
        media_dir: Path, detector: CenterFaceDetector) -> None:
    source = FileSource(media_dir / "single_face.mp4", loop=True)
    source.open()
    ahead = DetectAhead(source.read, detector.detect, depth=1)
    first = next(iter(ahead))  # the producer now fills the queue and blocks on it
    assert first.frame.index == 0
    closer = threading.Thread(target=ahead.close)
    closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive()
    ahead.close()  # idempotent
    source.close()
