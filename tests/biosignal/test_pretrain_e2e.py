"""A small real participant-level pre-training run on PPG-BP: the participant-level probes on
participants never seen in pre-training beat the random-init encoder."""

from multissl.recipes import load_recipe
from multissl.run import run_recipe

TINY = ["model.stem_channels=8", "model.channels=[16,24,32]", "model.depths=[1,1,1]", "model.strides=[1,2,2]",
        "model.kernels=[3,5,3]", "model.expand_ratio=2", "model.head_channels=64", "model.embed_dim=64",
        "method.proj_dims=[64,32]", "train.epochs=12", "train.progress=false", "train.eval_every_epochs=12"]


def test_participant_pretraining_beats_random_init(tmp_path):
    recipe = load_recipe("biosignal/participant-ppg-bp", TINY)
    m = run_recipe(recipe, run_dir=str(tmp_path / "run"))["metrics"]

    def score(prefix):  # correlation of age / SBP / HR predictions + hypertension AUC, on test participants
        return sum(m[f"test/{prefix}{t}_r"] for t in ("age", "sbp", "hr")) + m[f"test/{prefix}hypertension_auc"]

    assert score("") > score("random_init/") + 0.5, m
    assert m["test/hr_mae"] < m["test/random_init/hr_mae"]
