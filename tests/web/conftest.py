"""A real run of ``single_face.mp4`` (looped, in real time) with its preview server, shared by
the endpoint tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from web_helpers import free_port, running, wait_for  # tests/web is on sys.path

from affectstream.config import build_config


@pytest.fixture(scope="module")
def preview_url(media_dir: Path, model_paths: dict[str, Path]) -> Iterator[str]:
    port = free_port()
    cfg = build_config({
        "source": {"url": str(media_dir / "single_face.mp4"), "loop": True},
        "sinks": [], "stats_interval_s": 1.0,
        "preview": {"port": port},
    })
    url = f"http://127.0.0.1:{port}"
    with running(cfg):
        wait_for(lambda: httpx.get(f"{url}/healthz", timeout=5).json()["cameras"]["cam0"]
                 ["state"] == "running", 120, "the camera to run")
        yield url
