"""Run a validated recipe end to end (seed -> task parts -> trainer -> results) and embed with a run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from multissl.errors import CheckpointError, DataError
from multissl.recipes import Recipe


def _run_dir(recipe: Recipe, output_dir: str | None, run_dir: str | None) -> Path:
    if run_dir:
        return Path(run_dir)
    base = Path(output_dir or recipe.train.output_dir) / recipe.name.replace("/", "-")
    return base / time.strftime("%Y%m%d-%H%M%S")


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


def run_recipe(recipe: Recipe, resume: str | None = None, output_dir: str | None = None,
               run_dir: str | None = None) -> dict[str, Any]:
    """Train ``recipe``; with ``resume`` continue that run folder exactly where it stopped."""
    from multissl.train.trainer import Trainer

    if resume:
        resume_path = Path(resume)
        if not resume_path.exists():
            raise CheckpointError(f"--resume {resume}: no such folder")
        folder = resume_path if (resume_path / "checkpoints").exists() else resume_path.parent.parent
        target = Path(run_dir) if run_dir else folder
    else:
        target = _run_dir(recipe, output_dir, run_dir)
    _, parts = build_parts(recipe)
    trainer = Trainer(parts, recipe.train, target, recipe=recipe.to_dict())
    results = trainer.fit(resume=resume)
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
    recipe = load_recipe(str(recipe_file))
    from multissl.registry import lookup
    from multissl.train.trainer import seed_everything

    seed_everything(recipe.train.seed)
    task = lookup("TASKS", recipe.task).load()()
    method = task.build_method(recipe)  # only the model: no training data is loaded where the task allows
    choice = checkpoint or ("best" if (run / "checkpoints" / "best").exists() else "last")
    weights = run / "checkpoints" / choice / "model.safetensors"
    if not weights.exists():
        raise CheckpointError(f"No {choice} checkpoint in {run}/checkpoints")
    load_weights(method, weights)
    method.eval()
    dataset, collate = task.embed_data(recipe, data)
    chunks = []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            chunks.append(method.embed(batch).float().cpu())
    emb = torch.cat(chunks).numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame({"embedding": list(emb)}).to_parquet(out)
    else:
        np.save(out, emb)
    return out
