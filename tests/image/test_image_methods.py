"""Each image method on a tiny backbone: finite loss, gradients, and its hooks (EMA, queue, prototypes)."""

import pytest
import torch

from multissl.core import Progress, after_optimizer_step, before_optimizer_step
from multissl.image.augment import ViewConfig
from multissl.image.methods import BYOL, DCL, BarlowTwins, MoCHi, MoCoV2, SimCLR, SwAV
from multissl.image.models import build_backbone


def _make(kind):
    net, dim = build_backbone("tiny-8")
    views = [ViewConfig(size=16), ViewConfig(size=16, solarize_p=0.2)]
    small = {"proj_hidden": 32, "proj_dim": 16}
    if kind == "simclr":
        return SimCLR(net, dim, views, **small)
    if kind == "dcl":
        return DCL(net, dim, views, **small)
    if kind == "mocov2":
        return MoCoV2(net, dim, views, queue_size=24, momentum=0.9, **small)
    if kind == "mochi":
        return MoCHi(net, dim, views, num_hard=8, num_mixed=6, num_self_mixed=2, queue_size=16, momentum=0.9, **small)
    if kind == "byol":
        return BYOL(net, dim, views, proj_hidden=32, proj_dim=16, pred_hidden=32)
    if kind == "barlowtwins":
        return BarlowTwins(net, dim, views, proj_dims=(32, 32, 32))
    return SwAV(net, dim, views + [ViewConfig(size=8, scale=(0.05, 0.14))] * 2, num_prototypes=10, queue_size=16,
                queue_start_epoch=0, **small)


def _images(n=8):
    return torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8)


@pytest.mark.parametrize("kind", ["simclr", "dcl", "mocov2", "mochi", "byol", "barlowtwins", "swav"])
def test_forward_backward_hooks(kind):
    m = _make(kind)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for step in range(3):
        out = m(_images())
        assert out.loss.dim() == 0 and torch.isfinite(out.loss)
        opt.zero_grad()
        out.loss.backward()
        assert m.backbone.features[0].weight.grad.abs().sum() > 0
        before_optimizer_step(m, Progress(step, 10, 0, 10))
        opt.step()
        after_optimizer_step(m, Progress(step + 1, 10, 0, 10))
    assert m.embed(_images(4)).shape == (4, m.feat_dim)
    if kind in ("mocov2", "mochi"):
        assert int(m.queue.ptr) == 24 % m.queue.size  # 3 steps pushed 8 keys each
        assert not torch.equal(m.key_backbone.features[0].weight, m.backbone.features[0].weight)
    if kind == "byol":
        assert 0.996 < float(m.momentum) < 1.0
        assert not torch.equal(m.target_backbone.features[0].weight, m.backbone.features[0].weight)
    if kind == "swav":
        assert len(m.queues[0]) == 16


def test_swav_freezes_prototypes_in_first_epoch():
    m = _make("swav")
    before = m.prototypes.weight.detach().clone()
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    m(_images()).loss.backward()
    before_optimizer_step(m, Progress(0, 10, 0, 10))
    assert m.prototypes.weight.grad is None
    opt.step()
    assert torch.allclose(m.prototypes.weight, torch.nn.functional.normalize(before, dim=1), atol=1e-6)


def test_mochi_adds_mixed_negatives():
    m = _make("mochi")
    m.queue.push(torch.nn.functional.normalize(torch.randn(16, 16), dim=1))
    q = torch.nn.functional.normalize(torch.randn(4, 16), dim=1)
    blocks = m.negatives(q)
    assert len(blocks) == 2 and blocks[1].shape == (4, 8, 16)
