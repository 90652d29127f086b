"""``multissl eval image-knn``: weighted kNN (k=200, T=0.1), linear probe and alignment/uniformity of a
trained image run's backbone on any image-folder set (offline evaluation of a checkpoint)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl eval image-knn", description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run folder written by `multissl train image/...`")
    p.add_argument("--data", help="image-folder root to evaluate on (default: the run's data.root)")
    p.add_argument("--checkpoint", choices=("best", "last"), default=None, help="default: best if present")
    p.add_argument("--knn-k", type=int, default=200)
    p.add_argument("--knn-temperature", type=float, default=0.1)
    p.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    args = p.parse_args(argv)
    import torch

    from multissl.errors import CheckpointError
    from multissl.recipes import load_recipe
    from multissl.run import build_parts
    from multissl.train.checkpoint import load_weights

    run = Path(args.run)
    if not (run / "recipe.yaml").exists():
        raise CheckpointError(f"{run} is not a run folder (no recipe.yaml)")
    overrides = [f"eval.knn_k={args.knn_k}", f"eval.knn_temperature={args.knn_temperature}",
                 f"eval.linear_probe={'false' if args.no_linear else 'true'}", "data.limit_train=null"]
    if args.data:
        overrides.append(f"data.root={args.data}")
    recipe = load_recipe(str(run / "recipe.yaml"), overrides)
    _, parts = build_parts(recipe)
    choice = args.checkpoint or ("best" if (run / "checkpoints" / "best").exists() else "last")
    weights = run / "checkpoints" / choice / "model.safetensors"
    if not weights.exists():
        raise CheckpointError(f"No {choice} checkpoint in {run}/checkpoints")
    method = parts.method
    load_weights(method, weights)
    method.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    with torch.no_grad():
        metrics = parts.final_evaluate(method)
    from multissl.eval.guards import require_finite

    require_finite(metrics, f"image probes of {run}")
    print(json.dumps({"run": str(run), "checkpoint": choice, **metrics}, indent=2))
    return 0
