"""Reading a run's metric names: which keys are baselines of which metric, which are intervals, and
which way is better.

Tasks name their comparators by a prefix on the metric they sit beside (``test/random_init_acc`` is
the random-init floor of ``test/acc``, ``test/popular_recall@20`` the most-popular baseline of
``test/recall@20``, ``test/logmel_keyword_acc`` the log-mel baseline of ``test/keyword_acc``) and their
intervals by a suffix (``test/rsum_ci_low`` / ``_ci_high``, ``_lo`` / ``_hi``, ``_std``). Only these
known names are read as comparators; every other key stays a metric of its own.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass

# prefix -> (label shown in tables, is it the run's own floor?); longest prefixes are tried first
BASELINES: dict[str, tuple[str, bool]] = {
    "random_init": ("random-init floor", True),
    "random": ("random-init floor", True),
    "untrained": ("untrained floor", True),
    "scratch": ("scratch floor", True),
    "init": ("starting-model floor", True),
    "popular": ("most-popular", False),
    "most_popular": ("most-popular", False),
    "logmel": ("log-mel", False),
    "last_value": ("last value", False),
    "lexical": ("lexical", False),
    "bm25": ("BM25 (lexical)", False),
    "tfidf": ("TF-IDF (lexical)", False),
    "majority": ("majority class", False),
    "base": ("base model", False),
    "zero_shot": ("zero-shot base", False),
}
_PREFIXES = sorted(BASELINES, key=len, reverse=True)
_INTERVAL = re.compile(r"^(?P<base>.+?)_(?P<kind>ci\d*_low|ci\d*_high|ci\d*_lo|ci\d*_hi|lo|hi|low|high|std)$")
_LOWER_BETTER = ("mse", "mae", "rmse", "loss", "chamfer", "error", "perplexity", "wall", "latency", "seconds",
                 "alignment", "uniformity")


@dataclass(frozen=True)
class Baseline:
    """``key`` is the baseline's own key, ``of`` the metric it is the baseline of."""

    key: str
    of: str
    label: str
    floor: bool


def lower_is_better(key: str) -> bool:
    """Errors, losses, distances and times are better when lower; everything else when higher."""
    name = key.rsplit("/", 1)[-1].lower()
    if name.endswith("_s") and not name.endswith("per_s"):
        return True
    return any(tok in name for tok in _LOWER_BETTER) and not name.endswith(("acc", "accuracy"))


def split_metrics(metrics: dict[str, float]) -> tuple[list[str], dict[str, list[Baseline]], dict[str, dict[str, float]]]:
    """(plain metric keys, baselines by the metric they belong to, intervals by metric).

    A key is a baseline only when its prefix is a known baseline name AND the metric it would sit
    beside exists in the same results; an interval only when its base key exists.
    """
    baselines: dict[str, list[Baseline]] = {}
    intervals: dict[str, dict[str, float]] = {}
    taken: set[str] = set()
    for key, value in metrics.items():
        m = _INTERVAL.match(key)
        if m and m.group("base") in metrics:
            kind = m.group("kind")
            side = "std" if kind == "std" else ("low" if kind.endswith(("low", "lo")) else "high")
            intervals.setdefault(m.group("base"), {})[side] = value
            taken.add(key)
    for key in metrics:
        if key in taken or "/" not in key:
            continue
        split, _, rest = key.partition("/")
        for prefix in _PREFIXES:
            if rest.startswith(prefix + "_"):
                target = f"{split}/{rest[len(prefix) + 1:]}"
                if target in metrics and target != key:
                    label, floor = BASELINES[prefix]
                    baselines.setdefault(target, []).append(Baseline(key, target, label, floor))
                    taken.add(key)
                break
    plain = [k for k in metrics if k not in taken]
    return plain, baselines, intervals


def loses(value: float, baseline: float, key: str) -> bool:
    """True when ``value`` is worse than ``baseline`` for this metric (ties are not losses)."""
    if not (_finite(value) and _finite(baseline)):
        return False
    return value > baseline if lower_is_better(key) else value < baseline


def mean_std(values: list[float]) -> tuple[float, float | None, int]:
    """Mean, sample standard deviation (None for one value) and count of the finite values."""
    vals = [float(v) for v in values if _finite(v)]
    if not vals:
        return math.nan, None, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None), len(vals)


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v: float | None, digits: int = 4) -> str:
    """Short human form of a number ("-" for missing)."""
    if v is None or not _finite(v):
        return "-"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".") or "0"
