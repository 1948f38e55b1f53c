"""Video sources on real media, bad inputs, and a real MJPEG-over-HTTP stream on 127.0.0.1."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import corrupt_copy

from affectstream.config import SourceConfig
from affectstream.errors import SourceError
from affectstream.stream.sources import (
    FileSource,
    NetworkSource,
    WebcamSource,
    open_source,
    redact_url,
)
from affectstream.types import Frame

pytestmark = pytest.mark.timeout(60)


def read_all(source: FileSource, limit: int = 10_000) -> list[Frame]:
    frames: list[Frame] = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


# -- files --------------------------------------------------------------------------------------


def test_file_decodes_every_frame_in_order(media_dir: Path) -> None:
    source = FileSource(media_dir / "single_face.mp4")
    source.open()
    try:
        frames = read_all(source)
        assert source.read() is None
    finally:
        source.close()
    assert source.fps == pytest.approx(30.0)
    assert not source.is_live
    assert [f.index for f in frames] == list(range(72))
    assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    pts = [f.pts_s for f in frames]
    assert pts == pytest.approx([i / 30 for i in range(72)], abs=2e-3)
    assert all(b > a for a, b in itertools.pairwise(pts))


def test_file_loop_keeps_index_and_pts_increasing(media_dir: Path) -> None:
    source = FileSource(media_dir / "single_face.mp4", loop=True)
    source.open()
    try:
        frames = read_all(source, limit=72 * 2 + 10)
    finally:
        source.close()
    assert [f.index for f in frames] == list(range(72 * 2 + 10))
    pts = [f.pts_s for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))
    # The second pass starts one frame duration after the last frame of the first.
    assert pts[72] == pytest.approx(72 / 30, abs=2e-3)
    assert pts[-1] == pytest.approx((72 * 2 + 9) / 30, abs=2e-3)
    assert np.array_equal(frames[0].image, frames[72].image)


def test_other_containers_decode(media_dir: Path) -> None:
    source = FileSource(media_dir / "face_then_noface.mov")
    source.open()
    try:
        frames = read_all(source)
    finally:
        source.close()
    assert len(frames) > 100
    assert frames[0].image.shape == (540, 960, 3)
    assert all(b.pts_s > a.pts_s for a, b in itertools.pairwise(frames))


def test_still_image_is_one_frame(media_dir: Path) -> None:
    source = FileSource(media_dir / "multi_face.jpg")
    source.open()
    frames = read_all(source)
    source.close()
    assert len(frames) == 1
    assert frames[0].index == 0 and frames[0].pts_s == 0.0
    expected = cv2.imread(str(media_dir / "multi_face.jpg"))
    assert expected is not None and np.array_equal(frames[0].image, expected)


def test_still_image_loops_at_image_fps_with_fresh_arrays(media_dir: Path) -> None:
    source = FileSource(media_dir / "multi_face.jpg", loop=True, image_fps=5.0)
    source.open()
    frames = read_all(source, limit=3)
    source.close()
    assert [f.pts_s for f in frames] == pytest.approx([0.0, 0.2, 0.4])
    assert frames[0].image is not frames[1].image


class NoTimestamps:
    """A VideoCapture over a container that reports no timestamps (POS_MSEC stuck at 0)."""

    real = cv2.VideoCapture

    def __init__(self, *args: object) -> None:
        self._cap = self.real(*args)

    def get(self, prop: int) -> float:
        return 0.0 if prop == cv2.CAP_PROP_POS_MSEC else float(self._cap.get(prop))

    def __getattr__(self, name: str) -> object:
        return getattr(self._cap, name)


def test_missing_timestamps_fall_back_to_index_over_fps(
    media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cv2, "VideoCapture", NoTimestamps)
    source = FileSource(media_dir / "single_face.mp4", loop=True)
    source.open()
    frames = read_all(source, limit=80)
    source.close()
    assert [f.pts_s for f in frames] == pytest.approx([i / 30 for i in range(80)])


def test_reopening_restarts_the_stream(media_dir: Path) -> None:
    source = FileSource(media_dir / "single_face.mp4")
    source.open()
    read_all(source, limit=5)
    source.close()
    source.open()
    again = source.read()
    source.close()
    assert again is not None and again.index == 0 and again.pts_s == 0.0


def test_read_before_open_is_a_programming_error(media_dir: Path) -> None:
    with pytest.raises(RuntimeError):
        FileSource(media_dir / "single_face.mp4").read()


# -- bad input ----------------------------------------------------------------------------------


def open_error(source: FileSource | WebcamSource | NetworkSource) -> str:
    with pytest.raises(SourceError) as info:
        source.open()
    message = str(info.value)
    assert "\n" not in message and ";" in message  # one line: the problem; the fix
    return message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.mp4"
    assert open_error(FileSource(path)) == f"video file {path} not found; check the path"


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    assert "is a directory" in open_error(FileSource(tmp_path))


@pytest.mark.parametrize("name", ["notes.txt", "fake.mp4", "fake.jpg"])
def test_text_file_is_not_a_video(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("this is not a video\n" * 50)
    message = open_error(FileSource(path))
    assert message.startswith(f"{path} is not a readable video or image")
    assert "ffmpeg" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert open_error(FileSource(path)) == (f"video file {path} is empty (0 bytes); check that "
                                            "it was fully written or copied")


def test_video_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (64, 48))
    writer.release()  # a valid container holding zero frames
    assert path.stat().st_size > 0
    assert "no decodable video frames" in open_error(FileSource(path))


def test_corrupt_frames_are_skipped_and_counted(media_dir: Path, tmp_path: Path) -> None:
    """A stretch of garbage mid-file costs the frames stored there, not the rest of the file."""
    source = FileSource(corrupt_copy(media_dir / "single_face.mp4", tmp_path / "corrupt.mp4"))
    source.open()
    try:
        frames = read_all(source)
    finally:
        source.close()
    assert source.errors > 0
    assert len(frames) < 72
    # The last frames of the clip (after the garbage) were still read, at their own times.
    assert frames[-1].pts_s == pytest.approx(71 / 30, abs=2e-3)
    pts = [f.pts_s for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))


def test_stop_does_not_wait_for_a_silent_server_to_time_out() -> None:
    """A reconnect blocked in FFmpeg's open (the port accepts, nothing answers) returns as
    soon as the source is interrupted, not after ``open_timeout_s``."""
    accepted = threading.Event()
    held: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def accept() -> None:
            held.append(listener.accept()[0])
            accepted.set()

        threading.Thread(target=accept, daemon=True).start()
        port = listener.getsockname()[1]
        source = NetworkSource(f"rtsp://127.0.0.1:{port}/cam", open_timeout_s=60.0)
        worker = threading.Thread(target=source._reconnect, daemon=True)
        worker.start()
        assert accepted.wait(30), "the reconnect never connected"
        source.interrupt()
        worker.join(30)  # far below the 60 s open timeout
        assert not worker.is_alive()
        assert source.reconnects == 0 and source._cap is None
        for conn in held:
            conn.close()


def test_unknown_webcam_index() -> None:
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    assert open_error(WebcamSource(7)).startswith("no webcam at index 7; ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_stream_is_redacted() -> None:
    url = f"http://admin:hunter2@127.0.0.1:{free_port()}/stream.mjpg"
    message = open_error(NetworkSource(url, open_timeout_s=2.0))
    assert "admin:***@127.0.0.1" in message and "hunter2" not in message


@pytest.mark.e2e
def test_silent_server_times_out() -> None:
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/live"
        start = time.monotonic()
        message = open_error(NetworkSource(url, open_timeout_s=0.5))
        elapsed = time.monotonic() - start
    assert "within 0.5 s" in message
    assert elapsed < 5.0


# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://user:pa%3Ass@cam.local:554/live", "rtsp://user:***@cam.local:554/live"),
        ("rtsp://cam.local/stream1", "rtsp://cam.local/stream1"),
        ("http://user@cam/x", "http://user@cam/x"),
        ("https://cam/live.m3u8?token=abc&q=1", "https://cam/live.m3u8?token=***&q=1"),
        ("/videos/clip.mp4", "/videos/clip.mp4"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_open_source_dispatch(tmp_path: Path) -> None:
    assert isinstance(open_source(SourceConfig(url="0")), WebcamSource)
    net = open_source(SourceConfig(url="rtsp://u:secret@10.0.0.2/ch1"))
    assert isinstance(net, NetworkSource) and "secret" not in net.description
    assert isinstance(open_source(SourceConfig(url="HTTPS://cam/x.mjpg")), NetworkSource)
    missing = open_source(SourceConfig(url=str(tmp_path / "later.mp4"), loop=True))
    assert isinstance(missing, FileSource) and missing.loop  # not opened yet: no error


@pytest.mark.parametrize("url", ["demo", "", "ftp://host/clip.mp4"])
def test_open_source_rejects(url: str) -> None:
    with pytest.raises(SourceError):
        open_source(SourceConfig(url=url))


# -- a real stream: MJPEG over HTTP served on 127.0.0.1 -----------------------------------------


class MjpegServer:
    """multipart/x-mixed-replace JPEG frames at ``fps``; frame k is filled with value k % 256."""

    def __init__(self, port: int = 0, fps: float = 50.0) -> None:
        self.halt = threading.Event()
        self.started_at = time.monotonic()
        halt, period = self.halt, 1.0 / fps

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                k = 0
                while not halt.is_set():
                    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), k % 256, np.uint8))[1]
                    data = jpeg.tobytes()
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}"
                    try:
                        self.wfile.write(head.encode() + b"\r\n\r\n" + data + b"\r\n")
                    except OSError:
                        return
                    k += 1
                    halt.wait(period)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        if self.halt.is_set():
            return
        self.halt.set()  # ends open responses, so clients see the stream die
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mjpeg() -> Iterator[MjpegServer]:
    server = MjpegServer()
    yield server
    server.kill()


@pytest.mark.e2e
def test_http_mjpeg_stream(mjpeg: MjpegServer) -> None:
    source = open_source(SourceConfig(url=f"http://127.0.0.1:{mjpeg.port}/stream.mjpg"))
    source.open()
    try:
        frames = [source.read() for _ in range(10)]
    finally:
        source.close()
    assert source.is_live
    values = [int(f.image[0, 0, 0]) for f in frames if f is not None]
    assert len(values) == 10
    assert all(abs(v - k) <= 2 for k, v in enumerate(values))  # JPEG is lossy
    assert all(b.pts_s > a.pts_s for a, b in itertools.pairwise(frames)
               if a is not None and b is not None)


@pytest.mark.e2e
def test_stream_reconnects_after_server_restart() -> None:
    first = MjpegServer()
    port = first.port
    source = NetworkSource(f"http://127.0.0.1:{port}/stream.mjpg", open_timeout_s=1.0,
                           read_timeout_s=1.0, max_consecutive_failures=3,
                           reconnect_backoff_max_s=0.5)
    restarted: list[MjpegServer] = []
    timer = threading.Timer(1.0, lambda: restarted.append(MjpegServer(port)))
    frames: list[Frame] = []
    source.open()
    try:
        assert source.read() is not None
        first.kill()
        timer.start()
        while source.reconnects == 0:  # read() reconnects internally; the test timeout bounds it
            frame = source.read()
            assert frame is not None
            frames.append(frame)
        back_at = time.monotonic()
        timer.join()
    finally:
        timer.cancel()
        source.close()
        for server in restarted:
            server.kill()
    assert restarted and back_at - restarted[0].started_at < 5.0  # DESIGN R1
    assert source.stalls >= 1
    assert all(b.index == a.index + 1 for a, b in itertools.pairwise(frames))
    assert all(b.pts_s > a.pts_s for a, b in itertools.pairwise(frames))
