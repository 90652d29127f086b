"""Object-cloud data sets for Point-MAE: the procedural shape set (default), the shipped real ModelNet10
(official split, voxel-surface clouds: ``voxels.py``), ModelNet40 / ScanObjectNN h5 files and ModelNet-style
.off folders, with a deterministic train / val / test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from multissl.errors import DataError
from multissl.pointcloud import io
from multissl.pointcloud.objects import shapes


@dataclass
class CloudSplits:
    """Clouds (N, P, 3) float32 and labels (N,) per split."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int


def load_splits(source: str, path: str | None, test_path: str | None, num_points: int, train_per_class: int | None,
                test_per_class: int | None, val_fraction: float, seed: int, how: str = "unit_sphere") -> CloudSplits:
    """Train / val / test clouds; the validation split is carved from train (seeded), test is untouched.
    ``how``: ``unit_sphere`` (Point-MAE) or ``centre`` (keep metric size; not for the procedural set)."""
    if how != "unit_sphere" and source == "procedural":
        raise DataError("data.normalize=centre keeps metric size, but the procedural set is generated at unit "
                        "scale; use it with real data (data.source=off or an h5 set)")
    if source == "procedural":
        trx, tr_y = shapes.load_shapes("train", train_per_class, num_points, seed)
        tex, te_y = shapes.load_shapes("test", test_per_class, num_points, seed)
    elif source in ("modelnet40_h5", "scanobjectnn_h5"):
        if not path or not test_path:
            raise DataError(f"data.source={source} needs data.path (train h5 file/folder) and data.test_path")
        tr, te = io.load_h5_set(path, num_points, how=how), io.load_h5_set(test_path, num_points, how=how)
        trx, tr_y, tex, te_y = tr.points, tr.labels, te.points, te.labels
    elif source == "modelnet10_vox":
        from multissl.pointcloud.objects.voxels import load_modelnet10_vox

        trx, tr_y, tex, te_y = load_modelnet10_vox(path, num_points, seed, train_per_class, test_per_class, how)
    elif source == "off":
        if not path:
            raise DataError("data.source=off needs data.path: a folder <class>/{train,test}/*.off")
        tr = io.load_off_folder(path, "train", num_points, seed, train_per_class, how)
        te = io.load_off_folder(path, "test", num_points, seed + 1, test_per_class, how)
        trx, tr_y, tex, te_y = tr.points, tr.labels, te.points, te.labels
    else:
        raise DataError(f"unknown data.source {source!r}: procedural, modelnet10_vox, modelnet40_h5, "
                        "scanobjectnn_h5 or off")
    perm = np.random.default_rng(seed).permutation(len(trx))
    nval = round(val_fraction * len(trx))
    va, tr_i = perm[:nval], perm[nval:]
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()
    y = lambda a: torch.from_numpy(np.asarray(a)).long()
    return CloudSplits(t(trx[tr_i]), y(tr_y[tr_i]), t(trx[va]), y(tr_y[va]), t(tex), y(te_y),
                       int(max(tr_y.max(), te_y.max())) + 1)


class CloudDataset(Dataset):
    """Clouds (N, P, 3); an item is one (P, 3) cloud."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


CLOUD_SUFFIXES = (".ply", ".pcd", ".xyz", ".txt", ".pts", ".csv", ".npy", ".npz", ".off", ".bin")


def _clouds_of_file(p, rng: np.random.Generator, num_points: int) -> list[np.ndarray]:
    """Every cloud a file holds: a ``points`` + ``offsets`` .npz (one cloud per slice, as
    ``derived/kitti_objects.npz``), a (K, N, 3) .npy (K clouds), an .off mesh sampled by area (as
    training samples ModelNet meshes), or one (N, >=3) cloud."""
    if p.suffix == ".npz":
        z = np.load(p, allow_pickle=False)
        if "points" in z.files and "offsets" in z.files:
            pts, off = z["points"], z["offsets"]
            return [pts[off[i] : off[i + 1], :3] for i in range(len(off) - 1)]
        if len(z.files) != 1:
            raise DataError(f"{p}: an .npz of several clouds needs 'points' (all clouds concatenated) and "
                            f"'offsets' (K+1 start indices); found arrays {z.files}")
        arr = z[z.files[0]]
        return list(arr[..., :3]) if arr.ndim == 3 else [arr[:, :3]]
    if p.suffix == ".npy":
        arr = np.load(p, allow_pickle=False)
        return list(arr[..., :3]) if arr.ndim == 3 else [arr[:, :3]]
    if p.suffix == ".off":
        v, f = io.read_off(p)
        if len(v) == 0 or len(f) == 0:
            raise DataError(f"{p}: the mesh has no vertices or faces")
        return [io.sample_mesh(v, f, num_points, rng)]
    return [io.read_points(p)[:, :3]]


def embed_clouds(path: str, num_points: int, seed: int = 0, how: str = "unit_sphere") -> np.ndarray:
    """(K, num_points, 3) clouds of a file or a folder (files sorted by name) for ``multissl embed``;
    every cloud resampled to ``num_points`` and normalised as in training (``how``)."""
    from pathlib import Path

    p = io.resolve_data_path(path, "point cloud file or folder")
    files = sorted(f for f in p.iterdir() if f.name.lower().endswith(CLOUD_SUFFIXES)) if p.is_dir() else [p]
    if not files:
        raise DataError(f"{p}: no point-cloud files in this folder ({', '.join(CLOUD_SUFFIXES)})")
    rng = np.random.default_rng(seed)
    out = []
    for f in files:
        for k, cloud in enumerate(_clouds_of_file(Path(f), rng, num_points)):
            cloud = np.asarray(cloud, np.float32)
            if cloud.ndim != 2 or len(cloud) == 0:
                raise DataError(f"{f}: cloud {k} is empty; remove it or pass another file")
            out.append(cloud[rng.choice(len(cloud), num_points, replace=len(cloud) < num_points)])
    return io.normalize(np.stack(out), how)
