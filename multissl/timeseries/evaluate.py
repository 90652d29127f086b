"""``multissl eval forecast-table``: per horizon, test MSE / MAE of the last-value baseline, DLinear,
and one encoder forecaster trained MSE-only, two-phase and end-to-end MSE + contrastive (Zhang et
al. 2023), each selected on validation MSE only, all on ONE data file, split and scaler.

    multissl eval forecast-table --data ett/ETTh1.csv --horizons 24 48 168 --seeds 0 1 2 --revin

``--data`` (and ``--protocol``, ``--date-column``, ``--revin``, ``--seeds``) apply to EVERY row; extra
``key=value`` overrides apply to the encoder rows, except ``data.*`` ones, which apply to every row.
The command checks that every row read the same file (recipe) and the same split and scaler (every
run's last-value figure must agree), names its run folders after the data set, prints every horizon
asked for, and prints published figures only when the file IS the data set they were published on.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from multissl.errors import MultisslError
from multissl.train.checkpoint import sha256 as file_sha256

# Informer (Zhou et al., AAAI 2021), Table 4, ETTh1 multivariate (its own input lengths): (MSE, MAE).
INFORMER_ETTH1 = {24: (0.577, 0.549), 48: (0.685, 0.625), 168: (0.931, 0.752), 336: (1.128, 0.873),
                  720: (1.215, 0.896)}
# SHA-256 of the unchanged ETTh1.csv of github.com/zhouhaoyi/ETDataset (the shipped data/ett/ETTh1.csv).
PUBLISHED = {"f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066": ("ETTh1", INFORMER_ETTH1)}


def auto_protocol(stem: str) -> str:
    """ETTh* -> Informer hourly (12/4/4 months), ETTm* -> Informer 15-min, anything else -> 70/10/20 ratio."""
    from multissl.timeseries.data import infer_protocol

    return infer_protocol(stem)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def paired_differences(base: list[tuple[float, float]], other: list[tuple[float, float]],
                       level: float = 0.95) -> dict[str, float]:
    """Per-seed test MSE differences ``other - base`` (same seed, hence the same initial forecaster and
    batches): mean, sample std, a two-sided Student-t interval at ``level`` over the seeds, and how
    many seeds the other regime is worse on (a positive difference = worse, MSE is lower-better)."""
    from multissl.eval.seeds import t_half_width

    d = [o[0] - b[0] for b, o in zip(base, other, strict=True)]
    m, sd = _mean_sd(d)
    half = t_half_width(d, level)
    return {"mean": m, "sd": sd, "lo": m - half, "hi": m + half, "worse": sum(x > 0 for x in d), "n": len(d),
            "diffs": d}


def _cell(pairs: list[tuple[float, float]]) -> str:
    (mse, mse_sd), (mae, mae_sd) = _mean_sd([p[0] for p in pairs]), _mean_sd([p[1] for p in pairs])
    if len(pairs) == 1:
        return f"{mse:.3f} / {mae:.3f}"
    return f"{mse:.3f} +- {mse_sd:.3f} / {mae:.3f} +- {mae_sd:.3f}"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="multissl eval forecast-table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="ett/ETTh1.csv", help="the ONE series file every row is trained and scored on")
    ap.add_argument("--protocol", default="auto", choices=["auto", "informer_hourly", "informer_15min", "ratio"],
                    help="split (auto: ETTh* hourly Informer months, ETTm* 15-min Informer months, else 70/10/20)")
    ap.add_argument("--date-column", default="date", help="column to sort by and drop ('none': rows in time order)")
    ap.add_argument("--horizons", type=int, nargs="+", default=[24, 48, 168, 336, 720])
    ap.add_argument("--regimes", nargs="+", default=["mse", "twophase", "e2e"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42], help="train.seed of every learned row; cells "
                    "show mean +- sample std over them")
    ap.add_argument("--revin", action="store_true", help="RevIN on for every learned row (DLinear and encoders)")
    ap.add_argument("--model", default="transformer", help="recipe prefix: transformer or tcn "
                    "(recipes/timeseries/<model>-<regime>-etth1, data replaced by --data)")
    ap.add_argument("--linear", default="timeseries/dlinear-etth1", help="the DLinear recipe (data replaced by --data)")
    ap.add_argument("--output-dir", default="runs")
    ap.add_argument("--json", default=None)
    ap.add_argument("overrides", nargs="*", help="overrides for the encoder recipes (data.* ones: every row), "
                    "e.g. train.max_steps=400")
    a = ap.parse_args(argv)
    from multissl.data import resolve_data_path
    from multissl.recipes import load_recipe
    from multissl.run import run_recipe

    path = resolve_data_path(a.data, "time series")
    stem = path.stem
    protocol = auto_protocol(stem) if a.protocol == "auto" else a.protocol
    sha = file_sha256(path)
    date_col = "null" if a.date_column.lower() in ("none", "null", "") else a.date_column
    every_row = [o for o in a.overrides if o.startswith("data.")]
    encoder_only = [o for o in a.overrides if not o.startswith("data.")]
    data_over = [f"data.path={path}", f"data.protocol={protocol}", f"data.date_column={date_col}", *every_row]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = Path(a.output_dir) / f"forecast-table-{stem}" / stamp
    print(f"data: {path} (sha256 {sha[:12]}), split {protocol}, z-scored with the train rows' mean / std; "
          f"every row below uses this file, split and scaler")
    if encoder_only:
        print(f"encoder rows only: {' '.join(encoder_only)}")
    if every_row:
        print(f"every row: {' '.join(every_row)}")

    rows, runs = [], []

    def run(recipe_name: str, extra: list[str], h: int, label: str, seed: int) -> dict[str, float]:
        over = [*extra, *data_over, f"data.pred_len={h}", f"train.seed={seed}", "train.progress=false",
                *(["model.revin=true"] if a.revin else [])]
        recipe = load_recipe(recipe_name, over)
        got = recipe.config.data
        if str(resolve_data_path(got.path, "time series")) != str(path) or got.protocol != protocol:
            raise MultisslError(f"row {label}: its recipe reads {got.path} ({got.protocol}), not {path} "
                                f"({protocol}); refusing to mix data sets in one table")
        folder = root / f"h{h}" / f"{label}-seed{seed}"
        m = run_recipe(recipe, run_dir=str(folder))["metrics"]
        runs.append({"row": label, "horizon": h, "seed": seed, "recipe": recipe_name, "run_dir": str(folder),
                     "data": str(got.path), "protocol": got.protocol, "metrics": m})
        return m

    for h in a.horizons:
        res: dict = {"horizon": h}
        ref_last = None
        for label, recipe_name, extra in [("dlinear", a.linear, []),
                                          *[(r, f"timeseries/{a.model}-{r}-etth1", encoder_only) for r in a.regimes]]:
            cells = []
            for seed in a.seeds:
                m = run(recipe_name, extra, h, label, seed)
                last = (m["test/last_value_mse"], m["test/last_value_mae"])
                if ref_last is None:
                    ref_last = last
                elif abs(last[0] - ref_last[0]) > 1e-6 * max(1.0, ref_last[0]):
                    raise MultisslError(f"row {label} (h={h}, seed {seed}) scored a different test set or scaler "
                                        f"(last-value MSE {last[0]:.6f} vs {ref_last[0]:.6f}); the table is void")
                cells.append((m["test/mse"], m["test/mae"]))
            res[label] = cells
        res["last_value"] = [ref_last]
        rows.append(res)
        if a.json:
            Path(a.json).write_text(json.dumps({"data": str(path), "sha256": sha, "protocol": protocol,
                                                "seeds": a.seeds, "revin": a.revin, "overrides": a.overrides,
                                                "rows": rows, "runs": runs}, indent=1))

    published = PUBLISHED.get(sha)
    cols = ["last_value", "dlinear", *a.regimes]
    head = "| horizon | " + " | ".join(f"{c} MSE / MAE" for c in cols)
    head += f" | Informer (paper, {published[0]}) MSE / MAE |" if published else " |"
    print(f"\ntest MSE / MAE, {stem}, seeds {a.seeds}{', RevIN' if a.revin else ''} (mean +- sample std over seeds)")
    print(head)
    print("|---" * (len(cols) + 1 + bool(published)) + "|")
    for res in rows:
        line = f"| {res['horizon']} | " + " | ".join(_cell(res[c]) for c in cols) + " |"
        if published:
            p = published[1].get(res["horizon"])
            line += f" {p[0]:.3f} / {p[1]:.3f} |" if p else " - |"
        print(line)
    if not published:
        print("(no published figures are printed: this file is not a data set they were published on)")
    if "mse" in a.regimes and len(a.seeds) > 1:
        print("\npaired per-seed test MSE difference to MSE-only (positive = worse than MSE-only), mean "
              "[95 % t-interval over seeds], seeds worse")
        for res in rows:
            for r in a.regimes:
                if r != "mse":
                    pd_ = paired_differences(res["mse"], res[r])
                    res[f"paired_{r}_minus_mse"] = pd_
                    print(f"  h={res['horizon']} {r} - mse: {pd_['mean']:+.4f} [{pd_['lo']:+.4f}, {pd_['hi']:+.4f}], "
                          f"worse on {pd_['worse']} / {pd_['n']}  (per seed: "
                          + ", ".join(f"{x:+.4f}" for x in pd_["diffs"]) + ")")
        if a.json:
            rec = json.loads(Path(a.json).read_text())
            rec["rows"] = rows
            Path(a.json).write_text(json.dumps(rec, indent=1))
    print(f"runs: {root}")
    return 0
