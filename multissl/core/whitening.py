"""Batch whitening: ZCA over channel groups, with an optional random channel shuffle.

Shuffled group whitening follows WhitenedCSE (Zhuo, Wang, Liang, et al., ACL 2023), itself built on
group / decorrelated batch whitening (Huang et al., CVPR 2018; Ermolov et al., W-MSE, ICML 2021):
permute the D channels at random, split them into G groups of D/G, whiten each group with the ZCA
matrix of the batch covariance, ``W = U diag((S + eps)^-1/2) U^T`` from ``torch.linalg.eigh``, and
undo the permutation. A fresh permutation per call makes each view of a sentence whitened over a
different grouping, which WhitenedCSE uses as extra positive augmentation.

``detach_whitening`` stops the gradient through the whitening matrix (W is treated as a constant of
the batch), as WhitenedCSE's released code does by re-wrapping the covariance; the paper's formulation
back-propagates through it (``False``).
"""

from __future__ import annotations

import torch
from torch import nn


def group_whiten(x: torch.Tensor, num_groups: int, eps: float = 1e-5, permutation: torch.Tensor | None = None,
                 detach_whitening: bool = False) -> torch.Tensor:
    """ZCA-whiten the batch ``x`` (N, D) within ``num_groups`` channel groups; returns (N, D).

    ``permutation`` (D,) reorders channels before grouping (and is undone afterwards). Each group's
    output has (up to ``eps``) identity covariance and zero mean over the batch.
    """
    n, d = x.shape
    if d % num_groups:
        raise ValueError(f"{d} channels cannot be split into {num_groups} equal groups")
    dtype = x.dtype
    x = x.float()  # eigh needs fp32 even under autocast
    if permutation is not None:
        x = x[:, permutation]
    g = x.reshape(n, num_groups, d // num_groups).transpose(0, 1)  # (G, N, D/G)
    g = g - g.mean(dim=1, keepdim=True)
    cov = g.transpose(1, 2) @ g / n  # (G, D/G, D/G)
    if detach_whitening:
        cov = cov.detach()
    eye = torch.eye(cov.shape[-1], device=cov.device, dtype=cov.dtype)
    evals, evecs = torch.linalg.eigh(cov + eps * eye)
    w = evecs @ torch.diag_embed(evals.clamp_min(eps).rsqrt()) @ evecs.transpose(1, 2)  # (G, D/G, D/G)
    out = (g @ w).transpose(0, 1).reshape(n, d)  # (N, D)
    if permutation is not None:
        out = out[:, torch.argsort(permutation)]
    return out.to(dtype)


class ShuffledGroupWhitening(nn.Module):
    """WhitenedCSE's shuffled group whitening of a batch of embeddings (no parameters).

    Each call draws a new channel permutation (when ``shuffle``) and whitens with the current batch's
    statistics, in training and evaluation alike (it is a training-time head in WhitenedCSE).
    """

    def __init__(self, num_features: int, num_groups: int = 128, shuffle: bool = True, eps: float = 1e-5,
                 detach_whitening: bool = False) -> None:
        super().__init__()
        if num_features % num_groups:
            raise ValueError(f"num_features {num_features} is not divisible by num_groups {num_groups}")
        self.num_features, self.num_groups = num_features, num_groups
        self.shuffle = shuffle and num_groups > 1
        self.eps, self.detach_whitening = eps, detach_whitening

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        perm = torch.randperm(self.num_features, device=x.device) if self.shuffle else None
        return group_whiten(x, self.num_groups, self.eps, perm, self.detach_whitening)

    def extra_repr(self) -> str:
        return (f"num_features={self.num_features}, num_groups={self.num_groups}, shuffle={self.shuffle}, "
                f"eps={self.eps}, detach_whitening={self.detach_whitening}")
