"""Start, kill and restart the real RTSP server (``rtsp_server.py``) from the fault tests.

The server runs under the system python (``/usr/bin/python3``), which has GStreamer's
introspection bindings from Debian packages; the project's python does not need them.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = ("python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base "
                   "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav")
# Generous: two loaded CI cores start GStreamer, preroll the media and answer DESCRIBE.
READY_DEADLINE_S = 30.0
# Every element the server's pipelines use, so a missing plugin package is named up front
# instead of failing as a 503 from the server in the middle of a test.
_CHECK = """
import gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [e for e in ("filesrc", "qtdemux", "h264parse", "avdec_h264", "videoconvert",
                       "videoscale", "capsfilter", "x264enc", "rtph264pay")
           if Gst.ElementFactory.find(e) is None]
print(" ".join(missing))
raise SystemExit(1 if missing else 0)
"""


@functools.lru_cache(maxsize=1)  # the answer cannot change within a session
def unavailable_reason() -> str | None:
    """Why the RTSP server cannot run here (None when it can)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found"
    proc = subprocess.run([SYSTEM_PYTHON, "-c", _CHECK], capture_output=True, text=True,
                          timeout=60)
    if proc.returncode == 0:
        return None
    detail = proc.stdout.strip() and f"missing GStreamer elements: {proc.stdout.strip()}"
    return detail or proc.stderr.strip().splitlines()[-1]


def require_rtsp_server() -> None:
    """Skip with the packages to install; in CI (``CI`` set) fail, so nothing hides a gap."""
    reason = unavailable_reason()
    if reason is None:
        return
    line = f"RTSP server unavailable ({reason}); apt-get install -y {DEBIAN_PACKAGES}"
    if os.environ.get("CI"):
        pytest.fail(line, pytrace=False)
    pytest.skip(line)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def describe_ok(port: int, mount: str, timeout: float = 5.0) -> bool:
    """Whether an RTSP DESCRIBE of ``mount`` answers 200, i.e. the media really prerolled."""
    request = (f"DESCRIBE rtsp://127.0.0.1:{port}{mount} RTSP/1.0\r\nCSeq: 1\r\n"
               "Accept: application/sdp\r\n\r\n").encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(request)
            head = s.recv(64)
    except OSError:
        return False
    return head.startswith(b"RTSP/1.0 200")


class RtspServer:
    """``rtsp_server.py`` on a fixed loopback port; SIGKILL it and bring it back on that port."""

    def __init__(self, clip: Path, port: int, log: Path, *extra: str) -> None:
        self.clip, self.port, self.log = clip, port, log
        self.extra = list(extra)
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, mount: str = "/cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}{mount}"

    def start(self, *extra: str) -> float:
        """Start (``extra`` replaces the extra arguments) and wait until ``/cam`` and
        ``/switch`` answer DESCRIBE; returns the wall-clock time (epoch s) it was ready."""
        if extra:
            self.extra = list(extra)
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--clip",
                 str(self.clip), *self.extra], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"RTSP server exited with {self._proc.returncode}:\n"
                                   f"{self.log_tail()}")
            if describe_ok(self.port, "/cam") and describe_ok(self.port, "/switch"):
                return time.time()
            time.sleep(0.1)  # polling a port has no event to wait on
        self.kill()
        raise RuntimeError(f"RTSP server not serving on {self.port} within "
                           f"{READY_DEADLINE_S:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled cable: clients get no TEARDOWN."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def restart(self, *extra: str) -> float:
        self.kill()
        return self.start(*extra)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
