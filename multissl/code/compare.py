"""Paired MRR differences from per-query rank files, without encoding anything again.

``multissl eval code ... --per-query A.jsonl`` writes each query's rank for every model of the call (and
BM25). ``python -m multissl.code.compare A.jsonl:MODEL B.jsonl:MODEL [--split test]`` pairs two such
columns query by query (the files must hold the same queries with the same gold code index, checked: a
different code base or order shows as different gold indices), and
prints mean(RR_A) - mean(RR_B) with the same paired bootstrap 95% interval as ``eval code --model A B``
(1,000 resamples over queries, seed 0). With several A files (one per training seed), ``A1 A2 A3 B``
prints each seed's paired difference and their mean with a Student-t 95% interval over seeds (the
seed-to-seed spread, which the bootstrap over queries does not see).
"""

from __future__ import annotations

import argparse
import json

import torch

from multissl.errors import DataError


def read_column(spec: str, split: str) -> tuple[list[tuple[str, int]], torch.Tensor]:
    """(query, gold index) pairs and ranks of ``FILE:MODEL`` (MODEL optional when the file holds one model
    besides bm25)."""
    path, model = spec.rsplit(":", 1) if ":" in spec else (spec, "")
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    rows = [r for r in rows if r["split"] == split]
    if not rows:
        raise DataError(f"{path} has no rows of split {split}")
    names = list(rows[0]["ranks"])
    if not model:
        choices = [n for n in names if n != "bm25"]
        if len(choices) != 1:
            raise DataError(f"{path} holds {names}: name one as {path}:MODEL")
        model = choices[0]
    if model not in names:
        raise DataError(f"{path} has no model '{model}' (it has {names})")
    rows.sort(key=lambda r: r["query_index"])
    return [(r["query"], r.get("gold")) for r in rows], torch.tensor([r["ranks"][model] for r in rows])


def paired(a_spec: str, b_spec: str, split: str, cutoff: int | None, n_boot: int = 1000, seed: int = 0) -> dict:
    from multissl.eval.bootstrap import bootstrap_mean, bootstrap_paired
    from multissl.eval.ranks import reciprocal_ranks

    qa, ra = read_column(a_spec, split)
    qb, rb = read_column(b_spec, split)
    if qa != qb:
        raise DataError("the two files do not hold the same queries with the same gold codes in the same order "
                        "(another split, query set or code base): not a paired comparison")
    rra, rrb = reciprocal_ranks(ra, cutoff), reciprocal_ranks(rb, cutoff)
    d = bootstrap_paired(rra, rrb, n_boot, seed)
    ia, ib = bootstrap_mean(rra, n_boot, seed), bootstrap_mean(rrb, n_boot, seed)
    return {"split": split, "queries": len(qa), "a": {"mrr": ia.value, "low": ia.low, "high": ia.high},
            "b": {"mrr": ib.value, "low": ib.low, "high": ib.high},
            "a_minus_b": {"value": d.value, "low": d.low, "high": d.high, "excludes_zero": d.excludes_zero()}}


def over_seeds(a_specs: list[str], b_spec: str, split: str, cutoff: int | None) -> dict:
    """Each A run's paired difference to B, and their mean with a Student-t 95% interval over the runs."""
    from multissl.eval.seeds import seed_summary

    runs = [paired(a, b_spec, split, cutoff) for a in a_specs]
    diffs = [r["a_minus_b"]["value"] for r in runs]
    mean, sd, half = seed_summary(diffs)
    return {"split": split, "runs": len(runs), "per_run": runs,
            "a_minus_b_over_runs": {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half,
                                    "positive_runs": sum(d > 0 for d in diffs),
                                    "runs_excluding_zero": sum(r["a_minus_b"]["excludes_zero"] for r in runs)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", metavar="FILE[:MODEL]",
                   help="A B (one run each), or A1 A2 ... B (A's runs over seeds; the LAST file is the reference B)")
    p.add_argument("--split", default="test")
    p.add_argument("--mrr-cutoff", default="none", help="'none' (CoSQA) or a number (1000: CodeSearchNet / ours)")
    a = p.parse_args(argv)
    if len(a.files) < 2:
        p.error("give at least two files: A B")
    cutoff = None if a.mrr_cutoff == "none" else int(a.mrr_cutoff)
    *a_specs, b_spec = a.files
    out = paired(a_specs[0], b_spec, a.split, cutoff) if len(a_specs) == 1 else over_seeds(a_specs, b_spec, a.split, cutoff)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
