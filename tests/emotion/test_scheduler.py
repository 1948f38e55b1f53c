"""VlmScheduler with the real OpenAI backend over the test server's API (an httpx
MockTransport) on a clock the test moves: due times, coalescing, the in-flight cap, failures
and backoff, answers that arrive too late. Nothing waits on real time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import httpx
import numpy as np
from openai_server import OpenAIApi, error

from affectstream.clock import ManualClock
from affectstream.config import OpenAIVlmConfig
from affectstream.emotion.scheduler import VlmScheduler
from affectstream.emotion.slots import FairSlots
from affectstream.labels import DFEW7
from affectstream.types import EmotionUpdate, Keyframe
from affectstream.vlm.backends.openai import OpenAIBackend
from affectstream.vlm.calibration import EmotionSmoother, NoCalibration

CROP = np.full((224, 224, 3), 90, np.uint8)


def _kf(track: int, t: float) -> Keyframe:
    return Keyframe(track, round(t * 30), t, "periodic", CROP)


class Gate:
    """The test server's API behind a gate: chat answers wait until the test opens it, so
    requests stay in flight for as long as the test wants."""

    def __init__(self, api: OpenAIApi) -> None:
        self.api = api
        self.opened = asyncio.Event()
        self.opened.set()

    def transport(self) -> httpx.MockTransport:
        inner = self.api.transport()

        async def answer(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/chat/completions"):
                await self.opened.wait()
            return inner.handle_request(request)

        return httpx.MockTransport(answer)


Scenario = Callable[[VlmScheduler, ManualClock, Gate], Awaitable[None]]


def _run(cfg: OpenAIVlmConfig, api: OpenAIApi, scenario: Scenario
         ) -> tuple[VlmScheduler, list[EmotionUpdate]]:
    published: list[EmotionUpdate] = []

    async def publish(update: EmotionUpdate) -> None:
        published.append(update)

    async def main() -> VlmScheduler:
        clock = ManualClock()
        gate = Gate(api)
        backend = OpenAIBackend(cfg.url, None, timeout_s=cfg.timeout_s, max_retries=0,
                                clock=clock, transport=gate.transport())
        await backend.start()
        sched = VlmScheduler(backend, cfg, DFEW7, "cam0", publish, NoCalibration(),
                             EmotionSmoother(0.0), clock=clock)
        try:
            await scenario(sched, clock, gate)
            gate.opened.set()
            await sched.idle()
        finally:
            await sched.close(wait_s=5)
            await backend.close()
        return sched

    return asyncio.run(main()), published


def _feed(sched: VlmScheduler, t: float, tracks: list[int], ended: Sequence[int] = ()) -> None:
    sched.feed(t, [_kf(tr, t) for tr in tracks], [], [], tracks, list(ended))


def _config(**kw: float) -> OpenAIVlmConfig:
    return OpenAIVlmConfig(url="http://vlm.test/v1", timeout_s=5, **kw)


def test_period_coalescing_and_in_flight_cap() -> None:
    async def scenario(sched: VlmScheduler, clock: ManualClock, gate: Gate) -> None:
        gate.opened.clear()  # the first request hangs: the next ones wait in the queue
        for i in range(13):  # 0 … 3 s; both tracks due at 1, 2 and 3 s
            _feed(sched, i / 4, [1, 2])
            clock.advance(0.25)
        stats = sched.stats()
        assert (stats["in_flight"], stats["queued"]) == (1, 2)

    sched, published = _run(_config(period_s=1.0, max_in_flight=1), OpenAIApi(), scenario)
    stats = sched.stats()
    # track 1's 1 s request ran; track 2's 1 s and 2 s requests and track 1's 2 s one were
    # replaced by newer ones while they waited; the two 3 s requests ran after the first
    assert stats["coalesced"] == 3 and stats["failures"] == 0 and stats["skipped"] == 0
    assert stats["calls"] == len(published) == 3
    assert [(u.track_id, u.window_end_s) for u in published] == [(1, 1.0), (1, 3.0), (2, 3.0)]
    assert all(u.source == "vlm" and set(u.probs) == set(DFEW7) for u in published)


def test_failures_are_counted_and_back_off() -> None:
    api = OpenAIApi()
    api.script(error(500, "boom"), error(500, "boom"))

    async def scenario(sched: VlmScheduler, clock: ManualClock, gate: Gate) -> None:
        for i in range(17):  # 0 … 4 s, due every 0.5 s; the clock moves with the stream
            _feed(sched, i / 4, [1])
            await sched.idle()  # each answer comes before the next frame
            clock.advance(0.25)

    sched, published = _run(_config(period_s=0.5), api, scenario)
    stats = sched.stats()
    # 0.5 s fails: 1 s backoff skips 1.0; 1.5 s fails: 2 s backoff skips 2.0, 2.5, 3.0;
    # 3.5 and 4.0 s are answered
    assert (stats["failures"], stats["skipped"], stats["calls"]) == (2, 4, 4)
    assert [u.window_end_s for u in published] == [3.5, 4.0]


def test_answer_for_a_track_that_ended_is_dropped() -> None:
    async def scenario(sched: VlmScheduler, clock: ManualClock, gate: Gate) -> None:
        gate.opened.clear()
        for i in range(5):  # due at 1 s; its answer hangs
            _feed(sched, i / 4, [1])
            clock.advance(0.25)
        assert sched.stats()["in_flight"] == 1
        _feed(sched, 1.25, [], ended=[1])

    sched, published = _run(_config(period_s=1.0), OpenAIApi(), scenario)
    assert published == [] and sched.stats()["late"] == 1


def test_cameras_sharing_slots_take_turns() -> None:
    """Two cameras' schedulers under one cap of 1: the quiet camera's request is not kept
    waiting behind every request of the busy one."""
    published: list[tuple[str, int]] = []
    api = OpenAIApi()

    async def main() -> None:
        clock, gate = ManualClock(), Gate(api)
        gate.opened.clear()
        backend = OpenAIBackend("http://vlm.test/v1", None, timeout_s=5, max_retries=0,
                                clock=clock, transport=gate.transport())
        await backend.start()
        slots = FairSlots(1)

        def scheduler(camera: str) -> VlmScheduler:
            async def publish(update: EmotionUpdate) -> None:
                published.append((update.camera, update.track_id))

            return VlmScheduler(backend, _config(period_s=1.0), DFEW7, camera, publish,
                                NoCalibration(), EmotionSmoother(0.0), clock=clock, slots=slots)

        busy, quiet = scheduler("busy"), scheduler("quiet")
        for t in (0.0, 0.5, 1.0):
            _feed(busy, t, [1, 2, 3])
            _feed(quiet, t, [9])
        assert (slots.used, busy.stats()["queued"], quiet.stats()["queued"]) == (1, 2, 1)
        gate.opened.set()
        for sched in (busy, quiet, busy, quiet):
            await sched.idle()
        for sched in (busy, quiet):
            await sched.close(wait_s=5)
        await backend.close()

    asyncio.run(main())
    # busy's first request ran, its second was already in line; quiet's came next, not last
    assert published == [("busy", 1), ("busy", 2), ("quiet", 9), ("busy", 3)]
