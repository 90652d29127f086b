"""``multissl eval pointcloud.cls``: classification of a Point-MAE run's encoder, or of a random-init
(scratch) encoder, by frozen-feature probes and by fine-tuning (single-pass and voted), over seeds.

    multissl eval pointcloud.cls --recipe pointcloud/pointmae-shapes-small --run runs/pointmae-shapes-small/<ts>
    multissl eval pointcloud.cls --recipe pointcloud/pointmae-shapes-small --scratch --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="multissl eval pointcloud.cls", description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", required=True, help="the Point-MAE recipe (data, model and fine-tuning settings)")
    ap.add_argument("--run", help="run folder of `multissl train` (its best/last checkpoint); omit with --scratch")
    ap.add_argument("--scratch", action="store_true", help="evaluate a randomly initialised encoder")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds (mean +- std)")
    ap.add_argument("--labels-per-class", type=int, default=None, help="fine-tune / probe on this many train clouds per class")
    ap.add_argument("--no-finetune", action="store_true", help="probes only")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("overrides", nargs="*", help="recipe overrides key=value")
    args = ap.parse_args(argv)
    if not args.scratch and not args.run:
        ap.error("give --run RUN_FOLDER or --scratch")

    from multissl.pointcloud.objects.classify import finetune, probe
    from multissl.pointcloud.objects.data import load_splits
    from multissl.pointcloud.objects.task import build_encoder, finetune_config
    from multissl.recipes import load_recipe
    from multissl.train.checkpoint import load_weights
    from multissl.train.trainer import seed_everything

    recipe = load_recipe(args.recipe, args.overrides)
    cfg = recipe.config
    d = cfg.data
    sp = load_splits(d.source, d.path, d.test_path, d.num_points, d.train_per_class, d.test_per_class, d.val_fraction,
                     d.seed, d.normalize)
    tr_x, tr_y = sp.train_x, sp.train_y
    if args.labels_per_class:
        keep = torch.cat([torch.nonzero(tr_y == c).flatten()[: args.labels_per_class] for c in range(sp.num_classes)])
        tr_x, tr_y = tr_x[keep], tr_y[keep]
    results: dict[str, list[float]] = {}
    for seed in args.seeds:
        seed_everything(seed)
        encoder = build_encoder(cfg.model)
        if args.run:
            from multissl.pointcloud.objects.pointmae import PointMAE

            m = cfg.method
            method = PointMAE(encoder, m.mask_ratio, m.decoder_depth, m.decoder_heads)
            ck = Path(args.run) / "checkpoints"
            load_weights(method, (ck / "best" if (ck / "best").exists() else ck / "last") / "model.safetensors")
        r = {f"probe_{k}": v for k, v in probe(encoder, tr_x, tr_y, sp.test_x, sp.test_y, cfg.eval.knn_k).items()}
        if not args.no_finetune:
            r.update(finetune(encoder, tr_x, tr_y, sp.val_x, sp.val_y, sp.test_x, sp.test_y, sp.num_classes,
                              finetune_config(cfg.eval), seed=seed))
        from multissl.eval.guards import require_finite

        require_finite(r, f"point-cloud classification (seed {seed})")
        print(json.dumps({"seed": seed, **r}), flush=True)
        for k, v in r.items():
            results.setdefault(k, []).append(v)
        if args.run is None and not args.scratch:
            break
    summary = {k: {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "values": v}
               for k, v in results.items()}
    label = "scratch" if args.scratch else args.run
    print(f"{label}: " + ", ".join(f"{k} {s['mean']:.4f} +- {s['std']:.4f}" for k, s in summary.items()))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"what": label, "seeds": args.seeds, "summary": summary}, indent=2))
    return 0
