"""A tiny real TERA pre-training run on the shipped FSDD subset (train speakers' takes >= 5 only, 160
utterances): the loss falls, the encoder reconstructs altered frames of the never-seen test speakers
better than the same encoder at its random initialisation, and the frozen-feature keyword probe
(logistic regression on mean + std pooled last-layer features, speaker-disjoint: test speakers theo +
yweweler, 120 utterances) beats the same probe on that same random-initialised encoder (same seed).

Chosen on one split and seed set, asserted on another: the configuration (hidden 32, 2 heads, FFN 128, no
dropout, AdamW 3e-3, 800 steps of 16) was selected on the VALIDATION speaker (nicolas) over training seeds
0, 1, 2 among hidden 8-128, 40-1600 steps, lr 1e-3-5e-3, dropout 0-0.3, utterance / global CMVN, every
hidden state, mean / mean + std pooling and the weighted-layer probe (the search is listed in
docs/notes/speech.md). It is asserted on the TEST speakers with seed 42, which took no part in the
selection. Measured test margins over the random init, 6 seeds: +5.0 to +21.6 points (selection seeds
0-2: +5.9, +5.0, +21.6; unseen seeds 42, 3, 4: +14.1, +10.0, +10.9). The asserted margin, +2.5 points
(3 of 120 utterances), is half the smallest of them. The speaker-ID probe is NOT asserted: at this scale
it does not beat the random encoder (-6.7 to +5.0).
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

TINY = ["model.hidden=32", "model.heads=2", "model.ffn=128", "model.dropout=0.0", "model.attention_dropout=0.0",
        "train.batch_size=16", "train.max_steps=800", "train.lr=0.003", "train.seed=42", "train.progress=false",
        "train.log_every=20", "data.max_frames=100", "eval.tasks=[keyword]", "eval.layer=last",
        "eval.pooling=meanstd", "eval.baselines=true", "train.select_metric=null"]


def _heldout_loss(method, batch) -> float:
    torch.manual_seed(123)  # identical alterations for every model compared
    with torch.no_grad():
        return float(method.eval()(batch).loss)


@pytest.mark.learning
def test_tiny_tera_pretraining_beats_its_random_init(tmp_path):
    recipe = load_recipe("speech/tera-cpu-fsdd", TINY)
    results = run_recipe(recipe, run_dir=str(tmp_path / "run"))
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if "loss" in r]
    assert losses[-1] < 0.85 * losses[0]
    m = results["metrics"]
    # measured (seeds 0, 1, 2, 42, 3, 4): +5.9, +5.0, +21.6, +14.1, +10.0, +10.9 points
    assert m["test/keyword_acc"] >= m["test/random_keyword_acc"] + 0.025, m

    cfg = recipe.config
    utts = [u for u in load_utterances(cfg.data.fsdd) if u.speaker in ("theo", "yweweler")]
    batch = collate_frames(compute_log_mels(utts, fbank_config(cfg.data), cfg.data.target_db))
    trained = build_method(cfg)
    load_weights(trained, tmp_path / "run" / "checkpoints" / "last" / "model.safetensors")
    torch.manual_seed(recipe.train.seed)  # the initial weights of the run
    initial = build_method(cfg)
    assert _heldout_loss(trained, batch) < 0.85 * _heldout_loss(initial, batch)

    out = embed_run(tmp_path / "run", "fsdd/fsdd_subset.tar.gz", tmp_path / "emb.npy")  # `multissl embed`
    assert np.load(out).shape == (360, 32)


@pytest.mark.slow
def test_cpu_recipe_short_run_probes(tmp_path):
    recipe = load_recipe("speech/tera-cpu-fsdd", ["train.max_steps=100", "train.progress=false"])
    m = run_recipe(recipe, run_dir=str(tmp_path / "run"))["metrics"]
    assert m["test/speaker_acc"] > 0.5 and m["test/keyword_acc"] > 0.3
    assert m["test/logmel_keyword_acc"] > 0.3 and m["test/random_keyword_acc"] > 0.3
