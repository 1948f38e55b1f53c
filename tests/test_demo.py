"""`affectstream demo` end to end: builds the clip from the scikit-image photo, runs the full
pipeline, and reports found bursts against the injected ground truth."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from affectstream.models import models_dir

pytestmark = pytest.mark.e2e  # the demo command on a generated clip, as a user runs it


def test_demo_runs_offline_and_finds_most_injected_bursts(
        tmp_path: Path, model_paths: dict[str, Path]) -> None:
    home = tmp_path / "home"
    # Reuse the session's verified models; the demo clip itself is built fresh in this home.
    shutil.copytree(models_dir(), home / "models")
    env = {**os.environ, "AFFECTSTREAM_HOME": str(home), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "affectstream", "demo", "--no-realtime"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (home / "demo" / "demo_v1.mp4").exists()
    assert (home / "demo" / "demo_v1.json").exists()
    found = re.search(r"matched at IoU ≥ 0\.5: (\d+)/(\d+)", proc.stderr)
    assert found, proc.stderr[-2000:]
    matched, injected = int(found.group(1)), int(found.group(2))
    assert injected == 8
    assert matched >= 7, proc.stderr[-3000:]
