"""Helpers for the command-line tests: run the real CLI and read what its sinks wrote."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from affectstream.cli import main

CAMERA = "cam0"
CLI_TIMEOUT_S = 180


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AFFECTSTREAM_HOME", None)  # models come from the default cache (model_paths)
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """``python -m affectstream ARGS`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "affectstream", *args], cwd=cwd,
                          env=env if env is not None else cli_env(), capture_output=True,
                          text=True, timeout=timeout)


def main_json(*args: str) -> Any:
    """Run the CLI in-process and parse its stdout as one JSON document."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(list(args))
    assert rc == 0, f"affectstream {' '.join(args)} exited {rc}"
    return json.loads(buf.getvalue())


def read_jsonl(path: Path, *, tolerate_partial_tail: bool = False) -> list[dict[str, Any]]:
    """Every line of a JSONL sink file; a half-written last line is skipped on request."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if tolerate_partial_tail and i == len(lines) - 1:
                break
            raise AssertionError(f"{path} line {i + 1} is not JSON: {line[:200]!r}") from None
    return out


def topic(name: str) -> str:
    return f"{CAMERA}/{name}"


def payloads(lines: list[dict[str, Any]], name: str) -> list[Any]:
    return [m["payload"] for m in lines if m["topic"] == topic(name)]


def track_events(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [p for p in payloads(lines, "tracks") if p["type"] == kind]


def strip_keys(obj: Any, keys: frozenset[str]) -> Any:
    """``obj`` without the given keys at any depth."""
    if isinstance(obj, dict):
        return {k: strip_keys(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [strip_keys(v, keys) for v in obj]
    return obj


def assert_flushed(lines: list[dict[str, Any]]) -> None:
    """A stopped run published availability online first and offline last, a stats message,
    and an ``end`` for every track it announced."""
    assert lines, "the sink got no messages"
    assert lines[0] == {"topic": topic("availability"), "payload": "online"}, lines[0]
    assert lines[-1] == {"topic": topic("availability"), "payload": "offline"}, lines[-1]
    assert payloads(lines, "stats"), "no stats message before going offline"
    new = [p["track_id"] for p in track_events(lines, "new")]
    end = [p["track_id"] for p in track_events(lines, "end")]
    assert new, "no track was announced, so the flush is not tested"
    assert sorted(new) == sorted(end), f"tracks announced {new} but ended {end}"


def messages_after_end(lines: list[dict[str, Any]]) -> list[str]:
    """Messages about a track published after that track's ``end`` event (should be none)."""
    ended: dict[int, int] = {}
    late = []
    for i, m in enumerate(lines):
        p = m["payload"]
        if not isinstance(p, dict) or "track_id" not in p:
            continue
        tid = p["track_id"]
        if m["topic"] == topic("tracks") and p["type"] == "end":
            ended[tid] = i
        elif tid in ended:
            late.append(f"line {i + 1} {m['topic']} for track {tid} after its end "
                        f"(line {ended[tid] + 1})")
    return late
