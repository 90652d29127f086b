"""Build modelnet10_vox/modelnet10_vox24.npz: ModelNet10 (official train / test split) as 24^3 occupancy
grids, bit-packed. A lossless re-encoding of a public voxelisation (numpy only).

Source: ``modelnet10.npz`` of the public repository Sooram/ModelNet-3dCNN-tensorflow (commit
cb46889c3ad8853734e4eb4e3c131b8f0b194ed1). That file holds every ModelNet10 mesh of the official split
(3,991 train, 908 test) voxelised by binvox at 24^3 and zero-padded by 3 on each side to 30^3
(``X_train``/``X_test`` int32 (N, 30, 30, 30), ``y_train``/``y_test`` int64, classes in alphabetical
order). This script checks that the padding is empty, drops it and bit-packs the 24^3 grids: the
original arrays are recovered exactly by unpacking and padding again.

Usage:  python build_modelnet10_vox.py SOURCE.npz [OUT.npz]
Output (default modelnet10_vox/modelnet10_vox24.npz beside this script):
  train_bits uint8 (3991, 1728)  np.packbits of the flattened (24, 24, 24) grid, C order (x, y, z)
  test_bits  uint8 (908, 1728)
  y_train int64 (3991,), y_test int64 (908,), classes <U11 (10,), grid int64 () = 24
"""
import os
import sys

import numpy as np

CLASSES = ["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa", "table", "toilet"]


def main(src, out):
    z = np.load(src, allow_pickle=False)
    arrays = {}
    for split in ("train", "test"):
        x = z[f"X_{split}"]
        assert x.shape[1:] == (30, 30, 30), x.shape
        inner = x[:, 3:27, 3:27, 3:27].astype(bool)
        assert int(x.astype(bool).sum()) == int(inner.sum()), "padding is not empty"
        arrays[f"{split}_bits"] = np.packbits(inner.reshape(len(x), -1), axis=1)
        arrays[f"y_{split}"] = z[f"y_{split}"].astype(np.int64)
    np.savez_compressed(out, classes=np.array(CLASSES), grid=np.int64(24), **arrays)
    print(out, {k: v.shape for k, v in arrays.items()}, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "modelnet10_vox", "modelnet10_vox24.npz"))
