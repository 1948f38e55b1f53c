"""No endpoint of the web server shows credentials: two cameras whose RTSP URLs carry a
password (in the user info and in the query) and an MQTT sink with one, none of them reachable,
so the cameras stay ``opening`` (which /healthz reports)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from web_helpers import free_port, running, sse_messages, wait_for

from affectstream.config import build_config

pytestmark = pytest.mark.e2e

SECRETS = ("s3cret-rtsp", "s3cret-query", "s3cret-mqtt")


def test_no_endpoint_shows_a_password(model_paths: dict[str, Path]) -> None:
    dead = free_port()  # nothing listens there: the sources never open
    door = f"rtsp://viewer:{SECRETS[0]}@127.0.0.1:{dead}/stream"
    lab = f"rtsp://127.0.0.1:{dead}/lab?password={SECRETS[1]}"
    port, metrics_port = free_port(), free_port()
    cfg = build_config({
        "cameras": [{"id": "door", "source": {"url": door, "open_timeout_s": 1}},
                    {"id": "lab", "source": {"url": lab, "open_timeout_s": 1}}],
        "sinks": [f"mqtt://bob:{SECRETS[2]}@127.0.0.1:{dead}"], "stats_interval_s": 0.5,
        "preview": {"port": port}, "metrics": {"port": metrics_port},
    })
    url = f"http://127.0.0.1:{port}"
    with running(cfg):
        health = wait_for(lambda: _opening(url), 60, "both cameras to report 'opening'")
        assert health["cameras"]["door"]["source"] == \
            f"rtsp://viewer:***@127.0.0.1:{dead}/stream"
        assert SECRETS[1] not in health["cameras"]["lab"]["source"]
        bodies = {path: httpx.get(url + path, timeout=10).text
                  for path in ("/", "/camera/door", "/camera/lab", "/healthz", "/metrics",
                               "/static/preview.js")}
        assert 'href="/camera/door"' in bodies["/"]  # several cameras: an index
        own = f"http://127.0.0.1:{metrics_port}"  # the metrics server of its own
        for path in ("/metrics", "/healthz"):
            bodies[f"metrics server {path}"] = httpx.get(own + path, timeout=10).text
        assert "affectstream_source_up" in bodies["metrics server /metrics"]
        assert httpx.get(own + "/", timeout=10).status_code == 404  # no page there
        for path in ("/events", "/camera/door/events"):
            events = sse_messages(url + path, lambda ev: sum(
                d.get("topic", "").endswith("stats") for _, d in ev) >= 2)
            bodies[path] = repr(events)
            assert any("mqtt://bob:***@" in str(d) for _, d in events), "no sink in stats"
    for path, body in bodies.items():
        for secret in SECRETS:
            assert secret not in body, f"{path} shows the password {secret}"


def _opening(url: str) -> dict[str, object] | None:
    response = httpx.get(f"{url}/healthz", timeout=5)
    health = response.json()
    states = {c["state"] for c in health["cameras"].values()}
    return health if states == {"opening"} and response.status_code == 503 else None
