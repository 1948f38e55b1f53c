"""The topic table (DESIGN §5): each message kind's topic, schema, QoS and retain flag.

Topics here carry no prefix (a sink adds its own). The publisher takes QoS and retain from this
table, ``replay`` uses it to republish a recording exactly as a live run would, and the client
uses it to tell a message's kind, camera and track from its topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from affectstream.schemas.models import (
    Availability,
    Burst,
    Emotion,
    LogLine,
    ProcessStats,
    Stats,
    Track,
)


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    """availability, burst, emotion, log, track, stats or process_stats."""
    template: str
    """The topic without the prefix, with {camera} and {track} placeholders."""
    schema: str
    qos: int
    retain: bool

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.template.replace("{camera}", r"(?P<camera>[A-Za-z0-9_-]+)")
                          .replace("{track}", r"(?P<track>\d+)"))


ROUTES: tuple[Route, ...] = (
    Route("availability", "{camera}/availability", Availability.SCHEMA, 1, True),
    Route("burst", "{camera}/bursts", Burst.SCHEMA, 1, False),
    Route("emotion", "{camera}/faces/{track}/emotion", Emotion.SCHEMA, 1, True),
    Route("log", "{camera}/faces/{track}/log", LogLine.SCHEMA, 0, False),
    Route("track", "{camera}/tracks", Track.SCHEMA, 1, False),
    Route("stats", "{camera}/stats", Stats.SCHEMA, 0, True),
    Route("process_stats", "stats", ProcessStats.SCHEMA, 0, True),
)
KINDS: dict[str, Route] = {r.kind: r for r in ROUTES}


@dataclass(frozen=True, slots=True)
class TopicMatch:
    route: Route
    camera: str | None
    track_id: int | None


def route_of(topic: str) -> TopicMatch | None:
    """The route of a topic without its prefix (``cam0/faces/3/emotion``); None if none fits."""
    for route in ROUTES:
        m = route.pattern.fullmatch(topic)
        if m is not None:
            groups = m.groupdict()
            track = groups.get("track")
            return TopicMatch(route, groups.get("camera"), int(track) if track else None)
    return None


def topic_for(kind: str, camera: str, track_id: int | None = None) -> str:
    """The topic (no prefix) of a message of ``kind``."""
    return KINDS[kind].template.format(camera=camera, track=track_id)
