"""Build ``kitti_fov/``: real KITTI object-training scans cropped to the front camera's view, with labels.

Source: a KITTI-layout folder (``velodyne/``, ``calib/``, ``label_2/``), here the frames copied from
wjy199708/Visualization_KITTI_Waymo (commit 3645fb31f9b24ca5ad6214ff8824c63b0aa97aab, MIT code
licence; the KITTI data keeps CC BY-NC-SA 3.0) and, for 000002, from ``kitti_object/`` in this folder.

Crop (the same rule for every frame, no calibration needed): x > 0, |azimuth| < 42 degrees (the
camera's ~81 degree field of view, where KITTI boxes exist), range < 45 m. Points stay float32
(N, 4) x, y, z, reflectance (KITTI's ``velodyne_reduced`` idea, with an angular instead of a
projected crop).

Labels:
- ``label_2/``: KITTI ground truth (000002 from kuixu/kitti_object_vis via ``kitti_object/``;
  001545 from the source repository, whose file has KITTI's ground-truth layout: truncation,
  occlusion, DontCare lines).
- ``silver_label_2/``: the source repository's ``label_2`` files for the other frames are NOT ground
  truth: they carry a 16th score column and -1 truncation / occlusion (a detector's output). Only
  ``Car`` lines with score > 4 are kept. On the frames where both exist (000002, 000008) every
  ground-truth car within 40 m has a prediction within 0.7 m with score > 4, and no prediction
  above 4 lacks a ground-truth car. They are training labels only; evaluation uses ground truth.

    python build_kitti_fov.py SRC_FOLDER   # writes kitti_fov/ next to this file
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

GROUND_TRUTH = ["000002", "001545"]
SILVER = ["000004", "000005", "000006", "000015", "000019", "000020", "000021"]
UNLABELLED = ["000076", "000089", "000142", "000152"]


def crop(points: np.ndarray, max_azimuth_deg: float = 42.0, max_range: float = 45.0) -> np.ndarray:
    """Front-camera crop of a (N, 4) scan."""
    x, y = points[:, 0], points[:, 1]
    keep = (x > 0) & (np.abs(np.degrees(np.arctan2(y, x))) < max_azimuth_deg) & (np.hypot(x, y) < max_range)
    return np.ascontiguousarray(points[keep], np.float32)


def main(src: Path, out: Path) -> None:
    for d in ("velodyne_reduced", "calib", "label_2", "silver_label_2"):
        (out / d).mkdir(parents=True, exist_ok=True)
    for f in GROUND_TRUTH + SILVER + UNLABELLED:
        pts = np.fromfile(src / "velodyne" / f"{f}.bin", np.float32).reshape(-1, 4)
        crop(pts).tofile(out / "velodyne_reduced" / f"{f}.bin")
        if (src / "calib" / f"{f}.txt").exists():
            shutil.copy(src / "calib" / f"{f}.txt", out / "calib" / f"{f}.txt")
    for f in GROUND_TRUTH:
        shutil.copy(src / "label_2" / f"{f}.txt", out / "label_2" / f"{f}.txt")
    for f in SILVER:
        lines = [ln for ln in (src / "label_2" / f"{f}.txt").read_text().splitlines()
                 if ln.split() and ln.split()[0] == "Car" and len(ln.split()) == 16 and float(ln.split()[15]) > 4]
        (out / "silver_label_2" / f"{f}.txt").write_text("".join(ln + "\n" for ln in lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent / "kitti_fov")
