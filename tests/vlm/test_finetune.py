"""``affectstream finetune`` on the tiny random VLM (DESIGN §9; plumbing, never accuracy):
the training scores are the backend's scores, a few CPU steps change the LoRA weights, and the
checkpoint loads in the transformers backend that ``run`` and ``eval dfer`` use. The dataset is
read as ``eval dfer`` reads it: videos and frame folders, class folders and manifests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

pytest.importorskip("torch", reason="needs the vlm extra (torch)")
pytest.importorskip("transformers", reason="needs the vlm extra (transformers)")
pytest.importorskip("peft", reason="needs the vlm extra (peft)")

import torch
from clipcut import folder_dataset
from tiny_vlm import build_tiny_vlm, torchvision_works

from affectstream.cli import main
from affectstream.errors import ModelError
from affectstream.eval.datasets import load_dataset
from affectstream.eval.finetune import clip_context
from affectstream.eval.lora import LANGUAGE_ATTENTION, attach_lora, label_scores
from affectstream.labels import DFEW7
from affectstream.vlm.backends.transformers import TransformersBackend
from affectstream.vlm.context import VlmContext

# DFEW's labels are single tokens of the tiny tokenizer; the unseen words take several, so both
# scoring paths (first token only, and continuation on the KV cache) are trained through.
LABELS = (*DFEW7, "bewilderment", "schadenfreude")
TOL = 1e-4


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


# As in test_transformers_backend: a tiny Qwen2.5-VL too, where torchvision works.
ARCHES = ["llava", *(["qwen2_5_vl"] if torchvision_works() else [])]


@pytest.fixture(scope="module", params=ARCHES)
def tiny(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp(f"tiny-{request.param}"), seed=0,
                          arch=request.param)


@pytest.fixture(scope="module")
def dataset(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return folder_dataset(media_dir, tmp_path_factory.mktemp("clips") / "ds")


@pytest.fixture()
def context(dataset: Path) -> VlmContext:
    clip = load_dataset(dataset, "folder", labels=DFEW7).clips[0]
    return clip_context(clip, LABELS, 2, 64)


def started(model: Path | str) -> TransformersBackend:
    backend = TransformersBackend(str(model))
    asyncio.run(backend.start())
    return backend


@pytest.fixture()
def backend(tiny: Path) -> Iterator[TransformersBackend]:
    b = started(tiny)
    yield b
    asyncio.run(b.close())


def test_training_scores_are_the_backends_scores(backend: TransformersBackend,
                                                 context: VlmContext) -> None:
    model = attach_lora(backend.net, r=4, alpha=8, dropout=0.0, targets=LANGUAGE_ATTENTION,
                        seed=0)
    scores = label_scores(backend, context)
    reference = asyncio.run(backend.score(context))  # B = 0 at init: the base model's scores
    expected = [reference[x] for x in LABELS]
    assert [float(s) for s in scores.detach()] == pytest.approx(expected, abs=TOL)
    # the loss reaches the adapters, and only them
    loss = torch.nn.functional.cross_entropy(scores[None], torch.tensor([LABELS.index("fear")]))
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    assert any(float(p.grad.abs().sum()) > 0 for n, p in trainable.items() if "lora_B" in n)
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


@pytest.mark.e2e
def test_finetune_changes_lora_and_the_backend_loads_it(
        tiny: Path, dataset: Path, context: VlmContext, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    rc = main(["finetune", "--dataset", str(dataset), "--vlm-model", str(tiny),
               "--output", str(out), "--sampler", "decoupled", "--epochs", "2",
               "--batch-size", "2", "--frames", "2", "--max-side", "64", "--lora-r", "4",
               "--lr", "0.01", "--seed", "3", "--merge"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"--vlm-model {out}" in err

    # the log: start, 2 steps per epoch (4 clips, batches of 2), an epoch record each
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    events = [e["event"] for e in log]
    assert events == ["start", "step", "step", "epoch", "checkpoint", "step", "step", "epoch",
                      "checkpoint", "checkpoint", "checkpoint", "done"]
    epochs = [e for e in log if e["event"] == "epoch"]
    assert [e["phase"] for e in epochs] == ["natural", "balanced"]
    assert epochs[0]["drawn"] == {"happiness": 1, "neutral": 2, "sadness": 1}
    for e in epochs:
        assert e["train"]["clips"] == 4 and set(e["train"]["per_class"]) == set(DFEW7)
        assert 0 <= e["train"]["uar"] <= 1 and e["loss"] > 0
    assert all(isinstance(e["loss"], float) for e in log if e["event"] == "step")

    # the LoRA weights moved away from their (seeded) initialisation
    trained = safetensors(out)
    base = started(tiny)
    try:
        init = attach_lora(base.net, r=4, alpha=8, dropout=0.05, targets=LANGUAGE_ATTENTION,
                           seed=3)
        fresh = {n: p.detach() for n, p in init.named_parameters() if p.requires_grad}
        base_scores = asyncio.run(base.score(context))
    finally:
        asyncio.run(base.close())
    assert len(trained) == len(fresh) > 0
    key = {k.replace(".default", ""): k for k in fresh}
    changed = [n for n, t in trained.items() if not torch.equal(t, fresh[key[n]])]
    assert any("lora_B" in n for n in changed) and any("lora_A" in n for n in changed)
    assert all(float(t.abs().sum()) > 0 for n, t in trained.items() if "lora_B" in n)
    assert safetensors(out / "checkpoints" / "epoch-1").keys() == trained.keys()

    # the transformers backend (as run and eval dfer use it) loads the adapter and scores
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny.resolve())
    for model in (out, out / "merged"):
        b = started(model)
        try:
            scores = asyncio.run(b.score(context))
        finally:
            asyncio.run(b.close())
        assert list(scores) == list(LABELS)
        assert scores != pytest.approx(base_scores, abs=1e-6)  # the adapter is applied
        if model == out:
            adapter_scores = scores
    assert scores == pytest.approx(adapter_scores, abs=1e-4)  # merged = base + adapter

    # eval dfer loads the checkpoint as its model
    report = tmp_path / "eval"
    rc = main(["eval", "dfer", "--dataset", str(dataset), "--vlm-backend", "transformers",
               "--vlm-model", str(out), "--decode", "score", "--conditions", "uniform-2",
               "--limit", "1", "--output", str(report)])
    assert rc == 0, capsys.readouterr().err
    records = [json.loads(line) for line in
               (report / "predictions.jsonl").read_text().splitlines()]
    assert records and all(set(r["probs"]) == set(DFEW7) for r in records)


def test_adapter_without_its_base_is_one_line(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for base in (str(tmp_path / "gone"), "affectstream-tests/no-such-base"):
        (adapter / "adapter_config.json").write_text(
            json.dumps({"base_model_name_or_path": base, "peft_type": "LORA"}))
        with pytest.raises(ModelError, match=r"LoRA adapter .* needs its base model") as info:
            asyncio.run(TransformersBackend(str(adapter)).start())
        assert base in str(info.value) and "\n" not in str(info.value)
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="names no base model"):
        asyncio.run(TransformersBackend(str(adapter)).start())


def frame_folder(video: Path, start: int, folder: Path, n: int = 6, side: int = 64) -> str:
    """``n`` real frames of ``video`` from ``start``, shrunk to ``side`` px, as a folder of
    JPEGs (as DFEW and FERV39k ship their clips); its path."""
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    folder.mkdir(parents=True)
    try:
        for i in range(1, n + 1):
            ok, frame = cap.read()
            assert ok, f"{video} has fewer than {start + n} frames"
            assert cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.resize(frame, (side, side)))
    finally:
        cap.release()
    return str(folder)


def test_finetune_trains_on_frame_folders_from_a_manifest(
        tiny: Path, dataset: Path, media_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    face = media_dir / "single_face.mp4"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    rows = [
        {"id": "smile", "path": frame_folder(face, 30, tmp_path / "f" / "smile"),
         "label": "happy", "split": "train"},
        {"id": "start", "path": "f/start", "label": "neutral", "split": "train"},
        {"id": "late", "path": str(dataset / "sadness" / "late.mp4"), "label": "sadness",
         "split": "train"},
        {"id": "broken", "path": "broken.mp4", "label": "fear", "split": "train"},
        {"id": "gone", "path": "gone.mp4", "label": "fear", "split": "train"},
        {"id": "bored", "path": "f/start", "label": "boredom", "split": "train"},
        {"id": "held-out", "path": "f/start", "label": "anger", "split": "test"},
    ]
    frame_folder(face, 0, tmp_path / "f" / "start")
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "run"
    # no --format: a .jsonl --dataset is a manifest
    rc = main(["finetune", "--dataset", str(manifest), "--split", "train", "--skip-bad",
               "--vlm-model", str(tiny), "--output", str(out), "--epochs", "1",
               "--batch-size", "8", "--frames", "2", "--max-side", "64", "--lora-r", "2"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "skipped 3 bad clips" in err

    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    start = log[0]
    assert (start["format"], start["split"], start["skip_bad"]) == ("manifest", "train", True)
    assert start["clips"] == 4  # the broken video is only found out when decoded
    assert start["class_counts"] == {"happiness": 1, "neutral": 1, "sadness": 1, "fear": 1}
    skips = {e["clip"]: e["reason"] for e in log if e["event"] == "skip"}
    assert set(skips) == {"gone", "bored", "broken"}
    assert "boredom" in skips["bored"] and "broken.mp4" in skips["broken"]
    # one step over the three good clips: two frame folders and a video
    assert [e["clips"] for e in log if e["event"] == "step"] == [3]
    epoch, = (e for e in log if e["event"] == "epoch")
    assert epoch["drawn"] == {"happiness": 1, "neutral": 1, "sadness": 1}
    summary = json.loads((out / "finetune.json").read_text())
    assert {s["clip"] for s in summary["skipped"]} == set(skips)
    assert (out / "adapter_model.safetensors").is_file()


def test_finetune_bad_input_exit_2(dataset: Path, tiny: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ds" / "boredom").mkdir(parents=True)
    (tmp_path / "ds" / "boredom" / "x.mp4").write_bytes(
        (dataset / "sadness" / "late.mp4").read_bytes())
    (tmp_path / "bad" / "fear").mkdir(parents=True)
    (tmp_path / "bad" / "fear" / "x.mp4").write_bytes(b"not a video")
    missing = tmp_path / "m.csv"
    missing.write_text("path,label\nnowhere.mp4,fear\n", encoding="utf-8")
    cases = [
        (["--dataset", str(tmp_path / "ds")], "label 'boredom' is not in the label set"),
        (["--dataset", str(missing)], "video or frames not found"),
        (["--dataset", str(dataset), "--format", "dfew"], "--format dfew needs --split"),
        (["--dataset", str(dataset), "--epochs", "0"], "--epochs must be"),
        (["--dataset", str(dataset), "--sampler", "decoupled", "--epochs", "2",
          "--switch-epoch", "5"], "switch epoch"),
        # found out in training, after the model loaded: still one line, naming the clip
        (["--dataset", str(tmp_path / "bad"), "--frames", "1", "--max-side", "64"],
         "clip fear/x: cannot open clip"),
        (["--dataset", str(tmp_path / "bad"), "--frames", "1", "--max-side", "64",
          "--skip-bad"], "none of the clips of"),
    ]
    for extra, message in cases:
        rc = main(["finetune", *extra, "--vlm-model", str(tiny),
                   "--output", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        # also after the model loaded: transformers' own loading bar follows the command's
        # progress choice, which is off when stderr is not a terminal
        assert rc == 2 and message in err and "\n" not in err, (extra, err)
