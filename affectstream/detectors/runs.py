"""Runs of above-threshold frames, as the spotter follows them: a run keeps its best frame and
ends after enough frames below the threshold (or when it has lasted too long past its best)."""

from __future__ import annotations

from dataclasses import dataclass

from affectstream.types import FloatArray


@dataclass(slots=True)
class Candidate:
    """The run of above-threshold frames being followed."""

    pos: int
    """Ring position (absolute sample count) of the best frame so far."""
    score: float
    scale: int
    z: FloatArray
    """Per-region normalised pulse at the best frame and scale."""
    below: int = 0
    """Frames since the run's score fell below the threshold."""

    @property
    def closing(self) -> int:
        """Frames below the threshold that end the run: half its scale, so the fall of a wide
        pulse is followed far enough to place its offset."""
        return max(1, round(0.5 * self.scale))



def follow_run(current: Candidate | None, above: bool,
         fresh: Candidate) -> tuple[Candidate | None, Candidate | None]:
    """One frame of a run of above-threshold frames: (the candidate to keep, a finished one).
    A run keeps its best frame; it is over once it stayed below the threshold for
    ``closing`` frames, or once it has lasted two scales past its best frame."""
    if above:
        if current is None or fresh.score > current.score:
            return fresh, None
        current.below = 0
        if fresh.pos - current.pos <= 2 * current.scale:
            return current, None
        return None, current
    if current is None:
        return None, None
    current.below += 1
    if current.below < current.closing:
        return current, None
    return None, current
