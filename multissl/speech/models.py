"""TERA's encoder: frame projection + sinusoidal positions + post-LN Transformer layers, and its
spectrogram prediction head (Liu, Li, Lee, TASLP 2021; s3prl ``upstream/mockingjay/model.py``).

Each layer is BERT's: self-attention -> dense -> dropout -> residual -> LayerNorm, then
dense -> GELU -> dense -> dropout -> residual -> LayerNorm. Weights are initialised N(0, 0.02).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn


@lru_cache(maxsize=8)
def _sinusoid_table(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    i = torch.arange(dim, dtype=torch.float64)[None]
    angle = pos / torch.pow(10000.0, 2 * torch.div(i, 2, rounding_mode="floor") / dim)
    table = torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()  # (length, dim): sin on even, cos on odd channels


def sinusoid_positions(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sinusoidal position encodings of Vaswani et al. 2017 (as s3prl computes them)."""
    size = 1 << max(10, (length - 1).bit_length())  # cache a power-of-two table, slice it
    return _sinusoid_table(size, dim)[:length]


class TeraLayer(nn.Module):
    """One post-LN Transformer layer with SDPA attention and a key padding mask."""

    def __init__(self, hidden: int, heads: int, ffn: int, dropout: float, attention_dropout: float, eps: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden {hidden} is not divisible by {heads} heads")
        self.heads, self.attention_dropout = heads, attention_dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.ff1, self.ff2 = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, f, d = h.shape
        q, k, v = self.qkv(h).view(b, f, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, F, d)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :],
                                              dropout_p=self.attention_dropout if self.training else 0.0)
        h = self.norm1(h + self.drop(self.attn_out(attn.transpose(1, 2).reshape(b, f, d))))
        return self.norm2(h + self.drop(self.ff2(F.gelu(self.ff1(h)))))


class TeraEncoder(nn.Module):
    """Frames (B, F, input_dim) + lengths -> hidden states of every layer, each (B, F, hidden).

    Paper / s3prl TERA-base: hidden 768, 3 layers, 12 heads, FFN 3072, dropout 0.3, LayerNorm eps 1e-12.

    Reference code: github.com/s3prl/s3prl (``upstream/mockingjay/model.py`` ``TransformerModel``).

    Deviations from the reference code:
    - Attention is PyTorch SDPA with a key padding mask (the reference multiplies an explicit score
      matrix): same function, less memory.
    """

    def __init__(self, input_dim: int = 80, hidden: int = 768, layers: int = 3, heads: int = 12, ffn: int = 3072,
                 dropout: float = 0.3, attention_dropout: float = 0.3, eps: float = 1e-12,
                 init_range: float = 0.02) -> None:
        super().__init__()
        self.hidden = hidden
        self.proj = nn.Linear(input_dim, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(TeraLayer(hidden, heads, ffn, dropout, attention_dropout, eps)
                                    for _ in range(layers))
        init_weights(self, init_range)

    @property
    def num_states(self) -> int:
        return len(self.layers) + 1

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """[input representation, layer 1, ..., layer L] hidden states (s3prl's all_encoder_layers)."""
        f = feats.shape[1]
        key_mask = torch.arange(f, device=feats.device)[None] < lengths[:, None]  # (B, F) True = attend
        pos = sinusoid_positions(f, self.hidden).to(feats.device, feats.dtype)
        h = self.drop(self.norm(self.proj(feats) + pos))
        states = [h]
        for layer in self.layers:
            h = layer(h, key_mask)
            states.append(h)
        return states


class SpecHead(nn.Module):
    """TERA's prediction head: dense -> GELU -> LayerNorm -> linear back to the frame dimension."""

    def __init__(self, hidden: int = 768, output_dim: int = 80, eps: float = 1e-12, init_range: float = 0.02):
        super().__init__()
        self.dense, self.norm, self.out = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=eps), nn.Linear(hidden, output_dim)
        init_weights(self, init_range)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(F.gelu(self.dense(h))))


def init_weights(module: nn.Module, std: float) -> None:
    """BERT initialisation: linear weights N(0, std), biases 0, LayerNorm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def pool(states: torch.Tensor, lengths: torch.Tensor, mode: str = "meanstd") -> torch.Tensor:
    """Pool (B, F, D) over valid frames: 'mean' (B, D) or 'meanstd' (B, 2D) statistics pooling."""
    valid = (torch.arange(states.shape[1], device=states.device)[None] < lengths[:, None]).unsqueeze(-1)
    n = lengths.clamp_min(1)[:, None].to(states.dtype)
    mean = (states * valid).sum(1) / n
    if mode == "mean":
        return mean
    var = (((states - mean[:, None]) * valid) ** 2).sum(1) / n
    return torch.cat([mean, var.clamp_min(1e-10).sqrt()], -1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["SpecHead", "TeraEncoder", "TeraLayer", "count_parameters", "init_weights", "pool", "sinusoid_positions"]
