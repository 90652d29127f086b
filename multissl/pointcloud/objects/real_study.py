"""``multissl eval pointcloud.cls-real``: Point-MAE on real objects (issue 23, item 5).

Encoders, all the same architecture (the recipe's ``model``), from scratch (no pretrained weights offline):
- ``random``: the random init of the seed (frozen: the random-encoder floor; fine-tuned: training from
  scratch with labels);
- ``modelnet10``: Point-MAE pre-trained on the real ModelNet10 train split (``data.source=modelnet10_vox``);
- ``procedural``: Point-MAE pre-trained on the procedural shape set (``pointmae-shapes-small``'s data),
  the same number of steps (equal compute).

Evaluations, every one on real data, each encoder seed separately (mean, std and a 95 % t-interval over
seeds in the summary):
1. ModelNet10 test (907 shapes, official split): a linear SVM on frozen [mean, max] token features (the
   Point-MAE / Point-BERT protocol; C chosen on the validation split carved from train, never on test)
   and a weighted kNN;
2. ModelNet10 few-label fine-tuning (``--labels-per-class`` train shapes per class, epoch chosen on
   validation, test single-pass and 10-vote);
3. real LiDAR crops (KITTI + nuScenes ground-truth boxes in ``data/pointcloud``, >= ``--min-points``
   points): car vs other, leave-one-out logistic regression on frozen features, each crop normalised
   ``unit_sphere`` (Point-MAE), ``centre`` (metric size kept, metres) or ``centre3m`` (metric size kept,
   divided by a fixed 3 m so the crops span about the unit sphere's range); plus a size-only baseline (the
   crop's sorted extents), which needs no encoder.

    multissl eval pointcloud.cls-real --seeds 0 1 2 --encoders random modelnet10 procedural --out real.json

Pre-trained encoders are kept in ``--work`` (safetensors) and reused; per-(encoder, seed) results are
written there too, so encoders and seeds can run in separate processes and ``--summarise`` joins them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from multissl.eval.seeds import seed_summary

SVM_C = (0.001, 0.01, 0.1, 1.0)
CROP_SCALE_M = 3.0  # centre3m: metric size kept, divided by a fixed 3 m (fixed a priori, not selected)


def interval(vals: list[float]) -> dict[str, float]:
    mean, sd, half = seed_summary(vals)
    return {"mean": mean, "std": sd if len(vals) > 1 else 0.0, "ci95": half, "n": len(vals)}


# -- real LiDAR crops --------------------------------------------------------------------------------
def lidar_crops(min_points: int = 10) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Ground-truth object crops of the shipped real scans: (clouds (n_i, 3), is_car (K,), source names).

    KITTI 000000 (full scan), 000002 and 001545 (``kitti_fov``), 000008 (mmdetection3d demo), KITTI's
    exact in-box test; the nuScenes LIDAR_TOP sweep (LiDAR-frame boxes). Class 1 = car (KITTI ``Car``,
    nuScenes ``car``), 0 = every other labelled object; crops with fewer than ``min_points`` points
    are dropped."""
    from multissl.data import resolve_data_path
    from multissl.pointcloud import io

    k = "pointcloud/kitti_object/training"
    f = "pointcloud/kitti_fov"
    scenes = [("kitti-000000", io.read_kitti_scene(f"{k}/velodyne/000000.bin", f"{k}/label_2/000000.txt",
                                                   f"{k}/calib/000000.txt"))]
    for fr in ("000002", "001545"):
        scenes.append((f"kitti-{fr}", io.read_kitti_scene(f"{f}/velodyne_reduced/{fr}.bin", f"{f}/label_2/{fr}.txt",
                                                          f"{f}/calib/{fr}.txt")))
    scenes.append(("kitti-000008", io.read_mmdet3d_kitti("pointcloud/mmdet3d_demo/kitti/000008.bin",
                                                         "pointcloud/mmdet3d_demo/kitti/000008.pkl")))
    nus = resolve_data_path("pointcloud/mmdet3d_demo/nuscenes", "nuScenes demo folder")
    scenes.append(("nuscenes", io.read_nuscenes_sample(min(nus.glob("*.pcd.bin")), min(nus.glob("*.pkl")))))
    clouds, car, names = [], [], []
    for name, sc in scenes:
        inside = io.box_points(sc)
        for lab, m in zip(sc.labels, inside, strict=True):
            if m.sum() >= min_points and lab not in ("-1", "DontCare"):
                clouds.append(sc.points[m, :3].astype(np.float32))
                car.append(int(lab.lower() == "car"))
                names.append(f"{name}:{lab}")
    return clouds, np.asarray(car, np.int64), names


def resample(clouds: list[np.ndarray], n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([c[rng.choice(len(c), n, replace=len(c) < n)] for c in clouds])


def size_features(clouds: list[np.ndarray]) -> np.ndarray:
    """Sorted extents (max - min per axis, descending) of each crop: size only, no encoder."""
    return np.stack([np.sort(c.max(0) - c.min(0))[::-1] for c in clouds]).astype(np.float32)


def loo_accuracy(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> dict[str, float]:
    """Leave-one-out accuracy and balanced accuracy of a standardised logistic regression (fixed C:
    nothing is selected, the set is too small to carve a validation split from)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    pred = cross_val_predict(clf, x, y, cv=LeaveOneOut())
    recall = [float((pred[y == k] == k).mean()) for k in np.unique(y)]
    return {"acc": float((pred == y).mean()), "balanced_acc": float(np.mean(recall))}


# -- ModelNet10 probes -------------------------------------------------------------------------------
def svm_probe(ftr, ytr, fva, yva, fte, yte, cs=SVM_C) -> dict[str, float]:
    """Linear SVM on standardised frozen features; C chosen on validation; test accuracy at that C."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    sc = StandardScaler().fit(ftr)
    a, b, t = sc.transform(ftr), sc.transform(fva), sc.transform(fte)
    best = (-1.0, None, None)
    for c in cs:
        clf = LinearSVC(C=c, max_iter=5000).fit(a, ytr)
        v = float((clf.predict(b) == yva).mean())
        if v > best[0]:
            best = (v, c, clf)
    return {"svm_val_acc": best[0], "svm_C": best[1], "svm_acc": float((best[2].predict(t) == yte).mean())}


def few_labels(y: torch.Tensor, per_class: int, num_classes: int) -> torch.Tensor:
    return torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in range(num_classes)])


# -- pre-training ------------------------------------------------------------------------------------
def pretrain(recipe, train_x: torch.Tensor, steps: int, seed: int, log=print):
    """Point-MAE on ``train_x`` for ``steps`` AdamW steps with the recipe's optimiser, schedule and batch
    (shuffled epochs, cosine with the recipe's warm-up ratio); returns the encoder (eval mode)."""
    from multissl.core import after_optimizer_step
    from multissl.core.method import Progress
    from multissl.pointcloud.objects.pointmae import PointMAE
    from multissl.pointcloud.objects.task import build_encoder
    from multissl.train.schedules import lr_multiplier
    from multissl.train.trainer import seed_everything

    cfg, tr = recipe.config, recipe.train
    seed_everything(seed)
    m = cfg.method
    mae = PointMAE(build_encoder(cfg.model), m.mask_ratio, m.decoder_depth, m.decoder_heads, tuple(m.scale),
                   m.translate, m.loss)
    params = list(mae.named_parameters())
    skip = [p.ndim <= 1 or "token" in n for n, p in params]
    opt = torch.optim.AdamW([{"params": [p for (_, p), s in zip(params, skip, strict=True) if not s],
                              "weight_decay": tr.weight_decay},
                             {"params": [p for (_, p), s in zip(params, skip, strict=True) if s], "weight_decay": 0.0}],
                            lr=tr.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_multiplier(tr.scheduler, steps, round(tr.warmup_ratio * steps)))
    g = torch.Generator().manual_seed(seed)
    order, pos, t0 = torch.randperm(len(train_x), generator=g), 0, time.time()
    mae.train()
    for step in range(steps):
        if pos + tr.batch_size > len(order):
            order, pos = torch.randperm(len(train_x), generator=g), 0
        batch = train_x[order[pos : pos + tr.batch_size]]
        pos += tr.batch_size
        loss = mae(batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(mae.parameters(), 10.0)
        opt.step()
        sched.step()
        after_optimizer_step(mae, Progress(step + 1, steps, 0, steps))
        if (step + 1) % 50 == 0 or step == 0:
            log(f"  pretrain step {step + 1}/{steps} chamfer {loss.item():.4f} ({time.time() - t0:.0f} s)")
    return mae.encoder.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="multissl eval pointcloud.cls-real", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--recipe", default="pointcloud/pointmae-modelnet10-small", help="model, optimiser, ModelNet10 data")
    ap.add_argument("--procedural-recipe", default="pointcloud/pointmae-shapes-small", help="data of the procedural encoder")
    ap.add_argument("--encoders", nargs="+", default=["random", "modelnet10", "procedural"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--labels-per-class", type=int, default=10, help="fine-tuning labels per class (0: no fine-tuning)")
    ap.add_argument("--finetune-epochs", type=int, default=20)
    ap.add_argument("--min-points", type=int, default=10, help="smallest LiDAR crop kept")
    ap.add_argument("--work", default="runs/pointcloud-cls-real", help="encoders and per-run results")
    ap.add_argument("--summarise", action="store_true", help="only join the results in --work")
    ap.add_argument("--out", help="write the summary JSON here")
    ap.add_argument("overrides", nargs="*", help="overrides of --recipe, key=value")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.summarise:
        run(args, work)
    return summarise(work, args.out)


def run(args, work: Path) -> None:
    from multissl.eval import knn_accuracy
    from multissl.pointcloud import io
    from multissl.pointcloud.objects.classify import FinetuneConfig, encode, finetune
    from multissl.pointcloud.objects.data import load_splits
    from multissl.pointcloud.objects.task import build_encoder
    from multissl.recipes import load_recipe
    from multissl.train.checkpoint import load_weights, save_weights
    from multissl.train.trainer import seed_everything

    recipe = load_recipe(args.recipe, args.overrides)
    cfg, d = recipe.config, recipe.config.data
    sp = load_splits(d.source, d.path, d.test_path, d.num_points, d.train_per_class, d.test_per_class, d.val_fraction,
                     d.seed, d.normalize)
    print(f"{d.source}: train {len(sp.train_x)}, val {len(sp.val_x)}, test {len(sp.test_x)}, {d.num_points} points, "
          f"normalize {d.normalize}", flush=True)
    crops, is_car, _ = lidar_crops(args.min_points)
    crop_pts = resample(crops, d.num_points)
    crop_x = {how: torch.from_numpy(io.normalize(crop_pts, how)).float() for how in ("unit_sphere", "centre")}
    crop_x["centre3m"] = crop_x["centre"] / CROP_SCALE_M
    print(f"LiDAR crops: {len(crops)} ({int(is_car.sum())} cars)", flush=True)
    size = loo_accuracy(size_features(crops), is_car)
    (work / "size_only.json").write_text(json.dumps(size))
    for name in args.encoders:
        for seed in args.seeds:
            out = work / f"{name}-seed{seed}.json"
            if out.exists():
                print(f"{out} exists: skipped", flush=True)
                continue
            t0 = time.time()
            weights = work / f"encoder-{name}-seed{seed}-{args.pretrain_steps}.safetensors"
            if name == "random":
                seed_everything(seed)
                enc = build_encoder(cfg.model).eval()
            elif weights.exists():
                enc = build_encoder(cfg.model)
                load_weights(enc, weights)
                enc.eval()
            else:
                if name == "modelnet10":
                    pre_x = sp.train_x
                elif name == "procedural":
                    pr = load_recipe(args.procedural_recipe, []).config.data
                    pre_x = load_splits(pr.source, pr.path, pr.test_path, d.num_points, pr.train_per_class,
                                        pr.test_per_class, pr.val_fraction, pr.seed, pr.normalize).train_x
                else:
                    raise SystemExit(f"unknown encoder {name!r}: random, modelnet10 or procedural")
                print(f"[{name} seed {seed}] pre-training on {len(pre_x)} clouds", flush=True)
                enc = pretrain(recipe, pre_x, args.pretrain_steps, seed, log=lambda s: print(s, flush=True))
                save_weights(enc, weights)
            r: dict[str, float] = {"encoder": name, "seed": seed, "pretrain_steps": 0 if name == "random" else args.pretrain_steps}
            ftr, fva, fte = encode(enc, sp.train_x), encode(enc, sp.val_x), encode(enc, sp.test_x)
            r.update(svm_probe(ftr.numpy(), sp.train_y.numpy(), fva.numpy(), sp.val_y.numpy(), fte.numpy(), sp.test_y.numpy()))
            r["knn_acc"] = knn_accuracy(ftr, sp.train_y, fte, sp.test_y, k=cfg.eval.knn_k)
            for how, x in crop_x.items():
                lo = loo_accuracy(encode(enc, x).numpy(), is_car)
                r[f"crops_{how}_acc"], r[f"crops_{how}_bacc"] = lo["acc"], lo["balanced_acc"]
            if args.labels_per_class:
                keep = few_labels(sp.train_y, args.labels_per_class, sp.num_classes)
                ft = finetune(enc, sp.train_x[keep], sp.train_y[keep], sp.val_x, sp.val_y, sp.test_x, sp.test_y,
                              sp.num_classes, FinetuneConfig(epochs=args.finetune_epochs, warmup_epochs=1,
                                                             batch_size=cfg.eval.finetune_batch_size), seed=seed)
                r.update(ft)
            r["seconds"] = round(time.time() - t0)
            print(json.dumps(r), flush=True)
            out.write_text(json.dumps(r))


METRICS = ("svm_acc", "knn_acc", "finetune_acc", "finetune_vote_acc", "crops_unit_sphere_acc", "crops_centre_acc",
           "crops_centre3m_acc", "crops_unit_sphere_bacc", "crops_centre_bacc", "crops_centre3m_bacc")


def summarise(work: Path, out: str | None) -> int:
    rows: dict[str, list[dict]] = {}
    for f in sorted(work.glob("*-seed*.json")):
        r = json.loads(f.read_text())
        rows.setdefault(r["encoder"], []).append(r)
    summary: dict = {}
    for name, rs in rows.items():
        summary[name] = {"seeds": [r["seed"] for r in rs]}
        for k in METRICS:
            vals = [r[k] for r in rs if k in r]
            if vals:
                summary[name][k] = {**interval(vals), "values": vals}
        line = ", ".join(f"{k} {s['mean']:.3f} ± {s['ci95']:.3f}" for k, s in summary[name].items() if k != "seeds")
        print(f"{name} (seeds {summary[name]['seeds']}): {line}")
    if (work / "size_only.json").exists():
        summary["size_only"] = json.loads((work / "size_only.json").read_text())
        print(f"size only (sorted crop extents, LOO logistic): {summary['size_only']}")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(summary, indent=2))
    return 0
