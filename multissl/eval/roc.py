"""Area under the ROC curve for binary scores (ties counted half), as the Mann-Whitney U statistic."""

from __future__ import annotations

import torch


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC of ``scores`` (N,) for binary ``labels`` (N,) in {0, 1}; NaN when one class is absent.

    Equals sklearn.metrics.roc_auc_score: the probability that a random positive outranks a random
    negative, ties counted half (average ranks).
    """
    s = scores.detach().double().flatten().cpu()
    y = labels.detach().flatten().cpu().bool()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(s)
    sorted_s = s[order]
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, len(s) + 1, dtype=torch.float64)
    _, inverse, counts = torch.unique(sorted_s, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts + 1  # 1-based rank of each tie group's first member
    avg = first.double() + (counts.double() - 1) / 2
    ranks[order] = avg[inverse]
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))
