"""Backbones by name: torchvision / timm ResNet-18 with the CIFAR stem, and the tiny test CNN."""

import pytest
import torch
from torch import nn

from multissl.errors import RecipeError
from multissl.image.models import build_backbone


@pytest.mark.parametrize("name", ["torchvision:resnet18", "timm:resnet18"])
def test_resnet18_cifar_stem(name):
    net, dim = build_backbone(name, cifar_stem=True)
    assert dim == 512
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, nn.Identity)
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 512)


def test_tiny_and_errors():
    net, dim = build_backbone("tiny-8")
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, dim)
    with pytest.raises(RecipeError):
        build_backbone("torchvision:not_a_model")
    with pytest.raises(RecipeError):
        build_backbone("keras:resnet18")
