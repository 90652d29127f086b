"""Run a LiDAR run's car detector on your own scans and write KITTI label files.

A ``pointcloud.lidar`` run saves its fine-tuned detector (backbone + CenterPoint-style head) under
``RUN/detector/``. This command loads it, reads every scan of a folder (KITTI velodyne ``.bin``,
nuScenes ``.pcd.bin``, ``.npy``, ``.ply``, ``.pcd``, ``.xyz``; sorted by name) and writes one
``<scan name>.txt`` per scan in the KITTI object label format::

    Car truncated occluded alpha x1 y1 x2 y2 h w l x y z ry score

with the box in the rectified camera frame of the scan's KITTI calibration (``--calib``: one calib
file for every scan, or a folder with ``<scan name>.txt`` per scan). The 2D box is the projection of
the 3D box by P2 (clipped at 0); truncation and occlusion are written as 0 (unknown). Without a
calibration, ``--lidar-frame`` writes ``Car x y z l w h yaw score`` in the LiDAR frame instead (not
the KITTI format, and said so in the file name suffix ``.lidar.txt``).

    python -m multissl.pointcloud.lidar.detect --run runs/lidar-equivariant-sim/<ts> \\
        --scans my_scans/velodyne --calib my_scans/calib --out my_scans/pred_label_2
    multissl eval pointcloud.detect --run ... --scans ... --calib ... --out ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from multissl.errors import CheckpointError, DataError
from multissl.pointcloud.io import read_kitti_calib, read_points
from multissl.pointcloud.lidar.pillars import BEVBackbone, CenterHead, Grid, decode

SCAN_SUFFIXES = (".bin", ".npy", ".ply", ".pcd", ".xyz", ".txt")


def scan_files(path: str | Path) -> list[Path]:
    """A scan file, or the scans of a folder sorted by name; a clear error when there is none."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such scan file or folder")
    files = sorted(f for f in p.iterdir() if f.suffix in SCAN_SUFFIXES) if p.is_dir() else [p]
    if not files:
        raise DataError(f"{p}: no scans in this folder (expected {', '.join(SCAN_SUFFIXES)} files)")
    return files


class ScanFolder(Dataset):
    """Scans of a file or folder as scene items ``{"points0": (N, 3) float32, "name": stem}``."""

    def __init__(self, path: str | Path) -> None:
        self.files = scan_files(path)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        f = self.files[i]
        pts = read_points(f)
        if pts.ndim != 2 or pts.shape[1] < 3:
            raise DataError(f"{f}: expected an (N, >=3) point array, got shape {pts.shape}")
        if len(pts) == 0:
            raise DataError(f"{f}: the scan has no points; remove it or pass another folder")
        name = f.name[: -len(".pcd.bin")] if f.name.endswith(".pcd.bin") else f.stem
        return {"points0": np.ascontiguousarray(pts[:, :3], np.float32), "name": name}


class Detector(nn.Module):
    """A BEV backbone and its CenterPoint-style head, with the grid they were trained on."""

    def __init__(self, grid: Grid, channels: int, num_classes: int = 1) -> None:
        super().__init__()
        self.grid = grid
        self.backbone = BEVBackbone(grid, channels)
        self.head = CenterHead(self.backbone.out_channels, num_classes)

    @torch.no_grad()
    def detect(self, points: np.ndarray, threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
        """Car boxes (D, 7) ``x y z l w h yaw`` (LiDAR frame, centre) and scores (D,) of one scan."""
        self.eval()
        pts = torch.as_tensor(points[:, :3]).float()
        hl, rp = self.head(self.backbone(pts, torch.zeros(len(pts), dtype=torch.long), 1))
        boxes, scores, classes = decode(hl, rp, self.grid, threshold=threshold)[0]
        keep = classes == 0
        return boxes[keep], scores[keep]


def save_detector(backbone: nn.Module, head: nn.Module, grid: Grid, folder: Path, info: dict) -> None:
    """``folder/model.safetensors`` (backbone.* and head.*) and ``folder/detector.json``."""
    from multissl.train.checkpoint import save_weights

    folder.mkdir(parents=True, exist_ok=True)
    save_weights(nn.ModuleDict({"backbone": backbone, "head": head}), folder / "model.safetensors")
    channels = backbone.pillars.channels
    meta = {"extent": grid.extent, "cell": grid.cell, "channels": channels, "classes": ["Car"], **info}
    (folder / "detector.json").write_text(json.dumps(meta, indent=2))


def load_detector(run: str | Path) -> Detector:
    """The detector a ``pointcloud.lidar`` run saved (``RUN/detector`` or that folder itself)."""
    p = Path(run)
    folder = p if (p / "detector.json").exists() else p / "detector"
    if not (folder / "detector.json").exists():
        raise CheckpointError(f"{p}: no saved detector (RUN/detector/detector.json); train a pointcloud.lidar "
                              "recipe to the end, which fine-tunes and saves one")
    from multissl.train.checkpoint import load_weights

    meta = json.loads((folder / "detector.json").read_text())
    det = Detector(Grid(meta["extent"], meta["cell"]), meta["channels"], len(meta["classes"]))
    load_weights(nn.ModuleDict({"backbone": det.backbone, "head": det.head}), folder / "model.safetensors")
    return det.eval()


def box_corners(box: np.ndarray) -> np.ndarray:
    """(8, 3) corners of a LiDAR box ``x y z l w h yaw`` (centre)."""
    x, y, z, l, w, h, yaw = box
    dx = np.array([1, 1, 1, 1, -1, -1, -1, -1]) * l / 2
    dy = np.array([1, -1, 1, -1, 1, -1, 1, -1]) * w / 2
    dz = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * h / 2
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([x + c * dx - s * dy, y + s * dx + c * dy, z + dz], 1)


def kitti_lines(boxes: np.ndarray, scores: np.ndarray, calib: dict[str, np.ndarray]) -> list[str]:
    """KITTI label lines of LiDAR boxes: the inverse of ``io.cam_boxes_to_lidar`` (bottom centre in the
    rectified camera frame, ry = -yaw - pi/2), alpha from the viewing angle, the 2D box from P2."""
    velo = np.eye(4)
    velo[:3, :4] = calib["Tr_velo_to_cam"].reshape(3, 4)
    r0 = np.eye(4)
    r0[:3, :3] = calib["R0_rect"].reshape(3, 3)
    to_cam = r0 @ velo
    p2 = calib["P2"].reshape(3, 4)
    lines = []
    for box, score in zip(boxes, scores, strict=True):
        x, y, z, l, w, h, yaw = (float(v) for v in box)
        bottom = to_cam @ np.array([x, y, z - h / 2, 1.0])
        ry = float(np.arctan2(np.sin(-yaw - np.pi / 2), np.cos(-yaw - np.pi / 2)))
        alpha = ry - float(np.arctan2(bottom[0], bottom[2]))
        alpha = float(np.arctan2(np.sin(alpha), np.cos(alpha)))  # KITTI's range [-pi, pi]
        corners = np.c_[box_corners(box), np.ones(8)] @ to_cam.T  # (8, 4) camera frame
        uvw = corners @ p2.T
        uv = uvw[:, :2] / np.clip(uvw[:, 2:3], 1e-3, None)
        x1, y1 = np.clip(uv.min(0), 0, None)
        x2, y2 = np.clip(uv.max(0), 0, None)
        lines.append(f"Car 0.00 0 {alpha:.2f} {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} {h:.2f} {w:.2f} {l:.2f} "
                     f"{bottom[0]:.2f} {bottom[1]:.2f} {bottom[2]:.2f} {ry:.2f} {float(score):.4f}")
    return lines


def _calib_for(calib: Path | None, name: str) -> dict[str, np.ndarray] | None:
    if calib is None:
        return None
    f = calib / f"{name}.txt" if calib.is_dir() else calib
    if not f.exists():
        raise DataError(f"{f}: no KITTI calibration for scan {name} (pass --calib FILE for all scans, or a "
                        "folder with <scan name>.txt per scan)")
    return read_kitti_calib(f)


def detect_folder(run: str | Path, scans: str | Path, out: str | Path, calib: str | Path | None = None,
                  threshold: float = 0.3, lidar_frame: bool = False) -> list[Path]:
    """Detect cars in every scan of ``scans`` and write one label file per scan into ``out``."""
    if calib is None and not lidar_frame:
        raise DataError("KITTI labels are in the camera frame: pass --calib (a KITTI calib file or folder), "
                        "or --lidar-frame to write LiDAR-frame boxes instead")
    det = load_detector(run)
    data = ScanFolder(scans)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(len(data)):
        item = data[i]
        boxes, scores = det.detect(item["points0"], threshold)
        cal = _calib_for(Path(calib) if calib else None, item["name"])
        if cal is None:
            lines = [f"Car {' '.join(f'{v:.2f}' for v in b)} {s:.4f}" for b, s in zip(boxes, scores, strict=True)]
            path = out_dir / f"{item['name']}.lidar.txt"
        else:
            lines, path = kitti_lines(boxes, scores, cal), out_dir / f"{item['name']}.txt"
        path.write_text("".join(line + "\n" for line in lines))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="multissl eval pointcloud.detect", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a pointcloud.lidar run folder (or its detector/ folder)")
    ap.add_argument("--scans", required=True, help="a scan file or a folder of scans")
    ap.add_argument("--out", required=True, help="folder for the label files")
    ap.add_argument("--calib", help="KITTI calib file (all scans) or folder of <scan name>.txt")
    ap.add_argument("--threshold", type=float, default=0.3, help="minimum heatmap score of a detection")
    ap.add_argument("--lidar-frame", action="store_true", help="no calibration: write LiDAR-frame boxes")
    a = ap.parse_args(argv)
    files = detect_folder(a.run, a.scans, a.out, a.calib, a.threshold, a.lidar_frame)
    print(f"wrote {len(files)} label files to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
