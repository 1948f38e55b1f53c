"""The /events broadcaster: bounded per-client queues that drop the oldest and count it."""

from __future__ import annotations

import json

from affectstream.web.events import Broadcaster


def test_slow_client_loses_the_oldest_and_it_is_counted() -> None:
    drops: list[int] = []
    events = Broadcaster(8, on_drop=drops.append)
    slow = events.connect("cam0")
    for i in range(20):
        events.publish("cam0", json.dumps({"n": i}))
    assert len(slow.queue) == 8 and slow.dropped == 12
    assert events.dropped == 12 and sum(drops) == 12 and events.queued() == 8
    kept = [json.loads(chunk.decode().removeprefix("data: ")) for chunk in slow.queue]
    assert [m["n"] for m in kept] == list(range(12, 20))


def test_clients_get_their_camera_and_the_process_messages() -> None:
    events = Broadcaster(16)
    door, lab, every = events.connect("door"), events.connect("lab"), events.connect(None)
    events.publish("door", "{}")
    events.publish(None, "{}")  # the process-level stats
    events.publish("lab", "{}", event="frame")
    assert (len(door.queue), len(lab.queue), len(every.queue)) == (2, 2, 3)
    assert lab.queue[-1] == b"event: frame\ndata: {}\n\n"
    events.disconnect(door)
    assert events.clients() == 2


def test_replay_comes_first_and_is_never_dropped() -> None:
    events = Broadcaster(8)
    client = events.connect("cam0", [json.dumps({"n": i}) for i in range(30)])
    assert len(client.queue) == 30 and client.dropped == 0
