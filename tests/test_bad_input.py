"""Bad input exits 2 with one line on stderr; a stopped run flushes what it produced (R4).

Every case runs the real CLI in a fresh interpreter, so what native libraries (OpenCV, FFmpeg,
MediaPipe) print to the process's stderr counts too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import (
    assert_flushed,
    cli,
    cli_env,
    messages_after_end,
    payloads,
    read_jsonl,
    track_events,
)
from message_schemas import schema_errors

pytestmark = pytest.mark.timeout(300)

UNSET = "AFFECTSTREAM_TEST_UNSET_VAR"
SINGLE_FACE_FRAMES = 72


def _config(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _not_video(tmp: Path) -> Path:
    path = tmp / "x.mp4"
    path.write_text("this is a text file, not a video\n" * 20, encoding="utf-8")
    return path


# name -> (build args from (tmp_path, single_face.mp4, jsonl sink spec), words the message names)
Case = tuple[Callable[[Path, str, str], list[str]], list[str]]
CASES: dict[str, Case] = {
    "missing-file": (
        lambda tmp, clip, sink: ["run", "--source", "/nonexistent.mp4", "--sink", sink],
        ["/nonexistent.mp4"]),
    "not-a-video": (
        lambda tmp, clip, sink: ["run", "--source", str(_not_video(tmp)), "--sink", sink,
                                 "--no-realtime"],
        ["x.mp4"]),
    "unknown-config-key": (
        lambda tmp, clip, sink: ["run", "--config", str(_config(tmp, "detector: {bogus: 1}\n")),
                                 "--source", clip, "--sink", sink, "--no-realtime"],
        ["bogus"]),
    "bad-config-value": (
        lambda tmp, clip, sink: ["run", "--config",
                                 str(_config(tmp, "detector: {score_threshold: 2}\n")),
                                 "--source", clip, "--sink", sink, "--no-realtime"],
        ["score_threshold"]),
    "invalid-yaml": (
        lambda tmp, clip, sink: ["run", "--config",
                                 str(_config(tmp, "detector: [1, 2\n  spotter: : :\n")),
                                 "--source", clip, "--sink", sink, "--no-realtime"],
        ["YAML"]),
    "missing-config": (
        lambda tmp, clip, sink: ["run", "--config", str(tmp / "missing.yaml"), "--source", clip,
                                 "--sink", sink, "--no-realtime"],
        ["missing.yaml"]),
    "unknown-sink": (
        lambda tmp, clip, sink: ["run", "--source", clip, "--sink", "foo:bar", "--no-realtime"],
        ["foo:bar"]),
    "vlm-openai-without-url": (
        lambda tmp, clip, sink: ["run", "--source", clip, "--sink", sink, "--no-realtime",
                                 "--vlm-backend", "openai"],
        ["vlm.type (--vlm-backend) openai needs vlm.url (--vlm-url)"]),
    "vlm-key-of-another-type": (
        lambda tmp, clip, sink: ["run", "--config", str(_config(
            tmp, "vlm: {type: none, url: 'http://127.0.0.1:8000/v1'}\n")), "--source", clip,
            "--sink", sink, "--no-realtime"],
        ["vlm.url (--vlm-url) is not a setting of vlm.type (--vlm-backend) none",
         "belongs to openai"]),
    "calibration-table-missing": (
        lambda tmp, clip, sink: ["run", "--config", str(_config(
            tmp, "vlm: {type: openai, url: 'http://127.0.0.1:1/v1', calibration: table}\n")),
            "--source", clip, "--sink", sink, "--no-realtime"],
        ["vlm.calibration: table needs vlm.calibration_table"]),
    "unknown-webcam": (
        lambda tmp, clip, sink: ["run", "--source", "97", "--sink", sink],
        ["97"]),
    "specialist-model-missing": (
        lambda tmp, clip, sink: ["run", "--config", str(_config(
            tmp, "specialist: {enabled: true, model_path: /nonexistent/fer.onnx, "
                 "labels: [happy, sad]}\n")), "--source", clip, "--sink", sink,
            "--no-realtime"],
        ["specialist.model_path", "/nonexistent/fer.onnx"]),
    "specialist-model-not-onnx": (
        lambda tmp, clip, sink: ["run", "--config", str(_config(
            tmp, f"specialist: {{enabled: true, model_path: {_not_video(tmp)}, "
                 "labels: [happy, sad]}\n")), "--source", clip, "--sink", sink,
            "--no-realtime"],
        ["specialist", "x.mp4"]),
    "unset-env-var": (
        lambda tmp, clip, sink: ["run", "--config",
                                 str(_config(tmp, f"camera_id: ${{{UNSET}}}\n")),
                                 "--source", clip, "--sink", sink, "--no-realtime"],
        [UNSET]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(case: str, tmp_path: Path, media_dir: Path,
                                         model_paths: dict[str, Path]) -> None:
    build, words = CASES[case]
    out = tmp_path / "out.jsonl"
    args = build(tmp_path, str(media_dir / "single_face.mp4"), f"jsonl:{out}")
    env = cli_env()
    env.pop(UNSET, None)
    proc = cli(*args, cwd=tmp_path, env=env, timeout=120)

    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith("affectstream: error:"), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert proc.stdout.strip() == "", proc.stdout
    # Nothing half-written: the sink was never started for input that cannot run.
    assert not out.exists() or out.read_text(encoding="utf-8") == ""


# -- a run that is stopped flushes everything already produced --------------------------------


@pytest.fixture(scope="module")
def max_seconds_run(media_dir: Path, model_paths: dict[str, Path],
                    tmp_path_factory: pytest.TempPathFactory,
                    ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """A real-time run of the 2.4 s clip stopped after 1.2 s."""
    folder = tmp_path_factory.mktemp("max_seconds")
    out = folder / "out.jsonl"
    proc = cli("run", "--source", str(media_dir / "single_face.mp4"), "--max-seconds", "1.2",
               "--sink", f"jsonl:{out}", cwd=folder)
    return proc, (read_jsonl(out) if out.exists() else [])


@dataclass
class SigtermRun:
    ready: bool = False
    returncode: int | None = None
    exit_s: float | None = None
    stderr: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)


def _sigterm_run(folder: Path, clip: Path,
                 ready: Callable[[list[dict[str, Any]]], bool]) -> SigtermRun:
    """Run ``clip`` looped in real time; send SIGTERM once ``ready(messages so far)``."""
    out, err_path = folder / "out.jsonl", folder / "stderr.txt"
    result = SigtermRun()
    with err_path.open("w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "affectstream", "run", "--source", str(clip), "--loop",
             "--sink", f"jsonl:{out}"],
            cwd=folder, env=cli_env(), stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                if out.exists() and ready(read_jsonl(out, tolerate_partial_tail=True)):
                    result.ready = True
                    break
                time.sleep(0.05)
            if result.ready:
                proc.send_signal(signal.SIGTERM)
                t0 = time.monotonic()
                try:
                    result.returncode = proc.wait(timeout=15)
                    result.exit_s = time.monotonic() - t0
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result.stderr = err_path.read_text(encoding="utf-8")
    result.lines = read_jsonl(out) if out.exists() else []
    return result


@pytest.fixture(scope="module")
def sigterm_run(media_dir: Path, model_paths: dict[str, Path],
                tmp_path_factory: pytest.TempPathFactory) -> SigtermRun:
    """SIGTERM as soon as the first track was announced."""
    return _sigterm_run(tmp_path_factory.mktemp("sigterm"), media_dir / "single_face.mp4",
                        lambda lines: bool(track_events(lines, "new")))


@pytest.fixture(scope="module")
def sigterm_mid_smile_run(media_dir: Path, model_paths: dict[str, Path],
                          tmp_path_factory: pytest.TempPathFactory) -> SigtermRun:
    """SIGTERM once the smile is under way (its first log line, ≈ 0.8 s): the smile's burst
    (≈ frames 18-70) is still open and must be flushed at the stop."""
    return _sigterm_run(tmp_path_factory.mktemp("sigterm_mid"), media_dir / "single_face.mp4",
                        lambda lines: any("/faces/" in m["topic"] for m in lines))


@pytest.mark.e2e
def test_max_seconds_flushes_everything(
        max_seconds_run: tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]) -> None:
    proc, lines = max_seconds_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_flushed(lines)
    final = payloads(lines, "stats")[-1]
    assert 0 < final["frames"] < SINGLE_FACE_FRAMES, "the run was not stopped mid-clip"
    assert final["bursts"] == len(payloads(lines, "bursts"))
    for burst in payloads(lines, "bursts"):
        assert not schema_errors("affectstream.burst/1", burst), \
            schema_errors("affectstream.burst/1", burst)


@pytest.mark.e2e
def test_sigterm_flushes_everything(sigterm_run: SigtermRun) -> None:
    run = sigterm_run
    assert run.ready, f"no tracks 'new' message within 30 s; stderr:\n{run.stderr}"
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert run.exit_s is not None and run.exit_s <= 15
    assert "Traceback" not in run.stderr
    assert_flushed(run.lines)
    final = payloads(run.lines, "stats")[-1]
    assert final["bursts"] == len(payloads(run.lines, "bursts"))


@pytest.mark.e2e
@pytest.mark.parametrize("stop", ["max_seconds", "sigterm", "sigterm_mid_smile"])
def test_stopped_run_ends_each_track_after_its_last_message(
        stop: str, request: pytest.FixtureRequest) -> None:
    """A consumer treats a track's ``end`` as final: bursts and log lines flushed at the stop
    must be published before it."""
    if stop == "max_seconds":
        _, lines = request.getfixturevalue("max_seconds_run")
    else:
        run = request.getfixturevalue(f"{stop}_run")
        assert run.ready and run.returncode == 0, (run.ready, run.returncode, run.stderr)
        lines = run.lines
    assert track_events(lines, "end"), "no track ended"
    if stop == "sigterm_mid_smile":
        assert payloads(lines, "bursts"), "the open smile burst was not flushed at the stop"
    late = messages_after_end(lines)
    assert not late, "\n".join(late)
