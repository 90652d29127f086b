"""Recipe kinds ``image.simclr``, ``image.mocov2``, ``image.byol``, ``image.barlowtwins``, ``image.dcl``,
``image.mochi`` and ``image.swav``: pre-training on an image set with device-side views, weighted-kNN
validation during training, and kNN / linear probe / alignment-uniformity / 2-D projection at the end.

Protocol: the whole training split is used (without labels) for pre-training; a seeded
``data.val_fraction`` of it is held out as kNN queries for VALIDATION (bank = the rest). The final
test figures use the whole training split as the kNN bank / probe training set and the test split as
queries (lightly's and solo-learn's CIFAR protocol).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, make_dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from multissl.config import param
from multissl.eval import alignment, frozen_scores, plot_projection, uniformity
from multissl.image.augment import CIFAR10_MEAN, CIFAR10_STD, ViewConfig
from multissl.image.data import (
    ImageTensorDataset,
    batch_collate,
    load_images,
    val_split,
)
from multissl.image.models import build_backbone
from multissl.tasks import Task, TaskParts, section_kwargs


@dataclass
class ImageData:
    root: str = param("cifar10-mini", "image-folder root (<split>/<class>/img or <split>.tar.gz; shipped short "
                      "name, any path, e.g. $MULTISSL_DATA/cifar10 for full CIFAR-10) or hf:NAME")
    train_split: str = param("train", "split used for pre-training (labels only for kNN/probe)")
    test_split: str = param("test", "split used for the final test figures")
    image_size: int = param(32, "images are resized/centre-cropped to this side when loaded")
    channels: int = param(3, "3 = RGB, 1 = grayscale")
    val_fraction: float = param(0.1, "fraction of the training split held out as kNN validation queries")
    split_seed: int = param(0, "seed of the validation hold-out (fixed across training seeds)")
    limit_train: int | None = param(None, "use only the first N training images (quick runs)")
    image_key: str = param("img", "hf: image column")
    label_key: str = param("label", "hf: label column")

    def validate(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


@dataclass
class ImageModel:
    backbone: str = param("torchvision:resnet18", "torchvision:NAME, timm:NAME, a bare name, or tiny[-WIDTH]")
    cifar_stem: bool = param(True, "ResNet stem for 32x32 inputs: 3x3/1 conv, no max-pool")
    pretrained: bool = param(False, "start from hub weights (online or cached); the evidence starts from scratch")
    channels_last: bool = param(True, "NHWC memory layout (faster convolutions on GPU)")


@dataclass
class Augment:
    """View pipeline (SimCLR appendix A; CIFAR: colour strength 0.5, no blur). Per-view lists: value i
    is view i's (the last value repeats)."""

    size: int = param(32, "output side of the (large) crops")
    scale: tuple[float, float] = param((0.08, 1.0), "RandomResizedCrop area range")
    ratio: tuple[float, float] = param((3 / 4, 4 / 3), "RandomResizedCrop aspect range")
    flip_p: float = param(0.5, "horizontal flip probability")
    jitter_p: float = param(0.8, "colour jitter probability")
    brightness: float = param(0.4, "jitter brightness (0.8 x strength 0.5)")
    contrast: float = param(0.4, "jitter contrast")
    saturation: float = param(0.4, "jitter saturation")
    hue: float = param(0.1, "jitter hue (0.2 x strength 0.5)")
    grayscale_p: float = param(0.2, "grayscale probability")
    blur_p: list[float] = param([0.0], "Gaussian blur probability per view (SimCLR ImageNet: 0.5; CIFAR: 0)")  # noqa: RUF009 (param copies mutable defaults)
    blur_sigma: tuple[float, float] = param((0.1, 2.0), "blur sigma range")
    solarize_p: list[float] = param([0.0], "solarisation probability per view")  # noqa: RUF009 (param copies mutable defaults)
    mean: tuple[float, float, float] = param(CIFAR10_MEAN, "normalisation mean")
    std: tuple[float, float, float] = param(CIFAR10_STD, "normalisation std")

    def view(self, i: int, **over: Any) -> ViewConfig:
        pick = lambda v: v[min(i, len(v) - 1)]
        kw = {f.name: getattr(self, f.name) for f in fields(ViewConfig) if hasattr(self, f.name)}
        kw.update(blur_p=pick(self.blur_p), solarize_p=pick(self.solarize_p), **over)
        return ViewConfig(**kw)


@dataclass
class BYOLAugment(Augment):
    """BYOL's asymmetric views (Grill et al. 2020, table 6)."""

    saturation: float = param(0.2, "jitter saturation (BYOL: 0.2)")
    blur_p: list[float] = param([1.0, 0.1], "blur probability per view (BYOL: 1.0, 0.1)")  # noqa: RUF009 (param copies mutable defaults)
    solarize_p: list[float] = param([0.0, 0.2], "solarisation probability per view (BYOL: 0, 0.2)")  # noqa: RUF009 (param copies mutable defaults)


@dataclass
class BarlowAugment(BYOLAugment):
    """Barlow Twins uses BYOL's augmentations (Zbontar et al. 2021, section 4)."""


@dataclass
class SwAVAugment(Augment):
    scale: tuple[float, float] = param((0.14, 1.0), "large-crop area range (SwAV: 0.14-1)")
    blur_p: list[float] = param([0.5], "blur probability (SwAV: 0.5)")  # noqa: RUF009 (param copies mutable defaults)
    small_size: int = param(16, "side of the small crops (SwAV ImageNet: 96 for 224; CIFAR: 2x32 + Nx16)")
    small_scale: tuple[float, float] = param((0.05, 0.14), "small-crop area range (SwAV: 0.05-0.14)")
    num_small: int = param(6, "number of small crops (SwAV: 6)")


@dataclass
class ProbeParams:
    knn_k: int = param(200, "neighbours of the weighted kNN (InstDisc / solo-learn: 200)")
    knn_temperature: float = param(0.1, "kNN vote temperature (0.1)")
    linear_probe: bool = param(True, "fit a logistic-regression probe on frozen features at the end")
    probe_optimizer: Literal["lbfgs", "adam", "sgd"] = param("lbfgs", "lbfgs (converged, selection-free) | adam | sgd")
    probe_weight_decay: float = param(1e-4, "L2 penalty of the probe")
    diagnostics: bool = param(True, "alignment / uniformity and a PCA plot of test features at the end")
    embed_batch_size: int = param(1024, "images per forward when embedding for evaluation")


@dataclass
class SimCLRParams:
    proj_hidden: int = param(2048, "projector hidden width (SimCLR: 2048 = ResNet-50 width)")
    proj_dim: int = param(128, "projection size (SimCLR: 128)")
    temperature: float = param(0.5, "NT-Xent temperature (SimCLR CIFAR-10: 0.5)")


@dataclass
class DCLParams:
    proj_hidden: int = param(2048, "projector hidden width")
    proj_dim: int = param(128, "projection size")
    temperature: float = param(0.1, "temperature (DCL: 0.1)")
    vmf_sigma: float | None = param(None, "DCLW von Mises-Fisher weighting sigma (DCLW: 0.5); None = DCL")


@dataclass
class MoCoParams:
    proj_hidden: int = param(2048, "MLP head hidden width (MoCo v2: 2048)")
    proj_dim: int = param(128, "key/query size (MoCo v2: 128)")
    temperature: float = param(0.2, "InfoNCE temperature (MoCo v2: 0.2)")
    queue_size: int = param(65536, "negatives kept in the queue (MoCo v2 ImageNet: 65536; CIFAR: 4096)")
    momentum: float = param(0.999, "key-encoder momentum (MoCo v2 ImageNet: 0.999; CIFAR: 0.99)")
    symmetric: bool = param(False, "also use view 2 as query (MoCo v3 / lightly style); paper: False")
    in_batch_negatives: bool = param(False, "also use the other in-batch keys as negatives; reference: False "
                                            "(queue only)")


@dataclass
class MoCHiParams(MoCoParams):
    num_hard: int = param(1024, "N: hardest queue negatives to mix from (MoCHi: 1024)")
    num_mixed: int = param(1024, "s: mixed negatives per query (MoCHi: 1024)")
    num_self_mixed: int = param(256, "s': query-negative mixes per query (MoCHi: 256)")
    self_mix_max: float = param(0.5, "max weight of the query in a self-mix (MoCHi: beta < 0.5)")
    mix_start_epoch: int = param(0, "mix from this epoch on (MoCHi ImageNet-100 warm-up: 10 epochs; here 0)")


@dataclass
class BYOLParams:
    proj_hidden: int = param(4096, "projector hidden width (BYOL: 4096)")
    proj_dim: int = param(256, "projection size (BYOL: 256)")
    pred_hidden: int = param(4096, "predictor hidden width (BYOL: 4096)")
    base_momentum: float = param(0.996, "initial target momentum (BYOL: 0.996)")
    final_momentum: float = param(1.0, "final target momentum of the cosine schedule (BYOL: 1)")


@dataclass
class BarlowParams:
    proj_dims: list[int] = param([8192, 8192, 8192], "projector widths (Barlow Twins: 3 x 8192)")  # noqa: RUF009 (param copies mutable defaults)
    lambd: float = param(5e-3, "off-diagonal weight lambda (Barlow Twins: 5e-3)")


@dataclass
class SwAVParams:
    proj_hidden: int = param(2048, "projector hidden width (SwAV: 2048)")
    proj_dim: int = param(128, "projection size (SwAV: 128)")
    num_prototypes: int = param(3000, "prototypes K (SwAV ImageNet: 3000)")
    temperature: float = param(0.1, "softmax temperature (SwAV: 0.1)")
    epsilon: float = param(0.05, "Sinkhorn-Knopp entropy epsilon (SwAV: 0.05)")
    sinkhorn_iterations: int = param(3, "Sinkhorn-Knopp iterations (SwAV: 3)")
    freeze_prototypes_epochs: int = param(1, "epochs with frozen prototypes (SwAV: the first epoch)")
    queue_size: int = param(0, "queue of past large-crop embeddings (SwAV small batches: 3840; 0 = off)")
    queue_start_epoch: int = param(15, "epoch from which the queue is used (SwAV: 15)")


def _eval_config(cls_method, cls_aug, method_help: str):
    """The recipe sections of one image method: data, model, augment, method, eval."""
    spec = [("data", ImageData, param(ImageData(), "image set and validation hold-out")),
            ("model", ImageModel, param(ImageModel(), "backbone")),
            ("augment", cls_aug, param(cls_aug(), "device-side view augmentations")),
            ("method", cls_method, param(cls_method(), method_help)),
            ("eval", ProbeParams, param(ProbeParams(), "kNN / linear probe / diagnostics"))]
    return make_dataclass(f"{cls_method.__name__[:-6]}Config", spec)


SimCLRConfig = _eval_config(SimCLRParams, Augment, "SimCLR settings")
DCLConfig = _eval_config(DCLParams, Augment, "DCL settings")
MoCoConfig = _eval_config(MoCoParams, Augment, "MoCo v2 settings")
MoCHiConfig = _eval_config(MoCHiParams, Augment, "MoCHi settings")
BYOLConfig = _eval_config(BYOLParams, BYOLAugment, "BYOL settings")
BarlowConfig = _eval_config(BarlowParams, BarlowAugment, "Barlow Twins settings")
SwAVConfig = _eval_config(SwAVParams, SwAVAugment, "SwAV settings")


def _device(method: torch.nn.Module) -> torch.device:
    return next(method.parameters()).device


def embed_images(method, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Backbone features (N, D) of uint8 images, on the method's device."""
    dev = _device(method)
    return torch.cat([method.embed(images[s:s + batch_size].to(dev, non_blocking=True)).float()
                      for s in range(0, images.shape[0], batch_size)])


class ImageTask(Task):
    """Shared build for every image method; subclasses say which method and how to construct it."""

    method_name: str = ""  # class in multissl.image.methods, built from the recipe's method section

    def make_method(self, cfg, backbone, feat_dim, views):
        """``Method(backbone, feat_dim, views, **method section)``: each parameter is written once, in
        its recipe dataclass (the paper's value as default)."""
        from multissl.image import methods

        return getattr(methods, self.method_name)(backbone, feat_dim, views, **section_kwargs(cfg.method))

    def build_method(self, recipe):
        """Backbone + method from the recipe alone (no images loaded): ``multissl embed`` uses it."""
        cfg = recipe.config
        backbone, feat_dim = build_backbone(cfg.model.backbone, cfg.model.cifar_stem, cfg.model.pretrained,
                                            cfg.data.channels)
        method = self.make_method(cfg, backbone, feat_dim, self.view_configs(cfg))
        if cfg.model.channels_last:
            method.channels_last = True
            method.to(memory_format=torch.channels_last)
        return method

    def view_configs(self, cfg) -> list[ViewConfig]:
        return [cfg.augment.view(0), cfg.augment.view(1)]

    def build(self, recipe) -> TaskParts:
        cfg = recipe.config
        d = cfg.data
        torch.backends.cudnn.benchmark = True  # fixed image sizes: let cuDNN pick the fastest kernels
        train = load_images(d.root, d.train_split, d.image_size, d.channels, d.image_key, d.label_key)
        if d.limit_train:
            keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(d.split_seed))[:d.limit_train]
            keep = keep.sort().values
            train.images, train.labels = train.images[keep], train.labels[keep]
        test = load_images(d.root, d.test_split, d.image_size, d.channels, d.image_key, d.label_key,
                           train.classes) if not d.root.startswith("hf:") else \
            load_images(d.root, d.test_split, d.image_size, d.channels, d.image_key, d.label_key)
        bank_idx, val_idx = val_split(len(train), d.val_fraction, d.split_seed)
        method = self.build_method(recipe)
        e = cfg.eval
        cache: dict[str, torch.Tensor] = {}

        def evaluate(meth) -> dict[str, float]:
            feats = embed_images(meth, train.images, e.embed_batch_size)
            out = frozen_scores((feats[bank_idx.to(feats.device)], train.labels[bank_idx]),
                                (feats[val_idx.to(feats.device)], train.labels[val_idx]), knn_k=e.knn_k,
                                knn_temperature=e.knn_temperature)
            if feats.device.type == "cuda":  # training-time peak, logged beside the accuracy
                out["sys/peak_mem_gib"] = torch.cuda.max_memory_allocated(feats.device) / 2**30
            return out

        def final(meth) -> dict[str, float]:  # the trainer evaluates in full precision
            ftr = embed_images(meth, train.images, e.embed_batch_size)
            fte = embed_images(meth, test.images, e.embed_batch_size)
            dev = ftr.device
            # kNN on test uses every training image as its bank (bank + validation hold-out)
            out = frozen_scores((ftr[bank_idx.to(dev)], train.labels[bank_idx]),
                                (ftr[val_idx.to(dev)], train.labels[val_idx]), (fte, test.labels),
                                test_bank=(ftr, train.labels), knn_k=e.knn_k, knn_temperature=e.knn_temperature,
                                linear=e.linear_probe, optimizer=e.probe_optimizer,
                                weight_decay=e.probe_weight_decay)
            if e.diagnostics:
                n = min(len(test), 5000)
                imgs = test.images[:n].to(dev)
                aug = meth.augments[0]
                with torch.no_grad():
                    a = torch.cat([meth.encode(aug(imgs[s:s + 1024])) for s in range(0, n, 1024)])
                    b = torch.cat([meth.encode(aug(imgs[s:s + 1024])) for s in range(0, n, 1024)])
                out["test/alignment"] = alignment(a.float(), b.float())
                out["test/uniformity"] = uniformity(fte[:n])
                cache["test"], cache["labels"] = fte[:n].cpu(), test.labels[:n]
            return out

        def export(meth, path: Path) -> None:
            from safetensors.torch import save_file

            path.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().contiguous() for k, v in meth.backbone.state_dict().items()}
            save_file(state, str(path / "backbone.safetensors"), metadata={"backbone": cfg.model.backbone})
            if "test" in cache:
                plot_projection(cache["test"], cache["labels"], path.parent / "plots" / "projection.png",
                                f"{recipe.name}: PCA of test features")

        return TaskParts(method, ImageTensorDataset(train.images), collate_fn=batch_collate, evaluate=evaluate,
                         final_evaluate=final, export=export)

    def embed_data(self, recipe, path: str):
        d = recipe.config.data
        split = Path(path).name.split(".")[0]
        root = str(Path(path).parent) if split in ("train", "test", "val") else path
        data = load_images(root, split if split in ("train", "test", "val") else d.test_split, d.image_size,
                           d.channels)
        return ImageTensorDataset(data.images), batch_collate


class SimCLRTask(ImageTask):
    config_class = SimCLRConfig
    description = "SimCLR on images"
    method_name = "SimCLR"


class DCLTask(ImageTask):
    config_class = DCLConfig
    description = "DCL on images"
    method_name = "DCL"


class MoCoV2Task(ImageTask):
    config_class = MoCoConfig
    description = "MoCo v2 on images"
    method_name = "MoCoV2"


class MoCHiTask(ImageTask):
    config_class = MoCHiConfig
    description = "MoCHi (MoCo v2 + hard negative mixing) on images"
    method_name = "MoCHi"


class BYOLTask(ImageTask):
    config_class = BYOLConfig
    description = "BYOL on images"
    method_name = "BYOL"


class BarlowTwinsTask(ImageTask):
    config_class = BarlowConfig
    description = "Barlow Twins on images"
    method_name = "BarlowTwins"


class SwAVTask(ImageTask):
    config_class = SwAVConfig
    description = "SwAV (multi-crop) on images"
    method_name = "SwAV"

    def view_configs(self, cfg) -> list[ViewConfig]:
        a = cfg.augment
        large = [a.view(i) for i in range(2)]
        small = [a.view(i, size=a.small_size, scale=a.small_scale) for i in range(2, 2 + a.num_small)]
        return large + small
