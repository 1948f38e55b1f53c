"""The field tables of docs/messages.md, generated from the JSON Schemas (a test keeps the page
in step: ``python -m affectstream.schemas.doc`` prints the tables)."""

from __future__ import annotations

from typing import Any

from affectstream.schemas.export import all_schemas, file_name
from affectstream.schemas.models import MODELS
from affectstream.schemas.topics import ROUTES

START = "<!-- fields: generated from the models, do not edit by hand -->"
END = "<!-- fields: end -->"


def _type(prop: dict[str, Any] | bool, defs: dict[str, Any]) -> str:
    if isinstance(prop, bool):  # additionalProperties: true, any value
        return "any"
    if "$ref" in prop:
        return "object " + str(prop["$ref"]).rsplit("/", 1)[-1]
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(p, defs) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        items = prop.get("items") or {}
        return f"array of {_type(items, defs)}" if items else "array [x1, y1, x2, y2]"
    if kind == "object" and "additionalProperties" in prop:
        return f"object {{name: {_type(prop['additionalProperties'], defs)}}}"
    bounds = [f"≥ {prop['minimum']}" if "minimum" in prop else "",
              f"> {prop['exclusiveMinimum']}" if "exclusiveMinimum" in prop else "",
              f"≤ {prop['maximum']}" if "maximum" in prop else ""]
    extra = ", ".join(b for b in bounds if b)
    return f"{kind} ({extra})" if extra else str(kind)


def _table(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        desc = str(prop.get("description", "")).replace("|", "\\|")
        rows.append(f"| `{name}` | {_type(prop, defs)} | {'yes' if name in required else 'no'} "
                    f"| {desc} |")
    return rows


def field_tables() -> str:
    """One section per message: its topic, QoS and retain, then a table of every field (and
    of each nested object)."""
    schemas = all_schemas()
    out = [START, ""]
    for name in MODELS:
        schema = schemas[file_name(name)]
        routes = [r for r in ROUTES if r.schema == name]
        out.append(f"### `{name}`")
        out.append("")
        out.append(f"{schema['description']} Schema file `{file_name(name)}`, "
                   f"`$id` `{schema['$id']}`.")
        out += ["", *[f"- topic `{{prefix}}/{r.template}`, QoS {r.qos}, "
                      f"{'retained' if r.retain else 'not retained'}" for r in routes], ""]
        if "properties" not in schema:
            continue
        defs = schema.get("$defs", {})
        out += [*_table(schema, defs), ""]
        for def_name, sub in defs.items():
            out += [f"`{def_name}`: {sub.get('description', '')}", "", *_table(sub, defs), ""]
    out.append(END)
    return "\n".join(out)


if __name__ == "__main__":
    print(field_tables())
