"""The MQTT sink without a broker: the bounded offline queue, and the reconnect backoff on a
manual clock (real connection attempts to a closed port on 127.0.0.1, no real waiting)."""

from __future__ import annotations

import asyncio
from typing import Any

from mqtt_helpers import free_port  # tests/publish is on sys.path

from affectstream.clock import ManualClock
from affectstream.config import MqttConfig
from affectstream.publish.messages import availability
from affectstream.publish.mqtt import MqttSink

WAIT_S = 30.0
"""Generous bound on the reconnect loop reaching a state (it takes milliseconds)."""


class SignallingClock(ManualClock):
    """A :class:`ManualClock` that also tells the test when ``n`` sleeps have happened."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self._n = n
        self.reached = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if len(self.slept) >= self._n:
            self.reached.set()


def test_offline_queue_is_bounded_drop_oldest_and_counted() -> None:
    async def go() -> tuple[dict[str, Any], list[str]]:
        sink = MqttSink(f"mqtt://127.0.0.1:{free_port()}", MqttConfig(queue_size=3),
                        "cam0", "test", clock=ManualClock())
        await sink.start()  # nothing listens there: start() returns, messages queue
        for cam in ("a", "b", "c", "d", "e"):
            await sink.publish(availability(cam, True))
        queued = [m.topic for m in sink._queue]
        stats = sink.stats()
        await sink.close()
        return stats, queued

    stats, queued = asyncio.run(go())
    assert stats["dropped"] == 2 and stats["queued"] == 3 and not stats["connected"]
    assert queued == ["c/availability", "d/availability", "e/availability"]


def test_reconnect_backoff_doubles_up_to_the_cap() -> None:
    async def go() -> tuple[list[float], int, dict[str, Any]]:
        # Made in the loop: the clock's event belongs to it.
        clock = SignallingClock(6)
        sink = MqttSink(f"mqtt://127.0.0.1:{free_port()}",
                        MqttConfig(reconnect_backoff_max_s=2.0, connect_timeout_s=5.0),
                        "cam0", "test", clock=clock)
        await sink.start()
        await sink.publish(availability("cam0", True))
        await asyncio.wait_for(clock.reached.wait(), WAIT_S)
        await sink.close()
        return clock.slept, sink.reconnects, sink.stats()

    slept, reconnects, stats = asyncio.run(go())
    assert slept[:6] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert reconnects >= 5 and stats["queued"] == 1 and not stats["connected"]


def test_close_cuts_a_long_backoff_short() -> None:
    class Stuck(ManualClock):
        """A backoff that never ends by itself: only close() can end the wait."""

        def __init__(self) -> None:
            super().__init__()
            self.waiting = asyncio.Event()

        async def sleep(self, seconds: float) -> None:
            self.slept.append(seconds)
            self.waiting.set()
            await asyncio.Event().wait()

    async def go() -> tuple[list[float], int, bool]:
        clock = Stuck()
        sink = MqttSink(f"mqtt://127.0.0.1:{free_port()}", MqttConfig(), "cam0", "test",
                        clock=clock)
        await sink.start()
        await asyncio.wait_for(clock.waiting.wait(), WAIT_S)
        await sink.close()
        assert sink._task is not None and sink._task.done()
        # Ended by close()'s signal, not cancelled when close() ran out of patience.
        return clock.slept, sink.reconnects, sink._task.cancelled()

    slept, reconnects, cancelled = asyncio.run(go())
    assert slept == [0.25] and reconnects == 0 and not cancelled


def test_cameras_of_one_process_get_distinct_client_ids() -> None:
    cfg = MqttConfig(client_id="site-a")
    door, lab = (MqttSink("mqtt://127.0.0.1:1883", cfg, cam, "1", cameras=["door", "lab"])
                 for cam in ("door", "lab"))
    # one client id for two connections would make the broker drop each for the other
    assert (door._client_id, lab._client_id) == ("site-a-door", "site-a-lab")
    alone = MqttSink("mqtt://127.0.0.1:1883", cfg, "door", "1")
    assert alone._client_id == "site-a"
