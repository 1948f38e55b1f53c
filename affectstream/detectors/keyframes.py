"""Per-track keyframe store: periodic aligned crops plus the apex crops of bursts (DESIGN §7).

Both are bounded deques. Apex crops come with the burst (the spotter keeps the crop of the
displacement peak), so no long per-frame ring is needed to recover them.
"""

from __future__ import annotations

from collections import deque

from affectstream.config import KeyframesConfig
from affectstream.types import Image, Keyframe


class KeyframeStore:
    def __init__(self, cfg: KeyframesConfig, track_id: int) -> None:
        self._track = track_id
        self._period = 1.0 / cfg.periodic_fps
        self._next_s: float | None = None
        self.periodic: deque[Keyframe] = deque(maxlen=max(4, round(cfg.ring_s * cfg.periodic_fps)))
        self.apexes: deque[Keyframe] = deque(maxlen=cfg.max_apex)

    def due(self, pts_s: float) -> bool:
        """Whether a periodic keyframe is due at ``pts_s``."""
        return self._next_s is None or pts_s >= self._next_s

    def offer(self, frame_index: int, pts_s: float, crop: Image,
              expression: dict[str, float] | None = None) -> Keyframe | None:
        """Keep the crop if a periodic keyframe is due."""
        if not self.due(pts_s):
            return None
        self._next_s = pts_s + self._period
        kf = Keyframe(self._track, frame_index, pts_s, "periodic", crop, None, expression)
        self.periodic.append(kf)
        return kf

    def add_apex(self, frame_index: int, pts_s: float, crop: Image, burst_id: str,
                 expression: dict[str, float] | None = None) -> Keyframe:
        kf = Keyframe(self._track, frame_index, pts_s, "apex", crop, burst_id, expression)
        self.apexes.append(kf)
        return kf
