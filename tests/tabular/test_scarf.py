"""SCARF end to end on the shipped digits table: trained features beat the random-init encoder."""

import pytest
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


@pytest.mark.learning
def test_scarf_trains_and_beats_random_init(tmp_path):
    """SCARF, 20 epochs, seed 1, last checkpoint (no selection on the validation split it is scored on):
    the kNN probe beats the run's own initial weights on validation by 2.5 points and on test by 0.8.

    Margins = half the gains measured on seed 0 (val kNN +5.0, test kNN +1.7 points); seeds 0-2 gave val
    kNN +3.3 to +5.0 and test kNN +1.7 to +2.5 (docs/notes/testing.md). The linear probe is not asserted:
    a random-init 4-layer MLP already reaches 0.925-0.950 test accuracy and SCARF adds only +1.1 to +2.8.
    """
    recipe = load_recipe("tabular/scarf-digits", ["train.epochs=20", "train.progress=false", "train.seed=1",
                                                  "train.select_metric=null"])
    _, parts = build_parts(recipe)
    with torch.no_grad():
        before = parts.final_evaluate(parts.method.eval())
    after = run_recipe(recipe, run_dir=str(tmp_path / "run"))["metrics"]
    assert after["val/knn_acc"] > before["val/knn_acc"] + 0.025, (before, after)
    assert after["test/knn_acc"] > before["test/knn_acc"] + 0.008, (before, after)


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
