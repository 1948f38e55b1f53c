"""The MQTT sink without a broker: the bounded offline queue, and the reconnect backoff on a
manual clock (real connection attempts to a closed port on 127.0.0.1, no real waiting)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from mqtt_helpers import Mosquitto, free_port, retained  # tests/publish is on sys.path

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


@pytest.mark.e2e  # a real mosquitto, restarted
def test_a_reconnect_announces_the_cameras_last_stated_availability(
        mosquitto: Mosquitto) -> None:
    """A camera still being opened said offline; after a broker restart the sink's connect
    must not make it read online. Once the camera opened, a reconnect says online."""
    kw = mosquitto.client_kwargs()
    topic = "affectstream/cam0/availability"

    async def restart_and_wait(sink: MqttSink) -> None:
        seen = sink.reconnects
        await asyncio.to_thread(mosquitto.restart)
        await asyncio.to_thread(_wait_reconnected, sink, seen)

    async def scenario() -> None:
        sink = MqttSink(f"{mosquitto.url}/affectstream",
                        MqttConfig(reconnect_backoff_max_s=0.5), "cam0", "1")
        await sink.start()
        await sink.publish(availability("cam0", False))
        await _sent(sink)  # a subscriber then sees it as the retained value
        assert await asyncio.to_thread(retained, **kw) == {topic: b"offline"}
        await restart_and_wait(sink)
        assert await asyncio.to_thread(_retained_once_set, kw) == {topic: b"offline"}
        await sink.publish(availability("cam0", True))  # it opened
        await _sent(sink)
        await restart_and_wait(sink)
        assert await asyncio.to_thread(_retained_once_set, kw) == {topic: b"online"}
        await sink.close()

    asyncio.run(scenario())


def _retained_once_set(kw: dict[str, Any], tries: int = 50) -> dict[str, bytes]:
    """The retained messages, once the reconnected sink has set its availability (the restarted
    broker keeps nothing: the sink's connect is what sets it)."""
    for _ in range(tries):
        if found := retained(**kw, quiet_s=0.2):
            return found
    raise AssertionError("nothing retained after the reconnect")


async def _sent(sink: MqttSink) -> None:
    """Until the sink's queue is delivered (its connection task runs on this loop)."""
    for _ in range(100_000):
        if sink.connected and not sink.stats()["queued"]:
            return
        await asyncio.sleep(0)
    raise AssertionError("the sink never delivered its queue")


def _wait_reconnected(sink: MqttSink, seen: int, timeout: float = 30.0) -> None:
    """Until the sink has connected again after ``seen`` reconnects."""
    deadline = time.monotonic() + timeout
    while not (sink.connected and sink.reconnects > seen):
        assert time.monotonic() < deadline, "the sink did not reconnect"
        time.sleep(0.05)  # the sink's state has no event another thread can wait on
