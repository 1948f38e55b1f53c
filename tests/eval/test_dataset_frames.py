"""Uniform frame sampling of dataset clips (what ``finetune`` trains on): videos and frame
folders, the uniform-K indices, short clips repeating frames, unreadable clips."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from clipcut import cut

from affectstream.errors import ConfigError, SourceError
from affectstream.eval.datasets import Clip, load_dataset
from affectstream.eval.datasets.frames import clip_keyframes, sample_frames, uniform_indices


def decoded(video: Path, n: int) -> list[np.ndarray]:
    """The first ``n`` frames of a real video, as OpenCV decodes them."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    try:
        while len(frames) < n:
            ok, frame = cap.read()
            assert ok, f"{video} has fewer than {n} frames"
            frames.append(frame)
    finally:
        cap.release()
    return frames


def frame_folder(frames: list[np.ndarray], folder: Path) -> Path:
    """``frames`` as a frame folder, named 1.png … N.png (PNG: lossless, so what is read back
    is exactly what was decoded; unpadded names check the natural order, 2 before 10)."""
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames, 1):
        assert cv2.imwrite(str(folder / f"{i}.png"), frame)
    return folder


def test_uniform_indices() -> None:
    assert uniform_indices(10, 2) == [2, 7]  # the middles of the two halves
    assert uniform_indices(10, 4) == [1, 3, 6, 8]
    assert uniform_indices(3, 5) == [0, 0, 1, 2, 2]  # short clips repeat frames
    assert uniform_indices(1, 3) == [0, 0, 0]


def test_video_clip(media_dir: Path, tmp_path: Path) -> None:
    video = cut(media_dir / "single_face.mp4", tmp_path / "a.mp4", 0, 10, fps=25.0)
    clip = Clip("a", "happiness", path=video)
    frames, indices, fps = sample_frames(clip, 2)
    assert indices == [2, 7] and fps == pytest.approx(25.0)
    assert all(f.shape == (64, 64, 3) for f in frames)
    _, indices, _ = sample_frames(clip, 4)
    assert indices == [1, 3, 6, 8]
    keyframes, end_s = clip_keyframes(clip, 3)
    assert [kf.frame_index for kf in keyframes] == [1, 5, 8]
    assert [kf.pts_s for kf in keyframes] == pytest.approx([0.04, 0.2, 0.32])
    assert end_s == pytest.approx(9 / 25) and {kf.reason for kf in keyframes} == {"periodic"}


def test_short_video_repeats_frames(media_dir: Path, tmp_path: Path) -> None:
    video = cut(media_dir / "single_face.mp4", tmp_path / "short.mp4", 0, 3)
    frames, indices, _ = sample_frames(Clip("s", "fear", path=video), 5)
    assert indices == [0, 0, 1, 2, 2]
    assert np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[0], frames[2])


def test_frame_folder_clip(media_dir: Path, tmp_path: Path) -> None:
    real = decoded(media_dir / "single_face.mp4", 10)
    frame_folder(real, tmp_path / "ds" / "happy" / "clip1")
    clip, = load_dataset(tmp_path / "ds", "folder").clips  # as finetune gets it
    assert clip.path is None and clip.label == "happiness" and len(clip.frames) == 10
    assert [p.name for p in clip.frames[:3]] == ["1.png", "2.png", "3.png"]

    frames, indices, fps = sample_frames(clip, 2)
    assert indices == [2, 7] and fps == pytest.approx(25.0)  # the same formula as videos
    assert all(np.array_equal(f, real[i]) for f, i in zip(frames, indices, strict=True))
    keyframes, end_s = clip_keyframes(replace(clip, fps=10.0), 4)  # a folder's stated rate
    assert [kf.frame_index for kf in keyframes] == [1, 3, 6, 8]
    assert [kf.pts_s for kf in keyframes] == pytest.approx([0.1, 0.3, 0.6, 0.8])
    assert end_s == pytest.approx(0.9)
    assert np.array_equal(keyframes[2].image, real[6])

    short_folder = frame_folder(real[:3], tmp_path / "short")
    short = Clip("short", "fear", frames=tuple(sorted(short_folder.iterdir())))
    frames, indices, _ = sample_frames(short, 5)
    assert indices == [0, 0, 1, 2, 2]
    assert np.array_equal(frames[4], real[2]) and frames[0] is frames[1]  # read once


def test_unreadable_clips(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(SourceError, match=r"bad\.mp4"):
        sample_frames(Clip("bad", "fear", path=bad), 2)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(1, 5):
        (folder / f"{i}.jpg").write_bytes(b"not an image")
    clip = Clip("f", "fear", frames=tuple(sorted(folder.iterdir())))
    with pytest.raises(SourceError, match=r"cannot read frame .*2\.jpg"):  # index 1 of [1, 3]
        sample_frames(clip, 2)
    with pytest.raises(SourceError, match="neither a video nor frames"):
        sample_frames(Clip("empty", "fear"), 2)
    with pytest.raises(ConfigError, match="--frames"):
        sample_frames(clip, 0)
