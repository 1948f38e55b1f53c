"""``affectstream finetune``: LoRA on a local transformers VLM with class-aware samplers
(DESIGN §1 head-class bias, §9; issue 12 item 5). See docs/finetune.md.

Each training clip becomes the context the live stage would build — ``--frames`` uniformly
sampled frames as keyframes, no motion text, the label question — scored by the transformers
backend itself (its prompt, its label answer variants); the loss is the cross-entropy of the
labels' log-likelihoods (:mod:`affectstream.eval.lora` says why). Clips are drawn by a
:class:`~affectstream.eval.samplers.ClassSampler`; ``--batch-size`` clips are accumulated per
optimizer step (contexts differ in length, so each clip is its own forward pass).

The dataset is read by :func:`affectstream.eval.datasets.load_dataset`, as ``eval dfer`` reads
it: every ``--format`` (folder, manifest, dfew, mafw, ferv39k), videos or frame folders. With
``--skip-bad``, clips the reader rejects and clips that turn out undecodable while training
are left out and logged (``skip`` events); without it either stops the run with one line.

Output folder: the final LoRA adapter with the processor (``--vlm-model OUTPUT`` loads it),
``checkpoints/epoch-N/`` after every epoch, ``merged/`` with ``--merge``, ``train_log.jsonl``
(one JSON object per line: start, skip, step, epoch, checkpoint, done) and ``finetune.json`` (the
settings and the last epoch's metrics).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

from affectstream.errors import ConfigError, SourceError
from affectstream.eval.classify import class_metrics
from affectstream.eval.datasets import Clip, Dataset, default_format, load_dataset
from affectstream.eval.datasets.frames import clip_keyframes
from affectstream.eval.samplers import ClassSampler
from affectstream.labels import LABEL_SETS
from affectstream.vlm.context import VlmContext, build_context


@dataclass(frozen=True, slots=True)
class FinetuneSettings:
    dataset: Path
    model: str
    output: Path
    sampler: str = "natural"
    epochs: int | None = None
    steps: int | None = None
    lr: float = 1e-4
    lora_r: int = 8
    lora_alpha: float | None = None
    lora_dropout: float = 0.05
    lora_targets: str | None = None
    frames: int = 4
    max_side: int = 448
    batch_size: int = 4
    switch_epoch: int | None = None
    labels: str = "dfew7"
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    merge: bool = False
    format: str | None = None
    """None: :func:`~affectstream.eval.datasets.default_format` of ``dataset``."""
    split: str | None = None
    skip_bad: bool = False


def plan_epochs(settings: FinetuneSettings, clips: int) -> int:
    """Epochs to run: ``--epochs``, else enough for ``--steps`` (else 3)."""
    if settings.epochs is not None:
        if settings.epochs < 1:
            raise ConfigError(f"--epochs must be ≥ 1, got {settings.epochs}")
        return settings.epochs
    if settings.steps is None:
        return 3
    if settings.steps < 1:
        raise ConfigError(f"--steps must be ≥ 1, got {settings.steps}")
    return max(1, math.ceil(settings.steps / math.ceil(clips / settings.batch_size)))


SPLIT_FILE_FORMATS = ("dfew", "mafw", "ferv39k")
"""Formats whose readers fall back to the *test* split when ``--split`` is not given."""


def training_set(settings: FinetuneSettings, labels: tuple[str, ...]) -> Dataset:
    """The clips to train on, read as ``eval dfer`` reads a dataset (one-line SourceError or
    ConfigError when it cannot be)."""
    fmt = settings.format or default_format(settings.dataset)
    if settings.split is None and fmt in SPLIT_FILE_FORMATS:
        # eval dfer's default is the test split; training on it by accident would leak the
        # clips a later eval dfer run reports on, so finetune asks for the split explicitly
        raise ConfigError(f"--format {fmt} needs --split to fine-tune (e.g. "
                          f"{'train' if fmt == 'ferv39k' else 'train-1'}); without it the "
                          "reader would give its test split")
    return load_dataset(settings.dataset, fmt, settings.split, labels,
                        skip_bad=settings.skip_bad, seed=settings.seed)


def clip_context(clip: Clip, labels: tuple[str, ...], frames: int,
                 max_side: int) -> VlmContext:
    """The live stage's context for a clip (video or frame folder): its uniform frames, no
    motion text."""
    keyframes, end_s = clip_keyframes(clip, frames)
    return build_context(0, keyframes, [], [], (0.0, end_s), labels, k=frames,
                         max_side=max_side)


class _Log:
    """``train_log.jsonl``: one JSON object per line, flushed as it goes (a crash keeps it)."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        self._file.write(json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _absolute_base(model: str) -> str:
    """What the adapter names as its base: a local directory as an absolute path (the
    adapter must load from any working directory), a hub id as is."""
    local = Path(model).expanduser()
    return str(local.resolve()) if local.is_dir() else model


def finetune(settings: FinetuneSettings, progress: Any = None) -> dict[str, Any]:
    """Train, write the output folder (see the module docstring), return the summary.
    ``progress(done, total, loss)`` is called after every optimizer step."""
    from affectstream.eval.lora import LANGUAGE_ATTENTION, attach_lora
    from affectstream.vlm.backends.transformers import TransformersBackend

    labels = LABEL_SETS[settings.labels]
    # the layout as read goes into the log and finetune.json, not "None"
    settings = replace(settings, format=settings.format or default_format(settings.dataset))
    dataset = training_set(settings, labels)
    if settings.batch_size < 1 or settings.frames < 1:
        raise ConfigError("--batch-size and --frames must be ≥ 1")
    epochs = plan_epochs(settings, len(dataset.clips))
    sampler = ClassSampler([c.label for c in dataset.clips], settings.sampler, epochs=epochs,
                           seed=settings.seed, switch=settings.switch_epoch)
    try:
        settings.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --output {settings.output} ({exc.strerror}); "
                          "choose a writable folder") from exc
    backend = TransformersBackend(settings.model, device=settings.device, dtype=settings.dtype,
                                  setting="--vlm-model")
    asyncio.run(backend.start())
    try:
        model = attach_lora(backend.net, r=settings.lora_r,
                            alpha=settings.lora_alpha or 2.0 * settings.lora_r,
                            dropout=settings.lora_dropout,
                            targets=settings.lora_targets or LANGUAGE_ATTENTION,
                            seed=settings.seed)
        trainer = _Trainer(settings, backend, model, dataset, labels, sampler)
        return trainer.run(epochs, progress)
    finally:
        asyncio.run(backend.close())


class _Trainer:
    """The loop of :func:`finetune`: epochs of sampled clips, accumulated steps, logs."""

    def __init__(self, settings: FinetuneSettings, backend: Any, model: Any,
                 dataset: Dataset, labels: tuple[str, ...], sampler: ClassSampler) -> None:
        import torch

        self.torch = torch
        self.s, self.backend, self.model = settings, backend, model
        self.clips, self.labels, self.sampler = dataset.clips, labels, sampler
        self.loaded_skips = dataset.skipped
        self.skipped: dict[str, str] = {s.id: s.reason for s in dataset.skipped}
        """Clip id → why it was left out: by the reader, or undecodable in training."""
        params = [p for p in model.parameters() if p.requires_grad]
        self.trainable = sum(p.numel() for p in params)
        self.optimizer = torch.optim.AdamW(params, lr=settings.lr)
        self.step = 0

    def run(self, epochs: int, progress: Any) -> dict[str, Any]:
        s = self.s
        total = epochs * math.ceil(len(self.clips) / s.batch_size)
        total = min(total, s.steps) if s.steps else total
        log = _Log(s.output / "train_log.jsonl")
        try:
            log.write("start", **{k: str(v) if isinstance(v, Path) else v
                                  for k, v in asdict(s).items()},
                      epochs_planned=epochs, steps_planned=total, clips=len(self.clips),
                      label_names=list(self.labels), trainable_params=self.trainable,
                      class_counts=dict(Counter(c.label for c in self.clips)))
            for skip in self.loaded_skips:
                log.write("skip", clip=skip.id, reason=skip.reason)
            last: dict[str, Any] = {}
            for epoch in range(epochs):
                last = self._epoch(epoch, log, lambda loss: progress and progress(
                    self.step, total, loss))
                self._checkpoint(s.output / "checkpoints" / f"epoch-{epoch + 1}", log,
                                 epoch + 1)
                if s.steps and self.step >= s.steps:
                    break
            self._save_final(log)
            log.write("done", steps=self.step, output=str(s.output))
        finally:
            log.close()
        summary = {"settings": {k: str(v) if isinstance(v, Path) else v
                                for k, v in asdict(s).items()},
                   "steps": self.step, "trainable_params": self.trainable, "last_epoch": last,
                   "skipped": [{"clip": k, "reason": v} for k, v in self.skipped.items()]}
        (s.output / "finetune.json").write_text(json.dumps(summary, indent=2) + "\n",
                                                encoding="utf-8")
        return summary

    def _epoch(self, epoch: int, log: _Log, after_step: Any) -> dict[str, Any]:
        torch, s = self.torch, self.s
        order = self.sampler.epoch(epoch)
        self.model.train()
        truth: list[str] = []
        pred: list[str] = []
        losses: list[float] = []
        pending = 0
        for index in order:
            clip = self.clips[int(index)]
            ctx = self._context(clip, log)
            if ctx is None:
                continue
            scores = _scores(self.backend, ctx)
            target = torch.tensor([self.labels.index(clip.label)], device=scores.device)
            loss = torch.nn.functional.cross_entropy(scores[None], target)
            (loss / s.batch_size).backward()
            losses.append(float(loss.detach()))
            truth.append(clip.label)
            pred.append(self.labels[int(scores.argmax())])
            pending += 1
            if pending == s.batch_size:
                self._apply(epoch, losses[-pending:], log, after_step)
                pending = 0
                if s.steps and self.step >= s.steps:
                    break
        if pending:  # the epoch's last, short batch (skipped clips can make any batch short)
            self._apply(epoch, losses[-pending:], log, after_step)
        if not truth:  # every clip drawn was skipped: nothing to train on
            reason = next(iter(self.skipped.values()), "")
            raise SourceError(f"none of the clips of {s.dataset} could be decoded (e.g. "
                              f"{reason}); check the dataset")
        self.model.eval()
        record = {
            "epoch": epoch + 1, "phase": self.sampler.phase(epoch), "steps": self.step,
            "loss": sum(losses) / len(losses) if losses else None,
            "class_probs": dict(zip(map(str, self.sampler.classes),
                                    self.sampler.class_probs(epoch).tolist(), strict=True)),
            "drawn": dict(Counter(truth)),
            "train": class_metrics(truth, pred, self.labels),
        }
        log.write("epoch", **record)
        return record

    def _context(self, clip: Clip, log: _Log) -> VlmContext | None:
        """The clip's context; None for a clip left out under ``--skip-bad`` (an undecodable
        one is logged once and not decoded again)."""
        if clip.id in self.skipped:
            return None
        try:
            return clip_context(clip, self.labels, self.s.frames, self.s.max_side)
        except SourceError as exc:
            if not self.s.skip_bad:
                raise SourceError(f"clip {clip.id}: {exc}; fix or remove it, or pass "
                                  "--skip-bad to skip such clips") from exc
            self.skipped[clip.id] = str(exc)
            log.write("skip", clip=clip.id, reason=str(exc))
            return None

    def _apply(self, epoch: int, losses: list[float], log: _Log, after_step: Any) -> None:
        """One optimizer step over the gradients accumulated from ``losses``' clips."""
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        batch_loss = sum(losses) / len(losses)
        log.write("step", epoch=epoch + 1, step=self.step, loss=batch_loss, clips=len(losses))
        after_step(batch_loss)

    def _checkpoint(self, directory: Path, log: _Log, epoch: int) -> None:
        from affectstream.eval.lora import save_adapter

        save_adapter(self.model, self.backend, _absolute_base(self.s.model), directory)
        log.write("checkpoint", epoch=epoch, path=str(directory))

    def _save_final(self, log: _Log) -> None:
        from affectstream.eval.lora import save_adapter, save_merged

        save_adapter(self.model, self.backend, _absolute_base(self.s.model), self.s.output)
        log.write("checkpoint", epoch=None, path=str(self.s.output))
        if self.s.merge:
            save_merged(self.model, self.backend, self.s.output / "merged")
            log.write("checkpoint", epoch=None, path=str(self.s.output / "merged"),
                      merged=True)


def _scores(backend: Any, ctx: VlmContext) -> Any:
    from affectstream.eval.lora import label_scores

    return label_scores(backend, ctx)


def finetune_command(args: Any) -> int:
    """The CLI command: train with a rich progress bar, then say where the adapter went."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from affectstream.terminal import current

    settings = FinetuneSettings(
        dataset=args.dataset, model=args.vlm_model, output=args.output, format=args.format,
        split=args.split, skip_bad=args.skip_bad, sampler=args.sampler,
        epochs=args.epochs, steps=args.steps, lr=args.lr, lora_r=args.lora_r,
        lora_alpha=args.lora_alpha, lora_targets=args.lora_targets, frames=args.frames,
        max_side=args.max_side, batch_size=args.batch_size, switch_epoch=args.switch_epoch,
        labels=args.labels, seed=args.seed, device=args.device, dtype=args.dtype,
        merge=args.merge)
    term = current()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"))
    with Progress(*columns, console=term.console(), transient=True,
                  disable=not term.progress) as bar:
        task = bar.add_task("fine-tuning", total=None, loss="–")

        def step(done: int, total: int, loss: float) -> None:
            bar.update(task, completed=done, total=total, loss=f"{loss:.4f}")

        summary = finetune(settings, step)
    if summary["skipped"]:
        term.note(f"skipped {len(summary['skipped'])} bad clips (listed in train_log.jsonl, "
                  "event skip)")
    last = summary["last_epoch"].get("train") or {}
    term.note(f"{summary['steps']} steps; last epoch on its training clips: UAR "
              f"{last.get('uar', 0.0):.3f}, WAR {last.get('war', 0.0):.3f}, macro-F1 "
              f"{last.get('macro_f1', 0.0):.3f}")
    term.note(f"wrote the LoRA adapter to {settings.output} (use --vlm-model "
              f"{settings.output}); log: {settings.output / 'train_log.jsonl'}")
    return 0
