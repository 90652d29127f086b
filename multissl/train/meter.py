"""Running figures of the training loop kept ON the device between logging steps (open_clip's habit).

Each micro-batch's detached loss (and logged tensors) is only kept by reference: no device op and no
sync per step. At a logging, validation or checkpoint step they are stacked once: the first non-finite
loss (its step and value) raises, and at logging steps the loss is averaged over micro-batches AND
processes with one all-reduce.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from multissl.core.distributed import all_reduce_sum, is_distributed


class RunningMeter:
    """The losses and the method's logs since the last read, and the first divergence."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.steps: list[int] = []
        self.logs: dict[str, list[Any]] = {}

    def add(self, loss: torch.Tensor, logs: dict[str, Any], step: int) -> None:
        """Record one micro-batch of optimizer step ``step`` (1-based) without a device op or sync."""
        self.losses.append(loss.detach())
        self.steps.append(step)
        for k, v in logs.items():
            self.logs.setdefault(k, []).append(v.detach() if isinstance(v, torch.Tensor) else float(v))

    def _stacked(self) -> torch.Tensor:
        return torch.stack([x.float().reshape(()) for x in self.losses]) if self.losses else \
            torch.zeros(0, device=self.device)

    def first_divergence(self) -> tuple[int, torch.Tensor] | None:
        """(step, loss) of the first non-finite loss seen by any process since the last read, or None
        (one collective)."""
        losses = self._stacked()
        bad = ~torch.isfinite(losses)
        first = torch.full((), math.inf, device=self.device)
        if bad.any():
            first = torch.tensor(float(self.steps[int(bad.nonzero()[0])]), device=self.device)
        if is_distributed():
            import torch.distributed as dist

            dist.all_reduce(first, op=dist.ReduceOp.MIN)
        step = float(first)
        if not math.isfinite(step):
            return None
        mine = [v for s, v in zip(self.steps, losses, strict=True) if s == step and not bool(torch.isfinite(v))]
        return int(step), (mine[0] if mine else torch.tensor(float("nan")))

    def read(self) -> dict[str, float]:
        """Mean loss over micro-batches and processes, and each log's mean over this process's
        micro-batches, since the last read; then start again."""
        if not self.losses:
            return {}
        losses = self._stacked()
        pair = all_reduce_sum(torch.stack([losses.sum(), torch.tensor(float(len(self.losses)), device=losses.device)]))
        tensors = {k: v for k, v in self.logs.items() if any(isinstance(x, torch.Tensor) for x in v)}
        means = [torch.stack([torch.as_tensor(x, dtype=torch.float32, device=losses.device).reshape(())
                              for x in v]).mean() for v in tensors.values()]
        values = torch.stack([pair[0] / pair[1], *means]).tolist()
        out = {"loss": values[0]}
        out.update(dict(zip(tensors, values[1:], strict=True)))
        out.update({k: sum(v) / len(v) for k, v in self.logs.items() if k not in tensors})
        self.reset()
        return out
