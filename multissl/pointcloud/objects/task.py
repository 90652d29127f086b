"""The ``pointcloud.pointmae`` recipe kind: Point-MAE pre-training on object clouds, then probes and
fine-tuning for classification (the LiDAR kind lives in ``multissl.pointcloud.lidar.task``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from multissl.config import param
from multissl.tasks import Task, TaskParts


@dataclass
class CloudData:
    source: Literal["procedural", "modelnet10_vox", "modelnet40_h5", "scanobjectnn_h5", "off"] = param(
        "procedural", "procedural shape set, real ModelNet10 (shipped voxelisation, official split), "
        "ModelNet40/ScanObjectNN h5, or an .off folder")
    path: str | None = param(None, "train h5 file/folder, the .off root (<class>/{train,test}/*.off), or the "
                             "ModelNet10 voxel .npz (default: the shipped one)")
    test_path: str | None = param(None, "test h5 file/folder (h5 sources)")
    num_points: int = param(1024, "points per cloud (paper: 1,024)")
    train_per_class: int | None = param(None, "procedural/off: clouds per class in train (None = all; 300 procedural)")
    test_per_class: int | None = param(None, "procedural/off: clouds per class in test (None = all; 100 procedural)")
    val_fraction: float = param(0.1, "validation fraction carved from train (model selection only)")
    seed: int = param(0, "data seed (procedural generation and the val split)")
    normalize: Literal["unit_sphere", "centre"] = param(
        "unit_sphere", "unit_sphere: Point-MAE's pc_norm (size thrown away); centre: keep metric size (real crops)")


@dataclass
class EncoderParams:
    num_groups: int = param(64, "FPS patch centres (paper: 64)")
    group_size: int = param(32, "kNN points per patch (paper: 32)")
    dim: int = param(384, "Transformer width (paper: 384)")
    depth: int = param(12, "encoder blocks (paper: 12)")
    heads: int = param(6, "attention heads (paper: 6)")
    drop_path: float = param(0.1, "stochastic depth rate (paper: 0.1)")
    embed_hidden: tuple[int, int, int] = param((128, 256, 512), "mini-PointNet widths (paper: 128, 256, 512)")


@dataclass
class MAEParams:
    mask_ratio: float = param(0.6, "fraction of patches masked (paper: 0.6)")
    decoder_depth: int = param(4, "decoder blocks (paper: 4)")
    decoder_heads: int = param(6, "decoder heads (paper: 6)")
    scale: tuple[float, float] = param((2 / 3, 3 / 2), "per-axis scale augmentation range (paper: 2/3-3/2)")
    translate: float = param(0.2, "translation augmentation range (paper: 0.2)")
    loss: Literal["l2", "l1"] = param("l2", "Chamfer norm (paper: l2)")


@dataclass
class ClsEval:
    probe_train_size: int | None = param(None, "train clouds used by the periodic validation probe (None = all)")
    knn_k: int = param(20, "neighbours of the kNN probe")
    finetune: bool = param(False, "also fine-tune in the final evaluation (slow; `multissl eval pointcloud.cls` does it)")
    finetune_epochs: int = param(300, "fine-tuning epochs (paper: 300)")
    finetune_lr: float = param(5e-4, "fine-tuning AdamW lr (paper: 5e-4)")
    finetune_batch_size: int = param(32, "fine-tuning batch (paper: 32)")
    finetune_warmup_epochs: int = param(10, "fine-tuning warm-up epochs (paper: 10)")
    label_smoothing: float = param(0.2, "label smoothing of the fine-tuning loss (official code: 0.2)")
    votes: int = param(10, "test-time augmentation votes (paper: 10)")
    picture: bool = param(True, "write plots/reconstruction.png after training")


@dataclass
class PointMAEConfig:
    data: CloudData = param(CloudData(), "object clouds")
    model: EncoderParams = param(EncoderParams(), "Point-MAE encoder")
    method: MAEParams = param(MAEParams(), "masking, decoder, augmentation")
    eval: ClsEval = param(ClsEval(), "probes and fine-tuning")


def build_encoder(m: EncoderParams):
    from multissl.pointcloud.objects.pointmae import PointEncoder

    return PointEncoder(m.num_groups, m.group_size, m.dim, m.depth, m.heads, m.drop_path, tuple(m.embed_hidden))


def finetune_config(e: ClsEval):
    from multissl.pointcloud.objects.classify import FinetuneConfig

    return FinetuneConfig(e.finetune_epochs, e.finetune_lr, 0.05, e.finetune_batch_size, e.finetune_warmup_epochs,
                          e.label_smoothing, e.votes)


class PointMAETask(Task):
    config_class = PointMAEConfig
    description = "Point-MAE masked point modelling on object clouds; probe / fine-tune classification"

    def build(self, recipe) -> TaskParts:
        from multissl.pointcloud.objects.classify import finetune, probe
        from multissl.pointcloud.objects.data import CloudDataset, load_splits
        from multissl.pointcloud.objects.pointmae import PointMAE

        cfg: PointMAEConfig = recipe.config
        d, m = cfg.data, cfg.method
        sp = load_splits(d.source, d.path, d.test_path, d.num_points, d.train_per_class, d.test_per_class,
                         d.val_fraction, d.seed, d.normalize)
        method = PointMAE(build_encoder(cfg.model), m.mask_ratio, m.decoder_depth, m.decoder_heads, tuple(m.scale),
                          m.translate, m.loss)
        n_probe = cfg.eval.probe_train_size or len(sp.train_x)

        def evaluate(meth) -> dict[str, float]:
            r = probe(meth.encoder, sp.train_x[:n_probe], sp.train_y[:n_probe], sp.val_x, sp.val_y, cfg.eval.knn_k)
            pred, target, _, _ = meth.reconstruct(sp.val_x[:64].to(meth.mask_token.device))
            from multissl.core import chamfer_distance

            return {"val/linear_acc": r["linear_acc"], "val/knn_acc": r["knn_acc"],
                    "val/chamfer_l2": float(chamfer_distance(pred, target))}

        def final(meth) -> dict[str, float]:
            out = evaluate(meth)
            r = probe(meth.encoder, sp.train_x, sp.train_y, sp.test_x, sp.test_y, cfg.eval.knn_k)
            out.update({"test/linear_acc": r["linear_acc"], "test/knn_acc": r["knn_acc"]})
            if cfg.eval.finetune:
                ft = finetune(meth.encoder, sp.train_x, sp.train_y, sp.val_x, sp.val_y, sp.test_x, sp.test_y,
                              sp.num_classes, finetune_config(cfg.eval), seed=recipe.train.seed)
                out.update({"val/finetune_acc": ft["finetune_val_acc"], "test/finetune_acc": ft["finetune_acc"],
                            "test/finetune_vote_acc": ft["finetune_vote_acc"]})
            return out

        def export(meth, folder) -> None:
            if cfg.eval.picture:
                from multissl.pointcloud.objects.plots import reconstruction_png

                reconstruction_png(meth, sp.test_x[:4], folder.parent / "plots" / "reconstruction.png")

        return TaskParts(method, CloudDataset(sp.train_x), evaluate=evaluate, final_evaluate=final, export=export)

    def embed_data(self, recipe, path: str):
        """One embedding per cloud of a file (.npz points+offsets, (K, N, 3) .npy, .off, one cloud) or folder."""
        from multissl.pointcloud.objects.data import CloudDataset, embed_clouds

        x = embed_clouds(path, recipe.config.data.num_points, how=recipe.config.data.normalize)
        return CloudDataset(torch.from_numpy(x).float()), None
