"""Forecasters: the last-value and DLinear baselines, and the encoders of Zhang et al. 2023
(a Transformer encoder and a dilated TCN) with a linear forecasting head.

Every encoder maps (B, seq_len, C) to per-step features (B, seq_len, D); ``represent`` pools them
into one (B, D) vector for the contrastive objective; ``forward`` returns (B, pred_len, C).
Every learned forecaster takes ``revin``: reversible instance normalisation (Kim et al., ICLR 2022)
around the whole map, off by default because none of the reference papers of these forecasters
(Informer, DLinear, Zhang et al. 2023) uses it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim, Kim, Tae, Park, Choi, Choo, ICLR 2022).

    Each window is z-scored per channel with its own mean and std (biased, + ``eps`` inside the root)
    before the model, optionally followed by a learnable per-channel affine map; the forecast is mapped
    back with the inverse affine and the window's std and mean. Stateless between calls: ``norm`` returns
    the statistics that ``denorm`` needs.

    Reference code: github.com/ts-kim/RevIN (``RevIN.py``).

    Deviations from the reference code:
    - The statistics are returned and passed back instead of stored on the module between the two calls,
      so one module can serve interleaved calls (queries, keys, validation) safely.
    """

    def __init__(self, channels: int, affine: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps, self.affine = eps, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def norm(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(B, T, C) -> normalised (B, T, C), (mean (B, 1, C), std (B, 1, C))."""
        mean = x.mean(1, keepdim=True).detach()
        std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + self.eps).detach()
        x = (x - mean) / std
        if self.affine:
            x = x * self.weight + self.bias
        return x, (mean, std)

    def denorm(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(B, H, C) in the normalised space -> the window's original scale."""
        mean, std = stats
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * std + mean


class _Normalised(nn.Module):
    """Mixin: optional RevIN around ``_forward`` (the forecaster's map in the normalised space)."""

    revin: RevIN | None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input space: RevIN-normalised ``x`` when RevIN is on, else ``x``."""
        return x if self.revin is None else self.revin.norm(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, H, C)
        if self.revin is None:
            return self._forward(x)
        xn, stats = self.revin.norm(x)
        return self.revin.denorm(self._forward(xn), stats)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class LastValue(nn.Module):
    """Repeat the last observed value over the horizon (the naive / persistence baseline; no paper, no
    reference code; invariant to RevIN, so it takes no ``revin``)."""

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


class DLinear(_Normalised):
    """DLinear (Zeng, Chen, Zhang, Xu, "Are Transformers Effective for Time Series Forecasting?", AAAI
    2023): trend = moving average, seasonal = rest; one linear map over time for each (shared across
    channels unless ``individual``), summed.

    Reference code: github.com/cure-lab/LTSF-Linear (``models/DLinear.py``).

    Deviations from the reference code:
    - The two maps' weights start at 1 / seq_len (the window mean); the reference keeps PyTorch's default
      init and has this line commented out "to visualise the weights". Kept: it starts at a sensible
      forecast, and the figures in docs/notes/biosignal.md were measured with it.
    - Optional RevIN (``revin``, off by default as in the reference).
    """

    def __init__(self, seq_len: int, pred_len: int, channels: int, kernel: int = 25, individual: bool = False,
                 revin: bool = False, revin_affine: bool = True) -> None:
        super().__init__()
        self.revin = RevIN(channels, revin_affine) if revin else None
        self.decomp = MovingAverage(kernel)
        n = channels if individual else 1
        self.seasonal = nn.ModuleList([nn.Linear(seq_len, pred_len) for _ in range(n)])
        self.trend = nn.ModuleList([nn.Linear(seq_len, pred_len) for _ in range(n)])
        for lin in [*self.seasonal, *self.trend]:  # DLinear initialises to the mean of the window
            nn.init.constant_(lin.weight, 1.0 / seq_len)
        self.individual = individual

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
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
    """Informer-style encoder (Zhou et al., "Informer", AAAI 2021; the backbone of Zhang et al. 2023):
    token convolution embedding + sinusoidal positions, then self-attention layers.

    Reference code: github.com/zhouhaoyi/Informer2020 (``models/embed.py``, ``models/encoder.py``) as used
    by github.com/chiyuzhang94/contrastive_learning_time-series_e2e (``models/informer_encoder.py``).

    Deviations from the reference code:
    - Full softmax attention (``nn.TransformerEncoderLayer``, SDPA) instead of ProbSparse attention and
      no distilling convolutions: the inputs are 96 steps long, where full attention is cheap and exact.
    - No calendar (time-feature) embedding: the loaders keep only the numeric channels.
    """

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
    """Dilated causal TCN (Bai, Kolter, Koltun 2018; the TCN backbone of Zhang et al. 2023): residual
    blocks of two dilated causal convolutions, dilation 2^i in block i.

    Reference code: github.com/locuslab/TCN (``TCN/tcn.py``) as used by
    github.com/chiyuzhang94/contrastive_learning_time-series_e2e (``models/tcn_encoder.py``).

    Deviations from the reference code:
    - Pre-activation GELU blocks without weight normalisation (TS2Vec's variant of the block), and a
      linear input projection to ``hidden`` channels so every block's residual is an identity.
    """

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


class EncoderForecaster(_Normalised):
    """An encoder (B, T, C) -> (B, T, D) and a linear head from the flattened features to the horizon
    (Zhang et al. 2023's forecasters), with optional RevIN around both."""

    def __init__(self, encoder: nn.Module, seq_len: int, pred_len: int, channels: int, revin: bool = False,
                 revin_affine: bool = True) -> None:
        super().__init__()
        self.revin = RevIN(channels, revin_affine) if revin else None
        self.encoder = encoder
        self.head = nn.Linear(seq_len * encoder.dim, pred_len * channels)
        self.pred_len, self.channels = pred_len, channels

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled representation of raw windows (RevIN-normalised first when it is on)."""
        return self.encoder(self.normalize(x)).mean(1)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return self.head(h.flatten(1)).view(-1, self.pred_len, self.channels)
