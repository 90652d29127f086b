"""Running figures of the training loop kept ON the device between logging steps (open_clip's habit).

The loss of every micro-batch is added to a device tensor; the first non-finite loss is remembered on
the device too. Nothing is read back until a logging, validation or checkpoint step, where the loss is
averaged over micro-batches AND processes with one all-reduce.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from multissl.core.distributed import all_reduce_sum, is_distributed
from multissl.errors import TrainingDivergedError


class RunningMeter:
    """Sums of the loss and of the method's logs since the last read, and the first divergence."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()
        self.bad_step = torch.full((), math.inf, device=device)  # first optimizer step with a non-finite loss
        self.bad_value = torch.zeros((), device=device)

    def reset(self) -> None:
        self.loss_sum = torch.zeros((), device=self.device)
        self.count = 0
        self.log_sums: dict[str, Any] = {}
        self.log_counts: dict[str, int] = {}

    def add(self, loss: torch.Tensor, logs: dict[str, Any], step: int) -> None:
        """Record one micro-batch of optimizer step ``step`` (1-based) without a device sync."""
        loss = loss.detach().float()
        new_bad = ~torch.isfinite(loss) & torch.isinf(self.bad_step)
        self.bad_step = torch.where(new_bad, torch.full_like(self.bad_step, step), self.bad_step)
        self.bad_value = torch.where(new_bad, loss, self.bad_value)
        self.loss_sum = self.loss_sum + loss
        self.count += 1
        for k, v in logs.items():
            v = v.detach().float() if isinstance(v, torch.Tensor) else float(v)
            self.log_sums[k] = self.log_sums.get(k, 0.0) + v
            self.log_counts[k] = self.log_counts.get(k, 0) + 1

    def check(self, epoch: int, hint: str) -> None:
        """Raise :class:`TrainingDivergedError` if any process saw a non-finite loss (one collective)."""
        bad = self.bad_step.clone()
        if is_distributed():
            import torch.distributed as dist

            dist.all_reduce(bad, op=dist.ReduceOp.MIN)
        step = float(bad)
        if math.isfinite(step):
            value = float(self.bad_value) if float(self.bad_step) == step else float("nan")
            raise TrainingDivergedError(f"The loss became {value} at step {int(step)} (epoch {epoch}). {hint}")

    def read(self) -> dict[str, float]:
        """Mean loss over micro-batches and processes, and each log's mean over this process's
        micro-batches, since the last read; then start again."""
        if self.count == 0:
            return {}
        pair = all_reduce_sum(torch.stack([self.loss_sum, torch.tensor(float(self.count), device=self.device)]))
        tensors = {k: v for k, v in self.log_sums.items() if isinstance(v, torch.Tensor)}
        values = torch.stack([pair[0] / pair[1], *[v / self.log_counts[k] for k, v in tensors.items()]]).tolist()
        out = {"loss": values[0]}
        out.update(dict(zip(tensors, values[1:], strict=True)))
        out.update({k: v / self.log_counts[k] for k, v in self.log_sums.items() if k not in tensors})
        self.reset()
        return out
