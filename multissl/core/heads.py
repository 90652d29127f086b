"""Projection / prediction MLPs and a (learnable) temperature, shared by every method."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Sequential):
    """Linear layers with optional norm and activation between them (SimCLR/BYOL/Barlow heads).

    ``dims`` = [in, hidden..., out]. ``norm``: 'batch', 'layer' or None after each hidden linear;
    ``last_norm``: also normalise the output (BYOL/Barlow use a BN-less last layer; SimSiam uses one).
    """

    def __init__(
        self, dims: Sequence[int], norm: str | None = "batch", activation: type[nn.Module] = nn.ReLU,
        last_norm: bool = False, bias: bool = True, last_bias: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
            last = i == len(dims) - 2
            layers.append(nn.Linear(d_in, d_out, bias=last_bias if last else bias))
            if not last or last_norm:
                if norm == "batch":
                    layers.append(nn.BatchNorm1d(d_out, affine=not last))
                elif norm == "layer":
                    layers.append(nn.LayerNorm(d_out))
                elif norm is not None:
                    raise ValueError(f"norm must be 'batch', 'layer' or None, got {norm!r}")
            if not last:
                layers.append(activation())
        super().__init__(*layers)


class Temperature(nn.Module):
    """A contrastive temperature, fixed or learnable.

    Learnable temperatures are stored as log(1/T) (CLIP's logit scale) or raw T (ALBEF), and
    clamped to [min, max] by :meth:`clamp_` (call it in ``after_step``).
    """

    def __init__(self, init: float = 0.07, learnable: bool = False, min: float = 1e-3, max: float = 0.5,
                 parametrization: str = "raw") -> None:
        super().__init__()
        if parametrization not in ("raw", "log_inverse"):
            raise ValueError("parametrization must be 'raw' or 'log_inverse'")
        self.parametrization, self.min, self.max = parametrization, min, max
        value = torch.tensor(init if parametrization == "raw" else math.log(1 / init))
        if learnable:
            self.value = nn.Parameter(value)
        else:
            self.register_buffer("value", value)

    def forward(self) -> torch.Tensor:
        t = self.value if self.parametrization == "raw" else torch.exp(-self.value)
        return t.clamp(self.min, self.max)

    @torch.no_grad()
    def clamp_(self) -> None:
        if self.parametrization == "raw":
            self.value.clamp_(self.min, self.max)
        else:
            self.value.clamp_(math.log(1 / self.max), math.log(1 / self.min))
