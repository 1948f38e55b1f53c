"""The small exception family. Foreign errors are mapped at the boundary with ``raise … from``.

Every error carries a one-line message that names the problem *and* the fix; the CLI prints it
as is and exits with code 2.
"""


class AffectStreamError(Exception):
    """Base class: a problem the user can fix (bad input, config, model, sink)."""


class ConfigError(AffectStreamError):
    """Invalid configuration file, value or command-line option."""


class SourceError(AffectStreamError):
    """A video source cannot be opened or read (missing file, not a video, no camera)."""


class ModelError(AffectStreamError):
    """A model file is missing, corrupt, or cannot be fetched."""


class SinkError(AffectStreamError):
    """An output sink cannot be created or used."""


class BrokerError(AffectStreamError):
    """A subscriber (``affectstream.client``, ``watch``) cannot reach or use an MQTT broker."""
