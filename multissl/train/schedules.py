"""Learning-rate schedules as LambdaLR multipliers: linear warm-up then constant / cosine / linear."""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_multiplier(kind: str, total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Multiplier of the peak lr at optimizer step ``s`` (0-based)."""

    def f(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        if kind == "cosine":
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if kind == "linear":
            return min_ratio + (1 - min_ratio) * (1 - progress)
        raise ValueError(f"unknown scheduler {kind!r}")

    return f
