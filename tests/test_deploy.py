"""The deployment files agree with the CLI and the config model (docs/deploy.md).

compose.yaml, compose.vlm.yaml, the Dockerfile, deploy/ and .dockerignore are read as text and
YAML; nothing here builds an image or starts a container. Each worker's command is parsed by
the real argument parser, each mounted config file is validated by the real config model, and
each mount's source exists in the repository.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from affectstream import cli
from affectstream.config import build_config, load_config, load_raw, merge_dicts

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
COMPOSE_VLM = ROOT / "compose.vlm.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONFIG_TARGET = "/config/affectstream.yaml"  # where the image's CMD reads its config
WORKERS = ("affectstream-a", "affectstream-b")
CAMERA_ID = re.compile(r"^[A-Za-z0-9_-]+$")  # Config.camera_id's pattern
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# --- reading the files ------------------------------------------------------------------------


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def _dockerfile_exec(instruction: str) -> list[str]:
    """The last ENTRYPOINT or CMD of the Dockerfile, in exec (JSON array) form."""
    found = [line.split(None, 1)[1] for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
             if line.split(None, 1)[:1] == [instruction]]
    assert found, f"the Dockerfile has no {instruction}"
    value = json.loads(found[-1])  # exec form: no shell between docker and affectstream
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def _argv(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _service(name: str, *files: Path) -> dict[str, Any]:
    """A service as `docker compose -f F1 -f F2 …` merges it: later files replace command and
    entrypoint, and merge depends_on, environment and volumes (by target)."""
    merged: dict[str, Any] = {}
    for path in files:
        over = _yaml(path).get("services", {}).get(name)
        if over is None:
            continue
        for key, value in over.items():
            if key in ("depends_on", "environment") and key in merged:
                merged[key] = {**merged[key], **value}
            elif key == "volumes" and key in merged:
                by_target = {_mount(v)[1]: v for v in merged[key]}
                by_target.update({_mount(v)[1]: v for v in value})
                merged[key] = list(by_target.values())
            else:
                merged[key] = value
    assert merged, f"no service {name} in {[p.name for p in files]}"
    return merged


def _mount(spec: str | dict[str, Any]) -> tuple[str, str]:
    """(source, target) of a volume entry, short (SRC:TARGET[:MODE]) or long syntax."""
    if isinstance(spec, dict):
        return str(spec.get("source", "")), str(spec["target"])
    parts = spec.split(":")
    assert len(parts) in (2, 3), f"volume {spec!r} is not SRC:TARGET[:MODE]"
    return parts[0], parts[1]


def _bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """target → host path of the service's bind mounts (sources that are paths)."""
    out = {}
    for spec in service.get("volumes", []):
        source, target = _mount(spec)
        if source.startswith((".", "/")):
            out[target] = (ROOT / source).resolve()
        else:
            assert source in (_yaml(COMPOSE).get("volumes") or {}), (
                f"named volume {source!r} is not declared under volumes:")
    return out


def _parse_worker_args(service: dict[str, Any]) -> argparse.Namespace:
    """The worker's entrypoint + command, defaulting to the image's, through the real parser."""
    entrypoint = _argv(service.get("entrypoint", _dockerfile_exec("ENTRYPOINT")))
    command = _argv(service.get("command", _dockerfile_exec("CMD")))
    assert entrypoint == ["affectstream"], f"entrypoint {entrypoint} is not the affectstream CLI"
    try:
        return cli._build_parser().parse_args(command)
    except SystemExit as exc:  # argparse exits 2 on an unknown command or flag
        raise AssertionError(f"`affectstream {shlex.join(command)}` is not a valid "
                             f"command line (argparse exit {exc.code})") from None


def _worker_config(service: dict[str, Any]) -> Path:
    args = _parse_worker_args(service)
    assert args.command == "run"
    assert args.config == Path(CONFIG_TARGET), f"the worker reads {args.config}"
    mounts = _bind_mounts(service)
    assert CONFIG_TARGET in mounts, f"nothing is mounted at {CONFIG_TARGET}"
    path = mounts[CONFIG_TARGET]
    assert path.is_file(), f"{path} (mounted at {CONFIG_TARGET}) does not exist"
    assert ROOT / "deploy" in path.parents, f"{path} is not under deploy/"
    return path


def _env_for(service: dict[str, Any], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables the service passes are set: a ${NAME} it does not pass fails."""
    for name in ENV_REF.findall(path.read_text(encoding="utf-8")):
        monkeypatch.delenv(name, raising=False)
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    for name in env:
        monkeypatch.setenv(name, "placeholder")


VARIANTS = [pytest.param((COMPOSE,), id="compose"),
            pytest.param((COMPOSE, COMPOSE_VLM), id="compose+vlm")]


# --- compose.yaml -----------------------------------------------------------------------------


def test_compose_runs_the_existing_engines() -> None:
    services = _yaml(COMPOSE)["services"]
    assert set(services) >= {"mosquitto", "vllm", *WORKERS}
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    vllm = services["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai")
    assert vllm["profiles"] == ["vlm"], "vllm is optional: only with --profile vlm"
    command = _argv(vllm["command"])
    model = command[command.index("--model") + 1]
    assert model.endswith("Qwen/Qwen2.5-VL-3B-Instruct}") or model == "Qwen/Qwen2.5-VL-3B-Instruct"
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)
    for name in ("mosquitto", "vllm"):  # the engines that offer a health check use it
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    for name in WORKERS:
        assert "profiles" not in services[name], f"{name} must start without a profile"
        assert services[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"


@pytest.mark.parametrize("files", VARIANTS)
@pytest.mark.parametrize("worker", WORKERS)
def test_worker_command_is_a_real_cli_command(worker: str, files: tuple[Path, ...]) -> None:
    _worker_config(_service(worker, *files))


def test_workers_mount_their_own_config_files() -> None:
    paths = [_worker_config(_service(w, COMPOSE)) for w in WORKERS]
    assert len(set(paths)) == len(paths), "each worker runs its own camera group"


@pytest.mark.parametrize("files", VARIANTS)
@pytest.mark.parametrize("worker", WORKERS)
def test_worker_config_validates_outside_cameras(
        worker: str, files: tuple[Path, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every section validates, the command's flags applied, and so does each camera's
    effective config (the top-level sections with its own overrides) as a single camera."""
    service = _service(worker, *files)
    path = _worker_config(service)
    _env_for(service, path, monkeypatch)
    raw = load_raw(path)  # YAML and ${ENV} substitution, as `run` reads it
    overrides = cli._overrides(_parse_worker_args(service))
    base = {key: value for key, value in raw.items() if key != "cameras"}
    build_config(base, overrides, origin=path.name)
    cameras = raw.get("cameras")
    assert isinstance(cameras, list) and cameras, f"{path.name} lists no cameras"
    for camera in cameras:
        assert CAMERA_ID.match(str(camera.get("id", ""))), f"bad camera id in {camera}"
        assert camera.get("source", {}).get("url") is not None, f"{camera['id']} has no source"
        own = {key: value for key, value in camera.items() if key != "id"}
        config = build_config(merge_dicts(merge_dicts(base, own), {"camera_id": camera["id"]}),
                              overrides, origin=f"{path.name}: camera {camera['id']}")
        assert config.camera_id == camera["id"]


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_config_loads(worker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(worker, COMPOSE)
    path = _worker_config(service)
    _env_for(service, path, monkeypatch)
    cfg = load_config(path, cli._overrides(_parse_worker_args(service)))
    cameras = [c["id"] for c in _yaml(path)["cameras"]]
    assert [c.camera_id for c in cfg.camera_configs()] == cameras  # one run, every camera


def test_workers_share_one_broker_and_prefix_with_distinct_camera_ids(
        monkeypatch: pytest.MonkeyPatch) -> None:
    compose = _yaml(COMPOSE)
    sinks: set[str] = set()
    ids: list[str] = []
    for worker in WORKERS:
        service = _service(worker, COMPOSE)
        path = _worker_config(service)
        _env_for(service, path, monkeypatch)
        raw = load_raw(path)
        sinks.update(raw["sinks"])
        ids += [camera["id"] for camera in raw["cameras"]]
    assert len(ids) == len(set(ids)), f"camera ids name the topics and must be unique: {ids}"
    assert sinks == {"mqtt://mosquitto:1883/affectstream"}, sinks
    broker = urlsplit(sinks.pop())
    assert broker.hostname in compose["services"]


def test_vlm_override_points_the_workers_at_the_vllm_service() -> None:
    vllm = _yaml(COMPOSE)["services"]["vllm"]
    assert "--port" not in _argv(vllm["command"]), "the workers expect vLLM's default port"
    for worker in WORKERS:
        service = _service(worker, COMPOSE, COMPOSE_VLM)
        args = _parse_worker_args(service)
        assert args.vlm_backend == "openai"
        url = urlsplit(args.vlm_url)
        assert (url.scheme, url.hostname, url.port, url.path) == ("http", "vllm", 8000, "/v1")
        assert service["depends_on"]["vllm"]["condition"] == "service_healthy"


def test_mosquitto_mounts_exist_and_match_the_workers() -> None:
    service = _service("mosquitto", COMPOSE)
    mounts = _bind_mounts(service)
    assert mounts, "mosquitto's config is mounted from deploy/"
    for target, path in mounts.items():
        assert path.is_file(), f"{path} (mounted at {target}) does not exist"
    conf = mounts["/mosquitto/config/mosquitto.conf"]
    lines = [line.split() for line in conf.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    listeners = [words[1] for words in lines if words[0] == "listener"]
    assert "1883" in listeners, "the workers publish to mosquitto:1883"
    # mosquitto 2 refuses anonymous clients by default; the workers log in without a user.
    assert ["allow_anonymous", "true"] in lines
    location = next(words[1] for words in lines if words[0] == "persistence_location")
    volumes = [_mount(v)[1] for v in service["volumes"]]
    assert any(location.startswith(v.rstrip("/") + "/") for v in volumes), (
        "retained messages persist in a volume")


# --- Dockerfile and .dockerignore -------------------------------------------------------------


def test_dockerfile_runs_a_real_command_on_the_mounted_config() -> None:
    entrypoint = _dockerfile_exec("ENTRYPOINT")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert entrypoint == ["affectstream"]
    assert scripts["project"]["scripts"]["affectstream"] == "affectstream.cli:main"
    args = _parse_worker_args({})  # the image's own ENTRYPOINT and CMD
    assert args.command == "run" and args.config == Path(CONFIG_TARGET)
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "ARG VARIANT=cpu" in text
    assert "python:3.11-slim-bookworm" in text
    assert re.search(r"AFFECTSTREAM_HOME=/data\b", text)
    assert re.search(r'^VOLUME \["/data"\]', text, re.M)
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M), "the image runs as a non-root user"
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for item in source.split():
            assert (ROOT / item).exists(), f"COPY {item}: not in the repository"
            assert not _dockerignored(item), f"COPY {item}: excluded by .dockerignore"


def _dockerignore_patterns() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def _dockerignored(path: str) -> bool:
    """Docker's matching, enough for these patterns: a pattern matches the path or a parent;
    ``**/`` matches at any depth; ``!`` re-includes."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in _dockerignore_patterns():
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        names = prefixes + ([p for p in parts] if pattern.startswith("**/") else [])
        if any(fnmatch.fnmatchcase(n, pattern.removeprefix("**/")) for n in names):
            ignored = not negate
    return ignored


@pytest.mark.parametrize("path", [
    ".git", ".git/config", ".pytest_cache/v/cache/nodeids", ".mypy_cache", ".ruff_cache",
    "affectstream/__pycache__/cli.cpython-311.pyc", "tests/__pycache__/x.pyc", ".env",
])
def test_dockerignore_keeps_caches_git_and_secrets_out(path: str) -> None:
    assert _dockerignored(path)


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "affectstream/cli.py",
                                  "affectstream/py.typed"])
def test_dockerignore_keeps_what_the_image_installs(path: str) -> None:
    assert not _dockerignored(path)
