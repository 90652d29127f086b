"""GradCache: the cached in-batch loss and its gradients equal the plain loss (with and without dropout)."""

import torch
from torch import nn

from multissl.core import info_nce
from multissl.core.gradcache import cached_embeddings, split_batch


def _encoder(dropout: float) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Dropout(dropout), nn.Linear(32, 8))


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


def test_cached_loss_and_gradients_equal_plain_loss():
    x = {"x": torch.randn(24, 12)}
    head = nn.Linear(8, 8)
    model = _encoder(0.0)
    fn = lambda b: model(b["x"])
    plain = info_nce(head(fn(x)), head(fn({"x": x["x"].flip(0)})), temperature=0.05)
    plain.backward()
    g_plain, h_plain = _grads(model), [p.grad.clone() for p in head.parameters()]
    model.zero_grad()
    head.zero_grad()
    z1 = cached_embeddings(fn, split_batch(x, 5))
    z2 = cached_embeddings(fn, split_batch({"x": x["x"].flip(0)}, 7))
    cached = info_nce(head(z1), head(z2), temperature=0.05)
    cached.backward()
    assert torch.allclose(cached, plain, atol=1e-6)
    for a, b in zip(_grads(model), g_plain, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    for a, b in zip([p.grad for p in head.parameters()], h_plain, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_cached_replay_reuses_the_dropout_masks():
    x = {"x": torch.randn(16, 12)}
    model = _encoder(0.3)
    fn = lambda b: model(b["x"])
    # plain reference consumes the RNG in the same order: view 1 chunks, then view 2 chunks
    torch.manual_seed(5)
    chunks = split_batch(x, 4)
    ref = info_nce(torch.cat([fn(c) for c in chunks]), torch.cat([fn(c) for c in chunks]), temperature=0.05)
    ref.backward()
    g_ref = _grads(model)
    model.zero_grad()
    torch.manual_seed(5)
    loss = info_nce(cached_embeddings(fn, chunks), cached_embeddings(fn, chunks), temperature=0.05)
    (0.5 * loss).backward()  # a scaled loss (gradient accumulation) scales the replayed gradients too
    assert torch.allclose(loss, ref, atol=1e-6)
    for a, b in zip(_grads(model), g_ref, strict=True):
        assert torch.allclose(a, 0.5 * b, atol=1e-5)
