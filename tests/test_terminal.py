"""Terminal output: ``--quiet``, ``--log-format json`` and progress bars (off into a pipe unless
``--progress`` forces them), on the real CLI; the choices' scoping and the JSON formatter."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from cli_helpers import cli, read_jsonl

from affectstream.terminal import JsonFormatter, Terminal, current, session

pytestmark = pytest.mark.timeout(300)

ANSI = re.compile(r"\x1b\[")
JSON_KEYS = {"ts", "level", "logger", "message"}


def _run(media_dir: Path, tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    out = tmp_path / "out.jsonl"
    proc = cli(*extra[:1], "run", "--source", str(media_dir / "single_face.mp4"),
               "--no-realtime", "--sink", f"jsonl:{out}", *extra[1:], cwd=tmp_path)
    return proc.returncode, proc.stderr, out


def _json_lines(stderr: str) -> list[dict[str, object]]:
    records = []
    for line in stderr.splitlines():
        record = json.loads(line)  # every line, or the test fails here
        assert isinstance(record, dict) and set(record) >= JSON_KEYS, line
        records.append(record)
    return records


@pytest.mark.e2e
def test_quiet_run_prints_nothing_but_still_publishes(media_dir: Path, tmp_path: Path,
                                                      model_paths: dict[str, Path]) -> None:
    rc, stderr, out = _run(media_dir, tmp_path, "-v", "--quiet", "--progress")
    assert rc == 0, stderr
    assert stderr == "", stderr
    assert read_jsonl(out), "the sink got nothing"


@pytest.mark.e2e
def test_json_log_format_makes_every_stderr_line_json(media_dir: Path, tmp_path: Path,
                                                      model_paths: dict[str, Path]) -> None:
    """-v adds info records from the library; the command's own summary and its report note
    are records too, and no progress bar or plain line gets in between."""
    rc, stderr, _ = _run(media_dir, tmp_path, "-v", "--log-format", "json", "--report",
                         str(tmp_path / "r.html"))
    assert rc == 0, stderr
    records = _json_lines(stderr)
    messages = [str(r["message"]) for r in records]
    assert any(m.startswith("processed 72 frames") for m in messages), messages
    assert any(m.startswith("report: ") for m in messages), messages
    assert all(r["level"] in {"debug", "info", "warning", "error"} for r in records)


def test_json_errors_are_json_too(media_dir: Path, tmp_path: Path) -> None:
    proc = cli("run", "--log-format", "json", "--source", str(tmp_path / "missing.mp4"),
               cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    (record,) = _json_lines(proc.stderr)
    assert record["level"] == "error" and "missing.mp4" in str(record["message"])


@pytest.mark.e2e
def test_no_progress_bar_into_a_pipe_unless_forced(media_dir: Path, tmp_path: Path,
                                                   model_paths: dict[str, Path]) -> None:
    rc, stderr, _ = _run(media_dir, tmp_path)
    assert rc == 0, stderr
    assert not ANSI.search(stderr) and "fps" not in stderr, stderr
    assert stderr.strip().splitlines() == [
        line for line in stderr.strip().splitlines() if line.startswith("processed ")]
    rc, forced, _ = _run(media_dir, tmp_path, "--progress")
    assert rc == 0, forced
    assert ANSI.search(forced) and "72/72" in forced and "fps" in forced, forced[-500:]


def test_progress_choice() -> None:
    assert not Terminal(quiet=True, force_progress=True).progress
    assert not Terminal(log_format="json", force_progress=True).progress
    assert Terminal(force_progress=True).progress
    # pytest captures stderr: not a terminal
    assert not Terminal().progress


def test_session_is_scoped_to_the_command() -> None:
    assert current() == Terminal()
    with session(Terminal(quiet=True)):
        assert current().quiet
    assert current() == Terminal()


def test_json_formatter_fields() -> None:
    record = logging.LogRecord("affectstream.x", logging.WARNING, __file__, 1,
                               "camera %s: %s", ("door", "rtsp://u:***@h/s"), None)
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "warning" and doc["logger"] == "affectstream.x"
    assert doc["message"] == "camera door: rtsp://u:***@h/s"
    assert isinstance(doc["ts"], float)


def test_flags_work_before_and_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    from affectstream.cli import _build_parser

    parser = _build_parser()
    before = parser.parse_args(["--quiet", "--log-format", "json", "config", "schema"])
    after = parser.parse_args(["config", "schema", "--quiet", "--log-format", "json"])
    plain = parser.parse_args(["--quiet", "config", "schema"])  # the command keeps it
    for args in (before, after):
        assert args.quiet and args.log_format == "json"
    assert plain.quiet and plain.log_format == "text"
