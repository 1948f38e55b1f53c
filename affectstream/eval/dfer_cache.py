"""The DFER evaluation's per-clip answer cache (``OUTPUT/cache.jsonl``): one line per clip
and base condition, appended as each answer comes, so an interrupted or repeated run asks only
what is missing. ``OUTPUT/run.json`` records what the answers came from; a run with another
model, backend, decoding or label set refuses the folder instead of mixing answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from affectstream.errors import ConfigError, SinkError

IDENTITY_KEYS = ("backend", "model", "decode", "labels", "dataset", "format")


class AnswerCache:
    def __init__(self, output: Path, identity: dict[str, Any]) -> None:
        self.path = output / "cache.jsonl"
        self._records: dict[tuple[str, str], dict[str, Any]] = {}
        try:
            output.mkdir(parents=True, exist_ok=True)
            self._check_identity(output / "run.json", identity)
            if self.path.is_file():
                self._load()
        except OSError as exc:
            raise SinkError(f"cannot use output folder {output} ({exc}); choose a writable "
                            "--output") from exc

    @staticmethod
    def _check_identity(path: Path, identity: dict[str, Any]) -> None:
        mine = {k: identity.get(k) for k in IDENTITY_KEYS}
        if path.is_file():
            before = json.loads(path.read_text(encoding="utf-8"))
            changed = [k for k in IDENTITY_KEYS if before.get(k) != mine[k]]
            if changed:
                raise ConfigError(f"--output {path.parent} holds answers of another run (its "
                                  f"{', '.join(changed)} differ); use a new --output folder")
        path.write_text(json.dumps(mine, indent=2) + "\n", encoding="utf-8")

    def _load(self) -> None:
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                self._records[(rec["clip"], rec["condition"])] = rec
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by an interrupted run: asked again

    def get(self, clip: str, condition: str) -> dict[str, Any] | None:
        return self._records.get((clip, condition))

    def put(self, record: dict[str, Any]) -> None:
        self._records[(record["clip"], record["condition"])] = record
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
