"""VlmScheduler with the real OpenAI-compatible backend and a real local HTTP server:
timing, coalescing, the in-flight cap, failures and backoff, answers that arrive too late."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from openai_server import OpenAIServer, error, hang

from affectstream.config import VlmConfig
from affectstream.emotion.scheduler import VlmScheduler
from affectstream.labels import DFEW7
from affectstream.types import EmotionUpdate, Keyframe
from affectstream.vlm.backends.openai import OpenAIBackend
from affectstream.vlm.calibration import EmotionSmoother, NoCalibration

CROP = np.full((224, 224, 3), 90, np.uint8)


def _kf(track: int, t: float) -> Keyframe:
    return Keyframe(track, round(t * 30), t, "periodic", CROP)


async def _scenario(server: OpenAIServer, cfg: VlmConfig, steps: list[dict[str, Any]],
                    settle_s: float) -> tuple[VlmScheduler, list[EmotionUpdate]]:
    backend = OpenAIBackend(server.url, None, timeout_s=cfg.timeout_s, max_retries=0)
    await backend.start()
    published: list[EmotionUpdate] = []

    async def publish(update: EmotionUpdate) -> None:
        published.append(update)

    sched = VlmScheduler(backend, cfg, DFEW7, "cam0", publish, NoCalibration(),
                         EmotionSmoother(0.0))
    for step in steps:
        t = step["t"]
        tracks = step.get("tracks", [1])
        sched.feed(t, [_kf(tr, t) for tr in tracks], [], [], tracks, step.get("ended", []))
        await asyncio.sleep(step.get("sleep", 0.0))
    await asyncio.sleep(settle_s)
    await sched.close(wait_s=5)
    await backend.close()
    return sched, published


def test_period_coalescing_and_in_flight_cap() -> None:
    cfg = VlmConfig(type="openai", period_s=1.0, max_in_flight=1, timeout_s=5)
    with OpenAIServer() as server:
        server.script(hang(0.6))  # the first request is slow: the next ones wait in the queue
        steps = [{"t": i / 10, "tracks": [1, 2]} for i in range(31)]
        sched, published = asyncio.run(_scenario(server, cfg, steps, settle_s=2.0))
    stats = sched.stats()
    # due at 1, 2 and 3 s for two tracks; while the first waited, track 2's 1 s request was
    # replaced by its 2 s one
    assert stats["coalesced"] >= 1 and stats["failures"] == 0
    assert stats["calls"] == len(published) == 6 - stats["coalesced"]
    assert {u.track_id for u in published} == {1, 2}
    assert all(u.source == "vlm" and set(u.probs) == set(DFEW7) for u in published)


def test_failures_are_counted_and_back_off() -> None:
    cfg = VlmConfig(type="openai", period_s=0.5, timeout_s=5)
    with OpenAIServer() as server:
        server.script(error(500, "boom"), error(500, "boom"))
        steps = [{"t": i / 10, "sleep": 0.05} for i in range(30)]
        sched, published = asyncio.run(_scenario(server, cfg, steps, settle_s=0.5))
    stats = sched.stats()
    assert stats["failures"] >= 1 and stats["skipped"] >= 1  # backing off skips due requests
    assert stats["calls"] == stats["failures"] + len(published)


def test_answer_for_a_track_that_ended_is_dropped() -> None:
    cfg = VlmConfig(type="openai", period_s=1.0, timeout_s=5)
    with OpenAIServer() as server:
        server.script(hang(0.8))
        steps = [{"t": i / 10} for i in range(11)]
        steps.append({"t": 1.1, "tracks": [], "ended": [1]})
        sched, published = asyncio.run(_scenario(server, cfg, steps, settle_s=1.5))
    assert published == [] and sched.stats()["late"] == 1
