"""Point-MAE: masking, reconstruction shapes, the procedural set, and a tiny real pre-training run."""

import numpy as np
import torch

from multissl.pointcloud.objects.pointmae import (
    PointEncoder,
    PointMAE,
    random_mask,
    scale_translate,
)
from multissl.pointcloud.objects.shapes import CLASSES, generate, load_shapes

TINY = ["data.num_points=256", "data.train_per_class=16", "data.test_per_class=4", "data.val_fraction=0.25",
        "model.num_groups=16", "model.group_size=16", "model.dim=64", "model.depth=2", "model.heads=4",
        "model.embed_hidden=[32,64,64]",
        "method.decoder_depth=1", "method.decoder_heads=4", "eval.probe_train_size=null", "eval.picture=false",
        "train.batch_size=32", "train.progress=false", "train.eval_every_epochs=100"]


def test_procedural_shapes_are_deterministic_and_normalised():
    a, ya = generate(2, 128, seed=5)
    b, yb = generate(2, 128, seed=5)
    c, _ = generate(2, 128, seed=6)
    assert np.array_equal(a, b) and np.array_equal(ya, yb) and not np.array_equal(a, c)
    assert a.shape == (2 * len(CLASSES), 128, 3) and sorted(set(ya.tolist())) == list(range(10))
    assert np.all(np.linalg.norm(a, axis=-1).max(-1) <= 1 + 1e-5)


def test_load_shapes_prefix_equals_smaller_draw(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTISSL_CACHE", str(tmp_path))
    x, y = load_shapes("test", 100, 1024, seed=3)
    ref, ry = generate(2, 1024, seed=4)
    assert np.allclose(x[:20], ref - ref.mean(1, keepdims=True), atol=2e-3) and np.array_equal(y[:20], ry)
    assert list(tmp_path.rglob("*.npz"))  # cached


def test_random_mask_exact_ratio_and_encoder_sees_only_visible():
    m = random_mask(4, 64, 0.6, torch.device("cpu"))
    assert (m.sum(1) == 38).all()
    enc = PointEncoder(16, 8, 32, 1, 2, 0.0, (16, 32, 32))
    mae = PointMAE(enc, 0.5, 1, 2).eval()
    x = torch.randn(2, 128, 3)
    pred, target, mask, _centres = mae.reconstruct(x)
    assert pred.shape == target.shape == (2 * 8, 8, 3) and mask.sum() == 16
    patches, cen = enc.group(x)
    assert enc(patches, cen, ~mask).shape == (2, 8, 32)
    y = scale_translate(x)
    ratio = (y - y.mean(1, keepdim=True)).std(1) / x.std(1)
    assert ((ratio > 0.6) & (ratio < 1.6)).all()


def test_pointmae_pretraining_beats_random_init_probe(tmp_path, monkeypatch):
    from multissl.recipes import load_recipe
    from multissl.run import build_parts, run_recipe

    monkeypatch.setenv("MULTISSL_CACHE", str(tmp_path / "cache"))
    recipe = load_recipe("pointcloud/pointmae-shapes-small", TINY + ["train.epochs=12", "train.warmup_ratio=0.1"])
    _, parts = build_parts(recipe)
    parts.method.eval()
    with torch.no_grad():
        before = parts.evaluate(parts.method)
    res = run_recipe(recipe, run_dir=str(tmp_path / "run"))
    after = res["metrics"]
    print(before, after)
    assert after["val/chamfer_l2"] < 0.8 * before["val/chamfer_l2"]
    assert after["val/linear_acc"] > before["val/linear_acc"] + 0.05


def test_chamfer_l2_on_patches_and_the_mae_loss_uses_it():
    from multissl.core import chamfer_distance

    a = torch.randn(4, 16, 3)
    assert float(chamfer_distance(a, a)) == 0.0
    shift = torch.tensor([0.1, 0.0, 0.0])
    b = torch.zeros(1, 1, 3)
    assert abs(float(chamfer_distance(b, b + shift)) - 2 * 0.01) < 1e-7  # squared distance, both ways
    torch.manual_seed(0)
    mae = PointMAE(PointEncoder(8, 8, 32, 1, 2, 0.0, (16, 32, 32)), 0.5, 1, 2).eval()
    x = torch.randn(2, 64, 3)
    mask = random_mask(2, 8, 0.5, torch.device("cpu"))
    pred, target, _, _ = mae.reconstruct(x, mask)
    assert torch.allclose(chamfer_distance(pred, target), chamfer_distance(target, pred))
