"""RTSP faults against a real GStreamer RTSP server (R1, R4): the server crashes and returns,
never answers, changes resolution mid-stream, and the run is stopped while reconnecting."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import payloads, track_events
from fault_run import Run, assert_ended_cleanly, frames, write_config
from rtsp_fixture import RtspServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

RETURN_LIMIT_S = 5.0
"""R1: frames again within this long of the server's return."""


def _stalled(lines: list[dict[str, object]]) -> bool:
    """The run has noticed the dead server: a stall is counted in the stats."""
    stats = payloads(lines, "stats")
    return bool(stats) and stats[-1]["stalls"] >= 1


def test_server_killed_and_restarted_mid_run(rtsp_server: RtspServer, tmp_path: Path,
                                             model_paths: dict[str, Path]) -> None:
    run = Run(tmp_path, "--source", rtsp_server.url(), "--max-seconds", "20",
              "--config", str(write_config(tmp_path)))
    try:
        run.wait_for(lambda ls: bool(track_events(ls, "new")), "a face was tracked")
        rtsp_server.kill()
        lines = run.wait_for(_stalled, "the stall was counted")
        before = frames(lines)
        back = rtsp_server.start()
        lines = run.wait_for(lambda ls: frames(ls) > before + 30, "frames came back")
        rc = run.wait()
    finally:
        run.kill()
    assert rc == 0, run.stderr()[-3000:]
    lines = run.lines()
    final = assert_ended_cleanly(lines)
    assert final["reconnects"] >= 1 and final["stalls"] >= 1, final
    # The first stats message after the return that counts new frames bounds when they came.
    again = next(s["ts"] for s in payloads(lines, "stats")
                 if s["ts"] > back and s["frames"] > before)
    assert again - back <= RETURN_LIMIT_S, f"frames again {again - back:.1f} s after the return"
    assert final["frames"] > before + 30
    assert track_events(lines, "new"), "no face tracked after the return"
    print(f"\nframes again within {again - back:.2f} s of the server's return")


class _SilentListener:
    """A loopback port that accepts connections and never says a word."""

    def __init__(self, port: int = 0) -> None:
        self._sock = socket.create_server(("127.0.0.1", port))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self._held.append(self._sock.accept()[0])
            except TimeoutError:
                continue  # wake up to check for close()
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    listener = _SilentListener()
    yield listener.port
    listener.close()


@pytest.mark.parametrize("kind", ["silent", "closed"])
def test_url_that_never_answers_exits_2(kind: str, request: pytest.FixtureRequest,
                                        tmp_path: Path, model_paths: dict[str, Path]) -> None:
    port = request.getfixturevalue("silent_port") if kind == "silent" else free_port()
    open_timeout_s = 3.0
    run = Run(tmp_path, "--source", f"rtsp://127.0.0.1:{port}/cam", "--max-seconds", "30",
              "--config", str(write_config(tmp_path, open_timeout_s=open_timeout_s)))
    try:
        rc = run.wait(timeout=120)
    finally:
        run.kill()
    err = [ln for ln in run.stderr().splitlines() if ln.strip()]
    assert rc == 2, run.stderr()[-3000:]
    assert len(err) == 1, err
    assert err[0].startswith("affectstream: error:") and f"127.0.0.1:{port}" in err[0], err[0]
    assert "open_timeout_s" in err[0] and "check the URL" in err[0], err[0]
    assert run.stdout() == ""
    assert not run.out.exists() or run.out.read_text(encoding="utf-8") == ""


@pytest.mark.parametrize("outage", ["refused", "silent"])
def test_sigterm_while_reconnecting(outage: str, rtsp_server: RtspServer, tmp_path: Path,
                                    model_paths: dict[str, Path]) -> None:
    """SIGTERM while the source retries a dead server: one whose port refuses connections
    (backoff between attempts), or one whose port accepts and never answers (an attempt
    blocked in FFmpeg's open for up to ``open_timeout_s``)."""
    # One failed read reconnects, so a failed reconnect attempt shows as a second error.
    run = Run(tmp_path, "--source", rtsp_server.url(), "--max-seconds", "60",
              "--config", str(write_config(tmp_path, max_consecutive_failures=1)))
    listener = None
    try:
        run.wait_for(lambda ls: bool(track_events(ls, "new")), "a face was tracked")
        rtsp_server.kill()
        if outage == "silent":
            listener = _SilentListener(rtsp_server.port)
        run.wait_for(_stalled, "the stall was counted")
        if outage == "refused":
            run.wait_for(lambda ls: payloads(ls, "stats")[-1]["errors"] >= 2,
                         "a reconnect attempt failed")
        run.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = run.wait(timeout=30)
        exit_s = time.monotonic() - t0
    finally:
        run.kill()
        if listener is not None:
            listener.close()
    assert rc == 0, run.stderr()[-3000:]
    assert exit_s <= 5.0, f"took {exit_s:.1f} s to stop after SIGTERM"
    lines = run.lines()
    final = assert_ended_cleanly(lines)
    assert final["stalls"] >= 1
    new = [p["track_id"] for p in track_events(lines, "new")]
    end = [p["track_id"] for p in track_events(lines, "end")]
    assert new and sorted(new) == sorted(end), (new, end)


def test_resolution_changes_mid_session_and_across_a_reconnect(
        rtsp_server: RtspServer, tmp_path: Path, model_paths: dict[str, Path]) -> None:
    """The encoder switches 640×360 → 480×272 inside one RTSP session, then the server comes
    back serving 480×272 from the start, so the run's frames change size at the reconnect."""
    rtsp_server.restart("--size", "640x360", "--switch-size", "480x272", "--switch-after", "2")
    run = Run(tmp_path, "--source", rtsp_server.url("/switch"), "--max-seconds", "20",
              "--config", str(write_config(tmp_path)))
    try:
        # 4 s of frames: past the switch at 2 s of stream time.
        run.wait_for(lambda ls: frames(ls) >= 120, "4 s of frames")
        assert "switched to 480x272" in rtsp_server.log_tail()
        rtsp_server.kill()
        lines = run.wait_for(_stalled, "the stall was counted")
        before = frames(lines)
        back = rtsp_server.start("--size", "480x272", "--switch-size", "640x360",
                                 "--switch-after", "2")
        run.wait_for(lambda ls: frames(ls) >= before + 120, "4 s of frames after the return")
        rc = run.wait()
    finally:
        run.kill()
    assert rc == 0, run.stderr()[-3000:]
    lines = run.lines()
    final = assert_ended_cleanly(lines)
    assert final["reconnects"] >= 1
    stats = payloads(lines, "stats")
    assert any(s["tracks"] >= 1 for s in stats if s["frames"] < before), "no face before"
    # Boxes are in frame pixels: the face (≈ 150×220 px at 640×360) reaches below y = 272
    # before, and a track announced after the return (the old one ended during the outage)
    # lies inside 480×272, so perception really got the smaller frames and found the face.
    first = track_events(lines, "new")[0]
    assert first["bbox"][3] > 272, first
    after = [p for p in track_events(lines, "new") if p["ts"] > back]
    assert after, "no face tracked after the return"
    assert all(p["bbox"][2] <= 480 and p["bbox"][3] <= 272 for p in after), after


def test_rtsp_transport_is_honoured(rtsp_server: RtspServer, tmp_path: Path,
                                    model_paths: dict[str, Path]) -> None:
    """The test server takes RTSP over TCP only: the default (tcp) opens it, udp cannot."""
    config = write_config(tmp_path, open_timeout_s=3)
    udp = tmp_path / "udp.yaml"
    udp.write_text(config.read_text(encoding="utf-8").replace(
        "source: {", "source: {rtsp_transport: udp, "), encoding="utf-8")
    run = Run(tmp_path, "--source", rtsp_server.url(), "--config", str(udp))
    assert run.wait() == 2, run.stderr()[-2000:]
    assert "cannot open stream" in run.stderr()
    run = Run(tmp_path, "--source", rtsp_server.url(), "--max-seconds", "3", "--config",
              str(config))
    assert run.wait() == 0, run.stderr()[-2000:]
    assert frames(run.lines()) > 0
