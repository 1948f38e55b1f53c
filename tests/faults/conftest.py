"""Fixtures of the fault suite: a real RTSP server serving a real face clip, and clips made
with ffmpeg from the test media (looped, corrupt, grey, odd-sized, dark)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_run import ffmpeg
from rtsp_fixture import RtspServer, free_port, require_rtsp_server

LOOPS = 49
"""Extra passes of the 2.4 s clip in the served file (2 minutes): longer than any test runs."""


@pytest.fixture(scope="session")
def looped_clip(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """single_face.mp4's H.264 stream, repeated for 2 minutes, without re-encoding."""
    out = tmp_path_factory.mktemp("rtsp") / "looped.mp4"
    ffmpeg("-stream_loop", str(LOOPS), "-i", str(media_dir / "single_face.mp4"), "-an",
           "-c:v", "copy", str(out))
    return out


@pytest.fixture
def rtsp_server(looped_clip: Path, tmp_path: Path) -> Iterator[RtspServer]:
    """A started server on a loopback port (``rtsp_server.url("/cam")``); killed at the end."""
    require_rtsp_server()
    server = RtspServer(looped_clip, free_port(), tmp_path / "rtsp_server.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()
