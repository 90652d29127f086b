"""Contrastive learning for forecasting (Zhang et al. 2023, "What Constitutes Good Contrastive Learning
in Time-Series Forecasting?", repo chiyuzhang94/contrastive_learning_time-series_e2e).

Three regimes on the same forecaster:
- ``mse``: the forecaster trained on the forecast MSE only;
- ``two_phase``: MoCo-style contrastive pre-training of the encoder for the first
  ``pretrain_fraction`` of the steps, then MSE only (encoder and head fine-tuned);
- ``e2e``: end to end, ``MSE + contrastive_weight * InfoNCE`` every step (the paper's best: weight 0.5).

The contrastive term is MoCo (He et al. 2020): two masked views of the input window, the query from
the online encoder + projection, the key from a momentum copy, negatives from a queue of past keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from multissl.core import (
    MLP,
    FeatureQueue,
    LossOutput,
    Method,
    Progress,
    ema_update,
    info_nce,
    momentum_copy,
)


def mask_timesteps(x: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each time step (all channels) of (B, T, C) independently with probability ``rate``."""
    if rate <= 0:
        return x
    drop = torch.rand(x.shape[0], x.shape[1], 1, device=x.device, generator=generator) < rate
    return x.masked_fill(drop, 0.0)


class ForecastMethod(Method):
    """Zhang et al. 2023's forecasting regimes: a forecaster (``forward`` of its module maps (B, T, C) ->
    (B, H, C)) trained on the forecast MSE, plus an optional MoCo term (see the module docstring).

    Reference code: github.com/chiyuzhang94/contrastive_learning_time-series_e2e (``models/cost_e2e.py``,
    ``models/tcn_moco.py``, ``exp/exp_informer.py``).

    Deviations from the reference code:
    - ``mask_rate`` is the probability that a time step is MASKED (the reference used it as the keep
      probability while calling it the mask rate): the name now means what it says.
    - ``l2norm`` really decides whether query and keys are L2-normalised (the reference overrode the flag
      silently).
    - The key EMA runs after the optimizer step (``ema_timing = "after_step"``) rather than at the start of
      the next forward (the same key encoder meets every forward), and keys are staged per micro-batch and
      pushed once per optimizer step (gathered over processes): exact under accumulation.
    - With RevIN on (``model.revin``), both views are built from the RevIN-normalised window, so queries and
      keys live in the space the forecaster sees (the reference has no RevIN).
    """

    ema_timing = "after_step"

    def __init__(self, forecaster: nn.Module, mode: str = "e2e", contrastive_weight: float = 0.5,
                 mask_rate: float = 0.3, l2norm: bool = True, temperature: float = 0.07, queue_size: int = 1024,
                 momentum: float = 0.999, proj_dim: int = 64, pretrain_fraction: float = 0.5) -> None:
        super().__init__()
        if mode not in ("mse", "e2e", "two_phase"):
            raise ValueError(f"mode must be mse, e2e or two_phase, got {mode!r}")
        self.forecaster, self.mode = forecaster, mode
        self.contrastive = mode != "mse" and hasattr(forecaster, "represent")
        if mode != "mse" and not self.contrastive:
            raise ValueError("a contrastive mode needs an encoder forecaster (transformer or tcn)")
        self.contrastive_weight, self.mask_rate, self.l2norm = contrastive_weight, mask_rate, l2norm
        self.temperature, self.momentum, self.pretrain_fraction = temperature, momentum, pretrain_fraction
        self.register_buffer("phase", torch.tensor(1 if mode == "two_phase" else 2))  # 1 = pre-train, 2 = fit
        if self.contrastive:
            dim = forecaster.encoder.dim
            self.projector = MLP([dim, dim, proj_dim], norm=None)
            self.key_encoder = momentum_copy(forecaster.encoder)
            self.key_projector = momentum_copy(self.projector)
            self.queue = FeatureQueue(queue_size, proj_dim, init="random")

    def contrastive_loss(self, x: torch.Tensor) -> torch.Tensor:
        """MoCo InfoNCE between two masked views of the windows ``x`` (B, T, C); stages the keys."""
        x = self.forecaster.normalize(x)  # RevIN space when on (identity otherwise)
        with torch.no_grad():
            k = self.key_projector(self.key_encoder(mask_timesteps(x, self.mask_rate)).mean(1))  # (B, P)
            if self.l2norm:
                k = F.normalize(k, dim=-1)
        q = self.projector(self.forecaster.encoder(mask_timesteps(x, self.mask_rate)).mean(1))  # (B, P)
        loss = info_nce(q, k, temperature=self.temperature, extra_keys=self.queue.keys(), normalize=self.l2norm)
        self.queue.stage(k)  # pushed once per optimizer step by the trainer
        return loss

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        x, y = batch
        logs = {}
        loss = x.new_zeros(())
        if int(self.phase) == 2:
            mse = F.mse_loss(self.forecaster(x), y)
            logs["mse"] = mse.detach()
            loss = loss + mse
        if self.contrastive and (self.mode == "e2e" or int(self.phase) == 1):
            c = self.contrastive_loss(x)
            logs["contrastive"] = c.detach()
            loss = loss + (self.contrastive_weight if self.mode == "e2e" else 1.0) * c
        return LossOutput(loss, logs)

    @torch.no_grad()
    def momentum_update(self, progress: Progress) -> None:
        if self.contrastive:
            ema_update(self.key_encoder, self.forecaster.encoder, self.momentum)
            ema_update(self.key_projector, self.projector, self.momentum)

    def after_step(self, progress: Progress) -> None:
        if self.mode == "two_phase" and int(self.phase) == 1 and progress.fraction >= self.pretrain_fraction:
            self.phase.fill_(2)

    @torch.no_grad()
    def forecast(self, x: torch.Tensor) -> torch.Tensor:
        return self.forecaster(x)

    @torch.no_grad()
    def embed(self, batch) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if hasattr(self.forecaster, "represent"):
            return self.forecaster.represent(x)
        return self.forecaster(x).flatten(1)
