"""``affectstream replay`` to a real mosquitto broker: the same topics and payloads in the same
order as the recording, at its pace (each message within 50 ms of its due time at --speed 1),
with the QoS and retain flags of a live run."""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cli_helpers import cli, read_jsonl
from message_schemas import message_errors
from mqtt_helpers import Mosquitto, Subscriber, retained

pytestmark = pytest.mark.e2e

TOLERANCE_S = 0.050


class TimedSubscriber(Subscriber):
    """Records each message's arrival on the monotonic clock too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.arrivals.append(time.monotonic())
        super()._on_message(client, userdata, msg)


def _due_offsets(lines: list[dict[str, Any]], speed: float) -> list[float]:
    """When each line is due after the first, from the payloads' ts (lines without one go
    with the line before; order is never changed)."""
    t0 = next(ln["payload"]["ts"] for ln in lines if isinstance(ln["payload"], dict))
    due, last = [], 0.0
    for ln in lines:
        p = ln["payload"]
        if isinstance(p, dict):
            last = max(last, (p["ts"] - t0) / speed)
        due.append(last)
    return due


def test_replay_republishes_the_run_in_order_at_its_pace(
        recording: Path, tmp_path: Path) -> None:
    lines = read_jsonl(recording)
    # mosquitto's own Nagle delay (set_tcp_nodelay is off by default) holds a message sent
    # right after a QoS-0 one for the subscriber's delayed TCP ACK, ~40 ms: the broker's
    # latency, not the replay's pacing, so this broker turns it off (docs/mqtt.md says how).
    mosquitto = Mosquitto(tmp_path / "mosquitto", options=("set_tcp_nodelay true",)).start()
    try:
        _check_order_and_pace(lines, recording, mosquitto, tmp_path)
    finally:
        mosquitto.kill()


def _check_order_and_pace(lines: list[dict[str, Any]], recording: Path, mosquitto: Mosquitto,
                          tmp_path: Path) -> None:
    with TimedSubscriber("127.0.0.1", mosquitto.port, "lab/#") as sub:
        proc = cli("replay", str(recording), "--sink", mosquitto.url, "--prefix", "lab",
                   cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        got = sub.wait_until(lambda ms: any(m.payload == b"offline" for m in ms[1:]))
        arrivals = list(sub.arrivals)
    # The sink announces the camera online on connect, as in a live run; then the recording,
    # with the empty retained message deleting each ended track's emotion in between.
    assert (got[0].topic, got[0].payload) == ("lab/cam0/availability", b"online")
    pairs = [(m, t) for m, t in zip(got[1:], arrivals[1:], strict=True) if m.payload]
    received = [(m.topic.removeprefix("lab/"), _decode(m.payload)) for m, _ in pairs]
    assert received == [(ln["topic"], ln["payload"]) for ln in lines]
    cleared = [m.topic for m in got if not m.payload]
    assert cleared and all(t.endswith("/emotion") for t in cleared)

    due = _due_offsets(lines, 1.0)
    # The replay's own start is not visible to a subscriber: take the median offset between
    # arrival and due time as the start, so one late message cannot shift all the others.
    start = statistics.median(t - d for (_, t), d in zip(pairs, due, strict=True))
    errors = [(t - start) - d for (_, t), d in zip(pairs, due, strict=True)]
    worst = max(range(len(errors)), key=lambda i: abs(errors[i]))
    print(f"\nreplay timing, {len(errors)} messages over {due[-1]:.2f} s at --speed 1: offset "
          f"error p50 {statistics.median(map(abs, errors)) * 1000:.1f} ms, max "
          f"{abs(errors[worst]) * 1000:.1f} ms (message {worst}, {received[worst][0]})")
    assert abs(errors[worst]) <= TOLERANCE_S, [round(e * 1000, 1) for e in errors]


def _decode(payload: bytes) -> Any:
    text = payload.decode()
    return text if text in ("online", "offline") else json.loads(text)


def test_replay_renames_camera_and_prefix_with_live_flags(
        recording: Path, mosquitto: Mosquitto, tmp_path: Path) -> None:
    with Subscriber("127.0.0.1", mosquitto.port, "lab/#") as sub:
        proc = cli("replay", str(recording), "--sink", f"{mosquitto.url}/ignored", "--prefix",
                   "lab", "--camera-id", "door", "--speed", "20", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        got = sub.wait_until(lambda ms: any(m.payload == b"offline" for m in ms[1:]))
    qos = {}
    for m in got:
        assert m.topic.startswith("lab/door/"), m.topic
        if m.payload:
            assert message_errors(m.topic.removeprefix("lab/"), _decode(m.payload)) == []
            payload = _decode(m.payload)
            if isinstance(payload, dict):
                assert payload["camera"] == "door"
                ids = [payload.get("id") if m.topic.endswith("/bursts") else None,
                       payload.get("burst_id"),
                       *(payload["bursts"] if m.topic.endswith("/emotion") else [])]
                assert all(i.startswith("door-") for i in ids if i), payload
        qos[m.topic.split("/")[-1]] = m.qos
    assert qos["bursts"] == qos["tracks"] == qos["availability"] == 1
    assert qos["log"] == qos["stats"] == 0
    kept = retained("127.0.0.1", mosquitto.port, "lab/#")
    assert kept["lab/door/availability"] == b"offline"
    assert json.loads(kept["lab/door/stats"])["camera"] == "door"
    assert not [t for t in kept if t.endswith("/emotion")], kept.keys()  # deleted at track end
