"""Real ModelNet10 objects from their shipped voxelisation: the official train / test split as 24^3
occupancy grids (``data/pointcloud/modelnet10_vox/modelnet10_vox24.npz``, see the data README), turned
into point clouds by sampling the surface of each voxel solid uniformly by area.

Deviation from Point-MAE's data (stated wherever a figure uses it): the paper samples 1,024 points
from the ModelNet meshes (the ``modelnet40_normal_resampled`` set, FPS from 10k points). The meshes
could not be obtained offline; the voxel surface is a 1/24-resolution staircase approximation of the
same shapes (binvox scales each mesh so its longest side spans the 24 cells: metric size is not in
ModelNet anyway, which stores CAD models in arbitrary units). Exposed faces (an occupied cell next to
an empty cell or the grid border) all have the same area, so choosing faces uniformly and a point
uniformly on each face samples the voxel surface uniformly by area, as ``io.sample_mesh`` does for a
mesh.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from multissl.errors import DataError
from multissl.pointcloud import io

DEFAULT_PATH = "pointcloud/modelnet10_vox/modelnet10_vox24.npz"


def read_grids(path: str | None = None, drop_empty: bool = True) -> dict[str, np.ndarray]:
    """``train``/``test`` occupancy (N, G, G, G) bool, ``y_train``/``y_test`` int64 and ``classes``;
    empty grids dropped (3,984 train and 907 test shapes remain of the shipped 3,991 and 908).

    Reads the shipped bit-packed file (``*_bits``) or the unchanged public ``modelnet10.npz``
    (``X_train``/``X_test`` (N, 30, 30, 30) with 3 cells of empty padding)."""
    p = io.resolve_data_path(path or DEFAULT_PATH, "ModelNet10 voxel file")
    z = np.load(p, allow_pickle=False)
    out: dict[str, np.ndarray] = {}
    if "train_bits" in z.files:
        g = int(z["grid"])
        for s in ("train", "test"):
            bits = z[f"{s}_bits"]
            out[s] = np.unpackbits(bits, axis=1, count=g ** 3).astype(bool).reshape(len(bits), g, g, g)
        out["classes"] = z["classes"]
    elif "X_train" in z.files:
        for s in ("train", "test"):
            out[s] = z[f"X_{s}"].astype(bool)
        out["classes"] = np.array(["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa",
                                   "table", "toilet"])
    else:
        raise DataError(f"{p}: expected train_bits/test_bits (shipped) or X_train/X_test (modelnet10.npz); "
                        f"found {z.files}")
    out["y_train"], out["y_test"] = z["y_train"].astype(np.int64), z["y_test"].astype(np.int64)
    if len(out["train"]) != len(out["y_train"]) or len(out["test"]) != len(out["y_test"]):
        raise DataError(f"{p}: grids and labels differ in length")
    if drop_empty:  # the public voxelisation has 8 empty grids (7 train, 1 test): binvox failures
        for s in ("train", "test"):
            keep = out[s].reshape(len(out[s]), -1).any(1)
            out[s], out[f"y_{s}"] = out[s][keep], out[f"y_{s}"][keep]
    return out


def exposed_faces(vox: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exposed faces of a (G, G, G) occupancy grid: their cell indices (F, 3) and face directions (F,)
    in 0..5 (axis * 2 + (0 for -, 1 for +)); a face is exposed when the neighbour across it is empty
    or outside the grid."""
    padded = np.pad(vox, 1)
    cells, dirs = [], []
    for axis in range(3):
        for k, step in enumerate((-1, 1)):
            neighbour = np.roll(padded, -step, axis=axis)[1:-1, 1:-1, 1:-1]
            idx = np.argwhere(vox & ~neighbour)
            cells.append(idx)
            dirs.append(np.full(len(idx), axis * 2 + k))
    return np.concatenate(cells), np.concatenate(dirs)


def sample_surface(vox: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) float32 points uniform by area on the surface of the voxel solid, in grid units (the
    grid spans [0, 1] on each axis)."""
    cells, dirs = exposed_faces(vox)
    if len(cells) == 0:
        raise DataError("an empty voxel grid has no surface to sample")
    pick = rng.choice(len(cells), n, replace=len(cells) < n)
    c, d = cells[pick].astype(np.float64), dirs[pick]
    axis, side = d // 2, d % 2
    pts = c + rng.random((n, 3))
    pts[np.arange(n), axis] = c[np.arange(n), axis] + side  # onto the face plane
    return (pts / vox.shape[0]).astype(np.float32)


@lru_cache(maxsize=2)
def _grids(path: str | None) -> dict[str, np.ndarray]:
    return read_grids(path)


def _sample(grids: np.ndarray, idx: np.ndarray, num_points: int, seed: int, split: int) -> np.ndarray:
    """Clouds of the grids ``idx``; shape i of a split always gets the generator (seed, split, i), so a
    subset holds the same clouds as the full set."""
    return np.stack([sample_surface(grids[i], num_points, np.random.default_rng([seed, split, int(i)])) for i in idx])


def load_modelnet10_vox(path: str | None, num_points: int, seed: int, train_per_class: int | None,
                        test_per_class: int | None, how: str = "unit_sphere") -> tuple[np.ndarray, ...]:
    """(train_x, train_y, test_x, test_y): surface clouds of the official ModelNet10 train / test split,
    normalised by ``how`` (``unit_sphere``: Point-MAE's pc_norm; ``centre``: binvox's scale, longest
    side 1). ``*_per_class`` keep the first that many of each class (file order)."""
    g = _grids(path)
    tr_y, te_y = g["y_train"], g["y_test"]

    def first(y, k):
        if k is None:
            return np.arange(len(y))
        return np.sort(np.concatenate([np.flatnonzero(y == c)[:k] for c in np.unique(y)]))

    a, b = first(tr_y, train_per_class), first(te_y, test_per_class)
    trx, tex = _sample(g["train"], a, num_points, seed, 0), _sample(g["test"], b, num_points, seed, 1)
    return io.normalize(trx, how), tr_y[a], io.normalize(tex, how), te_y[b]
