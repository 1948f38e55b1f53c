"""``affectstream watch``: the view drawn into rich's recording console, from a replay to a real
broker (the camera, a face's emotion and a burst line), and the CLI's one-line errors."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import sys
from pathlib import Path

import pytest
from cli_helpers import cli_env, read_jsonl
from mqtt_helpers import Mosquitto, free_port
from rich.console import Console

from affectstream.cli import main
from affectstream.client.received import parse_received
from affectstream.client.state import State
from affectstream.config import MqttConfig
from affectstream.publish import messages
from affectstream.types import Burst
from affectstream.watch import watch
from affectstream.watch.view import Link, render


@pytest.mark.e2e
def test_watch_shows_camera_emotion_and_bursts_of_a_replay(
        open_recording: Path, mosquitto: Mosquitto, tmp_path: Path) -> None:
    console = Console(record=True, file=io.StringIO(), width=200, force_terminal=False)

    async def scenario() -> None:
        viewer = asyncio.create_task(watch(f"{mosquitto.url}/lab", MqttConfig(), 6.0, console))
        await asyncio.sleep(1.0)  # subscribed before the replay's bursts (not retained) go out
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "affectstream", "-q", "replay", str(open_recording),
            "--sink", f"{mosquitto.url}/lab", "--camera-id", "door", "--speed", "10",
            env=cli_env(), cwd=tmp_path)
        assert await proc.wait() == 0
        await viewer

    asyncio.run(scenario())
    text = console.export_text()
    lines = read_jsonl(open_recording)
    emotion = next(ln["payload"] for ln in lines if ln["topic"].endswith("/emotion"))
    burst = next(ln["payload"] for ln in lines if ln["topic"].endswith("/bursts"))
    last = text[text.rindex("affectstream watch"):]  # the final frame
    assert "door" in last and "online" in last, last
    face_row = next(row for row in last.splitlines() if emotion["label"] in row)
    assert "door" in face_row and emotion["source"] in face_row, face_row
    assert burst["text"][:40] in " ".join(last.split()), last
    print("\n" + last)


def test_watch_errors_are_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["watch", f"mqtt://user:s3cret@127.0.0.1:{port}/lab", "--seconds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach MQTT broker" in err, err
    assert "s3cret" not in err and "***" in err
    assert main(["watch", "http://127.0.0.1", "--seconds", "1"]) == 2
    assert "invalid MQTT URL" in capsys.readouterr().err


def test_replay_errors_are_one_line_with_exit_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "missing.jsonl"), "--sink", "stdout"]) == 2
    assert "cannot read recording" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"topic": "cam0/availability", "payload": "online"}\n{"topic": "x"}\n')
    assert main(["replay", str(bad), "--sink", "stdout"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and len(err.strip().splitlines()) == 1, err
    good = tmp_path / "good.jsonl"
    good.write_text('{"topic": "cam0/availability", "payload": "online"}\n')
    port = free_port()
    assert main(["replay", str(good), "--sink", f"mqtt://u:s3cret@127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach" in err and "s3cret" not in err, err
    assert main(["replay", str(good), "--sink", "stdout", "--speed", "0"]) == 2
    assert "--speed" in capsys.readouterr().err


def test_a_burst_while_speaking_is_marked_in_the_view() -> None:
    base = Burst(id="door-x-t1-f3", camera="door", track_id=1, onset_frame=3, apex_frame=5,
                 offset_frame=8, onset_s=0.1, apex_s=0.17, offset_s=0.27, kind="micro",
                 regions=("chin",), action_units=(), peak_motion=1.0, text="chin dropped",
                 ts=1.0)
    state = State()
    for burst in (base, dataclasses.replace(base, id="door-x-t1-f40", text="jaw moved",
                                            speaking=True, ts=2.0)):
        msg = messages.burst(burst)
        received = parse_received("lab", f"lab/{msg.topic}", json.dumps(msg.payload).encode(),
                                  False, 0.0)
        assert received is not None
        state.apply(received)
    console = Console(record=True, file=io.StringIO(), width=160, force_terminal=False)
    console.print(render(state, Link("mqtt://127.0.0.1/lab", True, 0), 3.0))
    rows = console.export_text().splitlines()
    assert "micro, speaking" in next(r for r in rows if "jaw moved" in r)
    assert "speaking" not in next(r for r in rows if "chin dropped" in r)
