"""One message off the broker, typed: its kind, camera, track and parsed payload."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from affectstream.schemas.models import PayloadModel, parse
from affectstream.schemas.topics import route_of

Availability = Literal["online", "offline"]


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    """The full topic, prefix included."""
    kind: str
    """availability, burst, emotion, log, track, stats or process_stats."""
    camera: str | None
    """None for the process-level stats."""
    track_id: int | None
    """For emotion and log (from the topic), burst and track (from the payload)."""
    payload: PayloadModel | Availability | None
    """The parsed model (``affectstream.schemas``), ``online``/``offline`` for availability,
    or None for an emotion deleted when its track ended (never yielded, only in ``state``)."""
    retained: bool
    """Delivered from the broker's retained store (a state, maybe older than the connection)."""
    received_at: float
    """Wall-clock time it arrived, epoch s."""


class UnreadableError(ValueError):
    """A payload on a known topic that is not the message the topic carries."""


def parse_received(prefix: str, topic: str, raw: bytes, retained: bool,
                   received_at: float) -> Received | None:
    """``raw`` on ``topic`` as a typed message; None for a topic outside the table (another
    publisher under the prefix). Raises UnreadableError for a payload that does not parse."""
    match = route_of(topic.removeprefix(f"{prefix}/")) if topic.startswith(f"{prefix}/") \
        else None
    if match is None:
        return None
    kind = match.route.kind
    payload: PayloadModel | Availability | None
    if kind == "availability":
        text = raw.decode("utf-8", "replace")
        if text not in ("online", "offline"):
            raise UnreadableError(f"{topic}: availability {text[:40]!r}")
        payload = "online" if text == "online" else "offline"
    elif not raw and kind == "emotion":
        payload = None
    else:
        payload = _parse_json(topic, raw, match.route.schema)
    track = match.track_id
    if track is None and payload is not None and not isinstance(payload, str):
        track = getattr(payload, "track_id", None)
    return Received(topic, kind, match.camera, track, payload, retained, received_at)


def _parse_json(topic: str, raw: bytes, schema: str) -> PayloadModel:
    try:
        # lenient: fields a newer publisher added within the same version are ignored
        parsed = parse(json.loads(raw), lenient=True)
    except (ValueError, KeyError, ValidationError) as exc:
        raise UnreadableError(f"{topic}: {str(exc).splitlines()[0][:120]}") from exc
    if schema != parsed.SCHEMA:
        raise UnreadableError(f"{topic}: carries {parsed.SCHEMA}, expected {schema}")
    return parsed
