"""Two cameras in one run while one of them fails (issue 10's acceptance): a looped file in
real time beside a real RTSP camera whose server is killed and restarted. The RTSP camera
reconnects on its own and the file camera is not held up meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fault_run import STATS_INTERVAL_S, Run
from rtsp_fixture import RtspServer

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

RETURN_LIMIT_S = 5.0
Lines = list[dict[str, Any]]


def _stats(lines: Lines, camera: str) -> list[dict[str, Any]]:
    return [m["payload"] for m in lines if m["topic"] == f"{camera}/stats"]


def _frames(lines: Lines, camera: str) -> int:
    stats = _stats(lines, camera)
    return int(stats[-1]["frames"]) if stats else 0


def _tracked(lines: Lines, camera: str) -> bool:
    return any(m["topic"] == f"{camera}/tracks" for m in lines)


def test_rtsp_camera_dies_and_returns_beside_a_file_camera(
        rtsp_server: RtspServer, media_dir: Path, tmp_path: Path,
        model_paths: dict[str, Path]) -> None:
    config = tmp_path / "cams.yaml"
    config.write_text(f"""
stats_interval_s: {STATS_INTERVAL_S}
cameras:
  - id: door
    source: {{url: '{media_dir / "single_face.mp4"}', loop: true}}
  - id: lab
    source: {{url: '{rtsp_server.url()}', read_timeout_s: 2, reconnect_backoff_max_s: 1}}
""", encoding="utf-8")
    run = Run(tmp_path, "--config", str(config), "--max-seconds", "25")
    try:
        run.wait_for(lambda ls: _tracked(ls, "lab") and _tracked(ls, "door"), "both tracked")
        rtsp_server.kill()
        lines = run.wait_for(lambda ls: _stats(ls, "lab")[-1]["stalls"] >= 1, "lab stalled")
        lab_before, door_before = _frames(lines, "lab"), _stats(lines, "door")[-1]
        back = rtsp_server.start()
        lines = run.wait_for(lambda ls: _frames(ls, "lab") > lab_before + 30, "lab came back")
        door_after = _stats(lines, "door")[-1]
        rc = run.wait()
    finally:
        run.kill()
    assert rc == 0, run.stderr()[-3000:]
    lines = run.lines()
    lab = _stats(lines, "lab")
    again = next(s["ts"] for s in lab if s["ts"] > back and s["frames"] > lab_before)
    assert again - back <= RETURN_LIMIT_S, f"lab frames again {again - back:.1f} s after return"
    assert lab[-1]["reconnects"] >= 1, lab[-1]
    # the file camera went on at its own pace (30 fps) while the other was down and reconnecting
    door_fps = (door_after["frames"] - door_before["frames"]) / (door_after["ts"] -
                                                                  door_before["ts"])
    assert door_fps >= 20, f"the file camera slowed to {door_fps:.1f} fps meanwhile"
    door = _stats(lines, "door")
    assert door[-1]["state"] == "running" and door[-1]["errors"] == 0, door[-1]
    for camera in ("door", "lab"):  # each ends with its final stats, then offline
        own = [m for m in lines if m["topic"].startswith(f"{camera}/")]
        assert own[-1]["payload"] == "offline" and own[-2]["topic"] == f"{camera}/stats"
    print(f"\nlab frames again {again - back:.2f} s after its return; door at "
          f"{door_fps:.1f} fps meanwhile")
