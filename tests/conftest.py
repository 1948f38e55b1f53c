"""Shared fixtures: verified real test media and model files (fetched once per machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from media import media_dir as _media_dir  # tests/ is on sys.path (rootdir conftest)

from affectstream import models


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """Folder with single_face.mp4, face_then_noface.mov, no_face.mp4, multi_face.jpg."""
    return _media_dir()


@pytest.fixture(scope="session")
def model_paths() -> dict[str, Path]:
    """Verified paths of every registry model in the default cache (fetched if missing)."""
    return {name: models.resolve(name, progress=False) for name in models.REGISTRY}
