"""Configuration (DESIGN §3): defaults, unknown keys, ${ENV}, overrides, described schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from affectstream.config import (
    VLM_TYPES,
    Config,
    NoVlmConfig,
    OpenAIVlmConfig,
    TransformersVlmConfig,
    json_schema,
    load_config,
    merge_dicts,
)
from affectstream.errors import ConfigError

# Values for the fields a tagged member requires, so that each member can be selected.
_REQUIRED = {"url": "http://127.0.0.1:1/v1", "model": "org/model"}


def _members(info: FieldInfo) -> list[tuple[dict[str, Any], type[BaseModel]]]:
    """The section classes a field holds, each with the keys that select it: one for a plain
    section, one per type of a ``type:``-tagged union (none for a plain value)."""
    ann = info.annotation
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [({}, ann)]
    out = []
    for arg in get_args(ann) if get_origin(ann) in (Union, UnionType) else (ann,):
        member = get_args(arg)[0] if get_origin(arg) is Annotated else arg
        if isinstance(member, type) and issubclass(member, BaseModel):
            keys = {"type": member.model_fields["type"].default}
            keys |= {k: _REQUIRED[k] for k, f in member.model_fields.items() if f.is_required()}
            out.append((keys, member))
    return out


Section = tuple[tuple[str, ...], dict[str, Any], str]
"""A section's path, the mapping that selects it (types of tagged unions) and a test id."""


def _sections(model: type[BaseModel] = Config, prefix: tuple[str, ...] = (),
              base: dict[str, Any] | None = None, label: str = "") -> Iterator[Section]:
    """Every config section (nested pydantic model, each member of a tagged union), the top
    level included."""
    base = base or {}
    yield prefix, base, label or "top"
    for name, info in model.model_fields.items():
        for keys, member in _members(info):
            path = (*prefix, name)
            tagged = f"[{keys['type']}]" if "type" in keys and len(_members(info)) > 1 else ""
            sub = merge_dicts(base, _nest(path, keys)) if keys else base
            yield from _sections(member, path, sub, f"{label}{'.' if label else ''}{name}{tagged}")


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
    names = {label for _, _, label in SECTIONS}
    assert {"top", "source", "detector", "tracker", "landmarks", "spotter", "vlm[none]",
            "vlm[openai]", "vlm[openai].context", "vlm[transformers].context",
            "models"} <= names, names


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s[2])
def test_unknown_key_rejected_at_every_level(section: Section, tmp_path: Path) -> None:
    path, base, _ = section
    assert load_config(None, base) is not None  # the selecting keys alone are valid
    cfg = _write(tmp_path, merge_dicts(base, _nest(path, {"bogus_key": 1})))
    dotted = ".".join((*path, "bogus_key"))
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    message = str(exc.value)
    assert f"unknown key '{dotted}'" in message, message
    assert "\n" not in message


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s[2])
def test_unknown_key_rejected_in_overrides(section: Section) -> None:
    path, base, _ = section
    with pytest.raises(ConfigError, match="bogus_key"):
        load_config(None, merge_dicts(base, _nest(path, {"bogus_key": 1})))


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
            for _, member in _members(info):
                yield from walk(member)
            if get_origin(info.annotation) is list:  # cameras: a list of sections
                (item,) = get_args(info.annotation)
                if isinstance(item, type) and issubclass(item, BaseModel):
                    yield from walk(item)

    yield from walk(model)


def test_env_substitution_in_command_line_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    from affectstream.config import build_config

    monkeypatch.setenv("AFFECT_TEST_PW", "s3cret")
    cfg = build_config({}, {"sinks": ["mqtt://u:${AFFECT_TEST_PW}@127.0.0.1/x"]})
    assert cfg.sinks == ["mqtt://u:s3cret@127.0.0.1/x"]


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _documented(section: BaseModel, raw: dict[str, Any]) -> None:
    """``raw`` (a file's mapping for ``section``) writes out every option of it, nothing else."""
    def keys(value: BaseModel, prefix: str = "") -> set[str]:
        out = set()
        for name in type(value).model_fields:
            out.add(prefix + name)
            sub = getattr(value, name)
            if isinstance(sub, BaseModel):  # the member a tagged section holds, e.g. vlm
                out |= keys(sub, f"{prefix}{name}.")
        return out

    def present(d: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k != "paths":
                out |= present(v, f"{prefix}{k}.")
        return out

    assert keys(section) == present(raw)  # every option written out, nothing extra


def test_default_yaml_documents_every_option_with_its_default() -> None:
    path = CONFIGS / "default.yaml"
    assert load_config(path) == Config()
    _documented(Config(), yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", ["openai", "transformers"])
def test_vlm_examples_document_every_option_of_their_type(name: str) -> None:
    path = CONFIGS / f"vlm-{name}.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(raw) == {"vlm"}
    cfg = load_config(path)
    assert type(cfg.vlm) is VLM_TYPES[name] and cfg.vlm.type == name
    # Every option at its default, apart from the required ones the example fills in.
    required = {k for k, f in VLM_TYPES[name].model_fields.items() if f.is_required()}
    assert cfg.vlm == VLM_TYPES[name].model_validate({k: raw["vlm"][k] for k in required})
    _documented(cfg.vlm, raw["vlm"])


# -- the vlm union, and every rule checked when the file loads ----------------------------------


def test_schema_has_the_type_discriminators() -> None:
    schema = json.loads(json_schema())
    vlm = schema["properties"]["vlm"]
    assert vlm["discriminator"]["propertyName"] == "type"
    assert set(vlm["discriminator"]["mapping"]) == set(VLM_TYPES)
    for ref in vlm["discriminator"]["mapping"].values():
        assert ref.removeprefix("#/$defs/") in schema["$defs"], ref
    assert len(vlm["oneOf"]) == len(VLM_TYPES)
    check = Draft202012Validator(schema)
    # Exactly one member matches each of these (a mapping without type is none).
    for ok in ({"labels": "mafw11"}, {"type": "openai", "url": "http://h/v1"},
               {"type": "transformers", "model": "m", "device": "cpu"}):
        check.validate({"vlm": ok})
    for bad in ({"url": "http://h/v1"}, {"type": "openai"}, {"type": "transformers",
                                                              "api_key": "k", "model": "m"}):
        assert not check.is_valid({"vlm": bad}), bad


def test_a_file_without_vlm_type_is_none(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, {"vlm": {"labels": "mafw11", "period_s": 1.0}}))
    assert cfg.vlm == NoVlmConfig(labels="mafw11", period_s=1.0)


def test_each_vlm_type_has_only_its_own_settings() -> None:
    shared = set(NoVlmConfig.model_fields) - {"type"}
    assert shared == {"labels", "period_s", "min_interval_s"}
    openai, local = set(OpenAIVlmConfig.model_fields), set(TransformersVlmConfig.model_fields)
    assert openai - local == {"url", "api_key", "temperature"}
    assert local - openai == {"device", "dtype"}
    assert {"model", "context", "calibration", "timeout_s"} <= openai & local


def test_vlm_backend_override_drops_the_other_types_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, {"vlm": {"type": "openai", "url": "http://h/v1", "model": "m",
                                     "temperature": 0.5, "labels": "mafw11"}})
    assert load_config(path, {"vlm": {"type": "none"}}).vlm == NoVlmConfig(labels="mafw11")
    local = load_config(path, {"vlm": {"type": "transformers"}}).vlm
    assert local == TransformersVlmConfig(model="m", labels="mafw11")
    # The same type keeps everything; a key given with the override itself is still checked.
    assert load_config(path, {"vlm": {"type": "openai"}}).vlm.type == "openai"
    with pytest.raises(ConfigError, match=r"vlm\.url is not a setting of vlm\.type none"):
        load_config(path, {"vlm": {"type": "none", "url": "http://h/v1"}})


def test_a_flat_vlm_block_of_older_files_names_the_type_it_needs(tmp_path: Path) -> None:
    path = _write(tmp_path, "vlm:\n  model: Qwen/Qwen2.5-VL-3B-Instruct\n  timeout_s: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: vlm.model is not a setting of vlm.type none (it belongs to openai or "
        "transformers); remove it or set vlm.type: openai or transformers")
    fixed = load_config(_write(tmp_path, "vlm:\n  type: transformers\n"
                                         "  model: Qwen/Qwen2.5-VL-3B-Instruct\n  timeout_s: 5\n"))
    assert isinstance(fixed.vlm, TransformersVlmConfig) and fixed.vlm.timeout_s == 5


RULES: dict[str, tuple[str, list[str]]] = {
    # name: (config file, words its one-line error names)
    "openai-needs-url": ("vlm: {type: openai}\n", ["vlm.type openai needs vlm.url", "/v1"]),
    "transformers-needs-model": ("vlm: {type: transformers}\n",
                                 ["vlm.type transformers needs vlm.model"]),
    "calibration-table-needs-a-table": (
        "vlm: {type: openai, url: 'http://h/v1', calibration: table}\n",
        ["vlm.calibration: table needs vlm.calibration_table"]),
    "motion-text-captions-need-a-vlm": (
        "vlm: {context: {motion_text: vlm}}\n",
        ["vlm.context is not a setting of vlm.type none", "captions need a VLM",
         "vlm.type: openai or transformers"]),
    "key-of-openai-under-none": (
        "vlm: {type: none, url: 'http://h/v1'}\n",
        ["vlm.url is not a setting of vlm.type none (it belongs to openai); remove it or set "
         "vlm.type: openai"]),
    "key-of-openai-under-transformers": (
        "vlm: {type: transformers, model: m, api_key: k}\n",
        ["vlm.api_key is not a setting of vlm.type transformers", "set vlm.type: openai"]),
    "key-of-transformers-under-openai": (
        "vlm: {type: openai, url: 'http://h/v1', device: cuda}\n",
        ["vlm.device is not a setting of vlm.type openai", "set vlm.type: transformers"]),
    "unknown-vlm-type": ("vlm: {type: gemini}\n",
                         ["vlm.type 'gemini' is unknown", "none, openai, transformers"]),
    "captioner-settings-need-a-separate-captioner": (
        "vlm: {type: openai, url: 'http://h/v1', context: {captioner_model: small}}\n",
        ["vlm.context.captioner_model", "vlm.context.captioner: openai or transformers"]),
    "openai-captioner-needs-a-url": (
        "vlm: {type: transformers, model: m, context: {captioner: openai}}\n",
        ["vlm.context.captioner: openai", "vlm.context.captioner_url"]),
    "transformers-captioner-needs-a-model": (
        "vlm: {type: openai, url: 'http://h/v1', context: {captioner: transformers}}\n",
        ["vlm.context.captioner: transformers needs vlm.context.captioner_model"]),
    "specialist-model-path-needs-labels": (
        "specialist: {enabled: true, model_path: /models/fer.onnx}\n",
        ["specialist.model_path needs specialist.labels"]),
    "specialist-std-without-zero": ("specialist: {std: [0.5, 0.0, 0.5]}\n",
                                    ["specialist.std must not contain 0"]),
    "specialist-mean-one-or-three": ("specialist: {mean: [0.5, 0.5]}\n",
                                     ["specialist.mean has 2 values", "three"]),
    "unknown-sink": ("sinks: [stdout, 'foo:bar']\n", ["sinks: unknown sink 'foo:bar'"]),
    "bad-mqtt-url": ("sinks: ['mqtt://host:notaport']\n", ["sinks: invalid MQTT URL"]),
    "mqtt-prefix-wildcard": ("sinks: ['mqtt://host/a+b']\n", ["sinks: MQTT prefix", "wildcard"]),
    "unknown-detector-type": ("detector: {type: yolo}\n",
                              ["detector.type 'yolo' is unknown", "centerface"]),
}


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    from affectstream.cli import main

    assert main(argv) == 2
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert len(lines) == 1 and out.out == "", out
    assert lines[0].startswith("affectstream: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("rule", list(RULES))
def test_config_check_rejects_each_rule_with_one_line(
        rule: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, words = RULES[rule]
    path = _write(tmp_path, text)
    line = _error_line(capsys, ["config", "check", str(path)])
    assert line.startswith(f"affectstream: error: {path}: "), line
    for word in words:
        assert word in line, (word, line)


@pytest.mark.parametrize("rule", ["openai-needs-url", "calibration-table-needs-a-table",
                                  "motion-text-captions-need-a-vlm", "unknown-sink",
                                  "specialist-std-without-zero"])
def test_run_and_eval_reject_what_config_check_rejects(
        rule: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_write(tmp_path, RULES[rule][0]))
    checked = _error_line(capsys, ["config", "check", path])
    # run and eval name the flags beside the fields they set; otherwise the line is the same
    ran = _error_line(capsys, ["run", "--config", path, "--source", "/nonexistent.mp4"])
    evaluated = _error_line(capsys, ["eval", "spotting", "--config", path])
    for line in (ran, evaluated):
        assert re.sub(r" \(--[a-z-]+\)", "", line) == checked
