"""The published messages' contract (DESIGN §5): pydantic models of every payload, the topic
table (kind, QoS, retain) and the JSON Schemas generated from them and shipped in the package.

The publisher builds every payload through these models and subscribers (``affectstream.client``)
parse them with the same ones, so a payload cannot drift from its documentation. Importing this
package pulls in pydantic only: no video, no MQTT.
"""

from affectstream.schemas.models import (
    MODELS,
    ActionUnit,
    Availability,
    Burst,
    Emotion,
    LogLine,
    ProcessStats,
    Stats,
    Track,
)
from affectstream.schemas.topics import ROUTES, Route, route_of

__all__ = [
    "MODELS",
    "ROUTES",
    "ActionUnit",
    "Availability",
    "Burst",
    "Emotion",
    "LogLine",
    "ProcessStats",
    "Route",
    "Stats",
    "Track",
    "route_of",
]
