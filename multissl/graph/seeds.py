"""Run one recipe over many seeds (in parallel processes) and print mean +- std of its final metrics.

``python -m multissl.graph.seeds graph/graphmae-cora --seeds 0-19 --jobs 4 [key=value ...]``
(GraphMAE's protocol: 20 seeds, mean +- std). Results append to ``runs/seeds/<recipe>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def _one(args: tuple[str, int, list[str], str]) -> dict:
    recipe_name, seed, overrides, out_dir = args
    import torch

    from multissl.recipes import load_recipe
    from multissl.run import run_recipe

    torch.set_num_threads(max(1, torch.get_num_threads()))
    recipe = load_recipe(recipe_name, overrides + [f"train.seed={seed}", "train.progress=false"])
    t = time.perf_counter()
    res = run_recipe(recipe, output_dir=str(Path(out_dir) / f"seed{seed}"))  # no run-folder clashes
    seconds = time.perf_counter() - t
    steps = max(1, res["steps"])
    return {"seed": seed, "seconds": seconds, "seconds_per_step": seconds / steps, **res["metrics"]}


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def summarize(rows: list[dict], level: float = 0.95) -> dict[str, tuple[float, float, float, float]]:
    """Per metric: (mean, population std as GraphMAE reports it, and a two-sided Student-t interval at
    ``level`` for the mean over seeds, from the SAMPLE std; (nan, nan) with one seed)."""
    from multissl.eval.seeds import t_half_width

    keys = sorted({k for r in rows for k in r if k not in ("seed",) and isinstance(r[k], (int, float))})
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if k in r]
        m = statistics.mean(vals)
        if len(vals) > 1:
            half = t_half_width(vals, level)
            out[k] = (m, statistics.pstdev(vals), m - half, m + half)
        else:
            out[k] = (m, 0.0, float("nan"), float("nan"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("recipe")
    ap.add_argument("overrides", nargs="*", help="recipe overrides key=value")
    ap.add_argument("--seeds", default="0-19", help="e.g. 0-19 or 0,1,2")
    ap.add_argument("--jobs", type=int, default=1, help="parallel processes (share one GPU fine for small graphs)")
    ap.add_argument("--output-dir", default="runs/seeds")
    args = ap.parse_args(argv)
    seeds = _seeds(args.seeds)
    work = [(args.recipe, s, list(args.overrides), args.output_dir) for s in seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            rows = list(pool.map(_one, work))
    else:
        rows = [_one(w) for w in work]
    summary = summarize(rows)
    print(f"{args.recipe} over {len(seeds)} seeds ({' '.join(args.overrides)}):")
    print(f"  {'metric':32s} mean +- std (population) [95 % t-interval of the mean over {len(seeds)} seeds]")
    for k, (m, s, lo, hi) in summary.items():
        print(f"  {k:32s} {m:.4f} +- {s:.4f} [{lo:.4f}, {hi:.4f}]")
    out = Path(args.output_dir) / f"{args.recipe.replace('/', '-')}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps({"recipe": args.recipe, "overrides": args.overrides, "rows": rows,
                            "summary": {k: list(v) for k, v in summary.items()}}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
