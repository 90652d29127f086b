"""SCARF end to end on the shipped digits table: trained features beat the random-init encoder."""

import torch

from multissl.recipes import load_recipe
from multissl.run import build_parts, run_recipe


def test_scarf_corruption_replaces_the_right_fraction():
    recipe = load_recipe("tabular/scarf-digits")
    _, parts = build_parts(recipe)
    x = parts.train_data.items[:64]
    torch.manual_seed(0)
    view = parts.method.corrupt(x)
    changed_or_replaced = round(0.6 * x.shape[1])
    assert view.shape == x.shape
    assert ((view != x).sum(1) <= changed_or_replaced).all()
    assert (view != x).float().mean() > 0.3


def test_scarf_trains_and_beats_random_init(tmp_path):
    recipe = load_recipe("tabular/scarf-digits", ["train.epochs=20", "train.progress=false"])
    _, parts = build_parts(recipe)
    random_val = parts.evaluate(parts.method)["val/knn_acc"]
    res = run_recipe(recipe, run_dir=str(tmp_path / "run"))
    assert res["metrics"]["val/knn_acc"] > random_val + 0.02
    assert res["metrics"]["test/linear_acc"] > 0.85


def test_embed_command_writes_npy_and_parquet(tmp_path):
    import numpy as np
    import pandas as pd

    from multissl.cli import main

    run = tmp_path / "run"
    assert main(["train", "tabular/scarf-digits", "train.max_steps=2", "train.progress=false", "--run-dir", str(run)]) == 0
    assert main(["embed", "--run", str(run), "--data", "digits/digits.csv.gz", "--out", str(tmp_path / "e.npy")]) == 0
    emb = np.load(tmp_path / "e.npy")
    assert emb.shape == (1797, 256) and np.isfinite(emb).all()
    assert main(["embed", "--run", str(run), "--data", "digits/digits.csv.gz", "--out", str(tmp_path / "e.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "e.parquet")) == 1797
