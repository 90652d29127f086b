"""Contrastive, redundancy-reduction and reconstruction losses shared by every modality.

Each loss is a pure function of tensors. Embeddings are compared by cosine similarity unless a
function says otherwise; ``gather=True`` makes a loss use the keys of every process (local rows vs
all columns), so it equals the single-process loss on the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multissl.core.distributed import (
    all_gather_no_grad,
    all_reduce_max,
    all_reduce_sum,
    gather_with_grad,
    rank,
    world_size,
)

Tensorish = float | torch.Tensor


def _block_logits(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Similarities of each query with a shared key block (K, D) or its own keys (B, K, D)."""
    if keys.dim() == 3:
        return torch.einsum("bd,bkd->bk", query, keys)
    return query @ keys.t()


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    *,
    temperature: Tensorish = 0.1,
    extra_keys: torch.Tensor | list[torch.Tensor] | None = None,
    positive_mask: torch.Tensor | None = None,
    soft_targets: torch.Tensor | None = None,
    soft_weight: float = 1.0,
    false_negative_mask: torch.Tensor | None = None,
    query_ids: torch.Tensor | None = None,
    key_ids: torch.Tensor | None = None,
    extra_key_ids: torch.Tensor | list[torch.Tensor | None] | None = None,
    symmetric: bool = False,
    normalize: bool = True,
    gather: bool = False,
    in_batch_negatives: bool = True,
) -> torch.Tensor:
    """InfoNCE / NT-Xent cross-entropy of queries against keys (Oord et al. 2018; He et al. 2020).

    Columns are ``[key | extra_keys...]``; by default query ``i``'s positive is key ``i`` (offset by
    rank when ``gather``). Extra key blocks (a queue of shape (K, D), or per-query keys (B, K, D) such
    as MoCHi's mixed negatives) only add negatives unless the masks/targets say otherwise.

    Args:
        query: (B, D) anchors.
        key: (N, D) in-batch keys; N == B for the default diagonal positives.
        temperature: a float or a (learnable) scalar tensor.
        extra_keys: extra columns, e.g. a queue; a tensor or a list of tensors.
        positive_mask: (B, C) bool over all C columns: several positives per row; the loss averages
            -log p over them (SupCon's L_out).
        soft_targets: (B, C) target distribution (momentum distillation, ALBEF); mixed with the hard
            targets as ``(1 - soft_weight) * hard + soft_weight * soft``.
        false_negative_mask: (B, C) bool, True = drop that column from row's denominator (never a positive).
        query_ids, key_ids, extra_key_ids: ids (e.g. participant or sample id); columns whose id equals
            the row's id are dropped from the denominator unless they are positives.
        symmetric: also compute key->query over the in-batch block and average both directions (CLIP).
            The reverse direction uses the transposed in-batch blocks of ``positive_mask``,
            ``false_negative_mask`` and ``soft_targets`` and the swapped ids; ``extra_keys`` are refused
            (each direction needs its own queue: call ``info_nce`` once per direction).
        normalize: L2-normalise query and keys first.
        gather: gather keys (with gradients) from all processes; local rows vs all columns.
        in_batch_negatives: False = the in-batch block is only each row's own key (one column, the
            positive) and the negatives come from ``extra_keys`` alone: MoCo's ``[q.k+ | q.queue]``
            (``gather`` then has nothing to gather; ``symmetric`` is refused).
    """
    if symmetric and extra_keys is not None:
        raise ValueError("info_nce: symmetric=True with extra_keys is ambiguous (the reverse direction needs its "
                         "own queue); call info_nce once per direction with its extra_keys")
    if not in_batch_negatives:
        if symmetric:
            raise ValueError("info_nce: symmetric=True needs in-batch negatives (the reverse direction has no queue)")
        if key.shape[0] != query.shape[0]:
            raise ValueError(f"info_nce: in_batch_negatives=False pairs query i with key i; got {query.shape[0]} "
                             f"queries and {key.shape[0]} keys")
    if normalize:
        query, key = F.normalize(query, dim=-1), F.normalize(key, dim=-1)
    blocks = [] if extra_keys is None else (list(extra_keys) if isinstance(extra_keys, list) else [extra_keys])
    if normalize:
        blocks = [F.normalize(b, dim=-1) for b in blocks]
    all_keys, all_key_ids, offset = key, key_ids, 0
    if gather and world_size() > 1 and in_batch_negatives:
        all_keys = gather_with_grad(key)
        if key_ids is not None:
            all_key_ids = all_gather_no_grad(key_ids)
        offset = rank() * key.shape[0]
    if in_batch_negatives:
        first = _block_logits(query, all_keys)  # (B, N)
    else:
        first = (query * key).sum(-1, keepdim=True)  # (B, 1): the positive only
    logits = torch.cat([first] + [_block_logits(query, b) for b in blocks], dim=1)
    logits = logits / temperature
    batch, columns = logits.shape

    hard = positive_mask is None
    if hard:
        labels = torch.arange(batch, device=query.device) + offset
        if not in_batch_negatives:
            labels = torch.zeros(batch, dtype=torch.long, device=query.device)
        positives = F.one_hot(labels, columns).bool() if (soft_targets is not None or _needs_mask(
            false_negative_mask, query_ids)) else None
    else:
        positives = positive_mask.bool()
        if positives.shape != logits.shape:
            raise ValueError(f"positive_mask has shape {tuple(positives.shape)}, logits {tuple(logits.shape)}")
        if not positives.any(1).all():
            raise ValueError("every row of positive_mask needs at least one positive")

    drop = None
    if false_negative_mask is not None:
        drop = false_negative_mask.bool()
    if query_ids is not None:
        if all_key_ids is None:
            raise ValueError("query_ids needs key_ids")
        block_ids = extra_key_ids if isinstance(extra_key_ids, (list, tuple)) else [extra_key_ids] * len(blocks)
        same = [query_ids[:, None] == (all_key_ids[None, :] if in_batch_negatives else all_key_ids[:, None])]
        for b, ids in zip(blocks, block_ids, strict=True):
            width = b.shape[0] if b.dim() == 2 else b.shape[1]
            if ids is None or b.dim() == 3:  # no ids for this block: nothing to mask
                same.append(torch.zeros(batch, width, dtype=torch.bool, device=logits.device))
            else:
                same.append(query_ids[:, None] == ids[None, :])
        same = torch.cat(same, dim=1)
        drop = same if drop is None else drop | same
    if drop is not None:
        drop = drop & ~positives
        logits = logits.masked_fill(drop, float("-inf"))

    if hard and soft_targets is None:
        loss = F.cross_entropy(logits, labels)
    else:
        targets = positives.float()
        targets = targets / targets.sum(1, keepdim=True)
        if soft_targets is not None:
            targets = (1.0 - soft_weight) * targets + soft_weight * soft_targets
        log_prob = F.log_softmax(logits, dim=1)
        loss = -(targets * log_prob.masked_fill(targets == 0, 0.0)).sum(1).mean()

    if symmetric:
        flip = gather and world_size() > 1
        reverse = info_nce(
            key, query, temperature=temperature, normalize=False, gather=gather,
            positive_mask=None if positive_mask is None else _transpose_block(positive_mask.bool(), flip),
            false_negative_mask=None if false_negative_mask is None else _transpose_block(
                false_negative_mask.bool(), flip),
            soft_targets=None if soft_targets is None else _renormalize(_transpose_block(soft_targets, flip)),
            soft_weight=soft_weight,
            query_ids=key_ids, key_ids=query_ids,
        )
        loss = 0.5 * (loss + reverse)
    return loss


def _needs_mask(false_negative_mask: torch.Tensor | None, query_ids: torch.Tensor | None) -> bool:
    return false_negative_mask is not None or query_ids is not None


def _transpose_block(matrix: torch.Tensor, gathered: bool) -> torch.Tensor:
    """The key->query view (B_keys, N_queries) of a query->key in-batch matrix (B, N) (extra columns
    cannot exist here). Under ``gathered`` the rows of every process are gathered first, so each process
    gets its own keys' rows against all queries."""
    if not gathered:
        return matrix.t()
    b = matrix.shape[0]
    full = all_gather_no_grad(matrix)  # (N, N): all queries x all keys
    return full[:, rank() * b : (rank() + 1) * b].t()


def _renormalize(targets: torch.Tensor) -> torch.Tensor:
    return targets / targets.sum(1, keepdim=True).clamp_min(1e-12)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: Tensorish = 0.5, gather: bool = False) -> torch.Tensor:
    """SimCLR's NT-Xent (Chen et al. 2020): 2N views, each view's positive is its partner, the other
    2N-2 views are negatives; averaged over all 2N anchors."""
    z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    local = torch.cat([z1, z2], 0)  # (2B, D)
    b = z1.shape[0]
    if gather and world_size() > 1:
        g1, g2 = gather_with_grad(z1), gather_with_grad(z2)
        cols, offset, n = torch.cat([g1, g2], 0), rank() * b, g1.shape[0]
    else:
        cols, offset, n = local, 0, b
    logits = local @ cols.t() / temperature  # (2B, 2N)
    idx = torch.arange(b, device=z1.device) + offset
    self_cols = torch.cat([idx, idx + n])
    logits[torch.arange(2 * b, device=z1.device), self_cols] = float("-inf")
    labels = torch.cat([idx + n, idx])
    return F.cross_entropy(logits, labels)


def dcl(
    z1: torch.Tensor, z2: torch.Tensor, temperature: Tensorish = 0.1, vmf_sigma: float | None = None,
    gather: bool = False,
) -> torch.Tensor:
    """Decoupled contrastive loss (Yeh et al., ECCV 2022): NT-Xent with the positive removed from the
    denominator. ``vmf_sigma`` enables DCLW's von Mises-Fisher weighting of the positive term."""
    z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    b = z1.shape[0]
    if gather and world_size() > 1:
        g1, g2 = gather_with_grad(z1), gather_with_grad(z2)
        offset = rank() * b
    else:
        g1, g2, offset = z1, z2, 0
    idx = torch.arange(b, device=z1.device) + offset

    def one_side(a: torch.Tensor, same: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        pos = (a * other[idx]).sum(1) / temperature  # (B,)
        if vmf_sigma is not None:
            w = 2 - b * F.softmax((a * other[idx]).sum(1).detach() / vmf_sigma, dim=0)
            pos = pos * w
        cross = a @ other.t() / temperature
        within = a @ same.t() / temperature
        rows = torch.arange(b, device=a.device)
        cross[rows, idx] = float("-inf")
        within[rows, idx] = float("-inf")
        neg = torch.logsumexp(torch.cat([cross, within], 1), dim=1)
        return (neg - pos).mean()

    return 0.5 * (one_side(z1, g1, g2) + one_side(z2, g2, g1))


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3, gather: bool = False) -> torch.Tensor:
    """Barlow Twins (Zbontar et al., ICML 2021): push the batch-standardised cross-correlation to I."""
    if gather:
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    n = z1.shape[0]
    z1 = (z1 - z1.mean(0)) / z1.std(0, unbiased=False).clamp_min(1e-5)
    z2 = (z2 - z2.mean(0)) / z2.std(0, unbiased=False).clamp_min(1e-5)
    c = z1.t() @ z2 / n  # (D, D)
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + lambd * off


def vicreg(
    z1: torch.Tensor, z2: torch.Tensor, sim_weight: float = 25.0, var_weight: float = 25.0,
    cov_weight: float = 1.0, gamma: float = 1.0, eps: float = 1e-4, gather: bool = False,
) -> torch.Tensor:
    """VICReg (Bardes et al., ICLR 2022): invariance (MSE) + variance hinge + covariance decorrelation."""
    sim = F.mse_loss(z1, z2)
    if gather:
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    n, d = z1.shape

    def var_cov(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = z - z.mean(0)
        std = torch.sqrt(z.var(0) + eps)
        var = F.relu(gamma - std).mean()
        cov = z.t() @ z / (n - 1)
        off = cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()
        return var, off / d

    v1, c1 = var_cov(z1)
    v2, c2 = var_cov(z2)
    return sim_weight * sim + var_weight * (v1 + v2) + cov_weight * (c1 + c2)


def koleo(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KoLeo regulariser (Sablayrolles et al., ICLR 2019; DINOv2): -mean log distance of each
    L2-normalised embedding to its nearest neighbour in the batch; spreads embeddings uniformly."""
    x = F.normalize(x, dim=-1, eps=eps)
    with torch.no_grad():
        dots = x @ x.t()
        dots.fill_diagonal_(-2.0)
        nn_idx = dots.argmax(dim=1)
    dist = F.pairwise_distance(x, x[nn_idx], p=2, eps=eps)
    return -torch.log(dist + eps).mean()


def scaled_cosine_error(x: torch.Tensor, y: torch.Tensor, alpha: float = 3.0) -> torch.Tensor:
    """GraphMAE's scaled cosine error (Hou et al., KDD 2022): mean((1 - cos(x, y)) ** alpha)."""
    cos = (F.normalize(x, dim=-1) * F.normalize(y, dim=-1)).sum(-1)
    return (1 - cos).pow(alpha).mean()


def chamfer_distance(x: torch.Tensor, y: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """Chamfer distance between point sets x (B, N, 3) and y (B, M, 3), averaged over the batch.

    ``l2``: mean squared nearest-neighbour distance both ways, summed (Point-MAE's ChamferDistanceL2);
    ``l1``: mean Euclidean nearest-neighbour distance both ways, halved (ChamferDistanceL1).
    """
    d = torch.cdist(x, y).pow(2)  # (B, N, M) squared distances
    d1 = d.min(dim=2).values  # x -> y
    d2 = d.min(dim=1).values  # y -> x
    if norm == "l2":
        return d1.mean() + d2.mean()
    if norm == "l1":
        return 0.5 * (d1.clamp_min(0).sqrt().mean() + d2.clamp_min(0).sqrt().mean())
    raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")


@torch.no_grad()
def mix_hard_negatives(
    query: torch.Tensor, negatives: torch.Tensor, num_hard: int = 1024, num_mixed: int = 1024,
    num_self_mixed: int = 256, self_mix_max: float = 0.5, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """MoCHi hard negative mixing (Kalantidis et al., NeurIPS 2020).

    For each query, rank the shared negatives by similarity, keep the ``num_hard`` hardest, and
    synthesise ``num_mixed`` negatives as normalised convex combinations of two of them (coefficient
    ~U(0, 1)) plus ``num_self_mixed`` mixing the query itself with one hard negative (coefficient
    ~U(0, self_mix_max) on the query). Returns (B, num_mixed + num_self_mixed, D) per-query negatives,
    detached, to pass to :func:`info_nce` as ``extra_keys``.
    """
    q = F.normalize(query, dim=-1)
    neg = F.normalize(negatives, dim=-1)
    b, d = q.shape
    n = min(num_hard, neg.shape[0])
    hard_idx = (q @ neg.t()).topk(n, dim=1).indices  # (B, n)
    hard = neg[hard_idx]  # (B, n, D)
    out = []
    if num_mixed > 0:
        i = torch.randint(0, n, (b, num_mixed), device=q.device, generator=generator)
        j = torch.randint(0, n, (b, num_mixed), device=q.device, generator=generator)
        a = torch.rand(b, num_mixed, 1, device=q.device, generator=generator, dtype=q.dtype)
        hi = torch.gather(hard, 1, i[..., None].expand(-1, -1, d))
        hj = torch.gather(hard, 1, j[..., None].expand(-1, -1, d))
        out.append(F.normalize(a * hi + (1 - a) * hj, dim=-1))
    if num_self_mixed > 0:
        j = torch.randint(0, n, (b, num_self_mixed), device=q.device, generator=generator)
        beta = torch.rand(b, num_self_mixed, 1, device=q.device, generator=generator, dtype=q.dtype) * self_mix_max
        hj = torch.gather(hard, 1, j[..., None].expand(-1, -1, d))
        out.append(F.normalize(beta * q[:, None, :] + (1 - beta) * hj, dim=-1))
    return torch.cat(out, 1) if out else q.new_zeros(b, 0, d)


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Equal-partition soft assignment of B samples to K prototypes (SwAV, Caron et al. 2020).

    ``scores``: (B, K) prototype scores of the local batch; the row/column normalisations sum over
    all processes, and the max subtracted for stability is the GLOBAL max, so several processes give
    the codes of one process on the global batch. Returns (B, K) assignments whose rows sum to 1.
    """
    scores = scores.float()
    top = all_reduce_max(scores.max().clone())
    q = torch.exp((scores - top) / epsilon).t()  # (K, B)
    total_b = q.shape[1] * world_size()
    k = q.shape[0]
    q /= all_reduce_sum(q.sum())
    for _ in range(iterations):
        q /= all_reduce_sum(q.sum(dim=1, keepdim=True))
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= total_b
    return (q * total_b).t()


