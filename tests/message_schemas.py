"""Validation of published messages against the JSON Schemas the package ships
(``affectstream/schemas/json``), chosen by the payload's own ``schema`` field, or by the topic
for the plain-text availability. Replaces the hand-written schemas the tests once had."""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import Draft202012Validator

from affectstream.schemas.export import shipped
from affectstream.schemas.models import Availability
from affectstream.schemas.topics import route_of


@functools.cache
def _validator(schema: str) -> Draft202012Validator:
    body = shipped(schema)
    Draft202012Validator.check_schema(body)
    return Draft202012Validator(body)


def schema_errors(schema: str, instance: Any) -> list[str]:
    """Every violation of shipped schema ``schema`` (``affectstream.burst/1``) as
    'path: message' strings (empty when valid)."""
    errors = sorted(_validator(schema).iter_errors(instance),
                    key=lambda e: [str(p) for p in e.path])
    return [f"{'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
            for err in errors]


def message_errors(topic: str, payload: Any) -> list[str]:
    """Problems of one message (topic without prefix): a known topic, a payload naming the
    schema its topic carries, and valid against that shipped schema."""
    match = route_of(topic)
    if match is None:
        return [f"unknown topic {topic!r}"]
    if match.route.kind == "availability":
        return schema_errors(Availability.SCHEMA, payload)
    named = payload.get("schema") if isinstance(payload, dict) else None
    if named != match.route.schema:
        return [f"{topic}: schema {named!r}, expected {match.route.schema!r}"]
    return schema_errors(named, payload)


def line_errors(line: Any) -> list[str]:
    """Problems of one JSONL sink line: exactly ``{"topic", "payload"}``, a valid message."""
    if not isinstance(line, dict) or set(line) != {"topic", "payload"}:
        return [f"not a {{topic, payload}} object: {str(line)[:120]}"]
    return message_errors(line["topic"], line["payload"])


def stats_payload(**overrides: Any) -> dict[str, Any]:
    """A complete ``stats`` payload (what RunStats gives ``messages.stats``) with ``overrides``;
    ``vlm`` overrides are merged into the zero counters."""
    vlm = {"calls": 0, "failures": 0, "in_flight": 0, "latency_ms_p50": None,
           "latency_ms_p95": None, "prompt_tokens_mean": None, **overrides.pop("vlm", {})}
    none = {"p50": None, "p95": None}
    return {"ts": 1_795_000_000.0, "uptime_s": 1.0, "frames": 0, "dropped": 0, "stale": 0,
            "errors": 0, "fps": 0.0, "reconnects": 0, "stalls": 0, "tracks": 0,
            "state": "running", "open_failures": 0, "bursts": 0, "bursts_per_min": 0.0,
            "primary": None, "stages_ms": {"end_to_end": none}, "publish_ms": none,
            "vlm": vlm, "sinks": {}, **overrides}
