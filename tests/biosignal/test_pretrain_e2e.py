"""A small real participant-level pre-training run on PPG-BP: the contrastive objective is learned.

What this tiny configuration does NOT establish: a probe gain over a random-init encoder whose
batch-norm statistics are estimated on the same training segments (the fair floor the task now
reports as ``test/random_init/...``). Measured with that floor (sum of age / SBP / HR correlations +
hypertension AUC on test participants), trained minus floor was +0.007 / +0.452 / +0.153 for seeds
0 / 1 / 2, and a run at learning rate ~0 gave +0.157 / +0.230 for seeds 0 / 1: the old +0.5 margin
was batch-norm normalisation, not pre-training (docs/notes/testing.md).
"""

import json

from multissl.recipes import load_recipe
from multissl.run import run_recipe

TINY = ["model.stem_channels=8", "model.channels=[16,24,32]", "model.depths=[1,1,1]", "model.strides=[1,2,2]",
        "model.kernels=[3,5,3]", "model.expand_ratio=2", "model.head_channels=64", "model.embed_dim=64",
        "method.proj_dims=[64,32]", "train.epochs=12", "train.progress=false", "train.eval_every_epochs=12"]

# Chosen on seed 0: the logged contrastive loss fell from 8.43 (mean of steps 1-10) to 4.24 (steps 63-72),
# a fall of 4.19; at learning rate ~0 it rose by 0.48 (seed 0) and 0.40 (seed 1). Asserted on seed 1
# (measured fall 4.08; seed 2: 3.72) with half the seed-0 fall as the margin.
FALL = 2.1


def test_participant_contrastive_objective_is_learned(tmp_path):
    recipe = load_recipe("biosignal/participant-ppg-bp", [*TINY, "train.seed=1"])
    result = run_recipe(recipe, run_dir=str(tmp_path / "run"))
    m = result["metrics"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) >= 4, rows
    assert losses[0] - losses[-1] > FALL, losses
    # the fair floor is reported beside the model (same probes, same participants), never silently dropped
    for t in ("age", "sbp", "hr"):
        assert f"test/random_init/{t}_r" in m and f"test/{t}_r" in m, sorted(m)
