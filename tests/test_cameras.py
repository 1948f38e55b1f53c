"""Several cameras in one run (``cameras:``): the config, and real runs of a looped file beside
a camera that never answers."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, cli_env, read_jsonl

from affectstream.cli import _build_parser, _overrides
from affectstream.config import Config, load_config
from affectstream.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cams.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_each_camera_gets_its_id_source_and_overrides(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, """
spotter: {min_z: 3.5}
cameras:
  - id: door
    source: {url: a.mp4, loop: true}
  - id: lab
    source: {url: 'rtsp://cam/stream'}
    spotter: {min_z: 5}
"""))
    door, lab = cfg.camera_configs()
    assert (door.camera_id, door.source.url, door.source.loop, door.spotter.min_z) == \
        ("door", "a.mp4", True, 3.5)
    assert (lab.camera_id, lab.source.url, lab.spotter.min_z) == ("lab", "rtsp://cam/stream", 5)
    assert door.cameras == [] and Config().camera_configs()[0].camera_id == "cam0"


def test_a_camera_of_another_vlm_type_keeps_the_shared_settings() -> None:
    cfg = Config.model_validate({
        "vlm": {"type": "openai", "url": "http://127.0.0.1:1/v1", "period_s": 3.0},
        "cameras": [{"id": "a", "source": {"url": "x"}},
                    {"id": "b", "source": {"url": "y"}, "vlm": {"type": "none"}}]})
    a, b = cfg.camera_configs()
    assert (a.vlm.type, b.vlm.type) == ("openai", "none")
    assert b.vlm.period_s == 3.0  # labels and timing are every estimator's; url is openai's


@pytest.mark.parametrize(("text", "message"), [
    ("cameras:\n  - {id: a, source: {url: x}}\n  - {id: a, source: {url: y}}\n",
     "cameras: id 'a' is used twice"),
    ("cameras:\n  - {id: a, source: {url: x}, spotter: {min_z: -1}}\n",
     "cameras[0] (a): spotter.min_z"),
    ("cameras:\n  - {id: a, source: {url: x}, spotter: {nope: 1}}\n",
     "cameras[0] (a): unknown key 'spotter.nope'"),
    ("sinks: ['mqtt://embedded']\ncameras:\n  - {id: a, source: {url: x}}\n"
     "  - {id: b, source: {url: y}}\n", "mqtt://embedded serves one camera"),
])
def test_bad_cameras_fail_when_the_file_loads(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_config(_write(tmp_path, text))


def test_source_flag_runs_one_camera(tmp_path: Path) -> None:
    path = _write(tmp_path, "cameras:\n  - {id: a, source: {url: x}}\n")
    args = _build_parser().parse_args(["run", "--config", str(path), "--source", "b.mp4"])
    cfg = load_config(path, _overrides(args))
    assert [c.source.url for c in cfg.camera_configs()] == ["b.mp4"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def _two_cameras(tmp_path: Path, media_dir: Path, out: Path) -> Path:
    return _write(tmp_path, f"""
sinks: ['jsonl:{out}']
stats_interval_s: 0.5
cameras:
  - id: door
    source: {{url: '{media_dir / "single_face.mp4"}', loop: true}}
  - id: dead
    source: {{url: 'rtsp://127.0.0.1:{_closed_port()}/cam', open_timeout_s: 1,
              reconnect_backoff_max_s: 0.5}}
""")


def _by_camera(lines: list[dict[str, Any]], camera: str, leaf: str) -> list[Any]:
    return [m["payload"] for m in lines if m["topic"] == f"{camera}/{leaf}"]


@pytest.mark.e2e
def test_a_dead_camera_is_retried_without_stopping_the_other(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    out = tmp_path / "run.jsonl"
    proc = cli("run", "--config", str(_two_cameras(tmp_path, media_dir, out)),
               "--max-seconds", "6", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(out)
    door, dead = _by_camera(lines, "door", "stats"), _by_camera(lines, "dead", "stats")
    assert door[-1]["state"] == "running" and door[-1]["frames"] >= 60, door[-1]
    assert _by_camera(lines, "door", "tracks"), "the file camera found no face"
    assert dead[-1]["state"] == "opening" and dead[-1]["frames"] == 0
    assert dead[-1]["open_failures"] >= 2, dead[-1]  # retried on its own schedule
    for camera in ("door", "dead"):  # each ends with its final stats, then offline
        assert _by_camera(lines, camera, "availability")[-1] == "offline"
        topics = [m["topic"] for m in lines if m["topic"].startswith(f"{camera}/")]
        assert topics[-2:] == [f"{camera}/stats", f"{camera}/availability"], topics[-3:]
    assert proc.stderr.count("retrying until it opens") == 1  # logged once, counted after
    summed = [m["payload"] for m in lines if m["topic"] == "stats"]  # {prefix}/stats
    assert summed, "no process-level stats"
    last = summed[-1]
    assert (last["schema"], last["cameras"]) == ("affectstream.process_stats/1", 2)
    assert last["running"] == 1 and last["open_failures"] >= 2 and last["frames"] > 0


@pytest.mark.e2e
def test_sigterm_ends_a_multi_camera_run_cleanly(
        tmp_path: Path, media_dir: Path, model_paths: dict[str, Path]) -> None:
    out = tmp_path / "run.jsonl"
    config = _two_cameras(tmp_path, media_dir, out)
    proc = subprocess.Popen([sys.executable, "-m", "affectstream", "run", "--config",
                             str(config)], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                out.exists() and '"door/tracks"' in out.read_text(encoding="utf-8")):
            time.sleep(0.1)  # the run's output file has no event to wait on
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 0, proc.stderr
    assert took < 5, f"exit took {took:.1f} s after SIGTERM"
    lines = read_jsonl(out)
    for camera in ("door", "dead"):
        assert _by_camera(lines, camera, "availability")[-1] == "offline"
        assert _by_camera(lines, camera, "stats"), camera
    assert _by_camera(lines, "door", "stats")[-1]["frames"] > 0
