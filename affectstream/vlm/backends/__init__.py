"""VLM backend implementations (see :mod:`affectstream.vlm.backend` for the interface)."""
