"""Building blocks of the configuration sections (see :mod:`affectstream.config`).

A section chosen by a ``type:`` key is a pydantic tagged union: one member class per type, each
with only its own settings, picked by :func:`type_tag`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: unknown keys are errors, values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def type_tag(default: str) -> Callable[[Any], str | None]:
    """The member of a ``type:``-tagged union that a value is for; a mapping without ``type``
    is ``default`` (files written before the section had types)."""
    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            kind = value.get("type", default)
            return kind if isinstance(kind, str) else str(kind)
        return getattr(value, "type", None)
    return tag


def discriminator_schema(members: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
    """The OpenAPI-style ``discriminator`` of a tagged section in the JSON schema (pydantic
    writes a plain oneOf for a callable discriminator)."""
    return {"discriminator": {"propertyName": "type", "mapping": {
        tag: f"#/$defs/{member.__name__}" for tag, member in members.items()}}}
