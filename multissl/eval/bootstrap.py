"""Bootstrap 95% intervals for evaluation figures: a mean over queries, any statistic of resampled
items (Spearman over STS pairs), and the paired difference of two models scored on the same items.

Percentile bootstrap (Efron & Tibshirani 1993): resample the evaluated items with replacement
``n_boot`` times with a fixed seed, recompute the figure, and report the 2.5th / 97.5th percentiles.
For two models, the SAME resampled items score both, so the interval is that of the paired difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval (same units as the figure)."""

    value: float
    low: float
    high: float
    level: float = 0.95
    n_boot: int = 1000

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().double().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def resample_indices(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot, n) indices drawn with replacement (one fixed generator: reproducible intervals)."""
    if n <= 0:
        raise ValueError("cannot bootstrap an empty set of items")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _interval(value: float, draws: np.ndarray, level: float, n_boot: int) -> Interval:
    lo, hi = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return Interval(float(value), float(lo), float(hi), level, n_boot)


def bootstrap_mean(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95, scale: float = 1.0) -> Interval:
    """Interval of the mean of per-item values (per-query reciprocal ranks, hits), times ``scale``."""
    v = _np(values) * scale
    idx = resample_indices(len(v), n_boot, seed)
    return _interval(v.mean(), v[idx].mean(1), level, n_boot)


def bootstrap_paired(a, b, n_boot: int = 1000, seed: int = 0, level: float = 0.95, scale: float = 1.0) -> Interval:
    """Interval of mean(a) - mean(b) with items resampled jointly (both models on the same items)."""
    a, b = _np(a) * scale, _np(b) * scale
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same items: {a.shape} vs {b.shape}")
    d = a - b
    idx = resample_indices(len(d), n_boot, seed)
    return _interval(d.mean(), d[idx].mean(1), level, n_boot)


def bootstrap_draws(stat: Callable[[np.ndarray], float], n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot,) values of ``stat`` on resampled item indices (combine several sets' draws for a mean)."""
    return np.array([stat(row) for row in resample_indices(n, n_boot, seed)])


def interval_from_draws(value: float, draws: np.ndarray, level: float = 0.95) -> Interval:
    """The percentile interval of precomputed bootstrap draws."""
    return _interval(value, np.asarray(draws, dtype=np.float64), level, len(draws))


def bootstrap_statistic(stat: Callable[[np.ndarray], float], n: int, n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95) -> Interval:
    """Interval of ``stat(indices)``, a figure computed on a subset of the ``n`` items given by their
    indices (e.g. the Spearman of the pairs ``indices``). ``stat(arange(n))`` is the point estimate."""
    idx = resample_indices(n, n_boot, seed)
    draws = np.array([stat(row) for row in idx])
    return _interval(stat(np.arange(n)), draws, level, n_boot)


def bootstrap_paired_statistic(stat_a: Callable[[np.ndarray], float], stat_b: Callable[[np.ndarray], float], n: int,
                               n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Interval:
    """Interval of ``stat_a - stat_b`` with the same resampled items for both."""
    idx = resample_indices(n, n_boot, seed)
    draws = np.array([stat_a(row) - stat_b(row) for row in idx])
    full = np.arange(n)
    return _interval(stat_a(full) - stat_b(full), draws, level, n_boot)
