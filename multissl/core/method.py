"""The method contract between adapters and the trainer, and the one rule for method state.

A method is an ``nn.Module`` that owns its encoders, heads, momentum copies and queues.

- ``forward(batch) -> LossOutput`` computes a micro-batch's loss. It changes NO state: keys to enqueue
  are only staged with :meth:`FeatureQueue.stage` (appended per micro-batch).
- ``momentum_update(progress)`` does the EMA of the momentum (target) networks, once per optimizer step,
  at the time the paper's code does it, named by the class attribute ``ema_timing``:
  ``"after_step"`` (MoCo, BYOL: the target follows the weights the optimizer just wrote) or
  ``"before_step"`` (ESimCSE: after backward, before ``optimizer.step()``).
- ``before_step(progress)`` / ``after_step(progress)``: any other per-step state (freezing a gradient,
  temperature clamps, phase switches, epoch counters).

The trainer (or your own loop) calls :func:`before_optimizer_step` after backward and before
``optimizer.step()``, and :func:`after_optimizer_step` after it; the latter pushes every staged key of
every :class:`FeatureQueue` in the method, gathered over processes. So gradient accumulation and many
processes see the same queue and the same EMA weights as one process on the global batch. A method
knows nothing of devices, precision or processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from multissl.core.queue import FeatureQueue

EmaTiming = Literal["before_step", "after_step"]
EMA_TIMINGS = ("before_step", "after_step")


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

    #: when :meth:`momentum_update` runs: "after_step" (MoCo, BYOL) or "before_step" (ESimCSE)
    ema_timing: EmaTiming = "after_step"

    def forward(self, batch: Any) -> LossOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def momentum_update(self, progress: Progress) -> None:
        """EMA of the momentum networks, once per optimizer step at ``ema_timing``; default: none."""

    def before_step(self, progress: Progress) -> None:
        """Other state after backward, before ``optimizer.step()`` (e.g. SwAV's frozen prototypes)."""

    def after_step(self, progress: Progress) -> None:
        """Other state after ``optimizer.step()`` (temperature clamps, phase switches, epoch counters)."""

    @torch.no_grad()
    def embed(self, batch: Any) -> torch.Tensor:  # pragma: no cover - abstract
        """Representations used by benchmarks and ``multissl embed``."""
        raise NotImplementedError

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Parameter groups for the optimizer; default: every trainable parameter with ``weight_decay``."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": weight_decay}]


def _ema_timing(method: nn.Module) -> str:
    timing = getattr(method, "ema_timing", "after_step")
    if timing not in EMA_TIMINGS:
        raise ValueError(f"{type(method).__name__}.ema_timing must be one of {EMA_TIMINGS}, got {timing!r}")
    return timing


def _call(method: nn.Module, name: str, progress: Progress) -> None:
    fn = getattr(method, name, None)
    if callable(fn):
        fn(progress)


@torch.no_grad()
def flush_queues(method: nn.Module) -> int:
    """Push the staged keys of every :class:`FeatureQueue` in ``method`` (gathered); returns keys pushed."""
    return sum(m.flush() for m in method.modules() if isinstance(m, FeatureQueue))


def before_optimizer_step(method: nn.Module, progress: Progress) -> None:
    """Run after backward (and clipping), before ``optimizer.step()``: ``before_step``, then the EMA
    when ``ema_timing == "before_step"``."""
    _call(method, "before_step", progress)
    if _ema_timing(method) == "before_step":
        with torch.no_grad():
            _call(method, "momentum_update", progress)


def after_optimizer_step(method: nn.Module, progress: Progress) -> None:
    """Run after ``optimizer.step()`` (``progress.step`` counts it): the EMA when ``ema_timing ==
    "after_step"``, the one push of the staged queue keys, then ``after_step``."""
    if _ema_timing(method) == "after_step":
        with torch.no_grad():
            _call(method, "momentum_update", progress)
    flush_queues(method)
    _call(method, "after_step", progress)
