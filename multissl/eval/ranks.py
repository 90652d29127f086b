"""Per-query ranks of the first relevant key over the WHOLE candidate set (no top-k cut), so that
MRR with any cut-off, R@K, per-query output and paired bootstrap intervals all come from one pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from multissl.eval.retrieval import _padded

ScoreFn = Callable[[int, int], torch.Tensor]


@torch.no_grad()
def first_hit_ranks_from_scores(score_rows: ScoreFn, n_queries: int, relevant: torch.Tensor | Sequence[Sequence[int]],
                                batch_size: int = 1024) -> torch.Tensor:
    """1-based rank of each query's best-scored relevant key: 1 + the number of keys scored strictly
    higher + half the number of OTHER keys scored exactly the same (the expected rank under a random
    order of ties, so a lexical scorer that gives many codes 0 is neither helped nor hurt by ties).
    ``score_rows(start, end)`` returns the (end - start, K) scores of those queries."""
    out = []
    for start in range(0, n_queries, batch_size):
        end = min(start + batch_size, n_queries)
        s = score_rows(start, end).float()
        rel = _padded(relevant if not isinstance(relevant, torch.Tensor) else relevant[start:end], s.device)
        if not isinstance(relevant, torch.Tensor):
            rel = rel[start:end]
        valid = rel >= 0
        best = s.gather(1, rel.clamp_min(0)).masked_fill(~valid, float("-inf")).max(1).values  # (b,)
        higher = (s > best[:, None]).sum(1).double()
        ties = ((s == best[:, None]).sum(1) - 1).clamp_min(0).double()
        out.append((1 + higher + ties / 2).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def first_hit_ranks(queries: torch.Tensor, keys: torch.Tensor, relevant, batch_size: int = 1024) -> torch.Tensor:
    """Ranks by dot product of ``queries`` (Q, D) against ``keys`` (K, D) (normalise them for cosine)."""
    q, k = queries.float(), keys.float()
    return first_hit_ranks_from_scores(lambda a, b: q[a:b] @ k.t(), q.shape[0], relevant, batch_size)


def reciprocal_ranks(ranks: torch.Tensor, cutoff: int | None = None) -> torch.Tensor:
    """1 / rank per query, 0 beyond ``cutoff`` (CodeSearchNet / CodeXGLUE: 1000; CoSQA: none)."""
    r = ranks.double()
    rr = 1.0 / r
    if cutoff is not None:
        rr = torch.where(r > cutoff, torch.zeros_like(rr), rr)
    return rr


def ranking_summary(ranks: torch.Tensor, ks: Sequence[int] = (1, 5, 10), cutoff: int | None = None) -> dict[str, float]:
    """MRR (with ``cutoff``) and R@K (hit rate) from per-query ranks."""
    out = {"mrr": float(reciprocal_ranks(ranks, cutoff).mean())}
    for k in ks:
        out[f"r@{k}"] = float((ranks <= k).double().mean())
    return out
