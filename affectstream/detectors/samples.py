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
