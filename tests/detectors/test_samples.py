"""Raw bursts: one action seen by both halves of the face is joined into one burst."""

from __future__ import annotations

import numpy as np

from affectstream.detectors.samples import RawBurst, Sample, frame_iou, joined


def _sample(i: int) -> Sample:
    grey = np.zeros((4, 4), np.uint8)
    return Sample(i, i / 30, grey, grey, {})


def _raw(onset: int, regions: tuple[str, ...], *, held: bool = False,
         speaking: bool = False, peak: float = 1.0) -> RawBurst:
    vectors = {r: (0.0, -1.0) for r in regions}
    return RawBurst(_sample(onset), _sample(onset + 4), _sample(onset + 9), _sample(onset - 2),
                    regions, vectors, peak, held, speaking)


def test_joined_keeps_the_first_halfs_frames_and_flags_and_adds_the_others_regions() -> None:
    lower = _raw(10, ("nose", "mouth_corner_L"), held=True, speaking=True, peak=2.0)
    upper = _raw(12, ("lower_lid_L", "nose"), peak=3.0)
    both = joined(lower, upper)
    assert both.regions == ("nose", "mouth_corner_L", "lower_lid_L")
    assert (both.onset, both.apex, both.offset) == (lower.onset, lower.apex, lower.offset)
    assert both.held and both.speaking  # a held expression stays "still held" when joined
    assert both.peak_motion == 3.0
    assert not joined(upper, lower).held


def test_frame_iou_counts_inclusive_frames() -> None:
    assert frame_iou((0, 9), (0, 9)) == 1.0
    assert frame_iou((0, 9), (5, 14)) == 5 / 15
    assert frame_iou((0, 4), (5, 9)) == 0.0
