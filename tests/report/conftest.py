"""A fixture of tiny real runs of three modalities, made by the same code `multissl train` runs.

Tabular SCARF on the shipped digits (two seeds: mean +- std), GraphMAE on Cora (its random-init floor
beside it) and unsup-SimCSE on the packaged MiniLM (an export folder, so a model card), each a few
optimizer steps; plus bench records written by ``multissl.bench.harness.record`` (their numbers are
fixture values, not measurements). About 15 s in all on a quiet 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RUNS = [
    ("tabular/scarf-digits", ["train.epochs=1", "train.seed=1", "train.log_every=2", "train.progress=false"]),
    ("tabular/scarf-digits", ["train.epochs=1", "train.seed=2", "train.log_every=2", "train.progress=false"]),
    ("graph/graphmae-cora", ["train.epochs=2", "model.hidden=16", "model.heads=2", "eval.epochs=10",
                             "train.eval_every_epochs=1", "train.log_every=1", "train.checkpoint_every=0"]),
    ("text/simcse-minilm", ["train.max_steps=2", "train.batch_size=8", "data.limit=32", "data.eval_max_pairs=32",
                            "train.eval_every=1", "train.eval_at_start=true", "train.log_every=1",
                            "train.progress=false"]),
]


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """``runs/`` with the four run folders above and ``runs/bench/*.jsonl``."""
    import torch

    from multissl.bench.harness import Measurement, record
    from multissl.recipes import load_recipe
    from multissl.run import run_recipe

    root = tmp_path_factory.mktemp("report") / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i, (name, overrides) in enumerate(RUNS):
            recipe = load_recipe(name, overrides)
            run_recipe(recipe, run_dir=str(root / recipe.name / f"20260101-00000{i}"))
    finally:
        torch.set_num_threads(threads)
    record([Measurement("graph", "GraphMAE Cora epoch", 0.12, 0.15, "s", "PyG GAT", higher_is_better=False),
            Measurement("graph", "GraphMAE Cora epoch", 0.12, 0.10, "s", "DGL GAT", higher_is_better=False)],
           out_dir=root / "bench")
    record([Measurement("text", "SimCSE train sentences/s", 410.0, 400.0, "sentences/s", "sentence-transformers"),
            Measurement("text", "SimCSE train sentences/s", 420.0, 400.0, "sentences/s", "sentence-transformers")],
           out_dir=root / "bench")
    return root
