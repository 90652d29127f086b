"""Issue 23 item 5: Point-MAE on real objects. The shipped ModelNet10 voxelisation keeps the official
split, its surface sampler samples the voxel solid's surface uniformly by area, the size option acts on
it, the SVM probe selects on validation only, and Point-MAE learns on the real clouds."""

import numpy as np
import torch

from multissl.pointcloud.objects import real_study
from multissl.pointcloud.objects.data import load_splits
from multissl.pointcloud.objects.voxels import exposed_faces, read_grids, sample_surface

# ModelNet10's official per-class counts (bathtub ... toilet)
OFFICIAL_TRAIN = [106, 515, 889, 200, 200, 465, 200, 680, 392, 344]
OFFICIAL_TEST = [50, 100, 100, 86, 86, 100, 86, 100, 100, 100]


def test_shipped_modelnet10_has_the_official_split():
    raw = read_grids(drop_empty=False)
    assert raw["train"].shape == (3991, 24, 24, 24) and raw["test"].shape == (908, 24, 24, 24)
    assert np.bincount(raw["y_train"]).tolist() == OFFICIAL_TRAIN
    assert np.bincount(raw["y_test"]).tolist() == OFFICIAL_TEST
    assert list(raw["classes"][:3]) == ["bathtub", "bed", "chair"]
    g = read_grids()  # the 8 empty grids (binvox failures of the public voxelisation) are dropped
    assert len(g["train"]) == 3984 and len(g["test"]) == 907
    assert g["train"].reshape(3984, -1).any(1).all()


def test_voxel_surface_sampling_is_on_the_surface_and_uniform_by_area():
    vox = np.zeros((4, 4, 4), bool)
    vox[1:3, 1:3, 1:3] = True  # a 2x2x2 solid cube: 24 exposed unit faces, none inside
    cells, dirs = exposed_faces(vox)
    assert len(cells) == 24 and np.bincount(dirs).tolist() == [4] * 6
    pts = sample_surface(vox, 6000, np.random.default_rng(0)) * 4  # back to cell units
    assert ((pts >= 1 - 1e-6) & (pts <= 3 + 1e-6)).all()
    on_face = np.isclose(pts, 1) | np.isclose(pts, 3)
    assert on_face.any(1).all()  # every point on the cube's surface
    # uniform by area: each of the 6 sides gets about 1/6 of the points
    side = np.argmax(on_face, 1) * 2 + np.isclose(pts[np.arange(len(pts)), np.argmax(on_face, 1)], 3)
    frac = np.bincount(side, minlength=6) / len(pts)
    assert np.abs(frac - 1 / 6).max() < 0.02
    # a longer box: its long sides are twice the area, so they get twice the points
    box = np.zeros((6, 4, 4), bool)
    box[1:5, 1:3, 1:3] = True
    cells, dirs = exposed_faces(box)
    assert np.bincount(dirs).tolist() == [4, 4, 8, 8, 8, 8]


def test_size_option_on_modelnet10():
    unit = load_splits("modelnet10_vox", None, None, 128, 2, 2, 0.0, 0, "unit_sphere")
    kept = load_splits("modelnet10_vox", None, None, 128, 2, 2, 0.0, 0, "centre")
    assert torch.allclose(unit.train_x.norm(dim=-1).amax(1), torch.ones(len(unit.train_x)), atol=1e-5)
    extent = (kept.train_x.amax(1) - kept.train_x.amin(1)).amax(1)
    assert (extent <= 1.0 + 1e-5).all() and extent.median() > 0.97  # binvox: longest side ~ the grid
    assert torch.allclose(kept.train_x.mean(1), torch.zeros(len(kept.train_x), 3), atol=1e-5)
    assert kept.num_classes == 10 and len(kept.test_x) == 20
    # the same shapes get the same points in a subset and in a larger draw
    more = load_splits("modelnet10_vox", None, None, 128, 3, 2, 0.0, 0, "centre")
    assert torch.equal(more.test_x, kept.test_x)


def test_lidar_crops_keep_metric_size_and_size_alone_separates_cars():
    clouds, car, names = real_study.lidar_crops(10)
    assert len(clouds) == len(car) == len(names) and 0 < car.sum() < len(car)
    ext = real_study.size_features(clouds)
    assert np.median(ext[car == 1, 0]) > 2.5 > np.median(ext[car == 0, 0])  # metres: cars are long
    assert real_study.loo_accuracy(ext, car)["balanced_acc"] > 0.7


def test_svm_probe_selects_on_validation_only():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 3))
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = (x @ w).argmax(1)
    a = real_study.svm_probe(x[:150], y[:150], x[150:200], y[150:200], x[200:], y[200:])
    b = real_study.svm_probe(x[:150], y[:150], x[150:200], y[150:200], x[200:], rng.permutation(y[200:]))
    assert a["svm_C"] == b["svm_C"] and a["svm_val_acc"] == b["svm_val_acc"]  # test labels never used
    assert a["svm_acc"] > 0.8 > b["svm_acc"]


def _tiny_pretrain_gain(seed: int, lr_scale: float = 1.0) -> tuple[float, float]:
    """Held-out Chamfer-L2 of the masked patches (fixed masks) at init and after 60 tiny Point-MAE steps
    on 200 real ModelNet10 clouds; the same shapes, masks and init for both."""
    from multissl.core import chamfer_distance
    from multissl.pointcloud.objects.pointmae import PointEncoder, PointMAE, random_mask

    sp = load_splits("modelnet10_vox", None, None, 256, 20, 4, 0.0, 0, "unit_sphere")
    torch.manual_seed(seed)
    mae = PointMAE(PointEncoder(16, 16, 64, 2, 4, 0.0, (32, 64, 64)), 0.6, 1, 4)
    held = sp.test_x[:40]
    torch.manual_seed(99)
    mask = random_mask(len(held), 16, 0.6, torch.device("cpu"))
    torch.manual_seed(seed)

    def chamfer() -> float:
        mae.eval()
        with torch.no_grad():
            pred, target, _, _ = mae.reconstruct(held, mask)
        mae.train()
        return float(chamfer_distance(pred, target))

    before = chamfer()
    opt = torch.optim.AdamW(mae.parameters(), 2e-3 * lr_scale, weight_decay=0.05 * lr_scale)
    g = torch.Generator().manual_seed(seed)
    for _ in range(60):
        loss = mae(sp.train_x[torch.randint(0, len(sp.train_x), (32,), generator=g)]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, chamfer()


def test_pointmae_learns_on_real_modelnet10_clouds(lr_scale):
    """Margin chosen on seed 0, asserted on seed 1: the held-out masked-patch Chamfer falls by > 30 %
    from the untrained model's (same masks, same shapes)."""
    before, after = _tiny_pretrain_gain(1, lr_scale)
    assert after < 0.7 * before, (before, after)
