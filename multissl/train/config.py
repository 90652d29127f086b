"""The ``train:`` section of every recipe: optimisation, precision, schedule, logging, checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from multissl.config import param


@dataclass
class TrainConfig:
    """Settings of the one training loop; a method's paper values go in its recipe."""

    epochs: int = param(1, "passes over the training data")
    max_steps: int | None = param(None, "stop after this many optimizer steps (overrides epochs when set)")
    batch_size: int = param(64, "GLOBAL batch size (split evenly over processes)")
    grad_accum_steps: int = param(1, "micro-batches per optimizer step (batch_size is per micro-batch)")
    drop_last: bool = param(True, "drop the last incomplete batch (keeps queues aligned)")
    shuffle: bool = param(True, "reshuffle the training data every epoch (seeded)")
    optimizer: Literal["adamw", "adam", "sgd", "lars"] = param("adamw", "optimizer")
    lr: float = param(1e-3, "peak learning rate")
    weight_decay: float = param(0.0, "weight decay")
    betas: tuple[float, float] = param((0.9, 0.999), "Adam betas")
    eps: float = param(1e-8, "Adam epsilon")
    sgd_momentum: float = param(0.9, "SGD / LARS momentum")
    scheduler: Literal["constant", "cosine", "linear"] = param("constant", "learning-rate schedule after warm-up")
    warmup_steps: int = param(0, "linear warm-up steps")
    warmup_ratio: float = param(0.0, "linear warm-up as a fraction of all steps (used when warmup_steps is 0)")
    min_lr_ratio: float = param(0.0, "final lr as a fraction of the peak (cosine / linear)")
    clip_grad_norm: float | None = param(None, "clip the global gradient norm to this value")
    precision: Literal["no", "bf16", "fp16"] = param("no", "autocast precision ('no' = fp32)")
    seed: int = param(42, "seed for weights, data order and augmentations")
    num_workers: int = param(0, "DataLoader worker processes")
    log_every: int = param(10, "log metrics every N optimizer steps")
    eval_every: int = param(0, "validate every N optimizer steps (0 = at the end of every eval_every_epochs)")
    eval_every_epochs: int = param(1, "validate every N epochs when eval_every is 0")
    eval_at_start: bool = param(False, "also validate before the first step (the starting model)")
    checkpoint_every: int = param(0, "write the last checkpoint every N optimizer steps (0 = every epoch)")
    select_metric: str | None = param(None, "validation metric that picks the best checkpoint, e.g. 'val/spearman'")
    select_mode: Literal["max", "min"] = param("max", "whether a larger or smaller select_metric is better")
    compile: bool = param(False, "wrap the method in torch.compile")
    find_unused_parameters: bool = param(False, "DDP: allow parameters without gradients in a step")
    sync_batchnorm: bool = param(False, "several processes: BatchNorm statistics over the global batch "
                                        "(torch SyncBatchNorm on CUDA, multissl's GlobalBatchNorm elsewhere)")
    progress: bool = param(True, "show a progress bar")
    output_dir: str = param("runs", "runs are written to <output_dir>/<recipe name>/<timestamp>/")

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum_steps", "log_every", "eval_every_epochs"):
            if getattr(self, name) < 1 and not (name == "epochs" and self.max_steps):
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < 3.4e38:  # also refuses nan / inf; torch keeps lr in float32 tensors
            raise ValueError(f"lr must be a positive finite number below 3.4e38 (float32), got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.select_metric and self.select_metric.startswith("test"):
            raise ValueError("select_metric must be a validation metric, never a test metric")
