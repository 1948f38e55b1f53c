"""JSON Schemas of the messages, generated from the models and shipped in ``schemas/json/``.

``affectstream schema messages --out DIR`` writes the same files; a test keeps the shipped copies
in step with the models (``python -m affectstream schema messages --out
affectstream/schemas/json`` regenerates them).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from affectstream.errors import ConfigError
from affectstream.schemas.models import MODELS

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def file_name(schema: str) -> str:
    """``affectstream.burst/1`` -> ``burst-1.schema.json``."""
    name, _, version = schema.removeprefix("affectstream.").partition("/")
    return f"{name}-{version}.schema.json"


def schema_id(schema: str) -> str:
    """The ``$id``: a URN, as the project has no web address to host the files at."""
    name, _, version = schema.removeprefix("affectstream.").partition("/")
    return f"urn:affectstream:{name}:{version}"


def json_schema(schema: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of message ``schema`` (``affectstream.burst/1``)."""
    model = MODELS[schema]
    body = model.model_json_schema(by_alias=True)
    if "schema" in body.get("properties", {}):
        # The model fills the name in when it is missing; on the wire it is always there.
        body["required"] = ["schema", *[r for r in body.get("required", []) if r != "schema"]]
        body["properties"]["schema"].pop("default", None)
    body["title"] = model.TITLE
    body["description"] = " ".join((model.__doc__ or "").split())
    return {"$schema": DIALECT, "$id": schema_id(schema), **body}


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every message's JSON Schema by file name."""
    return {file_name(s): json_schema(s) for s in MODELS}


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(out: Path) -> list[Path]:
    """Write one file per message into ``out`` (created if missing); the paths written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, schema in all_schemas().items():
            path = out / name
            path.write_text(dumps(schema), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the schemas to {out}: {exc.strerror}; choose a "
                          "writable --out folder") from exc
    return written


def shipped(schema: str) -> dict[str, Any]:
    """The JSON Schema of ``schema`` as shipped in the installed package."""
    text = resources.files("affectstream.schemas").joinpath("json", file_name(schema))
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded
