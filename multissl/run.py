"""Run a validated recipe end to end (seed -> task parts -> trainer -> results) and embed with a run.

Before any model or data loads, the run folder is checked (:mod:`multissl.runfolder`): writable, not a
file, not a finished run (unless ``--overwrite``); on ``--resume`` it is repaired after a kill and the
recipe compared with the run's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from multissl.errors import (
    CheckpointError,
    DataError,
    MultisslError,
    TrainingDivergedError,
)
from multissl.recipes import Recipe
from multissl.runfolder import (
    check_writable,
    clear_run,
    default_run_dir,
    first_missing,
    holds_run,
    is_main,
    prepare_resume,
    record_resume,
    remove_created,
    resume_target,
    unrecord_resume,
)


def build_parts(recipe: Recipe):
    """Seed everything and let the recipe's task build its method, data and evaluators."""
    from multissl.registry import lookup
    from multissl.train.trainer import seed_everything

    seed_everything(recipe.train.seed)
    task = lookup("TASKS", recipe.task).load()()
    try:
        return task, task.build(recipe)
    except FileNotFoundError as exc:
        raise DataError(f"File not found: {exc.filename or exc}. Check the recipe's data paths "
                        "(see data/README.md for the shipped sets).") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"A data file is not UTF-8 text (byte offset {exc.start}: {exc.reason}); "
                        "convert it to UTF-8") from None


def run_recipe(recipe: Recipe, resume: str | None = None, output_dir: str | None = None,
               run_dir: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train ``recipe``; with ``resume`` continue that run folder where it stopped.

    The run folder is checked before anything loads; a run that fails before its first checkpoint
    leaves no folder behind (when this call created it).
    """
    from multissl.train.trainer import Trainer

    history = None
    if resume:
        folder, target = resume_target(resume, run_dir)
        flag = "--run-dir" if run_dir else "--resume"
        created = None
    else:
        target = default_run_dir(recipe, output_dir, run_dir)
        flag = "--run-dir" if run_dir else "--output-dir" if output_dir else "train.output_dir"
        if target.exists() and not target.is_dir():
            raise MultisslError(f"{flag} {target} is a file, not a folder; choose another {flag}")
        if holds_run(target):
            if not overwrite:
                raise MultisslError(f"{flag} {target} already holds a run; pass --overwrite to replace it, "
                                    f"--resume {target} to continue it, or choose another folder")
            if is_main():
                clear_run(target)
        created = first_missing(target)
    existing = {p.name for p in target.iterdir()} if target.is_dir() else set()
    if is_main():
        check_writable(target, flag)
    if resume:
        history = prepare_resume(recipe, resume, folder, target)
    try:
        _, parts = build_parts(recipe)
        trainer = Trainer(parts, recipe.train, target, recipe=recipe.to_dict())
        if history is not None:
            record_resume(target, history)
        results = trainer.fit(resume=resume)
    except MultisslError as exc:
        if history is not None and isinstance(exc, CheckpointError):
            unrecord_resume(target, history)  # the checkpoint could not be loaded: no resume happened
        diverged = isinstance(exc, TrainingDivergedError)  # kept: its metrics and recipe are the diagnosis
        if not resume and not diverged and is_main() and not (target / "checkpoints" / "last").exists():
            if created is not None:  # nothing worth keeping: leave no half-written folder
                remove_created(target, created)
            else:  # the folder was the user's: take back only what this run added to it
                for p in target.iterdir():
                    if p.name not in existing:
                        shutil.rmtree(p) if p.is_dir() else p.unlink()
        raise
    if trainer.main:
        print(f"run folder: {target}")
    return results


def embed_run(run: Path, data: str, out: Path, checkpoint: str | None = None, batch_size: int = 128) -> Path:
    """Embed ``data`` with a trained run's method (selected checkpoint) and write .npy or .parquet."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from multissl.recipes import load_recipe
    from multissl.train.checkpoint import load_weights

    recipe_file = run / "recipe.yaml"
    if not recipe_file.exists():
        raise CheckpointError(f"{run} is not a run folder (no recipe.yaml); pass the folder `multissl train` wrote")
    if out.suffix not in (".npy", ".parquet"):
        raise MultisslError(f"--out {out}: use a .npy or .parquet file name")
    if out.exists() and out.is_dir():
        raise MultisslError(f"--out {out} is a folder; give a .npy or .parquet file name")
    blocker = next((p for p in out.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise MultisslError(f"--out {out}: {blocker} is a file, not a folder; choose another --out")
    recipe = load_recipe(str(recipe_file))
    from multissl.registry import lookup

    task = lookup("TASKS", recipe.task).load()()
    if not str(data).startswith("hf:") and data not in task.embed_keywords:
        from multissl.data import resolve_data_path

        resolve_data_path(data, "--data")  # a wrong path fails before the model and training data load
    choice = checkpoint or ("best" if (run / "checkpoints" / "best").exists() else "last")
    weights = run / "checkpoints" / choice / "model.safetensors"
    if not weights.exists():
        raise CheckpointError(f"No {choice} checkpoint in {run}/checkpoints")
    from multissl.train.trainer import seed_everything

    seed_everything(recipe.train.seed)
    method = task.build_method(recipe)  # only the model: no training data is loaded where the task allows
    load_weights(method, weights)
    method.eval()
    dataset, collate = task.embed_data(recipe, data)
    chunks = []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            chunks.append(method.embed(batch).float().cpu())
    emb = torch.cat(chunks).numpy()
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        raise MultisslError(f"{int(bad.sum())} of {len(emb)} embeddings of {data} are NaN or infinite (first: row "
                            f"{int(np.argmax(bad))}) with {weights}; the weights or those inputs are broken. "
                            "Nothing was written.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}{out.suffix}")
    if out.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame({"embedding": list(emb)}).to_parquet(tmp)
    else:
        np.save(tmp, emb)
    os.replace(tmp, out)
    return out
