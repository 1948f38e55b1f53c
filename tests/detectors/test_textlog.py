"""Per-track rolling text log: token budget, one summary line for folded lines, newest kept."""

from __future__ import annotations

import re

import pytest

from affectstream.detectors.textlog import RollingLog
from affectstream.tokens import estimate_tokens
from affectstream.types import LogLine


def burst_line(i: int) -> LogLine:
    t = 2.0 * i
    au = (12, 4, 1)[i % 3]
    text = (f"{t:.2f}–{t + 0.3:.2f} s, 0.30 s micro: left lip corner pulled up and back "
            f"(AU{au} weak), eyes not involved")
    return LogLine("cam0", 3, t, t + 0.3, "burst", text, f"cam0-x-t3-f{i}")


def change_line(i: int) -> LogLine:
    t = 2.0 * i + 1.0
    return LogLine("cam0", 3, t, t, "change", f"{t:.2f} s: jaw drop (AU26) rose to moderate, "
                                              "both sides")


def lines(n: int) -> list[LogLine]:
    return [change_line(i) if i % 4 == 3 else burst_line(i) for i in range(n)]


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 400) == 100


def test_small_log_is_kept_verbatim() -> None:
    log = RollingLog("cam0", 3, 400)
    items = lines(3)
    for line in items:
        log.append(line)
    assert list(log) == items
    assert log.tokens == sum(estimate_tokens(line.text) for line in items)


@pytest.mark.parametrize("budget", [120, 400, 1000])
def test_budget_respected_and_oldest_folded(budget: int) -> None:
    log = RollingLog("cam0", 3, budget)
    items = lines(200)
    for line in items:
        log.append(line)
        assert log.tokens <= budget
    out = list(log)
    summary, kept = out[0], out[1:]
    # Exactly one summary line, first; everything after it is verbatim, newest last.
    assert summary.kind == "summary"
    assert all(line.kind != "summary" for line in kept)
    assert kept == items[-len(kept):]
    assert log.tokens == sum(estimate_tokens(line.text) for line in out)
    # Most of the budget still goes to recent detail.
    assert sum(estimate_tokens(line.text) for line in kept) > budget // 2
    folded = items[:-len(kept)]
    n_bursts = sum(line.kind == "burst" for line in folded)
    n_changes = sum(line.kind == "change" for line in folded)
    m = re.match(r"earlier \((\d+\.\d)–(\d+\.\d) s\): (\d+) bursts, (\d+) slow changes",
                 summary.text)
    assert m is not None, summary.text
    assert (int(m[3]), int(m[4])) == (n_bursts, n_changes)
    assert n_bursts + n_changes == len(folded) > 0
    assert summary.start_s == folded[0].start_s and summary.end_s == folded[-1].end_s
    assert m[1] == f"{folded[0].start_s:.1f}" and m[2] == f"{folded[-1].end_s:.1f}"
    assert (summary.camera, summary.track_id, summary.burst_id) == ("cam0", 3, None)


def test_summary_counts_action_units() -> None:
    log = RollingLog("cam0", 3, 120)
    items = lines(60)
    for line in items:
        log.append(line)
    summary = next(iter(log))
    kept = list(log)[1:]
    folded = items[:-len(kept)]
    counts: dict[str, int] = {}
    for line in folded:
        for au in re.findall(r"AU\d+", line.text):
            counts[au] = counts.get(au, 0) + 1
    top = max(counts, key=lambda k: counts[k])
    assert f"{top}×{counts[top]}" in summary.text
    assert "most frequent" in summary.text


def test_single_oversized_line_is_kept() -> None:
    """The newest line is never folded away, even when it alone exceeds the budget."""
    log = RollingLog("cam0", 3, 50)
    big = LogLine("cam0", 3, 0.0, 1.0, "burst", "x" * 400)
    log.append(big)
    assert list(log) == [big]
