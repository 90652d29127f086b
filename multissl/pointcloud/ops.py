"""Batched point-cloud primitives in pure torch (no CUDA extension): farthest point sampling,
k-nearest neighbours and Point-MAE patch grouping. They run on whatever device the points are on."""

from __future__ import annotations

import torch


def farthest_point_sample(points: torch.Tensor, n: int, start: torch.Tensor | int | None = 0) -> torch.Tensor:
    """Indices (B, n) of ``n`` farthest points of ``points`` (B, N, 3), PointNet++'s iterative FPS.

    ``start`` is the first index (0 as in the official ``furthest_point_sample`` CUDA op), a (B,)
    tensor, or None for a random start. Each iteration is one batched distance update: O(n N).
    """
    b, num, _ = points.shape
    if n > num:
        raise ValueError(f"cannot sample {n} of {num} points")
    idx = torch.empty(b, n, dtype=torch.long, device=points.device)
    if start is None:
        far = torch.randint(0, num, (b,), device=points.device)
    elif isinstance(start, int):
        far = torch.full((b,), start, dtype=torch.long, device=points.device)
    else:
        far = start.to(points.device).long()
    dist = torch.full((b, num), float("inf"), dtype=points.dtype, device=points.device)
    rows = torch.arange(b, device=points.device)
    for i in range(n):
        idx[:, i] = far
        centre = points[rows, far].unsqueeze(1)  # (B, 1, 3)
        dist = torch.minimum(dist, (points - centre).pow(2).sum(-1))
        far = dist.argmax(1)
    return idx


def knn(query: torch.Tensor, points: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """Indices (B, M, k) of the ``k`` nearest ``points`` (B, N, 3) of each ``query`` (B, M, 3), nearest first.

    Exact brute force by blocks of ``chunk`` queries (memory O(chunk * N)), ``torch.topk`` per block.
    """
    if k > points.shape[1]:
        raise ValueError(f"k={k} exceeds the {points.shape[1]} points")
    out = []
    for s in range(0, query.shape[1], chunk):
        q = query[:, s : s + chunk]
        # squared distances via the expansion; clamp tiny negatives
        d = (q.pow(2).sum(-1, keepdim=True) - 2 * q @ points.transpose(1, 2)
             + points.pow(2).sum(-1).unsqueeze(1)).clamp_min(0)  # (B, m, N)
        out.append(d.topk(k, dim=-1, largest=False, sorted=True).indices)
    return torch.cat(out, 1)


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """points (B, N, C) gathered at idx (B, ...) -> (B, ..., C)."""
    b = points.shape[0]
    flat = idx.reshape(b, -1)
    out = torch.gather(points, 1, flat.unsqueeze(-1).expand(-1, -1, points.shape[-1]))
    return out.reshape(*idx.shape, points.shape[-1])


def group_patches(points: torch.Tensor, num_groups: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Point-MAE's ``Group``: FPS centres (B, G, 3) and their kNN patches relative to the centre (B, G, K, 3)."""
    centres = gather_points(points, farthest_point_sample(points, num_groups))
    idx = knn(centres, points, group_size)
    return gather_points(points, idx) - centres.unsqueeze(2), centres
