"""Turn run folders and bench records into the report's numbers (``report.json``) and pictures.

The HTML page (:mod:`multissl.report.html`) is rendered from exactly this dictionary, so the page
and ``report.json`` cannot disagree.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from multissl.errors import DataError
from multissl.report.collect import (
    BenchRecord,
    Group,
    Run,
    bench_modality,
    find_inputs,
    group_runs,
    read_bench,
    read_run,
)
from multissl.report.metrics import loses as _loses
from multissl.report.metrics import mean_std, split_metrics

PICTURES = {  # file name in a run's plots/ -> caption
    "projection.png": "PCA projection of test features (embedding diagnostic)",
    "retrieval_examples.png": "retrieval examples on the test split",
    "reconstruction.png": "point-cloud reconstructions (test)",
}
MAX_COLUMNS = 12  # test metrics shown per recipe table (all of them are in report.json)


def _headline(select_metric: str | None, plain: list[str], floored: set[str]) -> str | None:
    """The test twin of the selection metric, else the first test metric with a floor, else the first."""
    tests = [k for k in plain if k.startswith("test/")]
    if select_metric and select_metric.startswith("val/"):
        twin = "test/" + select_metric[4:]
        if twin in tests:
            return twin
    for k in tests:
        if k in floored:
            return k
    if tests:
        return tests[0]
    return select_metric if select_metric in plain else None


def run_entry(run: Run) -> dict[str, Any]:
    """One row of a recipe table: budget, selected checkpoint, test metrics, baselines, intervals, flags."""
    metrics = run.metrics
    plain, baselines, intervals = split_metrics(metrics)
    res = run.results or {}
    sel_metric = res.get("select_metric")
    flags = []
    for key in plain:
        for b in baselines.get(key, []):
            if b.floor and key.startswith("test/") and _loses(metrics[key], metrics[b.key], key):
                flags.append({"metric": key, "value": metrics[key], "floor_key": b.key, "floor": metrics[b.key],
                              "label": b.label})
    start = next((r for r in run.curves if r.get("step") == 0 and any(k.startswith("val/") for k in r)), {})
    return {
        "run": run.label, "path": str(run.path), "seed": run.seed, "budget": run.budget(),
        "start": {k: v for k, v in start.items() if k.startswith("val/")},  # train.eval_at_start: step 0
        "wall_estimated": run.wall_estimated,
        "selected": {"checkpoint": res.get("selected_checkpoint"), "metric": sel_metric,
                     "value": res.get("best_metric") if sel_metric else None, "step": res.get("best_step")},
        "metrics": metrics,
        "test": {k: metrics[k] for k in plain if k.startswith("test/")},
        "baselines": {k: {b.key: metrics[b.key] for b in bs} for k, bs in baselines.items()},
        "intervals": intervals, "flags": flags, "problem": run.problem,
    }


def _data_summary(recipe: dict[str, Any]) -> str:
    data = recipe.get("data") or {}
    if not isinstance(data, dict):
        return str(data)
    keys = ("path", "root", "name", "train", "dev", "test", "captions", "dataset", "file")
    parts = [f"{k}={data[k]}" for k in keys if isinstance(data.get(k), (str, int)) and data.get(k) != ""]
    return ", ".join(parts) or ", ".join(f"{k}={v}" for k, v in data.items()
                                         if isinstance(v, (str, int, float)) and v != "")[:200]


def _summary(done: list[tuple[Run, dict[str, Any]]], keys: list[str], selected: bool) -> dict[str, dict[str, Any]]:
    """Mean, sample std and count over the finished runs of a recipe, per metric and budget figure."""
    summary: dict[str, dict[str, Any]] = {}
    for key in [*keys, *(["selected"] if selected else []), "wall_s", "cpu_s", "steps"]:
        if key == "selected":
            vals = [e["selected"]["value"] for _, e in done]
        elif key in ("wall_s", "cpu_s", "steps"):
            vals = [e["budget"][key] for _, e in done]
        else:
            vals = [r.metrics.get(key) for r, _ in done]
        m, s, n = mean_std([v for v in vals if v is not None])
        if n:
            summary[key] = {"mean": m, "std": s, "n": n}
    return summary


def _links(run: Run, out: Path) -> dict[str, str]:
    """Relative links from the page to the run's results.json and model card (open from disk)."""
    import os

    links = {}
    for name, rel in (("results", "results.json"), ("model card", "export/README.md")):
        if (run.path / rel).is_file():
            links[name] = Path(os.path.relpath((run.path / rel).resolve(), out.resolve())).as_posix()
    return links


def group_entry(group: Group, out: Path, img_dir: Path) -> dict[str, Any]:
    """A recipe's table, its mean +- std over seeds, its curves and diagnostics pictures."""
    from multissl.report.plots import curves_png

    runs = [run_entry(r) | {"links": _links(r, out)} for r in group.runs]
    done = [(r, e) for r, e in zip(group.runs, runs, strict=True) if r.results is not None]
    first = group.runs[0]
    select_metric = (first.recipe.get("train") or {}).get("select_metric")
    all_plain: list[str] = []
    all_baselines: dict[str, list[dict[str, Any]]] = {}
    for r, _ in done:  # the union over seeds (a seed may lack a metric)
        plain, baselines, _ = split_metrics(r.metrics)
        all_plain += [k for k in plain if k not in all_plain]
        for k, bs in baselines.items():
            known = {b["key"] for b in all_baselines.get(k, [])}
            all_baselines.setdefault(k, []).extend({"key": b.key, "label": b.label, "floor": b.floor}
                                                   for b in bs if b.key not in known)
    floored = {k for k, bs in all_baselines.items() if any(b["floor"] for b in bs)}
    headline = _headline(select_metric, all_plain, floored)
    tests = [k for k in all_plain if k.startswith("test/")]
    tests.sort(key=lambda k: (k != headline, k.count("/") > 1))  # headline, top-level, then sub-evaluations
    summary = _summary(done, tests + [b["key"] for bs in all_baselines.values() for b in bs], bool(select_metric))
    group_flags = []
    for key, bs in all_baselines.items():
        for b in bs:
            if b["floor"] and key in summary and b["key"] in summary and _loses(
                    summary[key]["mean"], summary[b["key"]]["mean"], key):
                group_flags.append({"metric": key, "floor_key": b["key"], "mean": summary[key]["mean"],
                                    "floor": summary[b["key"]]["mean"], "label": b["label"]})
    curves = curves_png(group.title, [(f"seed {r.seed}", r.curves) for r in group.runs], select_metric,
                        img_dir / f"{group.key}-curves.png")
    pictures = []
    seen: set[str] = set()
    for r in group.runs:  # one picture of each kind per recipe: from its first run that made one
        for pic in r.pictures:
            if pic.name in seen:
                continue
            seen.add(pic.name)
            target = img_dir / f"{group.key}-{pic.name}"
            shutil.copyfile(pic, target)
            pictures.append({"src": target.relative_to(out).as_posix(), "run": r.label,
                             "caption": PICTURES.get(pic.name, pic.stem.replace("_", " "))})
    return {
        "key": group.key, "anchor": group.anchor, "recipe": group.name, "title": group.title,
        "differs": group.differs, "task": first.task, "method": first.task.split(".", 1)[-1],
        "description": str(first.recipe.get("description", "")), "data": _data_summary(first.recipe),
        "select_metric": select_metric, "select_mode": (first.recipe.get("train") or {}).get("select_mode", "max"),
        "headline": headline,
        "columns": tests[:MAX_COLUMNS], "hidden_columns": max(0, len(tests) - MAX_COLUMNS),
        "baselines": all_baselines, "seeds": [r.seed for r in group.runs], "runs": runs, "summary": summary,
        "flagged_runs": sum(1 for e in runs if e["flags"]), "group_flags": group_flags,
        "curves": curves.relative_to(out).as_posix() if curves else None, "pictures": pictures,
    }


def bench_entry(rec: BenchRecord) -> dict[str, Any]:
    m = rec.machine
    machine = ", ".join(str(x) for x in (m.get("gpu") or m.get("processor"), m.get("cpu_count") and
                                         f"{m.get('cpu_count')} CPUs", m.get("torch_threads") and
                                         f"{m.get('torch_threads')} threads", m.get("torch") and
                                         f"torch {m.get('torch')}") if x)
    return {"bench": rec.bench, "what": rec.what, "ours": rec.ours, "peer": rec.peer, "unit": rec.unit,
            "ratio": rec.ratio, "peer_name": rec.peer_name, "higher_is_better": rec.higher_is_better,
            "time": rec.time, "machine": machine, "source": str(rec.source)}


def _validation_rank(g: dict[str, Any]) -> tuple[int, float, int]:
    """Order recipes by their selected checkpoints' mean validation metric (its select_mode), then runs."""
    sel = g["summary"].get("selected")
    if sel is None:
        return (0, 0.0, len(g["runs"]))
    sign = -1.0 if g["select_mode"] == "min" else 1.0
    return (1, sign * sel["mean"], len(g["runs"]))


def _overview_row(modality: str, groups: list[dict[str, Any]], bench: list[dict[str, Any]]) -> dict[str, Any]:
    """The modality's headline: the most common headline metric, shown for the recipe with the best mean
    validation score among those reporting it (mean +- std over its seeds)."""
    with_head = [g for g in groups if g["headline"] and g["headline"] in g["summary"]]
    row: dict[str, Any] = {"modality": modality, "anchor": f"mod-{modality}", "recipes": len(groups),
                           "runs": sum(len(g["runs"]) for g in groups),
                           "flagged_runs": sum(g["flagged_runs"] for g in groups), "headline": None}
    if with_head:
        metric = Counter(g["headline"] for g in with_head).most_common(1)[0][0]
        cands = [g for g in with_head if g["headline"] == metric]
        best = max(cands, key=_validation_rank)  # chosen on validation, never on the test figure shown
        bl = sorted(best["baselines"].get(metric, []), key=lambda b: not b["floor"])
        row["headline"] = {
            "metric": metric, "recipe": best["title"], "group_anchor": best["anchor"], "of_recipes": len(cands),
            **best["summary"][metric],
            "baselines": [{"key": b["key"], "label": b["label"], "floor": b["floor"],
                           "mean": best["summary"].get(b["key"], {}).get("mean")} for b in bl],
        }
    peers = [b for b in bench if b["peer"] is not None]
    row["peer"] = max(peers, key=lambda b: b["time"]) if peers else None  # the latest comparison
    return row


def build_report(roots: list[Path], out: Path) -> dict[str, Any]:
    """Read every run and bench record under ``roots``, write pictures under ``out/img``, return the report."""
    run_dirs, bench_files = find_inputs(roots)
    if not run_dirs and not bench_files:
        raise DataError(f"no run folders (recipe.yaml + results.json) or bench records under "
                        f"{', '.join(map(str, roots))}; run `multissl train RECIPE` or `multissl bench NAME` first")
    img_dir = out / "img"
    if img_dir.exists():
        shutil.rmtree(img_dir)  # pictures of an earlier report of other runs must not linger
    img_dir.mkdir(parents=True)
    runs = [read_run(p) for p in run_dirs]
    groups = group_runs(runs)
    records = [r for f in bench_files for r in read_bench(f)]
    modalities: dict[str, dict[str, Any]] = {}
    for g in groups:
        modalities.setdefault(g.runs[0].modality, {"groups": [], "bench": []})["groups"].append(
            group_entry(g, out, img_dir))
    by_what: dict[tuple[str, str, str], list[BenchRecord]] = {}
    for rec in records:  # one row per measurement: bench, what and the peer it is compared with
        by_what.setdefault((rec.bench, rec.what, rec.peer_name), []).append(rec)
    for key in sorted(by_what):
        recs = by_what[key]
        rec = max(enumerate(recs), key=lambda x: (x[1].time, x[0]))[1]  # the latest (later line on ties)
        entry = bench_entry(rec)
        entry["records"] = len(recs)
        modalities.setdefault(bench_modality(rec.bench), {"groups": [], "bench": []})["bench"].append(entry)
    order = sorted(modalities, key=lambda m: (m == "general", m))
    import multissl

    return {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"), "multissl": multissl.__version__,
        "inputs": [str(r) for r in roots], "runs": len(runs), "bench_records": len(records),
        "overview": [_overview_row(m, modalities[m]["groups"], modalities[m]["bench"]) for m in order],
        "modalities": {m: modalities[m] for m in order},
        "all_bench_records": [bench_entry(r) for r in records],
    }


def _strict(x: Any) -> Any:
    """NaN / inf become null, so report.json is strict JSON (JSON.parse, jq) like the page's numbers."""
    import math

    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    return x


def write_report(roots: list[Path], out: Path) -> Path:
    """Write ``out/index.html``, ``out/report.json`` and ``out/img/``; returns the page's path."""
    import json

    from multissl.report.html import render

    out.mkdir(parents=True, exist_ok=True)
    report = build_report(roots, out)
    (out / "report.json").write_text(json.dumps(_strict(report), indent=1, default=str, allow_nan=False))
    page = out / "index.html"
    page.write_text(render(report), encoding="utf-8")
    return page


def main(argv: list[str] | None = None) -> int:
    """``multissl report [RUNS_DIR ...] --out DIR``."""
    import argparse

    p = argparse.ArgumentParser(prog="multissl report", description="Write a static HTML report (index.html + "
                                "report.json + img/) of run folders and bench records; opens from disk.")
    p.add_argument("runs", nargs="*", default=["runs"], metavar="RUNS_DIR",
                   help="folders holding run folders and/or runs/bench/*.jsonl (default: runs)")
    p.add_argument("--out", default="report", metavar="DIR", help="output folder (default: report)")
    args = p.parse_args(argv)
    page = write_report([Path(r) for r in args.runs], Path(args.out))
    import json

    report = json.loads((page.parent / "report.json").read_text())
    recipes = sum(len(m["groups"]) for m in report["modalities"].values())
    flagged = sum(row["flagged_runs"] for row in report["overview"])
    print(f"{report['runs']} runs in {recipes} recipes, {report['bench_records']} bench records, "
          f"{len(report['modalities'])} sections; {flagged} runs below their own floor")
    print(f"wrote {page} and {page.parent / 'report.json'}")
    return 0
