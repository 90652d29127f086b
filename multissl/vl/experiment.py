"""The ablation of the issue: CLIP-style baseline / ALBEF / TCL recipes x seeds on the same data and
budget, with the zero-shot (untrained) test figures, wall times and a mean +- std table.

    python -m multissl.vl.experiment --recipes vl/clip-flickr8k vl/albef-flickr8k vl/tcl-flickr8k \
        --seeds 0 1 2 --out runs/vl-ablation.jsonl -- data.path=path/to/vl/captions.jsonl train.epochs=10
    python -m multissl.vl.experiment --table runs/vl-ablation.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

KEYS = ("i2t_r@1", "i2t_r@5", "i2t_r@10", "t2i_r@1", "t2i_r@5", "t2i_r@10", "rsum")


def run(recipes: list[str], seeds: list[int], overrides: list[str], out: Path, zero_shot: bool = True,
        runs_dir: Path | None = None) -> None:
    import torch

    from multissl.recipes import load_recipe
    from multissl.run import build_parts, run_recipe
    from multissl.vl.retrieval import evaluate_retrieval
    from multissl.vl.tasks import load_split

    out.parent.mkdir(parents=True, exist_ok=True)
    if zero_shot:  # the towers as they load (image tower random: from scratch), test split
        for name in recipes:
            recipe = load_recipe(name, overrides + ["train.seed=0"])
            _, parts = build_parts(recipe)
            dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            method = parts.method.to(dev).eval()
            te_img, te_caps = load_split(recipe.config, recipe.config.data.test_split)
            with torch.no_grad():
                m = evaluate_retrieval(method, te_img, te_caps, 0, recipe.config.eval.batch_size, prefix="test/")
            _append(out, {"recipe": name, "seed": 0, "phase": "zero_shot", "metrics": m})
            del method, parts
    for seed in seeds:  # seeds outer: every method gets seed 0 first
        for name in recipes:
            recipe = load_recipe(name, overrides + [f"train.seed={seed}", "train.progress=false"])
            t0 = time.perf_counter()
            res = run_recipe(recipe, output_dir=str(runs_dir or out.parent / "vl-runs"))
            wall = time.perf_counter() - t0
            _append(out, {"recipe": name, "seed": seed, "phase": "trained", "wall_s": wall, "steps": res["steps"],
                          "metrics": res["metrics"], "overrides": overrides})


def _append(path: Path, record: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(json.dumps(record)[:400], flush=True)


def table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["recipe"], r["phase"]), []).append(r)

    def fmt(vals: list[float]) -> str:
        if len(vals) == 1:
            return f"{vals[0]:.1f}"
        return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"

    lines = ["| recipe | phase | seeds | " + " | ".join(KEYS) + " | ITC-only rsum | wall s |",
             "|---" * (len(KEYS) + 5) + "|"]
    for (name, phase), rs in groups.items():
        cells = [fmt([r["metrics"][f"test/{k}"] for r in rs]) for k in KEYS]
        itc = [r["metrics"].get("test/itc/rsum") for r in rs]
        itc_cell = fmt([v for v in itc if v is not None]) if all(v is not None for v in itc) else "-"
        wall = fmt([r["wall_s"] for r in rs]) if phase == "trained" else "-"
        lines.append(f"| {name} | {phase} | {len(rs)} | " + " | ".join(cells) + f" | {itc_cell} | {wall} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="*", default=["vl/clip-flickr8k", "vl/albef-flickr8k", "vl/tcl-flickr8k"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("runs/vl-ablation.jsonl"))
    ap.add_argument("--no-zero-shot", action="store_true")
    ap.add_argument("--runs-dir", type=Path, default=None, help="run folders (default: beside --out)")
    ap.add_argument("--table", type=Path, default=None, help="print the table of a results file and exit")
    ap.add_argument("overrides", nargs="*", help="recipe overrides applied to every recipe (after --)")
    a = ap.parse_args(argv)
    if a.table:
        print(table(a.table))
        return 0
    run(a.recipes, a.seeds, a.overrides, a.out, zero_shot=not a.no_zero_shot, runs_dir=a.runs_dir)
    print(table(a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
