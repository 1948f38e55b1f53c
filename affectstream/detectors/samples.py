"""What the burst spotter takes and gives: one aligned face sample per frame, and raw bursts
(before the describer turns them into :class:`affectstream.types.Burst`)."""

from __future__ import annotations

from dataclasses import dataclass

from affectstream.types import Image


@dataclass(frozen=True, slots=True)
class Sample:
    index: int
    pts_s: float
    gray: Image
    crop: Image
    blendshapes: dict[str, float]


@dataclass(frozen=True, slots=True)
class RawBurst:
    """A spotted burst before description: frames, regions and their motion at the apex."""

    onset: Sample
    apex: Sample
    offset: Sample
    reference: Sample
    regions: tuple[str, ...]
    apex_vectors: dict[str, tuple[float, float]]
    peak_motion: float
    held: bool = False
    """The expression rose and stayed (still held at ``offset``, the newest frame seen)."""
    speaking: bool = False
    """The face was speaking (sustained jaw movement) at the apex: a mouth burst may be speech."""


def frame_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of two inclusive frame intervals (frame counts, not spans)."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter) if inter > 0 else 0.0


def joined(first: RawBurst, second: RawBurst) -> RawBurst:
    """``first`` (the stronger or earlier-found half, whose frames, held and speaking flags it
    keeps) with ``second``'s regions added."""
    regions = first.regions + tuple(r for r in second.regions if r not in first.regions)
    vectors = {**second.apex_vectors, **first.apex_vectors}
    return RawBurst(first.onset, first.apex, first.offset, first.reference, regions, vectors,
                    max(first.peak_motion, second.peak_motion), first.held, first.speaking)
