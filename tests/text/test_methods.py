"""SimCSE / ESimCSE / WhitenedCSE / MLM train on real sentences (wiki1m head) and their loss falls."""

import json

import pytest
import torch

from multissl.core import Progress, after_optimizer_step, before_optimizer_step
from multissl.recipes import load_recipe
from multissl.run import build_parts, run_recipe

QUICK = ["train.progress=false", "data.limit=512", "data.eval_max_pairs=48", "train.eval_at_start=false",
         "train.eval_every=0", "train.log_every=1"]


def _losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.parametrize("recipe", ["simcse-minilm", "esimcse-minilm", "whitenedcse-minilm"])
def test_contrastive_loss_falls_on_real_sentences(recipe, tiny_bert, tmp_path):
    overrides = QUICK + [f"model.name={tiny_bert}", "train.max_steps=16", "train.batch_size=32", "train.lr=1e-3",
                         "train.scheduler=constant"]
    if recipe == "whitenedcse-minilm":
        overrides.append("method.num_groups=8")
    res = run_recipe(load_recipe(f"text/{recipe}", overrides), run_dir=str(tmp_path / "run"))
    losses = _losses(tmp_path / "run")
    assert len(losses) == 16
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.7 * first, (recipe, losses)
    assert "test/stsb_spearman" in res["metrics"]
    assert (tmp_path / "run" / "export" / "modules.json").exists()


def test_mlm_loss_falls(tiny_bert, tmp_path):
    overrides = QUICK + ["model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
                         "model.intermediate_size=64", "train.max_steps=20", "train.batch_size=32",
                         "train.lr=1e-2", "train.warmup_ratio=0.0", "train.scheduler=constant"]
    run_recipe(load_recipe("text/mlm-small", overrides), run_dir=str(tmp_path / "run"))
    losses = _losses(tmp_path / "run")
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5, losses


def test_esimcse_momentum_update_and_queue(tiny_bert):
    recipe = load_recipe("text/esimcse-minilm", [f"model.name={tiny_bert}", "train.batch_size=8",
                                                 "data.limit=64", "data.eval_max_pairs=8"])
    _, parts = build_parts(recipe)
    method = parts.method
    assert method.queue.size == 20  # 2.5 x batch
    batch = parts.collate_fn(parts.train_data.items[:8])
    assert batch["rep_input_ids"].shape[1] >= batch["input_ids"].shape[1]
    method.train()
    assert not method.momentum_model.training
    out = method(batch)
    out.loss.backward()
    assert len(method.queue) == 0 and method.queue.num_staged == 8  # staged, pushed at the optimizer step
    before = [p.clone() for p in method.momentum_model.parameters()]
    with torch.no_grad():
        for p in method.encoder.model.parameters():
            p.add_(1.0)
    before_optimizer_step(method, Progress(0, 10, 0, 10))  # ESimCSE: EMA before the optimizer step
    after = list(method.momentum_model.parameters())
    assert torch.allclose(after[0], before[0] + 0.005, atol=1e-5)  # (1 - 0.995) of the +1 shift
    after_optimizer_step(method, Progress(1, 10, 0, 10))
    assert len(method.queue) == 8
    out2 = method(batch)  # second step sees the queue as extra negatives
    assert torch.isfinite(out2.loss)
