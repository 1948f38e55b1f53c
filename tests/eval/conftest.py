from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def landmarker_model(model_paths: dict[str, Path]) -> Path:
    return model_paths["face-landmarker"]
