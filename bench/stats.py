"""Percentiles of latency samples (nearest rank: a reported p99 is a sample that happened)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in (0, 1]); NaN without samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(samples: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p90, p99 and max, rounded for the JSON details (None without samples)."""
    if not samples:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 0.50), 2),
        "p90": round(percentile(samples, 0.90), 2),
        "p99": round(percentile(samples, 0.99), 2),
        "max": round(max(samples), 2),
    }
