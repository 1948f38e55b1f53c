"""A real ``affectstream run`` in a subprocess that a fault test watches and disturbs.

The test reads the run's JSONL sink while it runs (stats every ``STATS_INTERVAL_S``), injects
its fault, then checks how the run ended and everything it wrote.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_helpers import CLI_TIMEOUT_S, cli_env, payloads, read_jsonl, topic


def ffmpeg(*args: str) -> None:
    """ffmpeg with these arguments (quiet, overwriting); fails the test on an error."""
    proc = subprocess.run(["ffmpeg", "-v", "error", "-y", *args], capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr


STATS_INTERVAL_S = 0.25
"""Small, so the stats ``frames`` counter places the return of frames to within a quarter
second."""
Lines = list[dict[str, Any]]


def write_config(folder: Path, **source: float) -> Path:
    """A run config with frequent stats and the given ``source`` settings."""
    settings = ", ".join(f"{k}: {v}" for k, v in source.items())
    path = folder / "faults.yaml"
    path.write_text(f"stats_interval_s: {STATS_INTERVAL_S}\nsource: {{{settings}}}\n",
                    encoding="utf-8")
    return path


class Run:
    """``python -m affectstream run ARGS --sink jsonl:folder/out.jsonl``, started at once."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.out = folder / "out.jsonl"
        self._err_path = folder / "stderr.txt"
        with self._err_path.open("w", encoding="utf-8") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "affectstream", "run", *args, "--sink",
                 f"jsonl:{self.out}"], cwd=folder, env=cli_env(), stdout=subprocess.PIPE,
                stderr=err, text=True)

    def lines(self) -> Lines:
        """What the sink holds so far (a line being written is left out)."""
        return read_jsonl(self.out, tolerate_partial_tail=True) if self.out.exists() else []

    def stats(self) -> list[dict[str, Any]]:
        return payloads(self.lines(), "stats")

    def wait_for(self, condition: Callable[[Lines], bool], what: str,
                 timeout: float = 60.0) -> Lines:
        """Until the sink satisfies ``condition`` while the run is still going."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if condition(lines):
                return lines
            if self.proc.poll() is not None:
                raise AssertionError(f"the run exited {self.proc.returncode} before {what}:\n"
                                     f"{self.stderr()[-3000:]}")
            assert time.monotonic() < deadline, f"not {what} within {timeout:g} s"
            time.sleep(0.05)  # a file being appended to has no event to wait on

    def wait(self, timeout: float = CLI_TIMEOUT_S) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stdout(self) -> str:
        assert self.proc.stdout is not None and self.proc.poll() is not None
        return self.proc.stdout.read()

    def stderr(self) -> str:
        return self._err_path.read_text(encoding="utf-8", errors="replace")


def frames(lines: Lines) -> int:
    """The latest stats message's ``frames`` (0 before the first one)."""
    stats = payloads(lines, "stats")
    return int(stats[-1]["frames"]) if stats else 0


def assert_ended_cleanly(lines: Lines) -> dict[str, Any]:
    """Online first, offline last, final stats just before it; returns those final stats."""
    assert lines, "the sink got no messages"
    assert lines[0] == {"topic": topic("availability"), "payload": "online"}, lines[0]
    assert lines[-1] == {"topic": topic("availability"), "payload": "offline"}, lines[-1]
    assert lines[-2]["topic"] == topic("stats"), f"no final stats before offline: {lines[-2]}"
    final: dict[str, Any] = lines[-2]["payload"]
    return final
