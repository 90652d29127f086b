"""``multissl eval retrieval``: image<->text R@1/5/10 (and their mean) of one or two trained runs, or of a
freshly built model from a recipe (zero-shot: the towers as they load), on any supported caption layout,
with bootstrap 95% intervals over images (each image resampled with its captions) and, for two
models, the paired difference on the same images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load_method(run: str | None, recipe_name: str, overrides: list[str], checkpoint: str | None):
    """(recipe, method) of a run folder (its selected checkpoint) or of a fresh recipe."""
    from multissl.errors import CheckpointError
    from multissl.eval.modelref import is_run_folder
    from multissl.recipes import load_recipe
    from multissl.run import build_parts
    from multissl.train.checkpoint import load_weights

    if run is not None:
        if not is_run_folder(run):
            raise CheckpointError(f"{run} is not a run folder of `multissl train` (no recipe.yaml); a VL model is "
                                  "evaluated from its run folder")
        recipe = load_recipe(str(Path(run) / "recipe.yaml"), overrides)
    else:
        recipe = load_recipe(recipe_name, overrides)
    _, parts = build_parts(recipe)
    method = parts.method
    if run is not None:
        choice = checkpoint or ("best" if (Path(run) / "checkpoints" / "best").exists() else "last")
        weights = Path(run) / "checkpoints" / choice / "model.safetensors"
        if not weights.exists():
            raise CheckpointError(f"No {choice} checkpoint in {run}/checkpoints")
        load_weights(method, weights)
    return recipe, method


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="multissl eval retrieval", description=__doc__)
    ap.add_argument("--data", required=True, help="captions.jsonl / COCO captions_*.json / Karpathy dataset_*.json / "
                    "CSV/TSV (image,caption[,split]) / WebDataset .tar or folder")
    ap.add_argument("--image-root", default=None, help="folder image paths are relative to")
    ap.add_argument("--split", default="test", help="split to evaluate ('all' = every image)")
    ap.add_argument("--model", "--run", dest="model", nargs="+", default=None,
                    help="one run folder written by `multissl train`, or two for a paired comparison "
                         "(default: a fresh model from --recipe)")
    ap.add_argument("--checkpoint", default=None, help="'best' or 'last' (default: best if present)")
    ap.add_argument("--recipe", default="vl/clip-flickr8k", help="recipe of a fresh model when no --model is given")
    ap.add_argument("--image-size", type=int, default=None, help="override the recipe's resolution")
    ap.add_argument("--rerank-k", type=int, default=None, help="ITM re-ranking depth (default: the recipe's)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for 95%% intervals (0 = off)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples")
    ap.add_argument("--device", default=None)
    ap.add_argument("overrides", nargs="*", help="recipe overrides, e.g. model.text_tower=PATH")
    a = ap.parse_args(argv)

    import torch

    from multissl.errors import DataError, MultisslError
    from multissl.vl.data import load_captions, load_images
    from multissl.vl.retrieval import (
        bootstrap_recalls,
        paired_recalls,
        recalls_from_ranks,
        retrieval_ranks,
    )

    runs = a.model or [None]
    if len(runs) > 2:
        raise MultisslError("--model takes one run folder, or two for a paired comparison")
    data = load_captions(a.data, a.image_root)
    note = ""
    if a.split in ("", "all"):
        part = data
    else:
        part = data.subset(a.split)
        if len(part) == 0:
            found = sorted(set(data.split))
            if found not in ([], [""]):
                raise DataError(f"{a.data}: no images in split '{a.split}' (splits found: {found}); pass --split")
            part = data  # a file without split labels: every image, and the report says so
            note = f"{a.data} has no split labels: all {len(part)} images were evaluated, not split '{a.split}'"
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    report: dict = {"data": a.data, "split": a.split, "images": len(part), "captions": sum(len(c) for c in part.captions),
                    "bootstrap": a.bootstrap, "models": {}}
    if note:
        report["note"] = note
        print(f"multissl: warning: {note}", file=sys.stderr)
    ranks = []
    images = None
    for run in runs:
        recipe, method = _load_method(run, a.recipe, list(a.overrides), a.checkpoint)
        cfg = recipe.config
        size = a.image_size or cfg.data.image_size
        if images is None or images.shape[-1] != size:
            images = load_images(part.images, size)
        k = cfg.eval.rerank_k if a.rerank_k is None else a.rerank_k
        method.to(device).eval()
        with torch.no_grad():
            r = retrieval_ranks(method, images, part.captions, k, cfg.eval.batch_size)
        ranks.append(r)
        entry: dict = {"metrics": recalls_from_ranks(r), "rerank_k": k, "image_size": size}
        if a.bootstrap > 0:
            entry["ci95"] = bootstrap_recalls(r, a.bootstrap, a.seed)
        report["models"][run or f"fresh:{a.recipe}"] = entry
        del method
    n = len(part)
    report["chance_r@1"], report["chance_r@10"] = 100.0 / n, min(100.0, 1000.0 / n)
    if len(ranks) == 2 and a.bootstrap > 0:
        report["paired_difference"] = paired_recalls(ranks[0], ranks[1], a.bootstrap, a.seed)
    print(json.dumps(report, indent=2))
    return 0
