"""``multissl eval retrieval``: image<->text R@1/5/10 (and their mean) of a trained run, or of a freshly
built model from a recipe (zero-shot: the towers as they load), on any supported caption layout."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="multissl eval retrieval", description=__doc__)
    ap.add_argument("--data", required=True, help="captions.jsonl / COCO captions_*.json / Karpathy dataset_*.json / "
                    "CSV/TSV (image,caption[,split]) / WebDataset .tar or folder")
    ap.add_argument("--image-root", default=None, help="folder image paths are relative to")
    ap.add_argument("--split", default="test", help="split to evaluate ('' or 'all' = every image)")
    ap.add_argument("--run", default=None, help="run folder written by `multissl train` (selected checkpoint)")
    ap.add_argument("--checkpoint", default=None, help="'best' or 'last' (default: best if present)")
    ap.add_argument("--recipe", default="vl/clip-flickr8k", help="recipe of a fresh model when no --run is given")
    ap.add_argument("--image-size", type=int, default=None, help="override the recipe's resolution")
    ap.add_argument("--rerank-k", type=int, default=None, help="ITM re-ranking depth (default: the recipe's)")
    ap.add_argument("--device", default=None)
    ap.add_argument("overrides", nargs="*", help="recipe overrides, e.g. model.text_tower=PATH")
    a = ap.parse_args(argv)

    import torch

    from multissl.errors import CheckpointError
    from multissl.recipes import load_recipe
    from multissl.run import build_parts
    from multissl.train.checkpoint import load_weights
    from multissl.vl.data import load_captions, load_images
    from multissl.vl.retrieval import evaluate_retrieval

    from multissl.errors import DataError

    data = load_captions(a.data, a.image_root)  # bad data fails before any model loads
    part = data if a.split in ("", "all") else data.subset(a.split)
    if len(part) == 0:
        have = sorted({s for s in data.split if s})
        if not have:
            raise DataError(f"{a.data} gives no split for its images, so --split {a.split} would score every image, "
                            "training ones included; add a 'split' field, or pass --split all to score them all")
        raise DataError(f"{a.data} has no '{a.split}' images (splits: {', '.join(have)}); choose one with --split")
    overrides = list(a.overrides)
    if a.run:
        recipe_file = Path(a.run) / "recipe.yaml"
        if not recipe_file.exists():
            raise CheckpointError(f"{a.run} is not a run folder (no recipe.yaml)")
        recipe = load_recipe(str(recipe_file), overrides)
    else:
        recipe = load_recipe(a.recipe, overrides)
    cfg = recipe.config
    _, parts = build_parts(recipe)
    method = parts.method
    if a.run:
        choice = a.checkpoint or ("best" if (Path(a.run) / "checkpoints" / "best").exists() else "last")
        weights = Path(a.run) / "checkpoints" / choice / "model.safetensors"
        if not weights.exists():
            raise CheckpointError(f"No {choice} checkpoint in {a.run}/checkpoints")
        load_weights(method, weights)
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    method.to(device).eval()
    size = a.image_size or cfg.data.image_size
    images = load_images(part.images, size)
    k = cfg.eval.rerank_k if a.rerank_k is None else a.rerank_k
    with torch.no_grad():
        metrics = evaluate_retrieval(method, images, part.captions, k, cfg.eval.batch_size)
    from multissl.eval.guards import require_finite

    require_finite(metrics, f"retrieval on {a.data}")
    n = len(part)
    metrics["images"], metrics["chance_r@1"], metrics["chance_r@10"] = n, 100.0 / n, 1000.0 / n
    print(json.dumps(metrics, indent=2))
    return 0
