"""Graph adapter end to end: GraphMAE on Cora and XSimGCL on the shipped Gowalla slice, through the
recipes and the trainer, each beating its baseline by a clear margin; plus method-level checks."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_geometric")

from multissl.recipes import load_recipe
from multissl.run import run_recipe


def test_graphmae_masking_and_loss():
    from multissl.graph.methods import GraphMAE

    torch.manual_seed(0)
    n, f = 200, 12
    x = torch.rand(n, f) + 0.1
    ei = torch.stack([torch.arange(n), torch.arange(n)])  # self-loops only
    m = GraphMAE(x, ei, hidden=16, heads=4, mask_rate=0.5, replace_rate=0.1)
    m.mask_token.data.fill_(7.0)
    out, masked = m.mask(x)
    assert masked.numel() == 100 and masked.unique().numel() == 100
    changed = (out != x).any(1)
    assert not changed[~torch.isin(torch.arange(n), masked)].any()  # only masked nodes change
    token_rows = (out == 7.0).all(1)
    assert int(token_rows.sum()) == 90  # (1 - replace_rate) of the masked get 0 + token
    loss = m(None).loss
    loss.backward()
    assert torch.isfinite(loss) and m.mask_token.grad is not None and m.embed().shape == (n, 16)


def test_lightgcn_is_xsimgcl_without_noise_and_contrast():
    from multissl.graph.methods import XSimGCL

    torch.manual_seed(0)
    pairs = torch.unique(torch.randint(0, 30, (400, 2)), dim=0)
    lg = XSimGCL(pairs, 30, 30, dim=8, num_layers=3, eps=0.0, cl_weight=0.0)
    out = lg(torch.arange(64))
    assert "cl" not in out.logs and torch.isfinite(out.loss)
    xs = XSimGCL(pairs, 30, 30, dim=8, num_layers=2)
    out = xs(torch.arange(64))
    assert "cl" in out.logs
    out.loss.backward()
    assert xs.user_emb.grad.abs().sum() > 0 and xs.item_emb.grad.abs().sum() > 0


def test_graphmae_cora_beats_random_init(tmp_path):
    """A small GraphMAE (hidden 128, 30 epochs, lr 5e-3) on Cora: the frozen encoder's probe beats the
    random-init encoder's by a clear margin (measured here: 0.685 vs 0.547)."""
    torch.set_num_threads(1)
    recipe = load_recipe("graph/graphmae-cora", [
        "model.hidden=128", "model.init=pyg", "train.epochs=30", "train.lr=0.005", "train.eval_every_epochs=30",
        "train.checkpoint_every=1000", "train.progress=false", "train.seed=0"])
    res = run_recipe(recipe, run_dir=str(tmp_path / "run"))["metrics"]
    assert res["test/acc"] >= res["test/random_init_acc"] + 0.06, res
    assert (tmp_path / "run" / "results.json").exists()


def test_xsimgcl_gowalla_slice_beats_baselines(tmp_path):
    """XSimGCL on the shipped Gowalla slice, 2 epochs: Recall@20 well above most-popular and untrained."""
    torch.set_num_threads(1)
    recipe = load_recipe("graph/xsimgcl-gowalla", [
        "data.path=gowalla/slice", "train.epochs=2", "train.batch_size=1024", "train.progress=false",
        "train.seed=0"])
    res = run_recipe(recipe, run_dir=str(tmp_path / "run"))["metrics"]
    assert res["test/recall@20"] > 1.5 * res["test/popular_recall@20"], res
    assert res["test/recall@20"] > 2.0 * res["test/untrained_recall@20"], res
    assert res["test/ndcg@20"] > res["test/popular_ndcg@20"], res
    assert "val/recall@20" in res
