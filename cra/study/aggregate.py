"""Mean and standard deviation over seeds."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["summarise"]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def summarise(rows: Sequence[Mapping], by: Sequence[str], columns: Sequence[str]) -> list[dict]:
    """Mean and sample standard deviation (ddof 1; NaN for one seed) of ``columns`` per group ``by``."""
    groups: dict[tuple, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        summary = dict(zip(by, key))
        summary["seeds"] = len(members)
        for c in columns:
            summary[f"{c}_mean"], summary[f"{c}_std"] = _mean_std([m.get(c, math.nan) for m in members])
        out.append(summary)
    return out
