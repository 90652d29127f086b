"""Seed table of ``contrastive.supcon`` runs: SupCon vs cross-entropy, mean +- sd over seeds, a 95 %
t-interval of the mean, and the per-seed paired difference (SupCon - CE) with its own t-interval.

    python -m multissl.finetune.seed_table --supcon runs/cifar-supcon-s{0,1,2} \
        --ce runs/cifar-ce-s{0,1,2}

Reads each run's ``results.json`` (the metrics of the checkpoint selected on validation: ``test/*`` are
scored once on it). Runs are paired by position: give the seeds in the same order for both lists.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ("untrained val/knn_acc", "untrained val/linear_acc", "val/knn_acc", "val/linear_acc", "test/knn_acc", "test/linear_acc")


def summary(values: list[float]) -> tuple[float, float, float]:
    """(mean, sample sd, half-width of the 95 % t-interval of the mean)."""
    from multissl.eval.seeds import seed_summary

    return seed_summary(values)


def read(run: str) -> dict[str, float]:
    """The selected checkpoint's metrics, plus ``untrained val/*`` (the step-0 validation, when logged)."""
    out = dict(json.loads((Path(run) / "results.json").read_text())["metrics"])
    log = Path(run) / "metrics.jsonl"
    if log.exists():
        for rec in map(json.loads, log.read_text().splitlines()):
            if rec.get("step") == 0 and any(k.startswith("val/") for k in rec):
                out.update({f"untrained {k}": v for k, v in rec.items() if k.startswith("val/")})
                break
    return out


def table(supcon: list[str], ce: list[str], metrics: tuple[str, ...] = METRICS) -> str:
    if len(supcon) != len(ce):
        raise SystemExit("give as many SupCon runs as CE runs (paired by seed)")
    s, c = [read(r) for r in supcon], [read(r) for r in ce]
    header = ("| metric | SupCon mean ± sd [95 % CI] | CE mean ± sd [95 % CI] | SupCon − CE per seed | "
              "paired mean [95 % CI] |")
    lines = [header, "|---|---|---|---|---|"]
    for m in metrics:
        if not all(m in r for r in s + c):
            continue
        a, b = [r[m] for r in s], [r[m] for r in c]
        d = [x - y for x, y in zip(a, b, strict=True)]
        if m.startswith("untrained") and not any(d):  # the same initial weights scored twice
            mean, sd, h = summary(a)
            lines.append(f"| {m} | {mean:.1f} ± {sd:.1f} [{mean - h:.1f}, {mean + h:.1f}] | (same weights) | | |")
            continue
        cells = []
        for vals in (a, b):
            mean, sd, h = summary(vals)
            cells.append(f"{mean:.1f} ± {sd:.1f} [{mean - h:.1f}, {mean + h:.1f}]")
        dm, _, dh = summary(d)
        lines.append(f"| {m} | {cells[0]} | {cells[1]} | {', '.join(f'{x:+.1f}' for x in d)} | "
                     f"{dm:+.1f} [{dm - dh:+.1f}, {dm + dh:+.1f}] |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--supcon", nargs="+", required=True, help="SupCon run folders, one per seed")
    p.add_argument("--ce", nargs="+", required=True, help="cross-entropy run folders, same seeds, same order")
    args = p.parse_args(argv)
    print(table(args.supcon, args.ce))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
