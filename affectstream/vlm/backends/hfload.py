"""Loading a Hugging Face image-text-to-text model for the transformers backend: where the
model comes from (a local directory, the hub cache, the hub), its device and dtype, and every
failure mapped to one line that names the fix (the config field the model came from)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from affectstream.errors import ConfigError, ModelError

DTYPES = ("float32", "float16", "bfloat16")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((line.strip() for line in text if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _looks_like_path(model: str) -> bool:
    """A local path rather than a hub id (``owner/name`` or ``name``)."""
    return (os.path.isabs(model) or model.startswith((".", "~")) or "\\" in model
            or model.count("/") > 1 or model.endswith("/"))


def _hub_offline() -> bool:
    return any(os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds ``repo_id``'s config.json."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return True  # let transformers decide
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def resolve_device_dtype(torch: Any, device: str | None, dtype: str | None) -> tuple[str, Any]:
    """The device (default: cuda when available, else cpu), checked usable, and the torch dtype
    (default: bfloat16 on CUDA, float32 on CPU)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        torch.empty(0, device=device)
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise ConfigError(f"vlm.device {device!r} is not usable here ({one_line(exc)}); "
                          "use cpu, cuda or cuda:N") from exc
    name = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    return device, getattr(torch, name)


def source_of(model: str, setting: str, local_files_only: bool | None) -> tuple[str, bool]:
    """Where to load ``model`` from and whether only local files may be used; fails fast when
    the hub may not be asked and its cache lacks the model."""
    local = Path(model).expanduser()
    if local.is_dir():
        return str(local), True
    if _looks_like_path(model):
        raise ModelError(f"VLM model directory {model} does not exist; pass a model "
                         f"directory or a hub id as {setting}")
    local_only = local_files_only is True or (local_files_only is None and _hub_offline())
    if local_only and not _in_hub_cache(model):  # without any retries
        raise load_error(FileNotFoundError(model), model, setting, local_dir=False)
    return model, local_only


def adapter_base(model: str) -> str | None:
    """The base model a LoRA adapter directory names (``adapter_config.json``'s
    ``base_model_name_or_path``, as ``affectstream finetune`` and peft write it); None when
    ``model`` is not an adapter directory."""
    config = Path(model).expanduser() / "adapter_config.json"
    if not config.is_file():
        return None
    try:
        base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelError(f"LoRA adapter {model} has an unreadable adapter_config.json "
                         f"({one_line(exc)}); fine-tune it again") from exc
    if not isinstance(base, str) or not base.strip():
        raise ModelError(f"LoRA adapter {model} names no base model; set "
                         f"base_model_name_or_path in {config}")
    return base


def load_pretrained(transformers: Any, model: str, setting: str, dtype: Any,
                    local_files_only: bool | None) -> tuple[Any, Any]:
    """(processor, model) of ``model`` in ``dtype``, on the CPU. A LoRA adapter directory
    loads its base model, with the adapter merged into it (inference runs at the base
    model's speed); the processor comes from the adapter directory when it holds one."""
    base = adapter_base(model)
    if base is not None:
        return _load_adapter(transformers, model, base, setting, dtype, local_files_only)
    return _load_plain(transformers, model, setting, dtype, local_files_only)


def _load_adapter(transformers: Any, adapter: str, base: str, setting: str, dtype: Any,
                  local_files_only: bool | None) -> tuple[Any, Any]:
    try:
        processor, net = _load_plain(transformers, base, setting, dtype, local_files_only)
    except ModelError as exc:
        raise ModelError(f"LoRA adapter {adapter} needs its base model {base}, which cannot "
                         f"be loaded ({exc}); make the base available offline (huggingface-cli"
                         f" download, or a local copy named in {adapter}/adapter_config.json "
                         "base_model_name_or_path)") from exc
    try:
        import peft
    except ImportError as exc:
        raise ConfigError(f"{setting} {adapter} is a LoRA adapter, which needs peft; "
                          "pip install 'affectstream[vlm]'") from exc
    directory = str(Path(adapter).expanduser())
    try:
        net = peft.PeftModel.from_pretrained(net, directory).merge_and_unload()
        if (Path(directory) / "preprocessor_config.json").is_file() \
                or (Path(directory) / "processor_config.json").is_file():
            processor = transformers.AutoProcessor.from_pretrained(directory,
                                                                   local_files_only=True)
    except Exception as exc:  # a broken adapter or one made for another base
        raise ModelError(f"LoRA adapter {adapter} cannot be applied to {base} "
                         f"({one_line(exc)}); set {setting} to another") from exc
    return processor, net


def _load_plain(transformers: Any, model: str, setting: str, dtype: Any,
                local_files_only: bool | None) -> tuple[Any, Any]:
    source, local_only = source_of(model, setting, local_files_only)
    kwargs: dict[str, Any] = {"local_files_only": local_only}
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    try:
        processor = transformers.AutoProcessor.from_pretrained(source, **kwargs)
        net = transformers.AutoModelForImageTextToText.from_pretrained(
            source, **{dtype_kw: dtype}, **kwargs)
    except ImportError as exc:
        if "torchvision" in str(exc).lower():
            raise ConfigError(
                f"the processor of VLM model {model} needs torchvision; pip install "
                "the torchvision release that matches your torch") from exc
        raise ConfigError(f"VLM model {model} needs a missing package "
                          f"({one_line(exc)}); install it") from exc
    except (OSError, ValueError) as exc:
        raise load_error(exc, model, setting, local_dir=Path(model).expanduser().is_dir()
                         ) from exc
    except Exception as exc:  # a broken or incompatible checkpoint
        raise ModelError(f"VLM model {model} cannot be loaded ({one_line(exc)}); "
                         f"set {setting} to another") from exc
    return processor, net


def load_error(exc: BaseException, model: str, setting: str, *, local_dir: bool) -> ModelError:
    if local_dir:
        return ModelError(f"VLM model directory {model} cannot be loaded as an "
                          f"image-text-to-text model ({one_line(exc)}); pass a complete "
                          f"model directory as {setting}")
    kind = type(exc).__name__
    if kind in ("RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError"):
        return ModelError(f"VLM model {model} is not on the hub or not accessible "
                          f"({one_line(exc)}); check the id or set {setting} to a "
                          "local directory")
    if "Unrecognized" in str(exc) or "does not recognize" in str(exc):
        return ModelError(f"VLM model {model} is not an image-text-to-text model this "
                          f"transformers can load ({one_line(exc)}); set {setting} "
                          "to another")
    return ModelError(f"VLM model {model} not found locally and the hub is unreachable; "
                      "download it on a machine with network access (huggingface-cli "
                      f"download {model}) and set {setting} to its directory")
