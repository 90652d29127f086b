"""A tiny real TERA pre-training run on the shipped FSDD subset (train speakers only): the loss falls,
the encoder reconstructs altered frames of the never-seen test speakers better than the same encoder at
its random initialisation, and its frozen features carry the spoken digit (probe far above chance).

At this scale (40 steps, 160 utterances) the probe does NOT beat the random encoder: measured figures
and the larger CPU runs are in docs/notes/speech.md.
"""

import json

import numpy as np
import pytest
import torch

from multissl.recipes import load_recipe
from multissl.run import embed_run, run_recipe
from multissl.speech.data import collate_frames, compute_log_mels, load_utterances
from multissl.speech.tasks import build_method, fbank_config
from multissl.train.checkpoint import load_weights

TINY = ["model.hidden=64", "model.heads=2", "model.ffn=256", "model.dropout=0.1", "model.attention_dropout=0.1",
        "train.batch_size=16", "train.max_steps=40", "train.lr=0.001", "train.progress=false", "train.log_every=5",
        "data.max_frames=100", "eval.tasks=[keyword]", "eval.baselines=false", "train.select_metric=null"]


def _heldout_loss(method, batch) -> float:
    torch.manual_seed(123)  # identical alterations for every model compared
    with torch.no_grad():
        return float(method.eval()(batch).loss)


def test_tiny_tera_pretraining_learns_to_reconstruct(tmp_path):
    recipe = load_recipe("speech/tera-cpu-fsdd", TINY)
    results = run_recipe(recipe, run_dir=str(tmp_path / "run"))
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if "loss" in r]
    assert losses[-1] < 0.85 * losses[0]
    assert results["metrics"]["test/keyword_acc"] > 0.3  # 10 digits: chance is 0.1

    cfg = recipe.config
    utts = [u for u in load_utterances(cfg.data.fsdd) if u.speaker in ("theo", "yweweler")]
    batch = collate_frames(compute_log_mels(utts, fbank_config(cfg.data), cfg.data.target_db))
    trained = build_method(cfg)
    load_weights(trained, tmp_path / "run" / "checkpoints" / "last" / "model.safetensors")
    torch.manual_seed(recipe.train.seed)  # the initial weights of the run
    initial = build_method(cfg)
    assert _heldout_loss(trained, batch) < 0.85 * _heldout_loss(initial, batch)

    out = embed_run(tmp_path / "run", "fsdd/fsdd_subset.tar.gz", tmp_path / "emb.npy")  # `multissl embed`
    assert np.load(out).shape == (360, 64)


@pytest.mark.slow
def test_cpu_recipe_short_run_probes(tmp_path):
    recipe = load_recipe("speech/tera-cpu-fsdd", ["train.max_steps=100", "train.progress=false"])
    m = run_recipe(recipe, run_dir=str(tmp_path / "run"))["metrics"]
    assert m["test/speaker_acc"] > 0.5 and m["test/keyword_acc"] > 0.3
    assert m["test/logmel_keyword_acc"] > 0.3 and m["test/random_keyword_acc"] > 0.3
