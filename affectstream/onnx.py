"""onnxruntime sessions, opened one way for every ONNX model (the face detector, the
specialist classifier): the execution providers picked in one place, onnxruntime's untyped
load errors mapped to :class:`~affectstream.errors.ModelError` at this boundary."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from affectstream.errors import ModelError


def pick_providers(requested: list[str] | None) -> list[str]:
    """CUDA first when onnxruntime offers it, then CPU; an explicit list is honoured as given."""
    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelError(
                f"onnxruntime provider(s) {', '.join(missing)} not available (have: "
                f"{', '.join(available)}); install onnxruntime-gpu or change detector.providers"
            )
        return list(requested)
    order = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in order if p in available] or list(available)


def open_session(model: bytes | Path, *, threads: int, providers: list[str] | None,
                 what: str, fix: str, quiet: bool = False) -> ort.InferenceSession:
    """An inference session on ``model`` (serialized bytes or a file). ``threads`` 0 lets
    onnxruntime decide; a load failure raises ModelError ``cannot load {what}: …; {fix}``."""
    options = ort.SessionOptions()
    if quiet:
        options.log_severity_level = 3  # keep real errors only
    if threads:
        options.intra_op_num_threads = threads
    chosen = pick_providers(providers)  # its own ModelError names the providers setting
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                    providers=chosen)
    except Exception as exc:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
        raise ModelError(f"cannot load {what} ({type(exc).__name__}: {exc}); {fix}") from exc
