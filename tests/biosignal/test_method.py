"""Same-participant masking, EMA at its named timing (before the next forward), KoLeo, probes and AUC."""

import torch
import torch.nn.functional as F

from multissl.biosignal.augment import AugmentConfig
from multissl.biosignal.methods import ParticipantContrastive
from multissl.biosignal.models import EfficientNet1d, EncoderConfig
from multissl.biosignal.probes import participant_mean, probe_scores
from multissl.core import Progress, after_optimizer_step, before_optimizer_step, info_nce
from multissl.eval.roc import roc_auc

TINY = EncoderConfig(stem_channels=8, channels=[8, 16], depths=[1, 1], strides=[1, 2], kernels=[3, 3],
                     expand_ratio=2, head_channels=32, embed_dim=16)
NO_AUG = AugmentConfig(cutout_p=0, magnitude_warp_p=0, noise_p=0, time_warp_p=0, channel_permute_p=0)


def test_same_participant_columns_leave_the_denominator():
    torch.manual_seed(0)
    q, k = torch.randn(6, 8), torch.randn(6, 8)
    pid = torch.tensor([0, 0, 1, 2, 2, 2])
    loss = info_nce(q, k, temperature=0.5, query_ids=pid, key_ids=pid)
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).t() / 0.5
    manual = 0.0
    for i in range(6):
        keep = (pid != pid[i]) | (torch.arange(6) == i)  # other participants + own positive
        manual += -(logits[i, i] - torch.logsumexp(logits[i][keep], 0))
    assert torch.allclose(loss, manual / 6, atol=1e-5)
    assert loss < info_nce(q, k, temperature=0.5)  # masking removes same-person negatives


def test_method_masks_same_participant_and_updates_ema_before_the_next_forward():
    torch.manual_seed(0)
    method = ParticipantContrastive(EfficientNet1d(1, TINY), [16, 8], NO_AUG, momentum=0.9)
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(0.1)  # online != momentum copy
    before = [p.clone() for p in method.momentum_encoder.parameters()]
    online = [p.clone() for p in method.encoder.parameters()]
    batch = {"a": torch.randn(8, 1, 64), "b": torch.randn(8, 1, 64), "pid": torch.tensor([0, 0, 1, 1, 2, 3, 4, 5])}
    method.train()
    out = method(batch)
    assert all(torch.equal(t, b) for t, b in zip(method.momentum_encoder.parameters(), before, strict=True))
    before_optimizer_step(method, Progress(0, 10, 0, 10))  # the paper's timing: not before the optimizer step
    assert all(torch.equal(t, b) for t, b in zip(method.momentum_encoder.parameters(), before, strict=True))
    after_optimizer_step(method, Progress(1, 10, 0, 10))  # ... but after it, i.e. before the next forward
    for t, b, o in zip(method.momentum_encoder.parameters(), before, online, strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * o, atol=1e-6)
    assert torch.isfinite(out.loss) and "koleo" in out.logs
    out.loss.backward()
    assert all(p.grad is None for p in method.momentum_encoder.parameters())
    # masking changes the loss when a batch holds one participant twice
    method.eval()
    masked = method(batch).loss
    method.mask_same_participant = False
    assert not torch.allclose(masked, method(batch).loss)


def test_ema_in_before_step_when_asked():
    method = ParticipantContrastive(EfficientNet1d(1, TINY), [16, 8], NO_AUG, momentum=0.5, ema_in_forward=False)
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in method.momentum_encoder.parameters()]
    method.train()
    method({"a": torch.randn(4, 1, 64), "b": torch.randn(4, 1, 64), "pid": torch.arange(4)})
    assert all(torch.equal(a, b) for a, b in zip(before, method.momentum_encoder.parameters(), strict=True))
    before_optimizer_step(method, Progress(0, 10, 0, 10))
    assert not all(torch.equal(a, b) for a, b in zip(before, method.momentum_encoder.parameters(), strict=True))


def test_participant_mean_and_probes():
    x = torch.tensor([[1.0], [3.0], [float("nan")], [5.0]])
    assert participant_mean(x, torch.tensor([0, 0, 1, 1]), 2).flatten().tolist() == [2.0, 5.0]
    torch.manual_seed(0)
    f = torch.randn(300, 5)
    y = f[:, 0] * 3 + 0.1 * torch.randn(300)
    res = probe_scores((f[:200], y[:200]), (f[200:250], y[200:250]), (f[250:], y[250:]), "regression",
                       (0.1, 1.0), (0.01,))
    assert res["test/r"] > 0.95
    yb = (f[:, 1] > 0).float()
    res = probe_scores((f[:200], yb[:200]), (f[200:250], yb[200:250]), (f[250:], yb[250:]), "binary", (1.0,), (0.01,))
    assert res["test/auc"] > 0.95


def test_roc_auc_matches_sklearn():
    import pytest

    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score

    torch.manual_seed(0)
    s = torch.randint(0, 5, (200,)).float()  # many ties
    y = (torch.rand(200) < 0.3).long()
    assert abs(roc_auc(s, y) - roc_auc_score(y.numpy(), s.numpy())) < 1e-12
