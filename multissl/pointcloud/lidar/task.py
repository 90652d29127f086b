"""The ``pointcloud.lidar`` recipe kind: pre-train a BEV backbone on simulated (unlabelled) sweep pairs
with the equivariant, invariant or no objective, then fine-tune a CenterPoint-style detector on a few
labelled scenes per budget and report centre-distance AP on held-out simulated scenes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from multissl.config import param
from multissl.tasks import Task, TaskParts

Mode = Literal["classify", "dense", "none"]


@dataclass
class SimData:
    pretrain_scenes: int = param(400, "unlabelled simulated sequences (2 sweeps each) for pre-training")
    label_budgets: list[int] = param([8, 32, 128], "labelled scenes for the few-label detection fine-tuning")
    val_scenes: int = param(32, "validation scenes (periodic check of the pre-training)")
    test_scenes: int = param(100, "held-out test scenes for AP")
    seed: int = param(0, "simulation seed (pre-train, labelled, val and test use disjoint seeds)")
    beams: int = param(32, "simulated LiDAR beams (HDL-32E-like)")
    azimuth_steps: int = param(720, "rays per beam per sweep")
    flow_points: int = param(512, "points per pair with an ICP+NN flow estimate")


@dataclass
class BEVParams:
    extent: float = param(25.6, "BEV grid half-size in metres")
    cell: float = param(0.4, "pillar size in metres (PointPillars: 0.16; larger here for CPU)")
    channels: int = param(64, "pillar feature channels (PointPillars: 64)")


@dataclass
class SSLParams:
    objective: Literal["equivariant", "invariant", "scratch"] = param("equivariant", "pre-training objective")
    rotation: Mode = param("classify", "rotation: equivariance by classification, dense contrastive or unused")
    flip: Mode = param("classify", "flip: classify / dense / none")
    scale: Mode = param("dense", "scaling: classify / dense / none")
    translate: Mode = param("dense", "translation: classify / dense / none")
    rotation_bins: int = param(4, "rotation classes (multiples of 360/bins degrees)")
    temporal_weight: float = param(1.0, "weight of the scene-flow equivariance loss (0 = spatial only)")
    samples: int = param(128, "corresponding cells sampled per scene for the dense loss")
    temperature: float = param(0.1, "InfoNCE temperature")
    momentum: float = param(0.99, "EMA of the target encoder (BYOL/MoCo-style keys); 0 = online keys")
    readout: Literal["correspondence", "pooled"] = param(
        "correspondence", "classify read-out: feature agreement at each candidate transform's cells, or the "
        "earlier learned MLP on 4x4-pooled maps (stays at chance at 0.4 m cells; kept to reproduce that)")


@dataclass
class DetEval:
    steps: int = param(300, "detector fine-tuning steps per label budget")
    batch_size: int = param(4, "detector fine-tuning batch")
    lr: float = param(1e-3, "detector AdamW peak lr (one-cycle, as CenterPoint)")
    seeds: list[int] = param([0], "fine-tuning seeds per budget")
    real_check: bool = param(True, "also run the detector on the shipped real KITTI / nuScenes frames")


@dataclass
class LidarConfig:
    data: SimData = param(SimData(), "simulated scenes")
    model: BEVParams = param(BEVParams(), "pillar BEV backbone")
    method: SSLParams = param(SSLParams(), "pre-training objective")
    eval: DetEval = param(DetEval(), "few-label detection")


def _sim_cfg(d: SimData):
    from multissl.pointcloud.lidar.simulator import SimConfig

    return SimConfig(beams=d.beams, azimuth_steps=d.azimuth_steps)


class LidarTask(Task):
    config_class = LidarConfig
    description = "equivariant / invariant BEV pre-training on simulated LiDAR pairs + few-label detection"

    def build(self, recipe) -> TaskParts:
        import statistics

        from multissl.pointcloud.lidar.detection import (
            DetConfig,
            evaluate_detector,
            train_detector,
        )
        from multissl.pointcloud.lidar.methods import (
            LidarSSL,
            TransformSpec,
            collate_scenes,
        )
        from multissl.pointcloud.lidar.pillars import Grid
        from multissl.pointcloud.lidar.simulator import simulate_dataset

        cfg: LidarConfig = recipe.config
        d, m, e = cfg.data, cfg.method, cfg.eval
        sim = _sim_cfg(d)
        pre = simulate_dataset(d.pretrain_scenes, d.seed * 10 + 1, 2, d.flow_points, sim)
        lab = simulate_dataset(max(d.label_budgets), d.seed * 10 + 2, 1, 0, sim)
        val = simulate_dataset(d.val_scenes, d.seed * 10 + 3, 1, 0, sim)
        test = simulate_dataset(d.test_scenes, d.seed * 10 + 4, 1, 0, sim)
        grid = Grid(cfg.model.extent, cfg.model.cell)
        spec = TransformSpec(rotation=m.rotation, flip=m.flip, scale=m.scale, translate=m.translate,
                             rotation_bins=m.rotation_bins)
        method = LidarSSL(grid, cfg.model.channels, m.objective, spec, m.temporal_weight, m.samples, m.temperature,
                          m.momentum, readout=m.readout)
        det = DetConfig(steps=e.steps, batch_size=e.batch_size, lr=e.lr)

        def evaluate(meth) -> dict[str, float]:
            # a quick label-efficiency check on validation scenes: the smallest budget, fewer steps
            quick = DetConfig(steps=max(10, e.steps // 10), batch_size=e.batch_size, lr=e.lr)
            bb, head = train_detector(meth.backbone, lab[: d.label_budgets[0]], grid, quick, seed=0)
            out = {"val/map": evaluate_detector(bb, head, val, grid)["map"]}
            out.update(pretext_report(meth, val[:16], "val"))
            return out

        kept: dict = {}

        def final(meth) -> dict[str, float]:
            out: dict[str, float] = pretext_report(meth, test[:32], "test")
            for budget in d.label_budgets:
                runs = []
                for seed in e.seeds:
                    bb, head = train_detector(meth.backbone, lab[:budget], grid, det, seed=seed)
                    runs.append(evaluate_detector(bb, head, test, grid))
                for k in runs[0]:
                    vals = [r[k] for r in runs]
                    out[f"test/{budget}/{k}"] = statistics.mean(vals)
                    if len(vals) > 1:
                        out[f"test/{budget}/{k}_std"] = statistics.stdev(vals)
                if budget == max(d.label_budgets):
                    kept.update(backbone=bb, head=head, budget=budget)
                    if e.real_check:
                        out.update(real_check(bb, head, grid))
            return out

        def export(meth, folder) -> None:
            from multissl.pointcloud.lidar.detect import save_detector

            if kept:
                save_detector(kept["backbone"], kept["head"], grid, folder.parent / "detector",
                              {"trained_on": f"{kept['budget']} labelled simulated scenes", "recipe": recipe.name})

        def collate(items):
            return collate_scenes(items)

        return TaskParts(method, pre, collate_fn=collate, evaluate=evaluate, final_evaluate=final, export=export)

    def embed_data(self, recipe, path: str):
        """Scene embeddings of a scan file or a folder of scans (sorted by name), as ``multissl embed``."""
        from multissl.pointcloud.lidar.detect import ScanFolder
        from multissl.pointcloud.lidar.methods import collate_scenes

        return ScanFolder(path), collate_scenes


def pretext_report(meth, scenes: list[dict], split: str) -> dict[str, float]:
    """Held-out pre-training losses (each next to its chance level) and the feature-equivariance measure
    of the backbone, so every run shows whether its objective learned what it claims."""
    import math

    import torch

    from multissl.pointcloud.lidar.equivariance import feature_equivariance
    from multissl.pointcloud.lidar.methods import collate_scenes

    out = {f"{split}/{k}": v for k, v in feature_equivariance(meth.backbone, scenes, meth.grid).items()
           if k.count("/") == 1 or k.endswith(("/gap", "/top1"))}
    if meth.objective != "equivariant":
        return out
    was = meth.training
    meth.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        logs = meth(collate_scenes(scenes[:16], 64)).logs
    meth.train(was)
    for k, v in logs.items():
        out[f"{split}/pretext/{k}"] = float(v)
    for name in meth.classified:
        out[f"{split}/pretext/ce_{name}_chance"] = math.log(meth.spec.num_classes(name))
    return out


def real_check(bb, head, grid) -> dict[str, float]:
    """Sim-trained detector on the shipped real frames: car AP@2m/4m on KITTI 000008 and the nuScenes sweep."""
    import numpy as np

    from multissl.pointcloud.io import read_mmdet3d_kitti, read_nuscenes_sample
    from multissl.pointcloud.lidar.detection import evaluate_detector

    out = {}
    try:
        kitti = read_mmdet3d_kitti("pointcloud/mmdet3d_demo/kitti/000008.bin", "pointcloud/mmdet3d_demo/kitti/000008.pkl")
        nus = read_nuscenes_sample(
            "pointcloud/mmdet3d_demo/nuscenes/n015-2018-07-24-11-22-45+0800__LIDAR_TOP__1532402927647951.pcd.bin",
            "pointcloud/mmdet3d_demo/nuscenes/n015-2018-07-24-11-22-45+0800.pkl")
    except Exception:  # data not shipped in this checkout
        return out
    for name, sc, car in (("kitti", kitti, "Car"), ("nuscenes", nus, "car")):
        labels = np.array([0 if n == car else 1 for n in sc.labels], np.int64)
        scene = {"points0": sc.points[:, :3].astype(np.float32), "boxes0": sc.boxes, "labels0": labels}
        r = evaluate_detector(bb, head, [scene], grid, thresholds=(2.0, 4.0))
        out[f"test/real_{name}/ap@2m"], out[f"test/real_{name}/ap@4m"] = r["ap@2m"], r["ap@4m"]
    return out
