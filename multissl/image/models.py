"""Image backbones by name: torchvision or timm models (ResNets with the CIFAR stem), plus a tiny CNN.

Names: ``torchvision:resnet18``, ``timm:resnet18``, ``timm:vit_tiny_patch16_224`` (any timm model:
``num_classes=0`` gives pooled features), a bare name (torchvision first, then timm), or ``tiny`` (a
4-layer CNN for CPU tests). ``cifar_stem`` replaces a ResNet's 7x7/2 conv + max-pool with a 3x3/1 conv
and no pooling, the standard stem for 32x32 inputs (SimCLR appendix B.9; solo-learn; lightly).
Weights start from scratch (``pretrained`` needs an online hub or a local cache).
"""

from __future__ import annotations

from torch import nn

from multissl.errors import RecipeError


class TinyCNN(nn.Module):
    """conv-BN-ReLU x4 (widths w, 2w, 4w, 4w; strides 1, 2, 2, 2) + global average pool."""

    def __init__(self, width: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        dims, layers = [in_channels, width, 2 * width, 4 * width, 4 * width], []
        for i, stride in enumerate((1, 2, 2, 2)):
            layers += [nn.Conv2d(dims[i], dims[i + 1], 3, stride, 1, bias=False), nn.BatchNorm2d(dims[i + 1]),
                       nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = dims[-1]

    def forward(self, x):
        return self.features(x)


def _cifar_stem(model: nn.Module, in_channels: int) -> bool:
    conv = getattr(model, "conv1", None)
    if not isinstance(conv, nn.Conv2d) or not hasattr(model, "maxpool"):
        return False
    model.conv1 = nn.Conv2d(in_channels, conv.out_channels, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return True


def build_backbone(name: str, cifar_stem: bool = True, pretrained: bool = False,
                   in_channels: int = 3) -> tuple[nn.Module, int]:
    """A feature extractor (B, C, H, W) -> (B, D) and its width D."""
    lib, _, arch = name.rpartition(":")
    if arch.startswith("tiny"):
        width = int(arch.split("-")[1]) if "-" in arch else 32
        net = TinyCNN(width, in_channels)
        return net, net.num_features
    if lib not in ("", "torchvision", "timm"):
        raise RecipeError(f"model.backbone '{name}': prefix must be 'torchvision:' or 'timm:'")
    if lib in ("", "torchvision"):
        import torchvision

        ctor = getattr(torchvision.models, arch, None)
        if ctor is not None and callable(ctor):
            net = ctor(weights="DEFAULT" if pretrained else None)
            head = getattr(net, "fc", None)
            if not isinstance(head, nn.Linear):
                raise RecipeError(f"torchvision model '{arch}' has no .fc head; use its timm name ('timm:{arch}')")
            dim = head.in_features
            net.fc = nn.Identity()
            if in_channels != 3 or cifar_stem:
                if cifar_stem:
                    _cifar_stem(net, in_channels)
                elif isinstance(net.conv1, nn.Conv2d):  # pragma: no cover - rare
                    c = net.conv1
                    net.conv1 = nn.Conv2d(in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, bias=False)
            return net, dim
        if lib == "torchvision":
            raise RecipeError(f"torchvision has no model '{arch}'")
    import timm

    try:
        net = timm.create_model(arch, pretrained=pretrained, num_classes=0, in_chans=in_channels)
    except RuntimeError as exc:
        raise RecipeError(f"timm cannot build '{arch}': {exc}") from None
    if cifar_stem:
        _cifar_stem(net, in_channels)
    return net, int(net.num_features)
