"""Object-cloud data sets for Point-MAE: the procedural shape set (default), ModelNet40 / ScanObjectNN h5
files and ModelNet-style .off folders, with a deterministic train / val / test split."""

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
                test_per_class: int | None, val_fraction: float, seed: int) -> CloudSplits:
    """Train / val / test clouds; the validation split is carved from train (seeded), test is untouched."""
    if source == "procedural":
        trx, tr_y = shapes.load_shapes("train", train_per_class, num_points, seed)
        tex, te_y = shapes.load_shapes("test", test_per_class, num_points, seed)
    elif source in ("modelnet40_h5", "scanobjectnn_h5"):
        if not path or not test_path:
            raise DataError(f"data.source={source} needs data.path (train h5 file/folder) and data.test_path")
        tr, te = io.load_h5_set(path, num_points), io.load_h5_set(test_path, num_points)
        trx, tr_y, tex, te_y = tr.points, tr.labels, te.points, te.labels
    elif source == "off":
        if not path:
            raise DataError("data.source=off needs data.path: a folder <class>/{train,test}/*.off")
        tr = io.load_off_folder(path, "train", num_points, seed, train_per_class)
        te = io.load_off_folder(path, "test", num_points, seed + 1, test_per_class)
        trx, tr_y, tex, te_y = tr.points, tr.labels, te.points, te.labels
    else:
        raise DataError(f"unknown data.source {source!r}: procedural, modelnet40_h5, scanobjectnn_h5 or off")
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
