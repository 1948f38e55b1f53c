"""The hub's camera states for /healthz, on a clock the test owns: starting, running, stale
after STALE_AFTER_S without a frame, running again on the next frame, ended when it goes
offline."""

from __future__ import annotations

import numpy as np

from affectstream.publish import messages
from affectstream.types import Frame, FrameResult
from affectstream.web.events import Broadcaster
from affectstream.web.hub import STALE_AFTER_S, Hub
from affectstream.web.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _frame(index: int) -> tuple[Frame, FrameResult]:
    image = np.zeros((4, 4, 3), np.uint8)
    return Frame(index, index / 30, 0.0, image), FrameResult(index, index / 30, 0.0)


def test_camera_states_starting_running_stale_ended() -> None:
    clock = Clock()
    hub = Hub([("door", "rtsp://cam/stream")], Metrics(), Broadcaster(8), clock=clock)
    assert hub.health()["cameras"]["door"]["state"] == "starting"
    assert hub.health()["status"] == "degraded"

    hub.observe(messages.availability("door", True))
    hub.tap("door", *_frame(0))
    assert hub.health()["status"] == "ok"
    assert hub.health()["cameras"]["door"]["state"] == "running"

    clock.now += STALE_AFTER_S + 0.5  # no frame for longer than the stale limit
    health = hub.health()["cameras"]["door"]
    assert health["state"] == "stale" and health["last_frame_age_s"] == STALE_AFTER_S + 0.5
    assert hub.health()["status"] == "degraded"

    hub.tap("door", *_frame(1))  # frames again
    assert hub.health()["cameras"]["door"]["state"] == "running"

    hub.observe(messages.availability("door", False))
    assert hub.health()["cameras"]["door"]["state"] == "ended"
    clock.now += 60  # an ended camera is not stale
    assert hub.health()["cameras"]["door"]["state"] == "ended"
