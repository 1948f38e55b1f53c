"""Is the face speaking? A per-track state from the jaw's and the brows' movement, used by the
spotter to raise the mouth's bar while the face talks (speech moves the mouth all the time).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from affectstream.types import FloatArray

SPEECH_PX = 0.4
"""Mean jaw movement per smallest-scale lag (pixels on a 128 px crop) above which the face
counts as speaking, measured over one second (talking heads: 0.5–2.6, a still face: < 0.2)."""
SPEECH_RATIO = 1.5
"""…and at least this many times the brows' movement (a head turn moves both alike)."""


class SpeakingState:
    """Speaking: the jaw has kept moving for the last second, clearly more than the brows;
    it ends only when the jaw calms down well below that (speech pauses between words)."""

    def __init__(self, names: tuple[str, ...], crop_size: int, fps: float) -> None:
        self._chin: npt.NDArray[np.bool_] = np.array([n == "chin" for n in names])
        self._brows: npt.NDArray[np.bool_] = np.array(
            [n.startswith(("inner_brow", "outer_brow")) for n in names])
        self._length = max(2, round(fps))
        self._activity: deque[tuple[float, float]] = deque(maxlen=self._length)
        self._speech_px = SPEECH_PX * crop_size / 128
        self.speaking = False

    def update(self, vectors: FloatArray) -> bool:
        """One frame's region displacements (R, 2) over the smallest lag; the new state."""
        norms = np.linalg.norm(vectors, axis=1)
        self._activity.append((float(norms[self._chin].mean()),
                               float(norms[self._brows].mean())))
        if len(self._activity) == self._length:
            chin, brows = np.mean(np.asarray(self._activity), axis=0)
            bar = max(self._speech_px, SPEECH_RATIO * brows)
            # hysteresis: speech has pauses between words, which must not end it
            self.speaking = bool(chin >= (0.6 * bar if self.speaking else bar))
        return self.speaking
