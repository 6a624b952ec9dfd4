"""Exact latency percentiles and rates from the raw per-command arrays."""

from __future__ import annotations

import numpy as np

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9))


def latency_summary(lat_ns: np.ndarray) -> dict[str, int]:
    """p50/p99/p99.9/max in ns; inverted_cdf returns an observed sample, never an interpolation."""
    if lat_ns.size == 0:
        return {name: 0 for name, _ in PERCENTILES} | {"max": 0}
    values = np.percentile(lat_ns, [p for _, p in PERCENTILES], method="inverted_cdf")
    out = {name: int(v) for (name, _), v in zip(PERCENTILES, values, strict=True)}
    out["max"] = int(lat_ns.max())
    return out


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")
