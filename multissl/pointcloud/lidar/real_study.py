"""Does pre-training help a car detector on real scans? Scratch vs invariant vs equivariant backbones,
each fine-tuned on a few real KITTI frames and evaluated on other, ground-truth-labelled real frames.

Data (shipped, ``data/pointcloud``; see ``kitti_fov/`` in its README and ``build_kitti_fov.py``):
- test: the ground-truth frames 000002, 000008 (mmdetection3d demo) and 001545 (13 cars within
  the grid), front-camera crop;
- fine-tuning: 7 real frames with *silver* car labels (a detector's output shipped beside the scans,
  score > 4; checked against ground truth on 000002 / 000008), ``budget`` of them drawn per seed;
- real pre-training (``equivariant-real``): the 11 other real scans, labels unused, spatial terms only
  (no consecutive sweeps, so no flow term).

Backbones: ``scratch`` (random init), ``invariant-sim`` and ``equivariant-sim`` (pre-trained on
simulated sweep pairs, the recipes' objectives), ``equivariant-real`` (pre-trained on the real scans).
Every backbone also gets the feature-equivariance measure on the real test frames.

    OMP_NUM_THREADS=1 python -m multissl.pointcloud.lidar.real_study --seeds 0 1 2 --budgets 2 6
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from multissl.eval.seeds import t_half_width
from multissl.pointcloud.io import (
    cam_boxes_to_lidar,
    read_kitti_calib,
    read_kitti_scene,
    read_mmdet3d_kitti,
    read_points,
)
from multissl.pointcloud.lidar.methods import LidarSSL, TransformSpec, fit_on_scenes
from multissl.pointcloud.lidar.pillars import Grid

ROOT = "pointcloud/kitti_fov"
TEST = ["000002", "000008", "001545"]
SILVER = ["000004", "000005", "000006", "000015", "000019", "000020", "000021"]
UNLABELLED = ["000076", "000089", "000142", "000152"]
GRID = Grid(40.0, 0.8)
SPEC = TransformSpec(rotation="classify", flip="classify", scale="dense", translate="dense")


def _crop(points: np.ndarray) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    keep = (x > 0) & (np.abs(np.degrees(np.arctan2(y, x))) < 42.0) & (np.hypot(x, y) < 45.0)
    return points[keep]


def _scene(points: np.ndarray, boxes: np.ndarray, names: list[str]) -> dict:
    labels = np.array([0 if n == "Car" else 1 for n in names], np.int64)
    return {"points0": _crop(points)[:, :3].astype(np.float32), "boxes0": boxes.astype(np.float32), "labels0": labels}


def test_frames() -> list[dict]:
    """The ground-truth frames (cars = class 0, every other labelled object class 1)."""
    out = []
    for f in TEST:
        if f == "000008":
            sc = read_mmdet3d_kitti("pointcloud/mmdet3d_demo/kitti/000008.bin", "pointcloud/mmdet3d_demo/kitti/000008.pkl")
        else:
            sc = read_kitti_scene(f"{ROOT}/velodyne_reduced/{f}.bin", f"{ROOT}/label_2/{f}.txt", f"{ROOT}/calib/{f}.txt")
        out.append(_scene(sc.points, sc.boxes, sc.labels))
    return out


def silver_frames() -> list[dict]:
    """The fine-tuning pool: real frames with the silver car labels."""
    from multissl.data import resolve_data_path

    out = []
    for f in SILVER:
        cal = read_kitti_calib(f"{ROOT}/calib/{f}.txt")
        rows = [[float(v) for v in ln.split()[8:15]]
                for ln in resolve_data_path(f"{ROOT}/silver_label_2/{f}.txt").read_text().splitlines() if ln.strip()]
        boxes = cam_boxes_to_lidar(np.asarray(rows).reshape(-1, 7), cal["R0_rect"], cal["Tr_velo_to_cam"])
        out.append(_scene(read_points(f"{ROOT}/velodyne_reduced/{f}.bin"), boxes, ["Car"] * len(boxes)))
    return out


def unlabelled_frames() -> list[dict]:
    """Real scans for pre-training: the unlabelled ones and the fine-tuning pool (labels dropped)."""
    return [{"points0": read_points(f"{ROOT}/velodyne_reduced/{f}.bin")[:, :3]} for f in UNLABELLED + SILVER]


def pretrain(objective: str, scenes: list[dict], steps: int, seed: int, channels: int, batch_size: int = 4,
             lr: float = 2e-3) -> LidarSSL:
    """AdamW pre-training of a backbone on ``scenes`` (``steps=0``: the random init of ``seed``)."""
    torch.manual_seed(seed)
    m = LidarSSL(GRID, channels, objective, SPEC, temporal_weight=0.0, samples=64, momentum=0.99)
    return fit_on_scenes(m, scenes, steps, seed, batch_size, lr)


def _interval(vals: list[float]) -> str:
    mean = statistics.mean(vals)
    if len(vals) < 2:
        return f"{mean:.3f}"
    half = t_half_width(vals)
    return f"{mean:.3f} ± {half:.3f}"


def main(argv: list[str] | None = None) -> int:
    from multissl.pointcloud.lidar.detection import (
        DetConfig,
        evaluate_detector,
        train_detector,
    )
    from multissl.pointcloud.lidar.equivariance import feature_equivariance
    from multissl.pointcloud.lidar.simulator import SimConfig, simulate_dataset

    ap = argparse.ArgumentParser(prog="multissl eval pointcloud.lidar-real", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2], help="fine-tuning seeds (frames + init)")
    ap.add_argument("--budgets", nargs="*", type=int, default=[2, 6], help="real fine-tuning frames")
    ap.add_argument("--steps", type=int, default=100, help="detector fine-tuning steps")
    ap.add_argument("--pretrain-steps", type=int, default=150)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--sim-scenes", type=int, default=48, help="simulated pairs for the *-sim backbones")
    ap.add_argument("--pretrain-seed", type=int, default=0, help="seed of every backbone's init and pre-training")
    ap.add_argument("--out", help="write every measurement as JSON here")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    test, pool = test_frames(), silver_frames()
    n_cars = sum(int(((s["labels0"] == 0) & (np.abs(s["boxes0"][:, :2]) < GRID.extent).all(1)).sum()) for s in test)
    print(f"test: {len(test)} ground-truth real frames, {n_cars} cars in the grid; pool: {len(pool)} silver frames")
    sim = simulate_dataset(a.sim_scenes, 21, 2, 0, SimConfig(beams=32, azimuth_steps=360))
    real = unlabelled_frames()
    backbones = {
        "scratch": pretrain("equivariant", [], 0, a.pretrain_seed, a.channels),
        "invariant-sim": pretrain("invariant", sim, a.pretrain_steps, a.pretrain_seed, a.channels),
        "equivariant-sim": pretrain("equivariant", sim, a.pretrain_steps, a.pretrain_seed, a.channels),
        "equivariant-real": pretrain("equivariant", real, a.pretrain_steps, a.pretrain_seed, a.channels),
    }
    rows: list[dict] = []
    for name, m in backbones.items():
        eq = feature_equivariance(m.backbone, test, GRID, samples=64)
        rows.append({"backbone": name, "budget": 0, "equiv/gap": eq["equiv/gap"], "equiv/top1": eq["equiv/top1"]})
        print(f"{name}: feature equivariance on the real test frames gap {eq['equiv/gap']:.3f} top1 {eq['equiv/top1']:.3f}",
              flush=True)
    det = DetConfig(steps=a.steps, batch_size=2, lr=2e-3)
    for budget in a.budgets:
        for seed in a.seeds:
            frames = np.random.default_rng(seed).choice(len(pool), budget, replace=False).tolist()
            for name, m in backbones.items():
                bb, head = train_detector(m.backbone, [pool[i] for i in frames], GRID, det, seed=seed)
                r = evaluate_detector(bb, head, test, GRID)
                rows.append({"backbone": name, "budget": budget, "seed": seed, "frames": frames, **r})
                print(f"budget {budget} seed {seed} {name}: " + " ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
    print("\n| backbone | fine-tuning frames | AP@1m | AP@2m | AP@4m | mean AP (0.5/1/2/4 m) | mean AP - scratch (paired) |")
    print("|---|---|---|---|---|---|---|")
    for budget in a.budgets:
        base = {r["seed"]: r["map"] for r in rows if r["budget"] == budget and r["backbone"] == "scratch"}
        for name in backbones:
            rs = [r for r in rows if r["budget"] == budget and r["backbone"] == name]
            diff = [r["map"] - base[r["seed"]] for r in rs]
            print(f"| {name} | {budget} | {_interval([r['ap@1m'] for r in rs])} | {_interval([r['ap@2m'] for r in rs])} | "
                  f"{_interval([r['ap@4m'] for r in rs])} | {_interval([r['map'] for r in rs])} | "
                  f"{_interval(diff) if name != 'scratch' else '-'} |")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
