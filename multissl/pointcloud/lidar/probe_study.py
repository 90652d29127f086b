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

from multissl.core.method import Progress, after_optimizer_step
from multissl.pointcloud.lidar.methods import LidarSSL, TransformSpec, collate_scenes
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
             readout: str = "correspondence") -> LidarSSL:
    """A tiny pre-training run (AdamW, no schedule); ``steps=0`` returns the random init of ``seed``."""
    torch.manual_seed(seed)
    m = LidarSSL(GRID, channels, objective, spec, temporal_weight=temporal_weight if objective == "equivariant" else 0.0,
                 samples=32, momentum=0.9, readout=readout)
    opt = torch.optim.AdamW(m.parameters(), lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    m.train()
    for step in range(steps):
        idx = torch.randint(0, len(train), (batch_size,), generator=g).tolist()
        out = m(collate_scenes([train[i] for i in idx], 64))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        after_optimizer_step(m, Progress(step + 1, steps, 0, steps))
    return m.eval()


def main(argv: list[str] | None = None) -> int:
    from multissl.pointcloud.lidar.detection import probe_detector

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2], help="backbone (pre-training) seeds")
    ap.add_argument("--steps", type=int, default=200, help="pre-training steps")
    ap.add_argument("--probe-seed", type=int, default=0)
    ap.add_argument("--eval-sim-seed", type=int, default=SIM_SEEDS["test"], help="13 = the selection scenes")
    a = ap.parse_args(argv)
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
