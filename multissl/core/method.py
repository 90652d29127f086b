"""The method contract between adapters and the trainer.

A method is an ``nn.Module`` that owns its encoders, heads, momentum copies and queues. The trainer
calls ``forward(batch)`` for the loss, ``before_step`` after backward and before the optimizer step,
and ``after_step`` after it. A method knows nothing of devices, precision or processes; a user with
their own loop calls ``method(batch).loss.backward()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class LossOutput:
    """One training step's loss and the scalars to log (tensors are detached and logged as floats)."""

    loss: torch.Tensor
    logs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Progress:
    """Where training stands, handed to the method hooks (momentum and loss-weight schedules use it)."""

    step: int  # optimizer steps done so far (after the current one in after_step)
    total_steps: int
    epoch: int
    steps_per_epoch: int

    @property
    def fraction(self) -> float:
        """Fraction of training done, in [0, 1]."""
        return min(1.0, self.step / max(1, self.total_steps))

    @property
    def epoch_fraction(self) -> float:
        """Epochs done as a float (e.g. 0.5 half-way through the first epoch)."""
        return self.step / max(1, self.steps_per_epoch)


class Method(nn.Module):
    """Base class for self-supervised methods; subclasses implement ``forward`` and ``embed``."""

    def forward(self, batch: Any) -> LossOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def before_step(self, progress: Progress) -> None:
        """Called after backward, before ``optimizer.step()`` (e.g. ESimCSE's momentum update)."""

    def after_step(self, progress: Progress) -> None:
        """Called after ``optimizer.step()`` (e.g. BYOL's EMA update, temperature clamps)."""

    @torch.no_grad()
    def embed(self, batch: Any) -> torch.Tensor:  # pragma: no cover - abstract
        """Representations used by benchmarks and ``multissl embed``."""
        raise NotImplementedError

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Parameter groups for the optimizer; default: every trainable parameter with ``weight_decay``."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": weight_decay}]
