"""Video sources: files and still images, webcams, network streams (RTSP, HTTP) (DESIGN §2, §4).

A source decodes frames in whichever thread calls :meth:`read` (normally a
:class:`~affectstream.stream.capture.CaptureThread`). Sources never drop frames: drop policies
belong to the capture queue. Failures surface as :class:`SourceError` with one line that names
the problem and the fix; descriptions and messages never contain stream credentials.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import cv2

from affectstream.config import SourceConfig
from affectstream.errors import SourceError
from affectstream.stream.live import (
    NetworkSource,
    WebcamSource,
    as_image,
    nominal_fps,
)
from affectstream.types import Frame, Image
from affectstream.urls import redact_url

__all__ = [
    "FileSource",
    "Interruptible",
    "NetworkSource",
    "SourceHealth",
    "VideoSource",
    "WebcamSource",
    "open_source",
    "redact_url",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# rtsp/http(s) are the documented schemes; the others go through the same FFmpeg backend.
NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https", "rtmp", "rtmps", "srt", "udp"})
# FFmpeg's tty demuxer "plays" text files (.txt, .nfo, .asc) as rendered ANSI art.
_TEXT_CODECS = frozenset({b"ansi"})
# OpenCV's read() fails once per packet it cannot decode and carries on after it, so a run of
# failures is either corrupt data or the end of the file. Where the container does not say how
# many frames it holds, this many failures in a row (10 s at 30 fps) are taken as the end.
MAX_UNDECODABLE_RUN = 300

log = logging.getLogger(__name__)


class VideoSource(Protocol):
    """What the capture thread needs from a source."""

    description: str
    """Safe for logs: URLs have their credentials redacted."""
    is_live: bool
    fps: float
    """Nominal frame rate (files: the container's; webcams and streams: reported, else 30)."""

    def open(self) -> None:
        """Open the source (idempotent); raises :class:`SourceError`."""

    def read(self) -> Frame | None:
        """The next frame; ``None`` at the end of the stream. Raises :class:`SourceError`."""

    def close(self) -> None:
        """Release the source (idempotent)."""


@runtime_checkable
class SourceHealth(Protocol):
    """Counters a live source may expose; written only by the thread that reads the source."""

    reconnects: int
    stalls: int
    errors: int


@runtime_checkable
class Interruptible(Protocol):
    """A source whose blocking waits (backoff, retries) can be cut short from another thread."""

    def interrupt(self) -> None: ...


def open_source(cfg: SourceConfig) -> VideoSource:
    """The source ``cfg.url`` names (webcam index, stream URL or file path), not yet opened."""
    url = cfg.url.strip()
    if not url:
        raise SourceError("the video source is empty; pass a webcam index (0), a URL or a file "
                          "path")
    if url == "demo":
        raise SourceError("source 'demo' was not resolved to the demo clip; run `affectstream "
                          "demo` or pass a file path")
    if url.isascii() and url.isdigit():
        return WebcamSource(int(url), width=cfg.width, height=cfg.height,
                            max_consecutive_failures=cfg.max_consecutive_failures)
    scheme, sep, _ = url.partition("://")
    if not sep:
        return FileSource(url, loop=cfg.loop)
    if scheme.lower() == "file":
        return FileSource(unquote(urlsplit(url).path), loop=cfg.loop)
    if scheme.lower() in NETWORK_SCHEMES:
        return NetworkSource(
            url, open_timeout_s=cfg.open_timeout_s, read_timeout_s=cfg.read_timeout_s,
            max_consecutive_failures=cfg.max_consecutive_failures,
            reconnect_backoff_max_s=cfg.reconnect_backoff_max_s,
            rtsp_transport=cfg.rtsp_transport,
        )
    raise SourceError(f"unsupported URL scheme '{scheme}' in {redact_url(url)}; use rtsp://, "
                      "rtsps://, http(s)://, a webcam index or a file path")


class FileSource:
    """A video file, or a still image (one frame at ``image_fps``), optionally looped.

    Frame indices and ``pts_s`` keep increasing across loops (each pass is offset by the clip
    duration), so downstream stages see one continuous stream. Frames that fail to decode
    (corrupt data) are skipped and counted in ``errors``; the frames after them are still read.
    """

    reconnects = stalls = 0  # never, for a file; part of SourceHealth beside ``errors``

    def __init__(self, path: str | Path, *, loop: bool = False, image_fps: float = 1.0) -> None:
        if image_fps <= 0:
            raise ValueError("image_fps must be positive")
        self.path = Path(path).expanduser()
        self.loop = loop
        self.description = str(self.path)
        self.is_live = False
        self.fps = image_fps
        self._cap: cv2.VideoCapture | None = None
        self._still: Image | None = None
        self._pending: tuple[Image, float] | None = None
        self._opened = False
        self._reads = 0
        self._frame_count = 0
        self.errors = 0
        """Frames skipped because they could not be decoded."""
        self._rewind()

    def open(self) -> None:
        if self._opened:
            return
        self._check_path()
        self._rewind()
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            self._open_still()
        elif (cap := self._open_capture()) is not None:
            self._open_video(cap)
        else:  # not a container FFmpeg knows: maybe an image with an odd extension
            self._open_still()
        self._opened = True

    def _open_video(self, cap: cv2.VideoCapture) -> None:
        try:
            first = self._decode(cap)
        except SourceError:
            cap.release()
            raise
        if first is None:
            cap.release()
            raise SourceError(f"{self.path} contains no decodable video frames; re-encode it "
                              f"(ffmpeg -i {self.path.name} out.mp4) or check the file")
        self._cap, self._pending = cap, first
        self.fps = nominal_fps(cap)

    def _use(self, cap: cv2.VideoCapture) -> cv2.VideoCapture:
        """Start counting reads against the frame count of a freshly opened capture."""
        self._reads = 0
        count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._frame_count = int(count) if math.isfinite(count) and count > 0 else 0
        return cap

    @property
    def is_still(self) -> bool:
        """Whether the opened file is a still image (one frame per pass)."""
        return self._still is not None

    def read(self) -> Frame | None:
        if not self._opened:
            raise RuntimeError("FileSource.read() called before open()")
        if self._still is not None:
            if self._pass_frames and not self.loop:
                return None
            if self._pass_frames:
                self._next_pass()
            # A fresh array per frame: consumers may keep or modify what they receive.
            return self._emit(self._still.copy(), float("nan"))
        decoded = self._next_decoded()
        if decoded is None and self.loop and self._pass_frames:
            self._next_pass()
            decoded = self._next_decoded()
        return None if decoded is None else self._emit(*decoded)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap, self._still, self._pending = None, None, None
        self._opened = False

    def _rewind(self) -> None:
        """Reset the stream clock: each open() starts a new stream at index 0."""
        self._index = 0
        self._pass_frames = 0
        self._pass_offset_s = 0.0
        self._first_raw_s = 0.0
        self._last_clip_s = 0.0

    def _check_path(self) -> None:
        if not self.path.exists():
            raise SourceError(f"video file {self.path} not found; check the path")
        if self.path.is_dir():
            raise SourceError(f"{self.path} is a directory, not a video file; pass a video or "
                              "image file")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"cannot read {self.path} (permission denied); check its permissions")
        if self.path.stat().st_size == 0:
            raise SourceError(f"video file {self.path} is empty (0 bytes); check that it was "
                              "fully written or copied")

    def _unreadable(self) -> SourceError:
        return SourceError(f"{self.path} is not a readable video or image (OpenCV could not "
                           "decode it); convert it with ffmpeg or check the file")

    def _open_still(self) -> None:
        try:
            image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            raise self._unreadable() from exc
        if image is None:
            raise self._unreadable()
        self._still = as_image(image)

    def _open_capture(self) -> cv2.VideoCapture | None:
        try:
            cap = cv2.VideoCapture(str(self.path))
        except cv2.error:
            return None
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
        if cap.isOpened() and fourcc.to_bytes(4, "little") not in _TEXT_CODECS:
            return self._use(cap)
        cap.release()
        return None

    def _decode(self, cap: cv2.VideoCapture) -> tuple[Image, float] | None:
        """The next decodable frame, skipping corrupt ones; None at the end of the file."""
        failed = 0
        while True:
            try:
                ok, image = cap.read()
            except cv2.error as exc:
                raise SourceError(f"decoding {self.path} failed inside OpenCV; re-encode it "
                                  "with ffmpeg or check the file") from exc
            self._reads += 1
            if ok and image is not None:
                break
            failed += 1
            if self._ended(failed):
                return None
        if failed:
            # Failures followed by a frame were corrupt data, not the end of the file: logged
            # once, counted every time (stats errors).
            if not self.errors:
                log.warning("skipped %d undecodable frame(s) in %s (further ones are counted in "
                            "stats errors)", failed, self.path)
            self.errors += failed
        # POS_MSEC after read() is the timestamp of the frame just decoded.
        return as_image(image), float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0

    def _ended(self, failed: int) -> bool:
        """Whether ``failed`` reads in a row mean the end of the file rather than corruption."""
        # Every read, failed or not, takes one frame of the container's count: once they are
        # all read, a failure is the end (no wasted retries at the end of every normal file).
        spent = 0 < self._frame_count <= self._reads
        return spent or failed >= MAX_UNDECODABLE_RUN

    def _next_decoded(self) -> tuple[Image, float] | None:
        if self._pending is not None:
            decoded, self._pending = self._pending, None
            return decoded
        return None if self._cap is None else self._decode(self._cap)

    def _next_pass(self) -> None:
        """Start the file again, continuing the stream clock after the last frame's duration."""
        self._pass_offset_s += self._last_clip_s + 1.0 / self.fps
        self._pass_frames = 0
        if self._cap is not None:
            # Reopening is slower than seeking to frame 0 but exact for every container.
            self._cap.release()
            self._cap = self._open_capture()

    def _clip_time(self, raw_s: float) -> float:
        """Seconds since the first frame of this pass, from the container when it is sane."""
        if self._pass_frames == 0:
            self._first_raw_s = raw_s if math.isfinite(raw_s) else 0.0
            return 0.0
        t = raw_s - self._first_raw_s
        if math.isfinite(t) and t > self._last_clip_s:
            return t
        # No timestamps, or non-monotonic ones: step by the nominal frame duration.
        return self._last_clip_s + 1.0 / self.fps

    def _emit(self, image: Image, raw_s: float) -> Frame:
        clip_s = self._clip_time(raw_s)
        frame = Frame(index=self._index, pts_s=self._pass_offset_s + clip_s, ts=time.time(),
                      image=image)
        self._index += 1
        self._pass_frames += 1
        self._last_clip_s = clip_s
        return frame


