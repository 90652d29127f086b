"""Full-ranking top-K evaluation of a recommender: every item is scored for every evaluated user,
known (training) items are excluded, Recall@K and NDCG@K as in LightGCN / XSimGCL's evaluation."""

from __future__ import annotations

import torch

from multissl.eval import ndcg_at_k, recall_at_k, topk_retrieval
from multissl.graph.data import contains, pair_keys


def _exclusion_csr(users: torch.Tensor, exclude: torch.Tensor, num_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR over the QUERIED users (row r = users[r]) of the items to skip."""
    pos_of = torch.full((num_users,), -1, dtype=torch.long)
    pos_of[users] = torch.arange(len(users))
    rows = pos_of[exclude[:, 0]]
    keep = rows >= 0
    rows, items = rows[keep], exclude[keep, 1]
    order = torch.argsort(rows, stable=True)
    counts = torch.bincount(rows, minlength=len(users))
    indptr = torch.zeros(len(users) + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, items[order]


@torch.no_grad()
def full_ranking(user_emb: torch.Tensor, item_emb: torch.Tensor, relevant: torch.Tensor, exclude: torch.Tensor,
                 ks: tuple[int, ...] = (20,), batch_size: int = 2048, prefix: str = "") -> dict[str, float]:
    """Recall@K / NDCG@K over every user with a relevant pair, ranking all items by dot product.

    ``relevant``: (R, 2) held-out (user, item) pairs; ``exclude``: (X, 2) pairs never ranked (the
    user's training items). Top-K via ``multissl.eval.topk_retrieval`` (batched ``torch.topk``, CSR
    exclusion); hits via a sorted-key membership test, no Python loop over users.
    """
    num_users, num_items = user_emb.shape[0], item_emb.shape[0]
    relevant, exclude = relevant.cpu(), exclude.cpu()
    users = torch.unique(relevant[:, 0])
    n_rel = torch.bincount(relevant[:, 0], minlength=num_users)[users]
    kmax = max(ks)
    _, top = topk_retrieval(user_emb[users.to(user_emb.device)], item_emb, kmax, batch_size=batch_size,
                            normalize=False, exclude=_exclusion_csr(users, exclude, num_users))
    keys = pair_keys(relevant, num_items)
    hits = contains(keys, users[:, None] * num_items + top.cpu())  # (Q, kmax) bool
    out: dict[str, float] = {}
    for k in ks:
        out[f"{prefix}recall@{k}"] = recall_at_k(hits, n_rel, k)
        out[f"{prefix}ndcg@{k}"] = ndcg_at_k(hits, n_rel, k)
    return out


def popularity_scores(train: torch.Tensor, num_users: int, num_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(user (U, 1), item (I, 1)) 'embeddings' whose dot product ranks items by training popularity."""
    counts = torch.bincount(train[:, 1], minlength=num_items).float()
    return torch.ones(num_users, 1), counts[:, None]
