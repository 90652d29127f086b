"""The tiny LiDAR label-efficiency study: scratch vs equivariant vs invariant vs equivariant-without-flow
pre-training (Hegde et al., ECCV 2024), each measured by the frozen-backbone detection probe
(:func:`multissl.pointcloud.lidar.detection.probe_detector`) on held-out simulated scenes.

This is the configuration of the CI test (``tests/pointcloud/test_lidar.py``), runnable per backbone seed:

    OMP_NUM_THREADS=1 python -m multissl.pointcloud.lidar.probe_study --seeds 0 1 2

The configuration (200 steps, 8 channels, 1.2 m cells, 32 labelled scenes) was chosen on simulation
seed 13; the reported figures use the held-out seed 14.
"""

from __future__ import annotations

import argparse

import torch

from multissl.pointcloud.lidar.methods import (
    LidarSSL,
    TransformSpec,
    collate_scenes,
    fit_on_scenes,
)
from multissl.pointcloud.lidar.pillars import Grid
from multissl.pointcloud.lidar.simulator import SimConfig, simulate_dataset

SIM = SimConfig(beams=16, azimuth_steps=360)
GRID = Grid(19.2, 1.2)
SPEC = TransformSpec(rotation="classify", flip="none", scale="dense", translate="dense")
SIM_SEEDS = {"pretrain": 11, "labelled": 12, "select": 13, "test": 14, "held_pairs": 15}


def scenes(n: int, seed: int, frames: int = 2) -> list[dict]:
    """``n`` simulated scenes (pairs of sweeps with a 256-point flow estimate when ``frames`` > 1)."""
    return simulate_dataset(n, seed, frames, 256 if frames > 1 else 0, SIM)


def pretrain(objective: str, train: list[dict], steps: int, seed: int = 0, temporal_weight: float = 1.0,
             channels: int = 8, batch_size: int = 8, lr: float = 3e-3, spec: TransformSpec = SPEC,
             readout: str = "correspondence", grid: Grid = GRID) -> LidarSSL:
    """A tiny pre-training run (AdamW, no schedule); ``steps=0`` returns the random init of ``seed``."""
    torch.manual_seed(seed)
    m = LidarSSL(grid, channels, objective, spec, temporal_weight=temporal_weight if objective == "equivariant" else 0.0,
                 samples=32, momentum=0.9, readout=readout)
    return fit_on_scenes(m, train, steps, seed, batch_size, lr)


ROT_FLIP = TransformSpec(rotation="classify", flip="classify", scale="dense", translate="dense")


def learnability(pre: list[dict], held: list[dict], steps: int, seed: int, grid: Grid = GRID, channels: int = 8,
                 readout: str = "correspondence") -> dict[str, dict[str, float]]:
    """Held-out pretext losses and feature equivariance of a random init (``"init"``) and of ``steps``
    steps of equivariant pre-training (rotation + flip classified, scale + translation dense, no flow)."""
    from multissl.pointcloud.lidar.equivariance import feature_equivariance

    out = {}
    for name, n in (("init", 0), ("trained", steps)):
        m = pretrain("equivariant", pre, n, seed, temporal_weight=0.0, channels=channels, spec=ROT_FLIP,
                     readout=readout, grid=grid)
        torch.manual_seed(1)
        with torch.no_grad():
            logs = {k: float(v) for k, v in m(collate_scenes(held, 64)).logs.items()}
        out[name] = {**logs, **feature_equivariance(m.backbone, held, grid, samples=64)}
    return out


def main(argv: list[str] | None = None) -> int:
    from multissl.pointcloud.lidar.detection import probe_detector

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2], help="backbone (pre-training) seeds")
    ap.add_argument("--steps", type=int, default=200, help="pre-training steps")
    ap.add_argument("--probe-seed", type=int, default=0)
    ap.add_argument("--eval-sim-seed", type=int, default=SIM_SEEDS["test"], help="13 = the selection scenes")
    ap.add_argument("--learnability", action="store_true",
                    help="instead: held-out pretext losses + feature equivariance, init vs trained (rotation + flip classified)")
    ap.add_argument("--readout", default="correspondence", choices=["correspondence", "pooled"])
    ap.add_argument("--extent", type=float, default=GRID.extent)
    ap.add_argument("--cell", type=float, default=GRID.cell)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=24, help="--learnability: simulated pre-training pairs")
    a = ap.parse_args(argv)
    if a.learnability:
        grid = Grid(a.extent, a.cell)
        pre, held = scenes(a.pairs, SIM_SEEDS["pretrain"]), scenes(16, a.eval_sim_seed, frames=1)
        keys = ("ce_rotation", "ce_flip", "acc_rotation", "acc_flip", "dense_nce", "equiv/rotation90/gap",
                "equiv/flip/gap", "equiv/composite/gap", "equiv/top1")
        print("| seed | backbone | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 2))
        for seed in a.seeds:
            r = learnability(pre, held, a.steps, seed, grid, a.channels, a.readout)
            for name, vals in r.items():
                print(f"| {seed} | {name} | " + " | ".join(f"{vals[k]:.3f}" for k in keys) + " |", flush=True)
        return 0
    pre, lab = scenes(24, SIM_SEEDS["pretrain"]), scenes(32, SIM_SEEDS["labelled"], frames=1)
    test = scenes(32, a.eval_sim_seed, frames=1)
    print("| backbone seed | pre-training | car mAP | focal loss |\n|---|---|---|---|")
    for seed in a.seeds:
        for name, objective, steps, tw in (("random init", "equivariant", 0, 1.0),
                                           ("equivariant", "equivariant", a.steps, 1.0),
                                           ("invariant", "invariant", a.steps, 0.0),
                                           ("equivariant, no flow", "equivariant", a.steps, 0.0)):
            m = pretrain(objective, pre, steps, seed, tw)
            r = probe_detector(m.backbone, lab, test, GRID, steps=200, head="center", seed=a.probe_seed)
            print(f"| {seed} | {name} | {r['map']:.3f} | {r['focal']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
