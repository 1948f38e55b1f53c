"""The process-level stats message of a run of several cameras."""

from __future__ import annotations

from affectstream.publish.messages import process_stats


def test_process_stats_sum_the_cameras() -> None:
    door = {"state": "running", "frames": 300, "fps": 29.9, "dropped": 2, "stale": 1,
            "errors": 0, "reconnects": 0, "stalls": 0, "open_failures": 0, "tracks": 1,
            "bursts": 3, "bursts_per_min": 1.5}
    dead = {"state": "opening", "frames": 0, "fps": 0.0, "open_failures": 7, "tracks": 0}
    msg = process_stats({"door": door, "dead": dead}, ts=12.3456)
    assert (msg.topic, msg.qos, msg.retain) == ("stats", 0, True)
    p = msg.payload
    assert isinstance(p, dict)
    assert (p["schema"], p["cameras"], p["running"]) == ("affectstream.process_stats/1", 2, 1)
    assert (p["frames"], p["dropped"], p["open_failures"], p["bursts"]) == (300, 2, 7, 3)
    assert p["fps"] == 29.9 and p["ts"] == 12.346 and isinstance(p["frames"], int)
