"""DFER dataset readers on tiny fake trees in each dataset's official layout (file names and
split files as the datasets ship them; the media are empty placeholder files or one-pixel
frames, never decoded here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectstream.errors import ConfigError, SourceError
from affectstream.eval.datasets import Clip, balanced_subset, default_format, load_dataset
from affectstream.labels import DFEW7, MAFW11


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _dfew(root: Path) -> Path:
    split = root / "EmoLabel_DataSplit"
    (split / "train(single-labeled)").mkdir(parents=True)
    (split / "test(single-labeled)").mkdir(parents=True)
    (split / "test(single-labeled)" / "set_1.csv").write_text(
        "video_name,label\n1,1\n2,3\n17,7\n")
    (split / "train(single-labeled)" / "set_1.csv").write_text("video_name,label\n3,2\n")
    for n in ("00001", "00002"):  # face-cropped frame folders
        for i in (1, 2, 10):
            _touch(root / "Clip" / "clip_224x224" / n / f"{n}_{i:05d}.jpg")
    _touch(root / "Clip" / "original" / "00017.mp4")  # only the original video
    _touch(root / "Clip" / "original" / "00003.avi")
    return root


def test_dfew_official_layout(tmp_path: Path) -> None:
    ds = load_dataset(_dfew(tmp_path), "dfew", "test-1")
    by_id = {c.id: c for c in ds.clips}
    assert set(by_id) == {"00001", "00002", "00017"}
    assert by_id["00001"].label == "happiness" and by_id["00001"].source_label == "happiness"
    assert by_id["00002"].label == "neutral" and by_id["00017"].label == "fear"
    frames = by_id["00001"].frames
    assert [p.name for p in frames] == ["00001_00001.jpg", "00001_00002.jpg", "00001_00010.jpg"]
    assert by_id["00017"].path == tmp_path / "Clip" / "original" / "00017.mp4"
    assert ds.counts()["happiness"] == 1 and ds.counts()["surprise"] == 0
    every = load_dataset(tmp_path, "dfew", "all-1")
    assert {c.id for c in every.clips} == {"00001", "00002", "00003", "00017"}
    assert {c.label for c in every.clips if c.id == "00003"} == {"sadness"}


def test_dfew_missing_media_is_one_line_or_skipped(tmp_path: Path) -> None:
    _dfew(tmp_path)
    (tmp_path / "Clip" / "original" / "00017.mp4").unlink()
    with pytest.raises(SourceError, match=r"clip 00017: video or frames not found.*--skip-bad"):
        load_dataset(tmp_path, "dfew", "test-1")
    ds = load_dataset(tmp_path, "dfew", "test-1", skip_bad=True)
    assert [s.id for s in ds.skipped] == ["00017"] and len(ds.clips) == 2
    with pytest.raises(SourceError, match="split"):
        load_dataset(tmp_path, "dfew", "validation")
    with pytest.raises(SourceError, match=r"set_2\.csv"):
        load_dataset(tmp_path, "dfew", "test-2")


def _mafw(root: Path, lines: str) -> Path:
    fold = root / "Train & Test Set" / "single" / "no_caption" / "set_1"
    fold.mkdir(parents=True)
    (fold / "test.txt").write_text(lines)
    (fold / "train.txt").write_text("00009.mp4 happiness\n")
    (root / "Labels").mkdir()
    _touch(root / "Labels" / "single-set.xlsx")  # shipped, not read
    for name in ("00001", "00002", "00003", "00004", "00009"):
        _touch(root / "data" / "clips" / f"{name}.mp4")
    return root


def test_mafw_eleven_classes_and_the_seven_class_mapping(tmp_path: Path) -> None:
    _mafw(tmp_path, "00001.mp4 contempt\n00002.mp4 helplessness\n00003.mp4 anger\n"
                    "00004.mp4 9\n")
    eleven = load_dataset(tmp_path, "mafw", "test-1", MAFW11)
    assert {c.id: c.label for c in eleven.clips} == {
        "00001": "contempt", "00002": "helplessness", "00003": "anger", "00004": "anxiety"}
    seven = load_dataset(tmp_path, "mafw", "test-1", DFEW7)
    assert {c.id: c.label for c in seven.clips} == {
        "00001": "disgust", "00002": "sadness", "00003": "anger", "00004": "fear"}
    assert {c.id: c.source_label for c in seven.clips}["00001"] == "contempt"
    assert all(c.path is not None and c.path.suffix == ".mp4" for c in seven.clips)


def test_mafw_bad_label_is_reported(tmp_path: Path) -> None:
    _mafw(tmp_path, "00001.mp4 boredom\n00003.mp4 anger\n")
    with pytest.raises(SourceError, match="'boredom' is not in the label set"):
        load_dataset(tmp_path, "mafw", "test-1")
    assert [s.id for s in load_dataset(tmp_path, "mafw", "test-1", skip_bad=True).skipped] \
        == ["00001"]


def test_ferv39k_layout(tmp_path: Path) -> None:
    crop = tmp_path / "2_ClipsforFaceCrop-002" / "2_ClipsforFaceCrop"
    for rel in ("Action/Sad/0010", "Daily/Happy/0003"):
        _touch(crop / rel / "1.jpg")
    setups = tmp_path / "4_setups" / "All_scenes"
    setups.mkdir(parents=True)
    (setups / "test_All.csv").write_text("Action/Sad/0010 Sad\nDaily/Happy/0003 Happy\n")
    ds = load_dataset(tmp_path, "ferv39k", None)
    assert {c.id: c.label for c in ds.clips} == {"Action/Sad/0010": "sadness",
                                                 "Daily/Happy/0003": "happiness"}


def _folder(root: Path, per_class: dict[str, int]) -> Path:
    for label, n in per_class.items():
        for i in range(n):
            _touch(root / label / f"c{i:02d}.mp4")
    return root


def test_folder_layout_synonyms_frames_and_bad_class(tmp_path: Path) -> None:
    _folder(tmp_path, {"happy": 2, "Sad": 1})
    _touch(tmp_path / "anger" / "clip9" / "0001.png")
    ds = load_dataset(tmp_path, "folder")
    assert [(c.id, c.label) for c in ds.clips] == [
        ("happy/c00", "happiness"), ("happy/c01", "happiness"), ("Sad/c00", "sadness"),
        ("anger/clip9", "anger")]
    _touch(tmp_path / "boredom" / "x.mp4")
    with pytest.raises(SourceError, match="boredom"):
        load_dataset(tmp_path, "folder")


def test_manifest_csv_and_jsonl_with_split(tmp_path: Path) -> None:
    _folder(tmp_path / "media", {"happy": 1, "fear": 1})
    (tmp_path / "m.csv").write_text("path,label,split\nmedia/happy/c00.mp4,happy,test\n"
                                    "media/fear/c00.mp4,fear,train\n")
    assert [c.label for c in load_dataset(tmp_path / "m.csv", "manifest", "test").clips] \
        == ["happiness"]
    rows = [{"id": "a", "path": "media/fear/c00.mp4", "label": "scared"}]
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ds = load_dataset(tmp_path, "manifest")
    assert [(c.id, c.label) for c in ds.clips] == [("a", "fear")]
    # without --format: a .csv or .jsonl file is a manifest, anything else a class-folder tree
    assert [default_format(tmp_path / n) for n in ("m.csv", "manifest.jsonl", "M.JSONL")] \
        == ["manifest"] * 3
    assert default_format(tmp_path) == default_format(tmp_path / "media") == "folder"


def test_balanced_is_seeded_and_per_class(tmp_path: Path) -> None:
    _folder(tmp_path, {"happy": 6, "sad": 4, "fear": 1})
    a = load_dataset(tmp_path, "folder", balanced=2, seed=3)
    b = load_dataset(tmp_path, "folder", balanced=2, seed=3)
    assert [c.id for c in a.clips] == [c.id for c in b.clips]
    assert a.counts() == {**dict.fromkeys(DFEW7, 0), "happiness": 2, "sadness": 2, "fear": 1}
    other = [c.id for c in load_dataset(tmp_path, "folder", balanced=2, seed=4).clips]
    assert len(other) == 5  # another seed may draw other clips, never other counts
    limited = load_dataset(tmp_path, "folder", limit=3)
    assert len(limited.clips) == 3
    with pytest.raises(ConfigError):
        balanced_subset([Clip("x", "fear")], 0, DFEW7)
    with pytest.raises(ConfigError, match="format"):
        load_dataset(tmp_path, "kinetics")
