"""Batch-norm statistics re-estimated on data, so a random-init baseline is normalised like a trained model.

A freshly built network's running statistics are 0 / 1, while a trained one's were estimated on data;
comparing the two frozen would credit training with what is only normalisation. Used by the
random-init floors of the biosignal probes and the LiDAR frozen detection probe.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, batches: Iterable[Any],
                          forward: Callable[[nn.Module, Any], Any] | None = None) -> nn.Module:
    """A copy of ``module`` (in eval mode) whose batch-norm running statistics are the cumulative
    average over ``batches``; weights are untouched. ``forward(copy, batch)`` runs one batch (default:
    ``copy(batch)``)."""
    out = copy.deepcopy(module)
    norms = [m for m in out.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the calibration batches
    out.train()
    for batch in batches:
        out(batch) if forward is None else forward(out, batch)
    return out.eval()
