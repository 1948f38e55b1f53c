"""Per-track rolling text log bounded by a token budget (DESIGN §7).

Lines are kept newest-last; when the estimated token count exceeds the budget, the oldest lines
fold into a single summary line (counts of bursts and changes, the AUs seen, the time span), so
the VLM always gets the recent detail and a compact memory of what came before.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterator

from affectstream.tokens import estimate_tokens
from affectstream.types import LogLine

_AU = re.compile(r"AU(\d+)")


class RollingLog:
    def __init__(self, camera: str, track_id: int, token_budget: int) -> None:
        self._camera = camera
        self._track = track_id
        self._budget = token_budget
        self._lines: deque[LogLine] = deque()
        self._tokens = 0
        self._summary: LogLine | None = None
        self._folded: Counter[str] = Counter()
        self._folded_aus: Counter[str] = Counter()
        self._folded_start: float | None = None

    def __iter__(self) -> Iterator[LogLine]:
        if self._summary is not None:
            yield self._summary
        yield from self._lines

    @property
    def tokens(self) -> int:
        extra = estimate_tokens(self._summary.text) if self._summary else 0
        return self._tokens + extra

    def append(self, line: LogLine) -> None:
        self._lines.append(line)
        self._tokens += estimate_tokens(line.text)
        while self.tokens > self._budget and len(self._lines) > 1:
            self._fold(self._lines.popleft())

    def _fold(self, line: LogLine) -> None:
        self._tokens -= estimate_tokens(line.text)
        if line.kind == "summary":
            return
        self._folded[line.kind] += 1
        self._folded_aus.update(f"AU{n}" for n in _AU.findall(line.text))
        if self._folded_start is None:
            self._folded_start = line.start_s
        aus = ", ".join(f"{au}×{n}" for au, n in self._folded_aus.most_common(4))
        text = (f"earlier ({self._folded_start:.1f}–{line.end_s:.1f} s): "
                f"{self._folded['burst']} bursts, {self._folded['change']} slow changes"
                + (f"; most frequent {aus}" if aus else ""))
        self._summary = LogLine(self._camera, self._track, self._folded_start, line.end_s,
                                "summary", text)
