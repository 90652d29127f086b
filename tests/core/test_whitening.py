"""Shuffled group whitening: identity covariance per group, permutation undone, gradient switch."""

import torch

from multissl.core.whitening import ShuffledGroupWhitening, group_whiten


def test_group_whitening_gives_identity_group_covariance():
    torch.manual_seed(0)
    x = torch.randn(256, 12) @ torch.randn(12, 12) + 3.0
    perm = torch.randperm(12)
    out = group_whiten(x, num_groups=3, eps=1e-6, permutation=perm)
    g = out[:, perm].reshape(256, 3, 4).transpose(0, 1)  # groups in permuted order
    for block in g:
        cov = block.t() @ block / 256
        assert torch.allclose(cov, torch.eye(4), atol=1e-3)
    assert torch.allclose(out.mean(0), torch.zeros(12), atol=1e-4)


def test_without_shuffle_groups_are_contiguous_and_whitening_is_zca():
    torch.manual_seed(0)
    x = torch.randn(128, 6) @ torch.randn(6, 6)
    out = group_whiten(x, num_groups=1, eps=1e-8)
    xc = x - x.mean(0)
    cov = xc.t() @ xc / 128
    s, u = torch.linalg.eigh(cov)
    assert torch.allclose(out, xc @ (u @ torch.diag(s.rsqrt()) @ u.t()), atol=1e-3)


def test_detach_switch_changes_the_gradient():
    torch.manual_seed(0)
    x = torch.randn(64, 8, requires_grad=True)
    w = torch.randn(8)
    grads = []
    for detach in (False, True):
        sgw = ShuffledGroupWhitening(8, num_groups=2, shuffle=False, detach_whitening=detach)
        x.grad = None
        (sgw(x) @ w).pow(2).sum().backward()
        grads.append(x.grad.clone())
    assert torch.isfinite(grads[0]).all() and not torch.allclose(grads[0], grads[1])
