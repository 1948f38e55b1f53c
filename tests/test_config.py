"""Configuration (DESIGN §3): defaults, unknown keys, ${ENV}, overrides, described schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from affectstream.config import Config, json_schema, load_config
from affectstream.errors import ConfigError


def _sections(model: type[BaseModel] = Config,
              prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of every config section (nested pydantic model), the top level included."""
    yield prefix
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _sections(ann, (*prefix, name))


def _nest(path: tuple[str, ...], leaf: dict[str, Any]) -> dict[str, Any]:
    for key in reversed(path):
        leaf = {key: leaf}
    return leaf


def _write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "config.yaml"
    text = data if isinstance(data, str) else yaml.safe_dump(data)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_validate() -> None:
    cfg = load_config(None)
    assert cfg == Config()
    dumped = cfg.model_dump(mode="json")
    assert Config.model_validate(dumped) == cfg
    # The exported schema accepts the defaults.
    Draft202012Validator(json.loads(json_schema())).validate(dumped)


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "")) == Config()


SECTIONS = list(_sections())


def test_every_section_is_walked() -> None:
    names = {".".join(p) for p in SECTIONS}
    assert {"", "source", "detector", "tracker", "landmarks", "spotter", "vlm",
            "models"} <= names, names


@pytest.mark.parametrize("section", SECTIONS, ids=lambda p: ".".join(p) or "top")
def test_unknown_key_rejected_at_every_level(section: tuple[str, ...], tmp_path: Path) -> None:
    path = _write(tmp_path, _nest(section, {"bogus_key": 1}))
    dotted = ".".join((*section, "bogus_key"))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert dotted in message, message
    assert "\n" not in message


@pytest.mark.parametrize("section", SECTIONS, ids=lambda p: ".".join(p) or "top")
def test_unknown_key_rejected_in_overrides(section: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="bogus_key"):
        load_config(None, _nest(section, {"bogus_key": 1}))


def test_env_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFECTSTREAM_TEST_CAM", "porch")
    monkeypatch.setenv("AFFECTSTREAM_TEST_DIR", "/data/videos")
    monkeypatch.setenv("AFFECTSTREAM_TEST_THRESHOLD", "0.65")
    path = _write(tmp_path, (
        "camera_id: ${AFFECTSTREAM_TEST_CAM}\n"
        "source:\n  url: ${AFFECTSTREAM_TEST_DIR}/clip.mp4\n"
        "detector:\n  score_threshold: ${AFFECTSTREAM_TEST_THRESHOLD}\n"
        "sinks:\n  - jsonl:${AFFECTSTREAM_TEST_DIR}/${AFFECTSTREAM_TEST_CAM}.jsonl\n"))
    cfg = load_config(path)
    assert cfg.camera_id == "porch"
    assert cfg.source.url == "/data/videos/clip.mp4"
    assert cfg.detector.score_threshold == pytest.approx(0.65)
    assert cfg.sinks == ["jsonl:/data/videos/porch.jsonl"]


def test_env_substitution_unset_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFFECTSTREAM_TEST_UNSET", raising=False)
    path = _write(tmp_path, "source:\n  url: rtsp://cam/${AFFECTSTREAM_TEST_UNSET}\n")
    with pytest.raises(ConfigError, match="AFFECTSTREAM_TEST_UNSET"):
        load_config(path)


def test_overrides_beat_file_values(tmp_path: Path) -> None:
    path = _write(tmp_path, {
        "camera_id": "filecam",
        "source": {"url": "/videos/a.mp4", "realtime": True},
        "detector": {"score_threshold": 0.6, "nms_iou": 0.4},
        "sinks": ["stdout"],
    })
    from_file = load_config(path)
    assert from_file.camera_id == "filecam" and from_file.detector.score_threshold == 0.6

    cfg = load_config(path, {"camera_id": "clicam", "source": {"realtime": False},
                             "detector": {"score_threshold": 0.8}, "sinks": ["jsonl:x.jsonl"],
                             "max_seconds": 3.0})
    assert cfg.camera_id == "clicam"
    assert cfg.detector.score_threshold == 0.8
    assert cfg.source.realtime is False
    assert cfg.sinks == ["jsonl:x.jsonl"]
    assert cfg.max_seconds == 3.0
    # Overrides replace single values; the rest of the file's section stays.
    assert cfg.source.url == "/videos/a.mp4"
    assert cfg.detector.nms_iou == 0.4


def test_invalid_override_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_seconds"):
        load_config(_write(tmp_path, {}), {"max_seconds": -1})


def _properties(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    yield from (("Config", k, v) for k, v in schema.get("properties", {}).items())
    for name, definition in schema.get("$defs", {}).items():
        yield from ((name, k, v) for k, v in definition.get("properties", {}).items())


def test_schema_describes_every_property() -> None:
    schema = json.loads(json_schema())
    assert schema["$defs"], "no section definitions in the schema"
    props = list(_properties(schema))
    expected = sum(len(m.model_fields) for m in _models())
    assert len(props) == expected, (len(props), expected)
    missing = [f"{section}.{name}" for section, name, prop in props
               if not str(prop.get("description", "")).strip()]
    assert not missing, f"properties without a description: {missing}"


def test_schema_rejects_unknown_keys_everywhere() -> None:
    schema = json.loads(json_schema())
    for name, definition in {"Config": schema, **schema["$defs"]}.items():
        if "properties" in definition:
            assert definition.get("additionalProperties") is False, name


def _models(model: type[BaseModel] = Config) -> Iterator[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()

    def walk(m: type[BaseModel]) -> Iterator[type[BaseModel]]:
        if m in seen:
            return
        seen.add(m)
        yield m
        for info in m.model_fields.values():
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                yield from walk(ann)

    yield from walk(model)


def test_env_substitution_in_command_line_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    from affectstream.config import build_config

    monkeypatch.setenv("AFFECT_TEST_PW", "s3cret")
    cfg = build_config({}, {"sinks": ["mqtt://u:${AFFECT_TEST_PW}@127.0.0.1/x"]})
    assert cfg.sinks == ["mqtt://u:s3cret@127.0.0.1/x"]


def test_default_yaml_documents_every_option_with_its_default() -> None:
    path = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert load_config(path) == Config()

    def keys(model: type[BaseModel], prefix: str = "") -> set[str]:
        out = set()
        for name, field in model.model_fields.items():
            out.add(prefix + name)
            sub = field.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out |= keys(sub, f"{prefix}{name}.")
        return out

    def present(d: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k != "paths":
                out |= present(v, f"{prefix}{k}.")
        return out

    assert keys(Config) == present(raw)  # every option written out, nothing extra
