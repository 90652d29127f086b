"""Refuse evaluation results that are not numbers: a NaN score is a broken model or input, never a result."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from multissl.errors import MultisslError


def require_finite(metrics: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    """``metrics`` unchanged when every numeric value is finite; else a one-line MultisslError naming them."""
    bad = [k for k, v in metrics.items()
           if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(float(v))]
    if bad:
        raise MultisslError(f"{what} gave non-finite scores ({', '.join(bad[:5])}): the model's outputs or the "
                            "inputs hold NaN/inf. Check the checkpoint (it may be damaged) and the data.")
    return metrics
