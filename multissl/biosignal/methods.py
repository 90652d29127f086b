"""Participant-level contrastive pre-training (Abbaspourazad et al., "Large-scale Training of
Foundation Models for Wearable Biosignals", ICLR 2024).

A positive pair is two DIFFERENT segments of the SAME participant, each augmented. The online
encoder + projection embeds one view, a momentum (EMA) copy embeds the other; a symmetrised InfoNCE
(temperature 0.04) contrasts online against momentum projections, with the other participants of
the batch as negatives and same-participant columns off the diagonal masked out of the denominator
(``info_nce(query_ids=, key_ids=)``). A KoLeo term (weight 0.1) spreads the online embeddings.
The paper's training step updates the momentum encoder BEFORE the forward (MoCo v3 style). Under the
core contract (no state change in ``forward``) that is ``ema_timing = "after_step"``: the EMA with the
weights the optimizer just wrote, i.e. exactly the target the next forward would have built, once per
optimizer step. ``ema_in_forward=False`` selects ``"before_step"`` (after backward, before the optimizer
step: the target lags one update behind).

Reference code: none released (Apple, ICLR 2024); the paper's appendix is the reference.

Deviations from the reference code (the paper's description):
- The EMA moves parameters only; BatchNorm buffers of the momentum copy follow its own forward passes
  (as MoCo / BYOL; the paper does not say).
"""

from __future__ import annotations

import torch
from torch import nn

from multissl.biosignal.augment import AugmentConfig, augment
from multissl.biosignal.models import EfficientNet1d
from multissl.core import (
    MLP,
    LossOutput,
    Method,
    Progress,
    ema_update,
    info_nce,
    koleo,
    momentum_copy,
)


class ParticipantContrastive(Method):
    """Online encoder/projection, EMA copies, participant-masked symmetric InfoNCE + KoLeo."""

    def __init__(self, encoder: EfficientNet1d, proj_dims: list[int], augment: AugmentConfig, temperature: float = 0.04,
                 momentum: float = 0.99, koleo_weight: float = 0.1, koleo_on: str = "embedding",
                 mask_same_participant: bool = True, ema_in_forward: bool = True) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = MLP([encoder.embed_dim, *proj_dims], norm="batch")
        self.momentum_encoder = momentum_copy(self.encoder)
        self.momentum_projector = momentum_copy(self.projector)
        self.aug, self.temperature, self.momentum = augment, temperature, momentum
        self.koleo_weight, self.koleo_on = koleo_weight, koleo_on
        self.mask_same_participant, self.ema_in_forward = mask_same_participant, ema_in_forward
        self.ema_timing = "after_step" if ema_in_forward else "before_step"

    @torch.no_grad()
    def momentum_update(self, progress: Progress) -> None:
        ema_update(self.momentum_encoder, self.encoder, self.momentum)
        ema_update(self.momentum_projector, self.projector, self.momentum)

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        a, b, pid = augment(batch["a"], self.aug), augment(batch["b"], self.aug), batch["pid"]
        x = torch.cat([a, b])  # (2B, C, L): one pass per network
        h = self.encoder(x)  # (2B, 256)
        z = self.projector(h)  # (2B, 128)
        with torch.no_grad():
            k = self.momentum_projector(self.momentum_encoder(x))
        n = a.shape[0]
        ids = pid if self.mask_same_participant else None
        loss_ab = info_nce(z[:n], k[n:], temperature=self.temperature, query_ids=ids, key_ids=ids, gather=True)
        loss_ba = info_nce(z[n:], k[:n], temperature=self.temperature, query_ids=ids, key_ids=ids, gather=True)
        contrastive = 0.5 * (loss_ab + loss_ba)
        reg = 0.5 * (koleo((h if self.koleo_on == "embedding" else z)[:n])
                     + koleo((h if self.koleo_on == "embedding" else z)[n:]))
        loss = contrastive + self.koleo_weight * reg
        return LossOutput(loss, {"contrastive": contrastive.detach(), "koleo": reg.detach()})

    @torch.no_grad()
    def embed(self, batch: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """Segment embeddings (B, 256) of the online encoder (no augmentation)."""
        x = batch["a"] if isinstance(batch, dict) else batch
        return self.encoder(x)


def embed_segments(encoder: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Embed (N, C, L) segments in batches on the encoder's device; returns (N, D) on CPU."""
    device = next(encoder.parameters()).device
    was = encoder.training
    encoder.eval()
    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            out.append(encoder(x[s : s + batch_size].to(device)).float().cpu())
    encoder.train(was)
    return torch.cat(out)
