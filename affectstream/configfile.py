"""Reading config files: YAML into a mapping, with ``${ENV_VAR}`` replaced from the environment
(so secrets such as MQTT passwords and API keys never need to live in the file)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from affectstream.errors import ConfigError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_env(value: Any) -> Any:
    """``value`` with every ``${NAME}`` in its strings replaced by ``$NAME``."""
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise ConfigError(f"config refers to ${{{name}}} but it is not set; "
                                  f"export {name}=… or edit the file")
            return os.environ[name]
        return _ENV.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v) for v in value]
    return value



def load_raw(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a dict with ``${ENV}`` substituted."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; pass an existing file to "
                          "--config") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}; check its "
                          "permissions") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}; fix the syntax") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of sections; see "
                          "configs/default.yaml")
    return dict(substitute_env(data))
