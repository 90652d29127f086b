"""``multissl eval biosignal-probes``: the participant-level probe table of Abbaspourazad et al. 2024
on our data: per target, hand-crafted HR/HRV features vs the random-init encoder vs the pre-trained
encoder, test participants never seen in pre-training, mean +- std over seeds.

    multissl eval biosignal-probes --recipe biosignal/participant-ppg-bp --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def _fmt(vals: list[float]) -> str:
    vals = [v for v in vals if not math.isnan(v)]
    if not vals:
        return "-"
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / max(1, len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return f"{mean:.3f} ± {std:.3f}"


def table(per_seed: list[dict[str, float]], split: str = "test") -> str:
    """Markdown table: one row per target metric, columns hand-crafted / random init / ours."""
    names = sorted({k.split("/", 1)[1] for k in per_seed[0] if k.startswith(f"{split}/") and k.count("/") == 1})
    lines = [f"| target ({split}) | hand-crafted HR/HRV | random-init encoder | pre-trained (ours) |", "|---|---|---|---|"]
    for n in names:
        cols = [_fmt([m.get(f"{split}/{p}{n}", float("nan")) for m in per_seed])
                for p in ("handcrafted/", "random_init/", "")]
        lines.append(f"| {n} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="multissl eval biosignal-probes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="biosignal/participant-ppg-bp")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--output-dir", default="runs")
    ap.add_argument("--json", default=None, help="write the per-seed metrics here")
    ap.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.epochs=10")
    a = ap.parse_args(argv)
    from multissl.recipes import load_recipe
    from multissl.run import run_recipe

    per_seed = []
    for s in a.seeds:
        recipe = load_recipe(a.recipe, [*a.overrides, f"train.seed={s}", "train.progress=false",
                                        f"train.output_dir={a.output_dir}"])
        per_seed.append(run_recipe(recipe)["metrics"])
    print(table(per_seed, "val"))
    print()
    print(table(per_seed, "test"))
    if a.json:
        Path(a.json).write_text(json.dumps({"recipe": a.recipe, "seeds": a.seeds, "overrides": a.overrides,
                                            "metrics": per_seed}, indent=1))
    return 0
