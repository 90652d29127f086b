"""Pieces the vision-language methods share: two towers with ITC projections and a temperature
(:class:`TwoTowers`), ALBEF's hard-negative sampler and TCL's global-to-local InfoNCE.

The three papers are three classes built on these: :class:`multissl.vl.clip.CLIP`,
:class:`multissl.vl.albef.ALBEF` and :class:`multissl.vl.tcl.TCL` (a subclass of ALBEF).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from multissl.core import Method, Progress, Temperature
from multissl.encoders.hf import HFEncoder, pool
from multissl.vl.models import ImageTower


@torch.no_grad()
def sample_hard_negatives(sim: torch.Tensor, row_ids: torch.Tensor, col_ids: torch.Tensor,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """One hard negative column per row, drawn from softmax(sim) over the columns that are NOT positives
    (a different image id), as ALBEF's ITM does. (B, C) sims -> (B,) column indices, vectorised.
    Rows whose columns are all positives fall back to column (row + 1) % C."""
    same = row_ids[:, None] == col_ids[None, :]
    weights = torch.softmax(sim.float(), dim=1).masked_fill(same, 0.0)
    empty = weights.sum(1) <= 0
    if empty.any():  # underflow: uniform over the valid columns
        weights[empty] = (~same[empty]).float()
    none = weights.sum(1) <= 0
    weights[none] = 1.0
    idx = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    if none.any():
        rows = torch.arange(sim.shape[0], device=sim.device)
        idx = torch.where(none, (rows + 1) % sim.shape[1], idx)
    return idx


def global_local_infonce(local: torch.Tensor, glob: torch.Tensor, temperature: torch.Tensor | float,
                         local_mask: torch.Tensor | None = None) -> torch.Tensor:
    """TCL's local MI term (``in_batch_g2l_loss``): for every sample n and local token j, the positive is
    <g_n, l_nj> and the negatives are <g_n, l_n'j'> for all other samples n' and their valid tokens j'.
    local (N, T, D), glob (N, D), local_mask (N, T) (1 = real token). The negatives do not depend on j,
    so the per-token loss is softplus(logsumexp(negatives_n) - positive_nj)."""
    n, t, d = local.shape
    pos = torch.einsum("ntd,nd->nt", local, glob) / temperature  # (N, T)
    neg = (glob @ local.reshape(n * t, d).t() / temperature).view(n, n, t)  # (N, N', T)
    invalid = torch.eye(n, dtype=torch.bool, device=glob.device)[:, :, None].expand(n, n, t)
    if local_mask is not None:
        invalid = invalid | ~local_mask.bool()[None, :, :]
    lse = neg.masked_fill(invalid, float("-inf")).reshape(n, n * t).logsumexp(1)  # (N,)
    per_token = F.softplus(lse[:, None] - pos)  # -log p(positive) for each (n, j)
    if local_mask is None:
        return per_token.mean()
    m = local_mask.to(per_token.dtype)
    return ((per_token * m).sum(1) / m.sum(1).clamp_min(1)).mean()


class TwoTowers(Method):
    """An image tower and a text tower with linear ITC projections and a (learnable, clamped) temperature.
    ``embed`` gives normalised image features for batches with ``image``, else text features."""

    def __init__(self, image_tower: ImageTower, text: HFEncoder, *, embed_dim: int = 256, text_pooling: str = "cls",
                 temperature: float = 0.07, temperature_min: float = 0.001, temperature_max: float = 0.5,
                 temperature_param: str = "raw", learn_temperature: bool = True, freeze_text: bool = False) -> None:
        super().__init__()
        self.image_tower, self.text, self.text_pooling = image_tower, text, text_pooling
        self.image_proj = nn.Linear(image_tower.width, embed_dim)
        self.text_proj = nn.Linear(text.hidden_size, embed_dim)
        self.temp = Temperature(temperature, learnable=learn_temperature, min=temperature_min, max=temperature_max,
                                parametrization=temperature_param)
        self.freeze_text = freeze_text
        if freeze_text:  # a locked text encoder (LiT-style); fusion layers and heads still train
            for p in self.text.parameters():
                p.requires_grad_(False)

    def encode_image(self, image: torch.Tensor, momentum: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, 1+N, W), normalised features (B, E))."""
        tower, proj = (self.image_tower_m, self.image_proj_m) if momentum else (self.image_tower, self.image_proj)
        tokens = tower(image)
        return tokens, F.normalize(proj(tokens[:, 0]).float(), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    momentum: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(token states (B, L, H), normalised features (B, E))."""
        enc, proj = (self.text_m, self.text_proj_m) if momentum else (self.text, self.text_proj)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not (self.freeze_text and not momentum)):
            states = enc.token_states(input_ids, attention_mask).last_hidden_state
        pooled = pool(states, attention_mask, self.text_pooling)
        return states, F.normalize(proj(pooled).float(), dim=-1)

    def after_step(self, progress: Progress) -> None:
        """Clamp the temperature after the optimizer step (open_clip clamps its logit scale there; ALBEF at
        the start of the next forward, the same point in the sequence)."""
        self.temp.clamp_()

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "image" in batch:
            return self.encode_image(batch["image"])[1]
        return self.encode_text(batch["input_ids"], batch["attention_mask"])[1]

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Weight decay on matrices only (biases, norms and the temperature are not decayed), as ALBEF's
        and open_clip's optimizer set-ups."""
        decay, no_decay = [], []
        for p in self.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
