"""Per-track keyframe store: periodic rate, bounded deques, apex keyframes with burst ids."""

from __future__ import annotations

import numpy as np

from affectstream.config import KeyframesConfig
from affectstream.detectors.keyframes import KeyframeStore

FPS = 30.0


def crop(i: int) -> np.ndarray:
    return np.full((8, 8, 3), i % 256, np.uint8)


def test_periodic_rate() -> None:
    store = KeyframeStore(KeyframesConfig(periodic_fps=2.0, ring_s=100.0), track_id=5)
    kept = []
    for i in range(int(10 * FPS)):
        kf = store.offer(i, i / FPS, crop(i))
        if kf is not None:
            kept.append(kf)
            assert store.periodic[-1] is kf
    assert 19 <= len(kept) <= 21  # 10 s at 2 Hz
    assert kept[0].frame_index == 0  # the first crop is kept at once
    gaps = np.diff([kf.pts_s for kf in kept])
    assert gaps.min() >= 0.5 - 1e-9 and gaps.max() <= 0.5 + 1.5 / FPS
    assert all(kf.reason == "periodic" and kf.track_id == 5 and kf.burst_id is None
               for kf in kept)
    assert all(int(kf.image[0, 0, 0]) == kf.frame_index % 256 for kf in kept)


def test_periodic_deque_is_bounded_to_ring() -> None:
    cfg = KeyframesConfig(periodic_fps=2.0, ring_s=4.0)
    store = KeyframeStore(cfg, track_id=1)
    offered = [kf for i in range(int(20 * FPS))
               if (kf := store.offer(i, i / FPS, crop(i))) is not None]
    assert len(store.periodic) == round(cfg.ring_s * cfg.periodic_fps) == 8
    assert list(store.periodic) == offered[-8:]
    # A tiny ring still keeps a few frames.
    small = KeyframeStore(KeyframesConfig(periodic_fps=1.0, ring_s=0.5), track_id=1)
    for i in range(300):
        small.offer(i, i / FPS, crop(i))
    assert len(small.periodic) == 4


def test_apex_keyframes_carry_burst_ids_and_are_bounded() -> None:
    store = KeyframeStore(KeyframesConfig(max_apex=16), track_id=2)
    made = [store.add_apex(10 * n, n / 3, crop(n), f"cam0-r-t2-f{10 * n}") for n in range(20)]
    assert len(store.apexes) == 16
    assert list(store.apexes) == made[-16:]
    for kf in store.apexes:
        assert kf.reason == "apex" and kf.track_id == 2
        assert kf.burst_id == f"cam0-r-t2-f{kf.frame_index}"
    assert len(store.periodic) == 0  # apexes do not count as periodic keyframes


def test_offer_returns_none_until_due() -> None:
    store = KeyframeStore(KeyframesConfig(periodic_fps=1.0), track_id=1)
    assert store.offer(0, 5.0, crop(0)) is not None
    assert store.offer(1, 5.5, crop(1)) is None
    assert store.offer(2, 5.99, crop(2)) is None
    assert store.offer(3, 6.0, crop(3)) is not None
