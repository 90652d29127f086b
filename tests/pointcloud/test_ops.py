"""FPS, kNN and patch grouping in pure torch against brute-force references."""

import numpy as np
import torch

from multissl.pointcloud.ops import (
    farthest_point_sample,
    gather_points,
    group_patches,
    knn,
)


def _fps_reference(x: np.ndarray, n: int) -> list[int]:
    chosen = [0]
    for _ in range(n - 1):
        d = np.min(((x[:, None] - x[chosen][None]) ** 2).sum(-1), 1)
        chosen.append(int(d.argmax()))
    return chosen


def test_fps_matches_brute_force_and_spreads_points():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 200, 3, generator=g, dtype=torch.float64)
    idx = farthest_point_sample(x, 16)
    for b in range(3):
        assert idx[b].tolist() == _fps_reference(x[b].numpy(), 16)
    assert len(set(idx[0].tolist())) == 16
    # FPS covers the cloud better than a random subset: larger minimum pairwise distance
    fps_pts = x[0, idx[0]]
    rnd = x[0, :16]
    md = lambda p: torch.pdist(p).min()
    assert md(fps_pts) > md(rnd)


def test_knn_matches_brute_force_and_chunking():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(2, 300, 3, generator=g, dtype=torch.float64)
    q = torch.randn(2, 50, 3, generator=g, dtype=torch.float64)
    idx = knn(q, pts, 8, chunk=7)
    ref = torch.cdist(q, pts).argsort(-1)[..., :8]
    assert torch.equal(idx, ref)


def test_group_patches_are_relative_to_their_centre():
    x = torch.randn(2, 128, 3, generator=torch.Generator().manual_seed(2))
    patches, centres = group_patches(x, 8, 16)
    assert patches.shape == (2, 8, 16, 3) and centres.shape == (2, 8, 3)
    # the nearest neighbour of a centre is the centre itself (it is one of the points)
    assert torch.allclose(patches[:, :, 0], torch.zeros(2, 8, 3), atol=1e-6)
    absolute = patches + centres[:, :, None]
    flat = absolute.reshape(2, -1, 3)
    assert ((flat[:, :, None] - x[:, None]).norm(dim=-1).min(-1).values < 1e-5).all()
    assert gather_points(x, torch.zeros(2, 4, dtype=torch.long)).shape == (2, 4, 3)
