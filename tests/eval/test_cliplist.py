"""The fine-tuning clip list: class folders, JSONL manifests, uniform frame sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clipcut import cut, folder_dataset

from affectstream.errors import ConfigError, SourceError
from affectstream.eval.cliplist import clip_keyframes, read_clips, sample_frames
from affectstream.labels import DFEW7


def test_class_folders(media_dir: Path, tmp_path: Path) -> None:
    root = folder_dataset(media_dir, tmp_path / "ds")
    (root / "neutral").rename(root / "NEUTRAL")  # folder names match case-insensitively
    (root / "happiness" / "notes.txt").write_text("not a video", encoding="utf-8")
    clips = read_clips(root, DFEW7)
    assert [(c.id, c.label) for c in clips] == [
        ("NEUTRAL/start", "neutral"), ("NEUTRAL/talk", "neutral"),
        ("happiness/smile", "happiness"), ("sadness/late", "sadness")]
    assert all(c.path.is_file() for c in clips)


def test_manifest(media_dir: Path, tmp_path: Path) -> None:
    clip = cut(media_dir / "single_face.mp4", tmp_path / "v" / "a.mp4", 0, 4)
    manifest = tmp_path / "train.jsonl"
    manifest.write_text(json.dumps({"path": "v/a.mp4", "label": "Fear"}) + "\n\n"
                        + json.dumps({"path": str(clip), "label": "anger", "id": "x1"}) + "\n",
                        encoding="utf-8")
    clips = read_clips(manifest, DFEW7)
    assert [(c.id, c.label, c.path) for c in clips] == [
        ("a", "fear", tmp_path / "v" / "a.mp4"), ("x1", "anger", clip)]


def test_bad_datasets(media_dir: Path, tmp_path: Path) -> None:
    root = folder_dataset(media_dir, tmp_path / "ds")
    (root / "joy").mkdir()
    with pytest.raises(ConfigError, match="label 'joy' is not in the label set"):
        read_clips(root, DFEW7)
    empty = tmp_path / "empty"
    (empty / "fear").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no video clips"):
        read_clips(empty, DFEW7)
    with pytest.raises(ConfigError, match="neither a folder"):
        read_clips(tmp_path / "missing", DFEW7)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "nowhere.mp4", "label": "fear"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"m\.jsonl:1: clip .* does not exist"):
        read_clips(manifest, DFEW7)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(SourceError, match=r"bad\.mp4"):
        sample_frames(bad, 2)


def test_uniform_frames(media_dir: Path, tmp_path: Path) -> None:
    clip = cut(media_dir / "single_face.mp4", tmp_path / "a.mp4", 0, 10, fps=25.0)
    frames, indices, fps = sample_frames(clip, 2)
    assert indices == [2, 7] and fps == pytest.approx(25.0)  # middles of the two halves
    assert all(f.shape == (64, 64, 3) for f in frames)
    _, indices, _ = sample_frames(clip, 4)
    assert indices == [1, 3, 6, 8]
    keyframes, end_s = clip_keyframes(clip, 3)
    assert [kf.frame_index for kf in keyframes] == [1, 5, 8]
    assert [kf.pts_s for kf in keyframes] == pytest.approx([0.04, 0.2, 0.32])
    assert end_s == pytest.approx(9 / 25) and {kf.reason for kf in keyframes} == {"periodic"}
