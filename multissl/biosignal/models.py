"""1-D EfficientNet-style encoder for biosignal segments (Abbaspourazad et al., ICLR 2024: MBConv
blocks with squeeze-excitation, global pooling, a 256-d embedding; after Tan & Le, ICML 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from multissl.config import param


@dataclass
class EncoderConfig:
    """Width, depth and strides of each MBConv stage; the defaults are a 1-D EfficientNet-B0 layout."""

    stem_channels: int = param(32, "channels of the stride-2 stem convolution")
    channels: list[int] = param([16, 24, 40, 80, 112, 192, 320], "output channels of each MBConv stage")
    depths: list[int] = param([1, 2, 2, 3, 3, 4, 1], "MBConv blocks per stage")
    strides: list[int] = param([1, 2, 2, 2, 1, 2, 1], "stride of each stage's first block")
    kernels: list[int] = param([3, 3, 5, 3, 5, 5, 3], "depthwise kernel size per stage")
    expand_ratio: int = param(6, "MBConv expansion (the first stage uses 1, as EfficientNet)")
    se_ratio: float = param(0.25, "squeeze-excitation bottleneck ratio")
    head_channels: int = param(1280, "channels of the last 1x1 convolution before pooling")
    embed_dim: int = param(256, "embedding size (paper: 256)")
    dropout: float = param(0.0, "dropout before the embedding layer")

    def validate(self) -> None:
        if not len(self.channels) == len(self.depths) == len(self.strides) == len(self.kernels):
            raise ValueError("model.channels, depths, strides and kernels need one entry per stage")


class SqueezeExcite(nn.Module):
    """Channel gates from the globally pooled signal (Hu et al. 2018)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv1d(channels, max(1, squeeze), 1)
        self.expand = nn.Conv1d(max(1, squeeze), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        s = x.mean(-1, keepdim=True)
        return x * torch.sigmoid(self.expand(nn.functional.silu(self.reduce(s))))


class MBConv1d(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise k -> SE -> 1x1 project (+ identity when shapes match)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, se_ratio: float) -> None:
        super().__init__()
        mid = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv1d(c_in, mid, 1, bias=False), nn.BatchNorm1d(mid), nn.SiLU()]
        layers += [nn.Conv1d(mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False),
                   nn.BatchNorm1d(mid), nn.SiLU(), SqueezeExcite(mid, int(c_in * se_ratio)),
                   nn.Conv1d(mid, c_out, 1, bias=False), nn.BatchNorm1d(c_out)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class EfficientNet1d(nn.Module):
    """(B, C_in, L) -> (B, embed_dim) segment embedding."""

    def __init__(self, in_channels: int, cfg: EncoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(in_channels, cfg.stem_channels, 3, 2, padding=1, bias=False),
                                   nn.BatchNorm1d(cfg.stem_channels), nn.SiLU()]
        c = cfg.stem_channels
        for i, (c_out, depth, stride, k) in enumerate(zip(cfg.channels, cfg.depths, cfg.strides, cfg.kernels,
                                                          strict=True)):
            for j in range(depth):
                layers.append(MBConv1d(c, c_out, k, stride if j == 0 else 1, 1 if i == 0 else cfg.expand_ratio,
                                       cfg.se_ratio))
                c = c_out
        layers += [nn.Conv1d(c, cfg.head_channels, 1, bias=False), nn.BatchNorm1d(cfg.head_channels), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.head_channels, cfg.embed_dim)
        self.embed_dim = cfg.embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).mean(-1)  # global average pooling -> (B, head_channels)
        return self.fc(self.dropout(h))
