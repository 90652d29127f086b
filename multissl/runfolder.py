"""The run folder's safety: checked before anything loads, never silently overwritten, repaired
after a kill, and honest about what a ``--resume`` changes.

- :func:`check_writable`, :func:`holds_run`, :func:`clear_run`: a folder that cannot be written, is a
  file, or already holds a run (without ``--overwrite``) fails in one line before any model or data load;
- :func:`repair_after_kill`: an interrupted ``last`` swap restored, stale temporary checkpoint folders
  removed, ``metrics.jsonl`` rows past the resumed step dropped (one row per step);
- :func:`prepare_resume`, :func:`record_resume`: the recipe is compared with the run's ``recipe.yaml``;
  optimisation and logging settings may change and act from the resume step (recorded in
  ``resume_history.jsonl``), anything else is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from multissl.errors import CheckpointError, MultisslError, RecipeError
from multissl.recipes import Recipe

RUN_FILES = ("checkpoints", "results.json", "metrics.jsonl", "tensorboard", "plots", "export", "recipe.yaml",
             "resume_history.jsonl")
HISTORY = "resume_history.jsonl"
# recipe keys that may change when a run is resumed: they act from the resume step on
RESUMABLE = ("description", "train.lr", "train.weight_decay", "train.betas", "train.eps", "train.sgd_momentum",
             "train.clip_grad_norm", "train.max_steps", "train.epochs", "train.min_lr_ratio", "train.log_every",
             "train.eval_every", "train.eval_every_epochs", "train.checkpoint_every", "train.progress",
             "train.num_workers", "train.output_dir", "eval.")


def is_main() -> bool:
    """Whether this is the main process (rank 0 under torchrun / accelerate, or a plain run)."""
    return int(os.environ.get("RANK", "0")) == 0


def default_run_dir(recipe: Recipe, output_dir: str | None, run_dir: str | None) -> Path:
    """``--run-dir`` as given, else ``<output_dir>/<recipe name>/<timestamp>``."""
    if run_dir:
        return Path(run_dir)
    base = Path(output_dir or recipe.train.output_dir) / recipe.name.replace("/", "-")
    return base / time.strftime("%Y%m%d-%H%M%S")


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None when ``path`` exists)."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


def remove_created(target: Path, top: Path) -> None:
    """Remove ``target`` and its parents up to ``top`` (folders this call created), if still empty."""
    shutil.rmtree(target, ignore_errors=True)
    for p in target.parents:
        if p != top and top not in p.parents:
            break
        try:
            p.rmdir()
        except OSError:
            break


def check_writable(folder: Path, flag: str) -> None:
    """Create ``folder`` and prove files can be written there (and in ``checkpoints/`` when it exists);
    one line if not."""
    for sub in (folder, folder / "checkpoints"):
        if sub.exists() and not sub.is_dir():
            raise MultisslError(f"{flag} {folder}: {sub} is a file, not a folder; choose another {flag}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for sub in (folder, folder / "checkpoints"):
            if not sub.is_dir():
                continue
            probe = sub / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
    except OSError as exc:
        raise MultisslError(f"{flag} {folder} is not writable ({exc.strerror or type(exc).__name__}: "
                            f"{exc.filename or folder}); choose a folder you can write to") from None


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` already holds (part of) a run: checkpoints, results or metrics."""
    return folder.is_dir() and any((folder / f).exists() for f in ("results.json", "metrics.jsonl")) or \
        (folder / "checkpoints" / "last").exists()


def clear_run(folder: Path) -> None:
    """Remove what a previous run wrote in ``folder`` (for ``--overwrite``); other files are kept."""
    for name in RUN_FILES:
        p = folder / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def repair_after_kill(folder: Path, step: int) -> list[str]:
    """Undo what a kill left half-done: restore ``last`` from ``.last.old`` when the swap was cut,
    remove temporary checkpoint folders, and drop metric rows past ``step``. Returns what was done."""
    done = []
    ckpts = folder / "checkpoints"
    if ckpts.is_dir():
        for kind in ("last", "best"):
            old = ckpts / f".{kind}.old"
            if old.is_dir() and not (ckpts / kind).exists():
                old.rename(ckpts / kind)
                done.append(f"restored checkpoints/{kind} from {old.name}")
            elif old.is_dir() and kind == "last" and not (ckpts / "previous").exists():
                old.rename(ckpts / "previous")  # the kill came between replacing last and keeping the old one
                done.append(f"kept {old.name} as checkpoints/previous")
        for stale in sorted(ckpts.glob(".*.tmp-*")) + sorted(ckpts.glob(".*.old")) + sorted(ckpts.glob(".rng_rank*")):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            done.append(f"removed checkpoints/{stale.name}")
    metrics = folder / "metrics.jsonl"
    stale_rows = folder / ".metrics.jsonl.tmp"
    if stale_rows.exists():  # a kill while the rows were being rewritten: metrics.jsonl itself is intact
        stale_rows.unlink()
        done.append("removed .metrics.jsonl.tmp")
    if metrics.exists():
        keep, dropped = [], 0
        for line in metrics.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by the kill
                dropped += 1
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] > step:
                dropped += 1
                continue
            keep.append(line)
        if dropped:
            tmp = metrics.with_name(".metrics.jsonl.tmp")
            tmp.write_text("".join(f"{ln}\n" for ln in keep))
            os.replace(tmp, metrics)
            done.append(f"dropped {dropped} metrics.jsonl rows past step {step}")
    return done


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def recipe_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """Dotted keys whose values differ between two recipe dicts: {key: [old, new]}. Keys only one side
    has (a field added or removed by a newer multissl) are not changes the user asked for."""
    a, b = _flatten(old), _flatten(new)
    return {k: [a[k], b[k]] for k in sorted(set(a) & set(b)) if a[k] != b[k]}


def check_resume_changes(changes: dict[str, list[Any]], folder: Path) -> None:
    """Refuse changes a resumed run cannot honour (model, data, method, batch, seed, precision...)."""
    def ok(key: str) -> bool:
        return any(key == r or (r.endswith(".") and key.startswith(r)) for r in RESUMABLE)

    refused = {k: v for k, v in changes.items() if not ok(k)}
    if refused:
        k, (was, now) = next(iter(refused.items()))
        more = f" (and {len(refused) - 1} more: {', '.join(list(refused)[1:4])})" if len(refused) > 1 else ""
        raise RecipeError(
            f"--resume {folder}: {k} was {was!r} in the run and is {now!r} now{more}; a resumed run keeps its "
            "model, data, method, batch, seed and precision. Resume with the run's own recipe (multissl train "
            f"{folder / 'recipe.yaml'} --resume {folder}), or start a new run (another --run-dir). Settings that may change on resume: {', '.join(RESUMABLE)}")


def resume_target(resume: str, run_dir: str | None) -> tuple[Path, Path]:
    """(the run folder ``--resume`` names, the folder to write): a run folder or a checkpoint inside one."""
    resume_path = Path(resume)
    if not resume_path.exists():
        raise CheckpointError(f"--resume {resume}: no such folder")
    if resume_path.is_file():
        raise CheckpointError(f"--resume {resume} is a file; pass the run folder `multissl train` wrote")
    folder = resume_path if (resume_path / "checkpoints").exists() else resume_path.parent.parent
    return folder, (Path(run_dir) if run_dir else folder)


def prepare_resume(recipe: Recipe, resume: str, folder: Path, target: Path) -> dict[str, Any]:
    """Check and repair a run folder before resuming it; returns the resume-history row to record."""
    from multissl.train.checkpoint import find_checkpoint, read_state, verify_checkpoint

    changes: dict[str, list[Any]] = {}
    recipe_file = folder / "recipe.yaml"
    if recipe_file.exists():
        import yaml

        try:
            old = yaml.safe_load(recipe_file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CheckpointError(f"{recipe_file} is not valid YAML ({exc}); restore it to resume") from None
        changes = recipe_changes(old, recipe.to_dict())
        check_resume_changes(changes, folder)
    if is_main():
        repair_after_kill(folder, 10**18)  # first restore an interrupted swap, so a checkpoint is found
    ckpt = find_checkpoint(Path(resume) if Path(resume) != folder else folder)
    step = read_state(ckpt)["step"]
    verify_checkpoint(ckpt)  # every file against its SHA-256 before anything is moved
    last = folder / "checkpoints" / "last"
    if is_main() and ckpt.resolve() != last.resolve() and last.is_dir() and ckpt.parent == last.parent:
        later = read_state(last).get("step", 0)
        if later > step:  # resuming from an earlier checkpoint of this run: set the abandoned last aside
            aside = last.with_name(f"abandoned-step{later}")
            shutil.rmtree(aside, ignore_errors=True)
            last.rename(aside)
            print(f"resume: from {ckpt.name} (step {step}); the later checkpoints/last (step {later}) is kept as "
                  f"checkpoints/{aside.name}")
    if is_main():
        for line in repair_after_kill(target, step):
            print(f"resume: {line}")
    return {"step": step, "checkpoint": str(ckpt.relative_to(folder)) if ckpt.is_relative_to(folder) else str(ckpt),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "changes": changes}


def record_resume(target: Path, row: dict[str, Any]) -> None:
    """Append one row to ``resume_history.jsonl``: the step resumed from and the settings changed there."""
    if is_main():
        path = target / HISTORY
        row["_size_before"] = path.stat().st_size if path.exists() else None
        with open(path, "a") as fh:
            fh.write(json.dumps({k: v for k, v in row.items() if k != "_size_before"}) + "\n")
        if row["changes"]:
            said = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in row["changes"].items())
            print(f"resume: from step {row['step']} with {said} (recorded in {HISTORY})")


def unrecord_resume(target: Path, row: dict[str, Any]) -> None:
    """Take back the row :func:`record_resume` appended (the resume failed while loading)."""
    path = target / HISTORY
    if is_main() and "_size_before" in row and path.exists():
        if row["_size_before"] is None:
            path.unlink()
        else:
            with open(path, "r+b") as fh:
                fh.truncate(row["_size_before"])
