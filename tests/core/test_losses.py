"""Each loss against a direct formula, a peer implementation, and gradcheck on small doubles."""

import math

import pytest
import torch
import torch.nn.functional as F

from multissl.core import (
    barlow_twins,
    chamfer_distance,
    dcl,
    info_nce,
    koleo,
    mix_hard_negatives,
    nt_xent,
    scaled_cosine_error,
    sinkhorn_knopp,
    vicreg,
)


def _direct_info_nce(q, k, t, extra=None):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    cols = k if extra is None else torch.cat([k, F.normalize(extra, dim=1)])
    losses = []
    for i in range(q.shape[0]):
        s = [math.exp(float(q[i] @ c) / t) for c in cols]
        losses.append(-math.log(s[i] / sum(s)))
    return sum(losses) / len(losses)


def test_info_nce_matches_direct_formula_with_queue():
    q, k, queue = torch.randn(6, 8), torch.randn(6, 8), torch.randn(10, 8)
    assert info_nce(q, k, temperature=0.2).item() == pytest.approx(_direct_info_nce(q, k, 0.2), rel=1e-5)
    got = info_nce(q, k, temperature=0.2, extra_keys=queue).item()
    assert got == pytest.approx(_direct_info_nce(q, k, 0.2, queue), rel=1e-5)


def test_info_nce_equals_cross_entropy_on_explicit_logits():
    q, k = F.normalize(torch.randn(5, 4), dim=1), F.normalize(torch.randn(5, 4), dim=1)
    logits = q @ k.t() / 0.07
    assert info_nce(q, k, temperature=0.07).item() == pytest.approx(F.cross_entropy(logits, torch.arange(5)).item(),
                                                                   rel=1e-6)


def test_info_nce_is_stable_at_tiny_temperature():
    q = torch.randn(4, 8) * 100
    loss = info_nce(q, q + 0.01, temperature=1e-4)
    assert torch.isfinite(loss)


def test_info_nce_symmetric_matches_open_clip_clip_loss():
    open_clip = pytest.importorskip("open_clip")
    img, txt = torch.randn(7, 16), torch.randn(7, 16)
    scale = torch.tensor(1 / 0.07)
    ours = info_nce(img, txt, temperature=1 / scale, symmetric=True)
    peer = open_clip.ClipLoss()(F.normalize(img, dim=1), F.normalize(txt, dim=1), scale)
    assert ours.item() == pytest.approx(peer.item(), rel=1e-5)


def test_info_nce_multi_positive_and_soft_targets():
    q, k = torch.randn(4, 6), torch.randn(4, 6)
    pos = torch.eye(4, dtype=torch.bool)
    pos[0, 1] = True
    logp = F.log_softmax(F.normalize(q, dim=1) @ F.normalize(k, dim=1).t() / 0.1, dim=1)
    expected = -(0.5 * (logp[0, 0] + logp[0, 1]) + logp[1, 1] + logp[2, 2] + logp[3, 3]) / 4
    assert info_nce(q, k, temperature=0.1, positive_mask=pos).item() == pytest.approx(expected.item(), rel=1e-5)
    soft = torch.softmax(torch.randn(4, 4), dim=1)
    mixed = 0.6 * torch.eye(4) + 0.4 * soft
    expected = -(mixed * logp).sum(1).mean()
    got = info_nce(q, k, temperature=0.1, soft_targets=soft, soft_weight=0.4)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_info_nce_same_id_false_negatives_are_removed():
    q, k = torch.randn(4, 6), torch.randn(4, 6)
    ids = torch.tensor([0, 0, 1, 2])  # rows 0 and 1 share a participant
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).t() / 0.1
    logits[0, 1] = logits[1, 0] = float("-inf")
    expected = F.cross_entropy(logits, torch.arange(4))
    got = info_nce(q, k, temperature=0.1, query_ids=ids, key_ids=ids)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_info_nce_learnable_temperature_gets_gradient():
    t = torch.tensor(0.1, requires_grad=True)
    info_nce(torch.randn(4, 3), torch.randn(4, 3), temperature=t).backward()
    assert t.grad is not None and t.grad != 0


def test_info_nce_per_row_extra_keys():
    q, k, extra = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 4, 5)
    qn, kn, en = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(extra, dim=2)
    logits = torch.cat([qn @ kn.t(), torch.einsum("bd,bkd->bk", qn, en)], 1) / 0.2
    assert info_nce(q, k, temperature=0.2, extra_keys=extra).item() == pytest.approx(
        F.cross_entropy(logits, torch.arange(3)).item(), rel=1e-5)


def test_gradcheck_info_nce_and_friends():
    q = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    k = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    queue = torch.randn(5, 3, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda a, b: info_nce(a, b, temperature=0.3, extra_keys=queue, symmetric=False),
                                    (q, k))
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.5), (q, k))
    assert torch.autograd.gradcheck(lambda a, b: dcl(a, b, 0.5), (q, k))
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins(a, b, 5e-3), (q, k))
    assert torch.autograd.gradcheck(lambda a, b: vicreg(a, b), (q, k))
    assert torch.autograd.gradcheck(lambda a, b: scaled_cosine_error(a, b, 3.0), (q, k))
    x = torch.randn(2, 5, 3, dtype=torch.double, requires_grad=True)
    y = torch.randn(2, 4, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: chamfer_distance(a, b, "l2"), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: chamfer_distance(a, b, "l1"), (x, y))


def test_nt_xent_direct():
    z1, z2 = torch.randn(3, 4), torch.randn(3, 4)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / 0.5
    total = 0.0
    for i in range(6):
        j = (i + 3) % 6
        denom = sum(math.exp(sim[i, m]) for m in range(6) if m != i)
        total += -math.log(math.exp(sim[i, j]) / denom)
    assert nt_xent(z1, z2, 0.5).item() == pytest.approx(total / 6, rel=1e-5)


def test_dcl_removes_positive_from_denominator():
    z1, z2 = torch.randn(3, 4), torch.randn(3, 4)
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    total = 0.0
    for x, y in ((a, b), (b, a)):
        for i in range(3):
            neg = [math.exp(float(x[i] @ y[m]) / 0.1) for m in range(3) if m != i]
            neg += [math.exp(float(x[i] @ x[m]) / 0.1) for m in range(3) if m != i]
            total += -float(x[i] @ y[i]) / 0.1 + math.log(sum(neg))
    assert dcl(z1, z2, 0.1).item() == pytest.approx(total / 6, rel=1e-5)


def test_barlow_twins_direct():
    z1, z2 = torch.randn(8, 3), torch.randn(8, 3)
    n1 = (z1 - z1.mean(0)) / z1.std(0, unbiased=False)
    n2 = (z2 - z2.mean(0)) / z2.std(0, unbiased=False)
    c = n1.t() @ n2 / 8
    expected = sum((c[i, i] - 1) ** 2 for i in range(3)) + 5e-3 * sum(c[i, j] ** 2 for i in range(3) for j in range(3)
                                                                      if i != j)
    assert barlow_twins(z1, z2, 5e-3).item() == pytest.approx(float(expected), rel=1e-5)


def test_vicreg_terms():
    z = torch.randn(16, 4)
    assert vicreg(z, z, sim_weight=1, var_weight=0, cov_weight=0).item() == pytest.approx(0.0, abs=1e-7)
    const = torch.zeros(16, 4)  # collapsed: variance hinge = gamma for every dim
    assert vicreg(const, const, 0, 1, 0).item() == pytest.approx(2 * (1 - math.sqrt(1e-4)), rel=1e-4)


def test_koleo_direct_and_prefers_spread():
    x = F.normalize(torch.randn(10, 5), dim=1)
    d = torch.cdist(x, x) + torch.eye(10) * 10
    expected = -torch.log(d.min(1).values + 1e-8).mean()
    assert koleo(x).item() == pytest.approx(expected.item(), rel=1e-4)
    clumped = F.normalize(torch.randn(1, 5) + 0.01 * torch.randn(10, 5), dim=1)
    assert koleo(clumped) > koleo(x)


def test_scaled_cosine_error_direct():
    x, y = torch.randn(5, 4), torch.randn(5, 4)
    cos = F.cosine_similarity(x, y)
    assert scaled_cosine_error(x, y, 2.0).item() == pytest.approx(((1 - cos) ** 2).mean().item(), rel=1e-5)


def test_chamfer_brute_force():
    x, y = torch.randn(2, 6, 3), torch.randn(2, 4, 3)
    d = ((x[:, :, None] - y[:, None]) ** 2).sum(-1)
    l2 = d.min(2).values.mean() + d.min(1).values.mean()
    l1 = 0.5 * (d.min(2).values.sqrt().mean() + d.min(1).values.sqrt().mean())
    assert chamfer_distance(x, y, "l2").item() == pytest.approx(l2.item(), rel=1e-5)
    assert chamfer_distance(x, y, "l1").item() == pytest.approx(l1.item(), rel=1e-5)


def test_mochi_mixes_only_hard_negatives():
    q = F.normalize(torch.randn(2, 8), dim=1)
    queue = F.normalize(torch.randn(50, 8), dim=1)
    mixed = mix_hard_negatives(q, queue, num_hard=5, num_mixed=7, num_self_mixed=3)
    assert mixed.shape == (2, 10, 8)
    assert torch.allclose(mixed.norm(dim=-1), torch.ones(2, 10), atol=1e-5)
    # a synthetic negative lies in the span of the query's 5 hardest negatives
    hard = queue[(q[0] @ queue.t()).topk(5).indices]
    sol = torch.linalg.lstsq(hard.t(), mixed[0, 0][:, None]).solution
    assert torch.allclose(hard.t() @ sol, mixed[0, 0][:, None], atol=1e-4)
    # self-mixed ones are closer to the query than a random hard negative on average
    assert (mixed[:, 7:] @ q[:, :, None]).mean() > (mixed[:, :7] @ q[:, :, None]).mean() - 1e-6


def test_sinkhorn_balances_assignments():
    scores = torch.rand(64, 8) * 2 - 1  # cosine scores, as SwAV feeds it
    q = sinkhorn_knopp(scores, epsilon=0.05, iterations=50)
    assert torch.allclose(q.sum(1), torch.ones(64), atol=1e-4)
    assert torch.allclose(q.sum(0), torch.full((8,), 64 / 8), rtol=0.05)


def test_info_nce_masks_queue_keys_of_the_same_id():
    q, k, queue = torch.randn(3, 4), torch.randn(3, 4), torch.randn(5, 4)
    ids, queue_ids = torch.tensor([0, 1, 2]), torch.tensor([1, 7, 7, 0, 9])
    qn, kn, en = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    logits = torch.cat([qn @ kn.t(), qn @ en.t()], 1) / 0.1
    logits[0, 3 + 3] = logits[1, 3 + 0] = float("-inf")
    got = info_nce(q, k, temperature=0.1, extra_keys=queue, query_ids=ids, key_ids=ids, extra_key_ids=queue_ids)
    assert got.item() == pytest.approx(F.cross_entropy(logits, torch.arange(3)).item(), rel=1e-5)


def test_info_nce_queue_only_is_moco_reference_logits():
    """MoCo's builder: logits = [q.k+ | q.queue] / T, label 0; the other in-batch keys are not negatives."""
    q, k, queue = torch.randn(6, 8), torch.randn(6, 8), torch.randn(10, 8)
    qn, kn, Qn = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    logits = torch.cat([(qn * kn).sum(1, keepdim=True), qn @ Qn.t()], 1) / 0.2
    ref = F.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    got = info_nce(q, k, temperature=0.2, extra_keys=queue, in_batch_negatives=False)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)
    assert info_nce(q, k, temperature=0.2, extra_keys=queue).item() > got.item()  # in-batch adds negatives
    with pytest.raises(ValueError, match="symmetric"):
        info_nce(q, k, extra_keys=queue, in_batch_negatives=False, symmetric=True)


def test_info_nce_symmetric_honours_masks_and_refuses_extra_keys():
    """Defect 3: the reverse direction used to drop positive_mask / false_negative_mask."""
    torch.manual_seed(0)
    q, k = torch.randn(5, 6), torch.randn(5, 6)
    pos = torch.eye(5, dtype=torch.bool)
    pos[0, 1] = True
    drop = torch.zeros(5, 5, dtype=torch.bool)
    drop[2, 4] = drop[3, 0] = True
    for kw, rev in (({"positive_mask": pos}, {"positive_mask": pos.t()}),
                    ({"false_negative_mask": drop}, {"false_negative_mask": drop.t()})):
        both = info_nce(q, k, temperature=0.3, symmetric=True, **kw)
        ref = 0.5 * (info_nce(q, k, temperature=0.3, **kw) + info_nce(k, q, temperature=0.3, **rev))
        assert both.item() == pytest.approx(ref.item(), rel=1e-6)
        plain = info_nce(q, k, temperature=0.3, symmetric=True)
        assert both.item() != pytest.approx(plain.item(), rel=1e-4)  # the masks change both directions
    with pytest.raises(ValueError, match="extra_keys"):
        info_nce(q, k, extra_keys=torch.randn(3, 6), symmetric=True)
