"""What a run needs before it starts: its models resolved through the registry, the demo clip
built once, its source created and opened."""

from __future__ import annotations

from pathlib import Path

from affectstream import models
from affectstream.config import Config
from affectstream.errors import ModelError
from affectstream.stream.sources import VideoSource, open_source


def resolve_models(cfg: Config) -> dict[str, Path]:
    detector = cfg.detector.registry_model
    paths = {detector: models.resolve_from_config(detector, cfg.models,
                                                  cfg.detector.model_path)}
    if cfg.landmarks.enabled:
        paths["face-landmarker"] = models.resolve_from_config(
            "face-landmarker", cfg.models, cfg.landmarks.model_path)
    if cfg.specialist.enabled:
        paths["specialist"] = _specialist_path(cfg)
    return paths


def _specialist_path(cfg: Config) -> Path:
    """``specialist.model_path`` as given (no registry checksum to hold it to), else the
    registry model named by ``specialist.model``."""
    path = cfg.specialist.model_path
    if path is None:
        return models.resolve_from_config(cfg.specialist.model, cfg.models)
    if not path.expanduser().is_file():
        raise ModelError(f"specialist.model_path {path} does not exist; fix the path or unset "
                         f"it to use the registry model {cfg.specialist.model}")
    return path.expanduser()


def demo_clip_path(cfg: Config, landmarker: Path) -> Path:
    """The built-in demo clip, built once into the affectstream home and reused."""
    from affectstream.eval.democlip import build_demo_clip

    folder = models.models_dir(cfg.models.home).parent / "demo"
    path = folder / "demo_v1.mp4"
    if not (path.exists() and path.with_suffix(".json").exists()):
        folder.mkdir(parents=True, exist_ok=True)
        build_demo_clip(path, landmarker)
    return path


def prepare_source(cfg: Config, model_paths: dict[str, Path]) -> tuple[Config, VideoSource]:
    """Resolve ``demo`` to the demo clip, then create and open the source (fails fast)."""
    if cfg.source.url == "demo":
        clip = demo_clip_path(cfg, model_paths.get("face-landmarker")
                              or models.resolve_from_config("face-landmarker", cfg.models))
        cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"url": str(clip)})})
    source = open_source(cfg.source)
    source.open()
    return cfg, source
