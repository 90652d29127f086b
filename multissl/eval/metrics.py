"""Scalar metrics shared by every benchmark: correlations, accuracy and ranking metrics."""

from __future__ import annotations

import numpy as np
import torch


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(x)]])
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = 0.5 * (s + e - 1) + 1
    return ranks


def pearson(x, y) -> float:
    """Pearson correlation coefficient."""
    x, y = _np(x), _np(y)
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def spearman(x, y) -> float:
    """Spearman rank correlation (Pearson of average ranks), as scipy.stats.spearmanr."""
    return pearson(_average_ranks(_np(x)), _average_ranks(_np(y)))


def accuracy(pred, target) -> float:
    """Fraction of equal entries; ``pred`` may be class scores (N, C) or labels (N,)."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.dim() == 2:
        pred = pred.argmax(1)
    return float((pred.cpu() == target.cpu()).float().mean())


def mrr(first_hit_rank: torch.Tensor, cutoff: int | None = None) -> float:
    """Mean reciprocal rank from 1-based ranks of the first relevant item (0 or inf = not found).

    Ranks beyond ``cutoff`` count 0 (CodeSearchNet / CodeXGLUE count ranks > 1000 as 0).
    """
    r = torch.as_tensor(first_hit_rank, dtype=torch.float64)
    rr = torch.where((r > 0) & torch.isfinite(r), 1.0 / r.clamp_min(1), torch.zeros_like(r))
    if cutoff is not None:
        rr = torch.where(r > cutoff, torch.zeros_like(rr), rr)
    return float(rr.mean())


def hit_at_k(hits: torch.Tensor, k: int) -> float:
    """Fraction of queries with at least one relevant item in the top k ("R@K" of CLIP/ALBEF and code
    search). ``hits``: (Q, >=k) bool, relevance of each ranked position."""
    return float(hits[:, :k].any(1).float().mean())


def recall_at_k(hits: torch.Tensor, num_relevant: torch.Tensor, k: int) -> float:
    """Mean over queries of (relevant items in the top k) / (all relevant items): the recommender
    systems' Recall@K (LightGCN, XSimGCL). Queries with no relevant item are skipped."""
    num_relevant = torch.as_tensor(num_relevant, dtype=torch.float64)
    valid = num_relevant > 0
    got = hits[:, :k].double().sum(1)
    return float((got[valid] / num_relevant[valid]).mean())


def ndcg_at_k(hits: torch.Tensor, num_relevant: torch.Tensor, k: int) -> float:
    """NDCG@K with binary relevance: DCG of the ranked hits over the ideal DCG."""
    num_relevant = torch.as_tensor(num_relevant, dtype=torch.long)
    k = min(k, hits.shape[1])
    disc = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    dcg = (hits[:, :k].double() * disc).sum(1)
    ideal_len = num_relevant.clamp(max=k)
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), disc.cumsum(0)])
    idcg = cum[ideal_len]
    valid = num_relevant > 0
    return float((dcg[valid] / idcg[valid]).mean())
