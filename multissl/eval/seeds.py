"""Mean, sample standard deviation and Student-t interval over seeds: the one helper behind every
seed table (graph, time series, fine-tuning, point clouds)."""

from __future__ import annotations

import math
import statistics


def t_half_width(values: list[float], level: float = 0.95) -> float:
    """Half-width of the two-sided Student-t interval at ``level`` for the mean of ``values`` (sample
    std, n - 1 degrees of freedom); nan with fewer than two values."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)


def seed_summary(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, sample std, t half-width); std and half-width are nan with one value."""
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return statistics.mean(values), sd, t_half_width(values, level)
