"""Find run folders and benchmark records and read them into plain objects (no plotting, no HTML).

A run folder is what ``multissl train`` writes (``runs/<recipe>/<timestamp>/``): ``recipe.yaml``,
``metrics.jsonl``, ``results.json``, ``plots/``, ``checkpoints/`` and sometimes ``export/``. A bench
record is one JSON line that ``multissl bench NAME`` appended to ``runs/bench/<bench>.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multissl.errors import DataError

# keys of the resolved recipe that do not make two runs different recipes
_NOT_RECIPE = {("train", "seed"), ("train", "output_dir"), ("train", "progress"), ("train", "num_workers")}
_SKIP_DIRS = {"checkpoints", "export", "plots", "tensorboard", "__pycache__", ".git"}


@dataclass
class Run:
    """One run folder as the report reads it."""

    path: Path
    recipe: dict[str, Any]
    results: dict[str, Any] | None
    curves: list[dict[str, Any]]
    pictures: list[Path]
    problem: str | None = None  # why the run has no results (unfinished, unreadable)
    wall_estimated: bool = False

    @property
    def name(self) -> str:
        return str(self.recipe.get("name", self.path.parent.name))

    @property
    def task(self) -> str:
        return str(self.recipe.get("task", "unknown"))

    @property
    def modality(self) -> str:
        return self.task.split(".", 1)[0]

    @property
    def seed(self) -> int | None:
        if self.results and "seed" in self.results:
            return self.results["seed"]
        return (self.recipe.get("train") or {}).get("seed")

    @property
    def metrics(self) -> dict[str, float]:
        return dict((self.results or {}).get("metrics") or {})

    @property
    def label(self) -> str:
        """``<recipe>/<timestamp>``: short and unique among the runs of one report."""
        return f"{self.path.parent.name}/{self.path.name}"

    def budget(self) -> dict[str, Any]:
        """Steps, epochs, wall and CPU seconds (``None`` where the run did not record them)."""
        res = self.results or {}
        train = self.recipe.get("train") or {}
        steps, epochs = res.get("steps"), res.get("epochs")
        if epochs is None and not train.get("max_steps") and steps is not None:
            epochs = train.get("epochs")  # runs written before results.json carried "epochs"
        wall = res["wall_s"] if "wall_s" in res else self._wall_from_files()
        return {"steps": steps, "epochs": epochs, "wall_s": wall,
                "cpu_s": res.get("cpu_s"), "batch_size": train.get("batch_size")}

    def _wall_from_files(self) -> float | None:
        """Older runs lack ``wall_s``: recipe.yaml (written at the start) to results.json (the end)."""
        start, end = self.path / "recipe.yaml", self.path / "results.json"
        if start.exists() and end.exists():
            self.wall_estimated = True
            return max(0.0, end.stat().st_mtime - start.stat().st_mtime)
        return None


@dataclass
class Group:
    """The runs of one recipe (same resolved recipe up to the seed): one table, one curves plot."""

    key: str
    name: str
    differs: str  # the overrides that tell this group from another of the same recipe name, or ""
    runs: list[Run] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"{self.runs[0].modality}-{self.key}"

    @property
    def recipe(self) -> dict[str, Any]:
        return self.runs[0].recipe

    @property
    def title(self) -> str:
        return self.name + (f" ({self.differs})" if self.differs else "")


@dataclass
class BenchRecord:
    """One line of ``runs/bench/*.jsonl``."""

    bench: str
    what: str
    ours: float | None
    peer: float | None
    unit: str
    ratio: float | None
    peer_name: str
    higher_is_better: bool
    time: str
    machine: dict[str, Any]
    source: Path
    extra: dict[str, Any] = field(default_factory=dict)


def find_inputs(roots: list[Path]) -> tuple[list[Path], list[Path]]:
    """(run folders, bench .jsonl files) under ``roots``; a root may itself be a run or a bench file."""
    runs: list[Path] = []
    benches: list[Path] = []
    for root in roots:
        if not root.exists():
            raise DataError(f"{root}: no such folder; pass the folder `multissl train` writes runs to "
                            "(default runs/)")
        if root.is_file():
            if root.suffix == ".jsonl":
                benches.append(root)
                continue
            raise DataError(f"{root} is a file; pass a runs folder, a run folder or a bench .jsonl file")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            here = Path(dirpath)
            if "recipe.yaml" in filenames and ("results.json" in filenames or "metrics.jsonl" in filenames):
                runs.append(here)
                dirnames[:] = []
                continue
            benches += [here / f for f in sorted(filenames) if f.endswith(".jsonl") and f != "metrics.jsonl"]
    return sorted(set(runs)), sorted(set(benches))


def read_run(path: Path) -> Run:
    """Read one run folder; a missing or broken results.json becomes ``problem``, never an exception."""
    import yaml

    recipe: dict[str, Any] = {}
    problem = None
    try:
        recipe = yaml.safe_load((path / "recipe.yaml").read_text()) or {}
        if not isinstance(recipe, dict):
            raise TypeError("not a mapping")
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        problem, recipe = f"unreadable recipe.yaml ({exc.__class__.__name__})", {}
    results = None
    res_path = path / "results.json"
    if res_path.exists():
        try:
            results = json.loads(res_path.read_text())
            if not isinstance(results, dict):
                raise TypeError("not an object")
        except (OSError, ValueError, TypeError) as exc:
            problem, results = f"unreadable results.json ({exc.__class__.__name__})", None
    elif problem is None:
        problem = "no results.json (unfinished or interrupted run)"
    curves = _read_jsonl(path / "metrics.jsonl")
    plots = path / "plots"
    pictures = sorted(p for p in plots.glob("*.png") if p.name != "curves.png") if plots.is_dir() else []
    return Run(path, recipe, results, curves, pictures, problem)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash: keep the rest
            if isinstance(row, dict):
                rows.append(row)
    return rows


def read_bench(path: Path) -> list[BenchRecord]:
    """Records of one bench file; lines that are not bench records are skipped."""
    out = []
    for row in _read_jsonl(path):
        if "bench" not in row or "ours" not in row:
            continue
        out.append(BenchRecord(str(row["bench"]), str(row.get("what", "")), row.get("ours"), row.get("peer"),
                               str(row.get("unit", "")), row.get("ratio"), str(row.get("peer_name", "")),
                               bool(row.get("higher_is_better", True)), str(row.get("time", "")),
                               row.get("machine") or {}, path, row.get("extra") or {}))
    return out


def _flatten(d: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, (*prefix, str(k))))
        else:
            out[(*prefix, str(k))] = v
    return out


def recipe_identity(recipe: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    """The resolved recipe's settings that make it this recipe (seed, output folder, progress bar left
    out), each value as canonical JSON text."""
    return {k: json.dumps(v, sort_keys=True, default=str) for k, v in _flatten(recipe).items()
            if k[:2] not in _NOT_RECIPE}


def group_runs(runs: list[Run]) -> list[Group]:
    """Group runs by resolved recipe up to the seed; groups of one recipe name are told apart by their
    differing settings."""
    by_key: dict[str, Group] = {}
    idents: dict[str, dict[tuple[str, ...], Any]] = {}
    for run in runs:
        ident = recipe_identity(run.recipe)
        digest = hashlib.sha1(json.dumps(sorted((".".join(k), v) for k, v in ident.items())).encode())
        key = f"{_slug(run.name)}-{digest.hexdigest()[:8]}"
        if key not in by_key:
            by_key[key] = Group(key, run.name, "")
            idents[key] = ident
        by_key[key].runs.append(run)
    by_name: dict[str, list[str]] = {}
    for key, g in by_key.items():
        by_name.setdefault(g.name, []).append(key)
    for keys in by_name.values():
        if len(keys) < 2:
            continue
        common = set.intersection(*(set(idents[k].items()) for k in keys))
        for k in keys:
            diff = [f"{'.'.join(path)}={v}" for path, v in idents[k].items()
                    if (path, v) not in common and path[0] != "description"]
            by_key[k].differs = ", ".join(sorted(diff)[:6]) + (" ..." if len(diff) > 6 else "")
    groups = sorted(by_key.values(), key=lambda g: (g.runs[0].modality, g.name, g.differs))
    for g in groups:
        g.runs.sort(key=lambda r: (r.seed if isinstance(r.seed, int) else 0, r.path.name))
    return groups


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-") or "run"


def bench_modality(bench: str) -> str:
    """The adapter that registers benchmark ``bench`` (``general`` for the core's own benches)."""
    try:
        from multissl.registry import entries

        entry = entries("BENCHES").get(bench)
    except Exception:  # noqa: BLE001 - a broken catalog must not stop the report
        entry = None
    if entry is None:
        return bench.split(".", 1)[0] if "." in bench else "general"
    module = entry.target.split(":", 1)[0].split(".")
    return module[1] if len(module) > 2 and module[1] != "bench" else "general"
