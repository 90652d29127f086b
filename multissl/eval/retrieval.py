"""Batched top-k retrieval with torch.topk (never a full argsort) and its ranking metrics."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from multissl.eval.metrics import hit_at_k, mrr, ndcg_at_k, recall_at_k

Relevant = torch.Tensor | Sequence[Sequence[int]]


def _padded(rel: Relevant, device: torch.device) -> torch.Tensor:
    """(Q, R) long tensor of relevant key indices padded with -1."""
    if isinstance(rel, torch.Tensor):
        return (rel[:, None] if rel.dim() == 1 else rel).to(device)
    width = max(1, max((len(r) for r in rel), default=1))
    out = torch.full((len(rel), width), -1, dtype=torch.long)
    for i, r in enumerate(rel):
        if len(r):
            out[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
    return out.to(device)


@torch.no_grad()
def topk_retrieval(
    queries: torch.Tensor, keys: torch.Tensor, k: int, batch_size: int = 1024, normalize: bool = True,
    exclude: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k keys for each query by dot product (cosine when ``normalize``), in query batches.

    ``exclude``: CSR ``(indptr, indices)`` of keys to skip per query (e.g. a user's training items).
    Returns (scores (Q, k), indices (Q, k)).
    """
    if normalize:
        queries, keys = F.normalize(queries.float(), dim=-1), F.normalize(keys.float(), dim=-1)
    k = min(k, keys.shape[0])
    all_s, all_i = [], []
    for start in range(0, queries.shape[0], batch_size):
        q = queries[start : start + batch_size]
        scores = q @ keys.t()  # (b, K)
        if exclude is not None:
            indptr, indices = exclude
            lo, hi = int(indptr[start]), int(indptr[min(start + q.shape[0], len(indptr) - 1)])
            counts = (indptr[start + 1 : start + q.shape[0] + 1] - indptr[start : start + q.shape[0]]).to(scores.device)
            rows = torch.repeat_interleave(torch.arange(q.shape[0], device=scores.device), counts)
            scores[rows, indices[lo:hi].to(scores.device)] = float("-inf")
        s, i = scores.topk(k, dim=1)
        all_s.append(s)
        all_i.append(i)
    return torch.cat(all_s), torch.cat(all_i)


def relevance_of(topk_indices: torch.Tensor, relevant: Relevant) -> torch.Tensor:
    """(Q, k) bool: whether each retrieved key is relevant to its query."""
    rel = _padded(relevant, topk_indices.device)
    return (topk_indices[:, :, None] == rel[:, None, :]).any(-1)


def num_relevant(relevant: Relevant) -> torch.Tensor:
    if isinstance(relevant, torch.Tensor):
        return torch.ones(relevant.shape[0], dtype=torch.long) if relevant.dim() == 1 else (relevant >= 0).sum(1)
    return torch.tensor([len(r) for r in relevant], dtype=torch.long)


@torch.no_grad()
def retrieval_metrics(
    queries: torch.Tensor, keys: torch.Tensor, relevant: Relevant, ks: Sequence[int] = (1, 5, 10),
    mrr_cutoff: int | None = 1000, batch_size: int = 1024, normalize: bool = True,
    exclude: tuple[torch.Tensor, torch.Tensor] | None = None, prefix: str = "",
) -> dict[str, float]:
    """MRR, R@K (hit rate: any relevant item in the top K), Recall@K (fraction of relevant items)
    and NDCG@K of ranking ``keys`` for every query. ``relevant``: (Q,) key index per query, or a list of
    key-index lists. ``mrr_cutoff=None`` ranks every key (MRR without a cut-off; it used to stop at
    max(ks), an MRR@10 in disguise)."""
    depth = keys.shape[0] if mrr_cutoff is None else max(max(ks), mrr_cutoff)
    _, idx = topk_retrieval(queries, keys, depth, batch_size, normalize, exclude)
    hits = relevance_of(idx, relevant)
    n_rel = num_relevant(relevant)
    found = hits.any(1)
    first = torch.where(found, hits.float().argmax(1) + 1, torch.zeros_like(found, dtype=torch.long))
    out = {f"{prefix}mrr": mrr(first.cpu(), cutoff=mrr_cutoff)}
    for k in ks:
        out[f"{prefix}r@{k}"] = hit_at_k(hits, k)
        out[f"{prefix}recall@{k}"] = recall_at_k(hits.cpu(), n_rel, k)
        out[f"{prefix}ndcg@{k}"] = ndcg_at_k(hits.cpu(), n_rel, k)
    return out
