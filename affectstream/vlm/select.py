"""Which keyframes a VLM request shows: burst apexes first, the newest frame always, the rest
spread evenly over the window (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Sequence

from affectstream.types import Keyframe


def _in_window(kf: Keyframe, window: tuple[float, float]) -> bool:
    return window[0] <= kf.pts_s <= window[1]


def check_window(window: tuple[float, float]) -> None:
    if not window[0] <= window[1]:
        raise ValueError(f"window end must not precede its start, got {window}")


def select_keyframes(periodic: Sequence[Keyframe], apexes: Sequence[Keyframe],
                     window: tuple[float, float], k: int = 4) -> list[Keyframe]:
    """Up to ``k`` keyframes inside ``window`` (inclusive), in time order, no frame twice.

    Burst apexes come first (newest bursts first when more than ``k − 1`` fit), one per burst;
    the newest periodic frame is always kept; the remaining slots go to periodic frames picked
    one by one where the largest gap to the frames already chosen is (evenly spaced over the
    window, ties to the earlier frame).
    """
    if k < 0:
        raise ValueError(f"k must be ≥ 0, got {k}")
    check_window(window)
    per = sorted((kf for kf in periodic if _in_window(kf, window)), key=lambda f: f.pts_s)
    apx = sorted((kf for kf in apexes if _in_window(kf, window)),
                 key=lambda f: f.pts_s, reverse=True)
    newest = per[-1] if per else None
    chosen: dict[int, Keyframe] = {}
    bursts: set[str] = set()
    for kf in apx:
        if kf.frame_index in chosen or (kf.burst_id is not None and kf.burst_id in bursts):
            continue
        # one slot stays reserved for the newest frame unless this apex is that frame
        reserve = newest is not None and kf.frame_index != newest.frame_index \
            and newest.frame_index not in chosen
        if len(chosen) + 1 + int(reserve) > k:
            continue
        chosen[kf.frame_index] = kf
        if kf.burst_id is not None:
            bursts.add(kf.burst_id)
    if newest is not None and newest.frame_index not in chosen and len(chosen) < k:
        chosen[newest.frame_index] = newest
    rest = [kf for kf in per if kf.frame_index not in chosen]
    while len(chosen) < k and rest:
        times = [kf.pts_s for kf in chosen.values()]

        def gap(kf: Keyframe, times: list[float] = times) -> float:
            return min((abs(kf.pts_s - t) for t in times), default=0.0)

        best = max(rest, key=gap)  # max() keeps the first (earliest) on ties
        chosen[best.frame_index] = best
        rest.remove(best)
    return sorted(chosen.values(), key=lambda f: (f.pts_s, f.frame_index))
