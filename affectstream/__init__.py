"""affectstream: real-time facial micro-expression spotting and emotion updates from live video."""

from affectstream.errors import (
    AffectStreamError,
    ConfigError,
    ModelError,
    SinkError,
    SourceError,
)

__version__ = "0.1.0"

__all__ = [
    "AffectStreamError",
    "ConfigError",
    "ModelError",
    "SinkError",
    "SourceError",
    "__version__",
]
