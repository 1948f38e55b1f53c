"""Where each log line of a VLM request goes: folded into the opening summary (older than the
window), after the keyframe that precedes it, or before the first keyframe."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from affectstream.types import Keyframe, LogLine


def split_lines(log_lines: Iterable[LogLine], track_id: int, window: tuple[float, float]
                ) -> tuple[LogLine | None, list[LogLine], list[LogLine]]:
    """The track's latest summary line (whatever its time), its lines that ended before the
    window, and those overlapping it (by start time); lines starting after the window end and
    other tracks' lines are dropped."""
    start_s, end_s = window
    summary: LogLine | None = None
    older: list[LogLine] = []
    inside: list[LogLine] = []
    for line in log_lines:
        if line.track_id != track_id:
            continue
        if line.kind == "summary":
            if summary is None or line.end_s >= summary.end_s:
                summary = line
        elif line.end_s < start_s:
            older.append(line)
        elif line.start_s <= end_s:
            inside.append(line)
    inside.sort(key=lambda line: (line.start_s, line.end_s))
    return summary, older, inside


def by_keyframe(lines: Iterable[LogLine], frames: Sequence[Keyframe], start_s: float
                ) -> dict[int, list[LogLine]]:
    """Lines by the index of the keyframe that precedes their start (clamped to the window
    start), -1 for lines before the first keyframe."""
    groups: dict[int, list[LogLine]] = {}
    for line in lines:
        t = max(line.start_s, start_s)
        slot = sum(1 for kf in frames if kf.pts_s <= t) - 1
        groups.setdefault(slot, []).append(line)
    return groups
