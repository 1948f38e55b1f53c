"""The examples for subscribers: the CSV burst logger against a replay on a real broker, and
the Home Assistant automations validated against the topic table and the message schemas."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from cli_helpers import cli, cli_env, read_jsonl
from mqtt_helpers import Mosquitto

from affectstream.schemas.models import MODELS
from affectstream.schemas.topics import route_of

EXAMPLES = Path(__file__).parents[2] / "examples"
FIELD = re.compile(r"trigger\.payload_json\.(\w+)")


@pytest.mark.e2e
def test_burst_logger_writes_every_burst_of_a_replay(
        recording: Path, mosquitto: Mosquitto, tmp_path: Path) -> None:
    out = tmp_path / "bursts.csv"
    logger = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "burst_logger.py"), mosquitto.url, str(out),
         "--idle-exit", "4"], env=cli_env(), stderr=subprocess.PIPE, text=True)
    try:
        assert logger.stderr is not None
        assert "logging bursts" in logger.stderr.readline()  # subscribed
        proc = cli("replay", str(recording), "--sink", mosquitto.url, "--speed", "5",
                   cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert logger.wait(timeout=60) == 0, logger.stderr.read()
    finally:
        logger.kill()
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    bursts = [ln["payload"] for ln in read_jsonl(recording) if ln["topic"].endswith("/bursts")]
    assert [r["id"] for r in rows] == [b["id"] for b in bursts]
    assert rows[0]["text"] == bursts[0]["text"] and rows[0]["kind"] == bursts[0]["kind"]
    assert "AU" in rows[0]["action_units"]


@pytest.mark.e2e
def test_burst_logger_with_a_session_loses_nothing_to_its_own_restart(
        recording: Path, mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Stopped before a replay and started again after it with the same ``--session``, the
    logger writes every burst of the replay, each once."""
    out = tmp_path / "bursts.csv"

    def logger(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(EXAMPLES / "burst_logger.py"), mosquitto.url,
                               str(out), "--session", "csv-logger", *extra],
                              env=cli_env(), capture_output=True, text=True, timeout=60)

    first = logger("--idle-exit", "0.5")  # subscribes, then stops: the logger is down
    assert first.returncode == 0 and "0 bursts logged" in first.stderr, first.stderr
    proc = cli("replay", str(recording), "--sink", mosquitto.url, "--speed", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    second = logger("--idle-exit", "2")
    assert second.returncode == 0, second.stderr
    bursts = [ln["payload"] for ln in read_jsonl(recording) if ln["topic"].endswith("/bursts")]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == [b["id"] for b in bursts]
    assert f"{len(bursts)} bursts logged" in second.stderr


def _automations() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((EXAMPLES / "homeassistant" / "automations.yaml").read_text())
    assert isinstance(loaded, list) and loaded
    return loaded


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_home_assistant_automations_use_real_topics_and_fields() -> None:
    for automation in _automations():
        assert automation["id"] and automation["alias"] and automation["actions"]
        for trigger in automation["triggers"]:
            assert trigger["trigger"] == "mqtt"
            prefix, _, rest = trigger["topic"].partition("/")
            assert prefix == "affectstream"
            # a wildcard stands for the camera (first level) or the track (faces/+)
            sample = "/".join(("cam0" if i == 0 else "1") if part == "+" else part
                              for i, part in enumerate(rest.split("/")))
            match = route_of(sample)
            assert match is not None, trigger["topic"]
            if "payload" in trigger:
                assert trigger["payload"] in ("online", "offline")
            texts = _strings(automation)
            fields = {f for t in texts for f in FIELD.findall(t)}
            schema = MODELS[match.route.schema].model_json_schema(by_alias=True)
            unknown = fields - set(schema.get("properties", {}))
            assert not unknown, f"{automation['id']}: not in {match.route.schema}: {unknown}"
            for text in texts:  # every template compiles
                jinja2.Environment().from_string(text)


def test_home_assistant_conditions_render_on_real_payloads() -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    burst = {"schema": "affectstream.burst/1", "kind": "micro", "camera": "door"}
    emotion = {"label": "sadness", "confidence": 0.8}
    cases = {"affectstream_micro_expression": (json.dumps(burst), burst, True),
             "affectstream_sad_face": (json.dumps(emotion), emotion, True)}
    for automation in _automations():
        if automation["id"] not in cases:
            continue
        raw, payload, expected = cases[automation["id"]]
        for condition in automation["conditions"]:
            rendered = env.from_string(condition["value_template"]).render(
                trigger={"payload": raw, "payload_json": payload})
            assert rendered.strip() == str(expected), (automation["id"], rendered)
    empty = env.from_string(next(a for a in _automations() if a["id"] == "affectstream_sad_face")
                            ["conditions"][0]["value_template"])
    assert empty.render(trigger={"payload": "", "payload_json": {}}).strip() == "False"
