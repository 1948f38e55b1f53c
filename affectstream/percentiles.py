"""The one percentile rule of every figure affectstream reports (stats messages, ``bench``,
the VLM counters, the MQTT sinks, the spotting benchmark): numpy's linear interpolation,
rounded, and None, not 0, when there is nothing to summarise."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def percentiles(values: Iterable[float], digits: int = 3) -> dict[str, float | None]:
    """``{"p50", "p95"}`` of ``values``; both None when it is empty."""
    arr = np.fromiter(values, np.float64)
    if not arr.size:
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(arr, [50, 95])
    return {"p50": round(float(p50), digits), "p95": round(float(p95), digits)}
