"""A real RTSP server for the fault tests: GStreamer's gst-rtsp-server on 127.0.0.1.

Run with the system python, which has PyGObject (Debian ``python3-gi``); the project's python
need not have it::

    /usr/bin/python3 tests/faults/rtsp_server.py --port 8554 --clip looped.mp4

Mounts (RTP over TCP only, so a client that asks for UDP first must fall back to TCP):

- ``/cam``: the clip's H.264 stream as it is (no re-encoding), paced at its own rate.
- ``/switch``: the clip decoded, scaled to ``--size`` and encoded with x264; after
  ``--switch-after`` seconds of stream time it switches to ``--switch-size`` within the same
  RTSP session (the encoder restarts with new SPS/PPS and a key frame).

Each client gets its own pipeline from the start of the clip. Exits on SIGTERM/SIGINT; a
SIGKILL is a crash, which is what the tests want to simulate.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# Key frame every 15 frames: a client that joins or a decoder that lost sync recovers in 0.5 s.
X264 = ("x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=1500 "
        "threads=1")


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h)


class SwitchFactory(GstRtspServer.RTSPMediaFactory):
    """``/switch``: re-encodes the clip and changes resolution once, mid-session."""

    def __init__(self, clip: str, size: tuple[int, int], switch_size: tuple[int, int],
                 switch_after_s: float) -> None:
        super().__init__()
        self.clip, self.size, self.switch_size = clip, size, switch_size
        self.switch_after_ns = int(switch_after_s * Gst.SECOND)

    def do_create_element(self, url: GstRtsp.RTSPUrl) -> Gst.Element:
        w, h = self.size
        # videorate + a fixed framerate keep caps simple for the encoder across the switch.
        bin_ = Gst.parse_launch(
            f"( filesrc location={self.clip} ! qtdemux ! h264parse ! avdec_h264 ! "
            f"videoconvert ! videoscale ! capsfilter name=size "
            f"caps=video/x-raw,width={w},height={h},format=I420 ! {X264} ! "
            "video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1 )")
        caps = bin_.get_by_name("size")
        pad = caps.get_static_pad("src")
        pad.add_probe(Gst.PadProbeType.BUFFER, self._maybe_switch, caps)
        return bin_

    def _maybe_switch(self, pad: Gst.Pad, info: Gst.PadProbeInfo,
                      caps: Gst.Element) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        if buf is not None and buf.pts != Gst.CLOCK_TIME_NONE and buf.pts >= self.switch_after_ns:
            w, h = self.switch_size
            # Setting caps from the streaming thread is allowed: the change applies to the next
            # buffer, which triggers renegotiation downstream (x264enc reopens its encoder).
            caps.set_property("caps", Gst.Caps.from_string(
                f"video/x-raw,width={w},height={h},format=I420"))
            print(f"switched to {w}x{h}", flush=True)
            return Gst.PadProbeReturn.REMOVE
        return Gst.PadProbeReturn.OK


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clip", required=True, help="an MP4 with an H.264 video stream")
    ap.add_argument("--size", type=_size, default=(640, 360))
    ap.add_argument("--switch-size", type=_size, default=(480, 272))
    ap.add_argument("--switch-after", type=float, default=2.0)
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    cam = GstRtspServer.RTSPMediaFactory()
    cam.set_launch(f"( filesrc location={args.clip} ! qtdemux ! h264parse config-interval=-1 ! "
                   "rtph264pay name=pay0 pt=96 config-interval=-1 )")
    switch = SwitchFactory(args.clip, args.size, args.switch_size, args.switch_after)
    mounts = server.get_mount_points()
    for path, factory in (("/cam", cam), ("/switch", switch)):
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        mounts.add_factory(path, factory)

    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"serving rtsp://127.0.0.1:{args.port}/cam and /switch", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
