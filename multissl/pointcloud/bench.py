"""``multissl bench pointcloud``: batched torch FPS + kNN against open3d (C++ FPS and KD-tree kNN) and a
per-cloud python-loop torch reference, at 1,024 / 8,192 / ~120k points; Point-MAE pre-training clouds/s.
Runs on the GPU when one is present (``--device``)."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from multissl.bench.harness import Measurement, record, timed


def _loop_fps(x: torch.Tensor, n: int) -> torch.Tensor:
    """The textbook reference: one cloud at a time, recomputing distances to the newest centre."""
    out = []
    for cloud in x:
        chosen = [0]
        dist = torch.full((cloud.shape[0],), float("inf"), device=cloud.device)
        for _ in range(n - 1):
            dist = torch.minimum(dist, (cloud - cloud[chosen[-1]]).pow(2).sum(-1))
            chosen.append(int(dist.argmax()))
        out.append(torch.tensor(chosen))
    return torch.stack(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="multissl bench pointcloud", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192, 120000])
    ap.add_argument("--batch", type=int, default=8, help="clouds per FPS/kNN batch (1 for the 120k scan)")
    ap.add_argument("--mae-batch", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from multissl.pointcloud.io import read_points
    from multissl.pointcloud.o3d import import_open3d
    from multissl.pointcloud.ops import farthest_point_sample, knn

    o3d = import_open3d()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    sizes = [1024] if args.quick else args.sizes
    rows: list[Measurement] = []
    scan = read_points("pointcloud/kitti_object/training/velodyne/000000.bin")[:, :3]
    for n in sizes:
        centres, k = (64, 32) if n <= 1024 else ((512, 32) if n <= 8192 else (2048, 16))
        b = args.batch if n <= 8192 else 1
        if n > 8192:
            x_np = scan[:n][None]
        else:
            rng = np.random.default_rng(0)
            x_np = rng.random((b, n, 3)).astype(np.float32)
        x = torch.from_numpy(x_np).to(dev)

        def ours():
            idx = farthest_point_sample(x, centres)
            c = torch.gather(x, 1, idx[..., None].expand(-1, -1, 3))
            return knn(c, x, k)

        def open3d_ref():
            for cloud in x_np:
                pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.astype(np.float64)))
                down = pc.farthest_point_down_sample(centres)
                tree = o3d.geometry.KDTreeFlann(pc)
                for p in np.asarray(down.points):
                    tree.search_knn_vector_3d(p, k)

        def loop_ref():
            idx = _loop_fps(x, centres)
            for i in range(len(x)):
                c = x[i, idx[i]]
                torch.cdist(c, x[i]).topk(k, largest=False)

        ours()  # warm-up
        t_ours = timed(ours, 2, sync)
        what = f"FPS({centres})+kNN({k}) {b}x{n} pts"
        rows.append(Measurement("pointcloud", what, t_ours, timed(open3d_ref, 1), "s", "open3d 0.x CPU",
                                higher_is_better=False, extra={"device": str(dev)}))
        if n <= 8192:
            rows.append(Measurement("pointcloud", what, t_ours, timed(loop_ref, 1, sync), "s", "per-cloud torch loop",
                                    higher_is_better=False, extra={"device": str(dev)}))
    from multissl.pointcloud.objects.pointmae import PointEncoder, PointMAE

    torch.manual_seed(0)
    mae = PointMAE(PointEncoder()).to(dev)  # the paper configuration
    opt = torch.optim.AdamW(mae.parameters(), 1e-3)
    batch = torch.rand(args.mae_batch, 1024, 3, device=dev)

    def step():
        opt.zero_grad()
        mae(batch).loss.backward()
        opt.step()

    step()
    t = timed(step, 2, sync)
    rows.append(Measurement("pointcloud", f"Point-MAE paper config pre-training ({dev.type})", args.mae_batch / t, None,
                            "clouds/s", extra={"batch": args.mae_batch, "threads": args.threads}))
    record(rows)
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    raise SystemExit(main(sys.argv[1:]))
