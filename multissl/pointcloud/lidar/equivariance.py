"""Feature equivariance of a BEV backbone: do the features of a transformed scan equal the transformed
features of the scan? The measure every LiDAR run reports (the claim of equivariant pre-training,
Hegde et al., ECCV 2024, checked on the features rather than on the loss).

For a scene x, a transform T and cells p occupied by x, compare F(Tx) at T(p) with F(x) at p (matched)
and with F(x) at p' for a random other occupied cell p' of the same scene (shuffled). Reported per
transform: mean cosine matched and shuffled, their gap, and top-1 retrieval: the fraction of cells p
whose F(Tx)[T p] is closer to F(x)[p] than to every other sampled F(x)[p'] (chance 1 / samples).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from multissl.pointcloud.lidar.methods import (
    apply_transform,
    linear_part,
    map_locations,
    sample_features,
)
from multissl.pointcloud.lidar.pillars import Grid

# name -> (angle, flip, scale, (tx, ty)): one fixed instance per transform family, and a composite
TRANSFORMS: dict[str, tuple[float, float, float, tuple[float, float]]] = {
    "rotation90": (math.pi / 2, 0.0, 1.0, (0.0, 0.0)),
    "flip": (0.0, 1.0, 1.0, (0.0, 0.0)),
    "scale1.1": (0.0, 0.0, 1.1, (0.0, 0.0)),
    "translate2m": (0.0, 0.0, 1.0, (2.0, -1.2)),
    "composite": (math.pi / 2, 1.0, 1.1, (2.0, -1.2)),
}


def _params(b: int, angle: float, flip: float, scale: float, shift: tuple[float, float]) -> dict:
    return {"angle": torch.full((b,), angle), "flip": torch.full((b,), flip), "scale": torch.full((b,), scale),
            "shift": torch.tensor(shift).expand(b, 2).clone()}


def _occupied(points: np.ndarray, s: int, extent: float, g: torch.Generator) -> torch.Tensor:
    """(s, 2) distinct random points of a scene inside 80 % of the grid (so T(p) stays inside)."""
    p = torch.as_tensor(points[:, :2]).float()
    p = p[(p.abs() < extent * 0.8).all(1)]
    if len(p) == 0:
        return torch.zeros(s, 2)
    idx = torch.randperm(len(p), generator=g)[:s]
    if len(idx) < s:
        idx = idx[torch.randint(0, len(idx), (s,), generator=g)]
    return p[idx]


@torch.no_grad()
def feature_equivariance(backbone: torch.nn.Module, scenes: list[dict], grid: Grid, samples: int = 128,
                         seed: int = 0, batch_size: int = 8) -> dict[str, float]:
    """``equiv/<transform>/{matched,shuffled,gap,top1}`` over ``scenes`` (backbone in eval mode), and
    ``equiv/gap`` and ``equiv/top1``: their means over the transforms."""
    was_training = backbone.training
    backbone.eval()
    g = torch.Generator().manual_seed(seed)
    sums: dict[str, list[float]] = {}
    for start in range(0, len(scenes), batch_size):
        chunk = scenes[start : start + batch_size]
        b = len(chunk)
        pts = [torch.as_tensor(s["points0"][:, :3]).float() for s in chunk]
        p0 = torch.cat(pts)
        b0 = torch.cat([torch.full((len(p),), i, dtype=torch.long) for i, p in enumerate(pts)])
        loc = torch.stack([_occupied(s["points0"], samples, grid.extent, g) for s in chunk])  # (B, S, 2)
        fx = F.normalize(sample_features(backbone(p0, b0, b), loc, grid), dim=-1)  # (B, S, C)
        perm = torch.stack([torch.randperm(samples, generator=g) for _ in range(b)])
        for name, spec in TRANSFORMS.items():
            params = _params(b, *spec)
            ft = backbone(apply_transform(p0, b0, linear_part(params), params["scale"], params["shift"]), b0, b)
            fq = F.normalize(sample_features(ft, map_locations(params, loc), grid), dim=-1)  # (B, S, C)
            matched = (fq * fx).sum(-1)  # (B, S)
            shuffled = (fq * torch.gather(fx, 1, perm[..., None].expand_as(fx))).sum(-1)
            sim = fq @ fx.transpose(1, 2)  # (B, S, S)
            top1 = (sim.argmax(-1) == torch.arange(samples)).float()
            for key, val in (("matched", matched), ("shuffled", shuffled), ("top1", top1)):
                sums.setdefault(f"equiv/{name}/{key}", []).append(float(val.mean()) * b)
    n = len(scenes)
    out = {k: sum(v) / n for k, v in sums.items()}
    for name in TRANSFORMS:
        out[f"equiv/{name}/gap"] = out[f"equiv/{name}/matched"] - out[f"equiv/{name}/shuffled"]
    out["equiv/gap"] = float(np.mean([out[f"equiv/{t}/gap"] for t in TRANSFORMS]))
    out["equiv/top1"] = float(np.mean([out[f"equiv/{t}/top1"] for t in TRANSFORMS]))
    backbone.train(was_training)
    return out
