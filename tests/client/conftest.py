"""Fixtures of the subscriber-side tests (client, replay, watch): real mosquitto brokers (the
publish tests' helpers) and a real recording of a run on single_face.mp4."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The broker helpers live beside the publish tests; share them rather than copy them.
sys.path.insert(0, str(Path(__file__).parents[1] / "publish"))

from cli_helpers import cli, read_jsonl
from mqtt_helpers import Mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """An anonymous mosquitto on 127.0.0.1, killed at teardown."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.kill()


@pytest.fixture(scope="session")
def recording(media_dir: Path, model_paths: dict[str, Path],
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real-time run of single_face.mp4 (looped for 6 s) recorded by a jsonl: sink."""
    folder = tmp_path_factory.mktemp("recording")
    out = folder / "run.jsonl"
    proc = cli("run", "--source", str(media_dir / "single_face.mp4"), "--loop",
               "--max-seconds", "6", "--sink", f"jsonl:{out}", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def open_recording(recording: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recording cut after its first emotion update, with its last stats appended: a run
    still going, whose face has a retained emotion."""
    lines = read_jsonl(recording)
    first = next(i for i, ln in enumerate(lines) if ln["topic"].endswith("/emotion"))
    stats = [ln for ln in lines if ln["topic"].endswith("/stats")][-1]
    out = tmp_path_factory.mktemp("open") / "open.jsonl"
    write_jsonl(out, [*lines[:first + 1], stats])
    return out


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> None:
    import json

    path.write_text("".join(json.dumps(ln, ensure_ascii=False) + "\n" for ln in lines),
                    encoding="utf-8")
