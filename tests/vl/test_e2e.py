"""End-to-end runs on the shipped flickr8k-mini set (tiny resolution, few steps, CPU).

The image tower starts from scratch, so the CI run checks that ITC training aligns the towers on the
images it trained on (text->image R@5 over the 150 training images, chance 3.3%) and that the ALBEF/TCL
pipeline (momentum, queues, ITM with re-ranking, MLM) trains and evaluates end to end.
"""

import pytest
import torch

from multissl.recipes import load_recipe
from multissl.run import build_parts, run_recipe
from multissl.vl.retrieval import evaluate_retrieval
from multissl.vl.tasks import load_split

ITC_FAST = ["data.image_size=32", "model.freeze_text=true", "train.batch_size=50", "train.epochs=12",
            "train.lr=0.002", "train.warmup_ratio=0", "train.progress=false", "train.eval_every_epochs=100",
            "data.randaugment=false", "data.max_length=20", "eval.examples_png=false"]


def _batch_r1(m, batch) -> float:
    """Text->image R@1 within the batch (chance 1 / batch size)."""
    m.eval()
    with torch.no_grad():
        img = m.encode_image(batch["image"])[1]
        txt = m.encode_text(batch["input_ids"], batch["attention_mask"])[1]
    return float((txt @ img.t()).argmax(1).eq(torch.arange(len(img))).float().mean())


def itc_on_a_batch(seed: int, lr_scale: float = 1.0, steps: int = 25):
    """(R@1 before, R@1 after, losses) of ITC trained on 16 real pairs (32 px, locked MiniLM)."""
    torch.set_num_threads(2)
    recipe = load_recipe("vl/itc-flickr8k", ["data.image_size=32", "model.freeze_text=true", "data.max_length=12",
                                             "data.randaugment=false", f"train.seed={seed}"])
    _, parts = build_parts(recipe)
    m = parts.method
    batch = parts.collate_fn([parts.train_data[i] for i in range(16)])
    before = _batch_r1(m, batch)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=2e-3 * lr_scale)
    from multissl.core import Progress, after_optimizer_step

    losses = []
    for step in range(steps):
        m.train()
        out = m(batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        after_optimizer_step(m, Progress(step + 1, steps, 0, steps))
        losses.append(float(out.loss.detach()))
    return before, _batch_r1(m, batch), losses


@pytest.mark.learning
def test_itc_learns_a_batch(lr_scale):
    """ITC on 16 real pairs, seed 1: text->image R@1 within the batch rises above the same initial weights'
    by 0.4 and the loss falls by 0.5. Margin: half of seed 0's gain (R@1 0.19 -> 1.00, loss 3.20 -> 0.002);
    the seeds measured are in docs/notes/testing.md."""
    before, after, losses = itc_on_a_batch(1, lr_scale)
    assert losses[-1] < losses[0] - 0.5, losses
    assert after >= before + 0.4, (before, after)


def _train_set_retrieval(recipe_name: str, tmp_path):
    """(before, after) retrieval figures on the training images of a 12-epoch run: its initial weights
    against its last checkpoint, evaluated identically."""
    torch.set_num_threads(2)
    recipe = load_recipe(recipe_name, ITC_FAST)
    _, parts = build_parts(recipe)
    tr_img, tr_caps = load_split(recipe.config, "train")
    before = evaluate_retrieval(parts.method.eval(), tr_img, tr_caps)
    run_recipe(recipe, run_dir=str(tmp_path / "run"))
    _, parts = build_parts(recipe)
    from multissl.train.checkpoint import load_weights

    load_weights(parts.method, tmp_path / "run" / "checkpoints" / "last" / "model.safetensors")
    return before, evaluate_retrieval(parts.method.eval(), tr_img, tr_caps), len(tr_caps)


@pytest.mark.slow
@pytest.mark.learning
def test_itc_run_beats_chance(tmp_path):
    """ITC with multissl's info_nce: train-image t2i R@5 above 3x chance and rsum +3 over the initial weights."""
    before, after, n = _train_set_retrieval("vl/itc-flickr8k", tmp_path)
    assert after["t2i_r@5"] > 3 * 100 * 5 / n, (before, after)  # chance 3.3%
    assert after["rsum"] > before["rsum"] + 3, (before, after)


def test_tcl_pipeline_trains_and_reranks(tmp_path):
    recipe = load_recipe("vl/tcl-flickr8k", ["data.image_size=32", "train.batch_size=16", "train.max_steps=2",
                                             "method.queue_size=32", "eval.rerank_k=3", "train.progress=false",
                                             "data.max_length=16", "eval.examples_png=true"])
    res = run_recipe(recipe, run_dir=str(tmp_path / "run"))
    m = res["metrics"]
    # ITM re-ranks only each query's top 3, so every recall at 5 and 10 is the ITC one, and rsum is the mean
    for d in ("i2t", "t2i"):
        for k in (5, 10):
            assert m[f"test/{d}_r@{k}"] == m[f"test/itc/{d}_r@{k}"], (d, k, m)
    for prefix in ("test/", "test/itc/", "val/"):
        six = [m[f"{prefix}{d}_r@{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10)]
        assert m[f"{prefix}rsum"] == pytest.approx(sum(six) / 6) and all(0 <= r <= 100 for r in six), prefix
        assert six[0] <= six[1] <= six[2] and six[3] <= six[4] <= six[5], prefix
    assert (tmp_path / "run" / "plots" / "retrieval_examples.png").exists()
    logs = (tmp_path / "run" / "metrics.jsonl").read_text()
    for term in ("g2l_t", "i2i", "itm", "mlm", "alpha"):
        assert f'"{term}"' in logs


@pytest.mark.slow
@pytest.mark.learning
def test_clip_baseline_with_open_clip_loss(tmp_path):
    """The open_clip-loss baseline, same run and same check as ITC with ours (the same model and data)."""
    before, after, n = _train_set_retrieval("vl/clip-flickr8k", tmp_path)
    assert after["t2i_r@5"] > 3 * 100 * 5 / n, (before, after)
    assert after["rsum"] > before["rsum"] + 3, (before, after)
