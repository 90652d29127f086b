"""Momentum (EMA) target networks and their schedules (MoCo, BYOL, ALBEF, ESimCSE, ...)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy of ``module`` to serve as its momentum (EMA) target."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float, copy_buffers: bool = False) -> None:
    """target <- momentum * target + (1 - momentum) * online, for parameters.

    Buffers (BatchNorm running statistics) are left alone by default, as MoCo's and BYOL's reference
    code: the target's statistics follow its own forward passes. ``copy_buffers=True`` copies the online
    buffers instead (what some re-implementations do). Uses foreach kernels, one launch per dtype/device
    group rather than one per tensor.
    """
    t_params = [p for p in target.parameters()]
    o_params = [p.detach() for p in online.parameters()]
    if len(t_params) != len(o_params):
        raise ValueError("ema_update: target and online modules have different parameters")
    if t_params:
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, o_params, alpha=1.0 - momentum)
    if copy_buffers:
        for tb, ob in zip(target.buffers(), online.buffers(), strict=True):
            tb.copy_(ob)


@dataclass
class MomentumSchedule:
    """Momentum as a function of training progress.

    ``constant``: always ``base``. ``cosine``: BYOL's schedule
    ``1 - (1 - base) * (cos(pi * t) + 1) / 2`` rising from ``base`` to ``final`` (1.0) over training.
    """

    base: float = 0.996
    final: float = 1.0
    kind: str = "constant"

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "cosine"):
            raise ValueError(f"momentum schedule must be 'constant' or 'cosine', got {self.kind!r}")

    def __call__(self, fraction: float) -> float:
        if self.kind == "constant":
            return self.base
        fraction = min(max(fraction, 0.0), 1.0)
        return self.final - (self.final - self.base) * (math.cos(math.pi * fraction) + 1) / 2


def interpolate_weights(start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """WiSE-FT weight-space ensemble (Wortsman et al., CVPR 2022): ``alpha * tuned + (1 - alpha) * start``
    for floating-point tensors; integer buffers (position ids) are taken from ``tuned``."""
    if set(start) != set(tuned):
        raise ValueError("cannot interpolate: the two state dicts hold different tensors")
    return {k: (alpha * v + (1 - alpha) * start[k].to(v.device, v.dtype)) if v.is_floating_point() else v
            for k, v in tuned.items()}
