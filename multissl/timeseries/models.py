"""Forecasters: the last-value and DLinear baselines, and the encoders of Zhang et al. 2023
(a Transformer encoder and a dilated TCN) with a linear forecasting head.

Every encoder maps (B, seq_len, C) to per-step features (B, seq_len, D); ``represent`` pools them
into one (B, D) vector for the contrastive objective; ``forward`` returns (B, pred_len, C).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LastValue(nn.Module):
    """Repeat the last observed value over the horizon (the naive / persistence baseline)."""

    def __init__(self, pred_len: int) -> None:
        super().__init__()
        self.pred_len = pred_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1:, :].expand(-1, self.pred_len, -1)


class MovingAverage(nn.Module):
    """Centred moving average with edge replication along time (Autoformer's series decomposition)."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        front = x[:, :1].expand(-1, (self.kernel - 1) // 2, -1)
        back = x[:, -1:].expand(-1, self.kernel // 2, -1)
        padded = torch.cat([front, x, back], 1).transpose(1, 2)
        return nn.functional.avg_pool1d(padded, self.kernel, stride=1).transpose(1, 2)


class DLinear(nn.Module):
    """DLinear (Zeng et al., AAAI 2023): trend = moving average, seasonal = rest; one linear map over
    time for each (shared across channels unless ``individual``), summed."""

    def __init__(self, seq_len: int, pred_len: int, channels: int, kernel: int = 25, individual: bool = False) -> None:
        super().__init__()
        self.decomp = MovingAverage(kernel)
        n = channels if individual else 1
        self.seasonal = nn.ModuleList([nn.Linear(seq_len, pred_len) for _ in range(n)])
        self.trend = nn.ModuleList([nn.Linear(seq_len, pred_len) for _ in range(n)])
        for lin in [*self.seasonal, *self.trend]:  # DLinear initialises to the mean of the window
            nn.init.constant_(lin.weight, 1.0 / seq_len)
        self.individual = individual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trend = self.decomp(x)
        seasonal = (x - trend).transpose(1, 2)  # (B, C, T)
        trend = trend.transpose(1, 2)
        if self.individual:
            out = torch.stack([s(seasonal[:, i]) + t(trend[:, i]) for i, (s, t) in
                               enumerate(zip(self.seasonal, self.trend, strict=True))], 1)
        else:
            out = self.seasonal[0](seasonal) + self.trend[0](trend)
        return out.transpose(1, 2)  # (B, pred_len, C)


class TransformerEncoderNet(nn.Module):
    """Informer-style encoder: token convolution embedding + sinusoidal positions, then self-attention layers."""

    def __init__(self, channels: int, seq_len: int, d_model: int = 64, heads: int = 4, layers: int = 2,
                 d_ff: int = 128, dropout: float = 0.05) -> None:
        super().__init__()
        self.embed = nn.Conv1d(channels, d_model, 3, padding=1, padding_mode="circular")
        pos = torch.arange(seq_len)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(seq_len, d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe, persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, heads, d_ff, dropout, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.dim = d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, D)
        h = self.embed(x.transpose(1, 2)).transpose(1, 2) + self.pe[: x.shape[1]]
        return self.encoder(self.dropout(h))


class TCNEncoderNet(nn.Module):
    """Dilated causal TCN (Bai et al. 2018; TS2Vec's encoder): residual blocks of two dilated convs."""

    def __init__(self, channels: int, hidden: int = 64, layers: int = 6, kernel: int = 3, dropout: float = 0.05) -> None:
        super().__init__()
        self.inp = nn.Linear(channels, hidden)
        self.blocks = nn.ModuleList()
        for i in range(layers):
            d = 2**i
            self.blocks.append(nn.ModuleDict({
                "c1": nn.Conv1d(hidden, hidden, kernel, dilation=d), "c2": nn.Conv1d(hidden, hidden, kernel, dilation=d)}))
        self.pads = [(kernel - 1) * 2**i for i in range(layers)]
        self.dropout = nn.Dropout(dropout)
        self.dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, D)
        h = self.inp(x).transpose(1, 2)
        for blk, pad in zip(self.blocks, self.pads, strict=True):
            y = blk["c1"](nn.functional.pad(nn.functional.gelu(h), (pad, 0)))
            y = blk["c2"](nn.functional.pad(nn.functional.gelu(self.dropout(y)), (pad, 0)))
            h = h + y
        return h.transpose(1, 2)


class EncoderForecaster(nn.Module):
    """An encoder (B, T, C) -> (B, T, D) and a linear head from the flattened features to the horizon."""

    def __init__(self, encoder: nn.Module, seq_len: int, pred_len: int, channels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(seq_len * encoder.dim, pred_len * channels)
        self.pred_len, self.channels = pred_len, channels

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled representation for the contrastive objective."""
        return self.encoder(x).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return self.head(h.flatten(1)).view(-1, self.pred_len, self.channels)
