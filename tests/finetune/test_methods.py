"""Loss semantics: duplicates leave the denominator, SupCon equals Khosla et al.'s formula, GradCache equals
the plain pass (loss and every gradient), hard negatives enter every row's denominator."""

import math

import pytest
import torch
import torch.nn.functional as F

from multissl.encoders.hf import HFEncoder
from multissl.finetune.methods import PairsContrastive, SupCon
from multissl.finetune.views import LabelledCollate, PairsCollate


class Table(torch.nn.Module):
    """A lookup-table 'encoder': inputs = {'idx': (B,)} -> fixed vectors (exact loss checks)."""

    def __init__(self, vectors: torch.Tensor) -> None:
        super().__init__()
        self.vectors = torch.nn.Parameter(vectors.clone())
        self.hidden_size = vectors.shape[1]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.vectors[idx]


def _ids(values):
    return torch.tensor(values)


def test_duplicate_positive_is_not_a_negative():
    torch.manual_seed(0)
    v = torch.randn(6, 8)
    method = PairsContrastive(Table(v), temperature=0.1)
    # rows 0 and 1 share the positive text (ids equal): column 1 must leave row 0's denominator
    batch = {"anchor": {"idx": _ids([0, 1, 2])}, "positive": {"idx": _ids([3, 3, 4])},
             "anchor_id": _ids([10, 11, 12]), "positive_id": _ids([20, 20, 21])}
    loss = method(batch).loss
    a, p = F.normalize(v[[0, 1, 2]], dim=-1), F.normalize(v[[3, 3, 4]], dim=-1)
    logits = a @ p.t() / 0.1
    rows = []
    for i, keep in enumerate([[0, 2], [1, 2], [0, 1, 2]]):
        target = keep.index(i)
        rows.append(-F.log_softmax(logits[i, keep], 0)[target])
    assert torch.allclose(loss, torch.stack(rows).mean(), atol=1e-6)
    method.mask_duplicates = False
    assert method(batch).loss > loss  # the duplicate was counted as a (perfect) negative


def test_hard_negatives_are_shared_columns_and_masked_when_equal_to_a_positive():
    torch.manual_seed(0)
    v = torch.randn(8, 8)
    method = PairsContrastive(Table(v), temperature=0.05)
    batch = {"anchor": {"idx": _ids([0, 1])}, "positive": {"idx": _ids([2, 3])}, "negative": {"idx": _ids([4, 3])},
             "anchor_id": _ids([0, 1]), "positive_id": _ids([2, 3]), "negative_id": _ids([4, 3])}
    loss = method(batch).loss
    a, cols = F.normalize(v[[0, 1]], dim=-1), F.normalize(v[[2, 3, 4, 3]], dim=-1)
    logits = a @ cols.t() / 0.05
    # row 0: columns p0, p1, n(4), n(=p1 text: kept for row 0); row 1: n(=its own positive) dropped
    r0 = -F.log_softmax(logits[0], 0)[0]
    r1 = -F.log_softmax(logits[1, [0, 1, 2]], 0)[1]
    assert torch.allclose(loss, (r0 + r1) / 2, atol=1e-5)


def supcon_reference(z: torch.Tensor, labels: torch.Tensor, t: float) -> torch.Tensor:
    """Khosla et al. (2020) eq. 2 (L_out), written out with loops."""
    z = F.normalize(z, dim=-1)
    n, total = z.shape[0], 0.0
    for i in range(n):
        others = [a for a in range(n) if a != i]
        denom = torch.logsumexp(torch.stack([z[i] @ z[a] / t for a in others]), 0)
        pos = [p for p in others if labels[p] == labels[i]]
        total = total + sum(-(z[i] @ z[p] / t - denom) for p in pos) / len(pos)
    return total / n


def test_supcon_equals_the_paper_formula():
    torch.manual_seed(0)
    v = torch.randn(10, 6)
    method = SupCon(Table(v), temperature=0.1)
    labels = torch.tensor([0, 1, 0, 2, 1])
    batch = {"views": [{"idx": torch.arange(5)}, {"idx": torch.arange(5, 10)}], "labels": labels}
    ref = supcon_reference(v, labels.repeat(2), 0.1)
    assert torch.allclose(method(batch).loss, ref, atol=1e-5)


@pytest.mark.parametrize("kind", ["pairs", "supcon"])
def test_gradcache_equals_plain_loss_and_gradients(tiny_text, kind):
    from transformers import AutoModel

    torch.manual_seed(0)
    texts = ["a man plays a guitar", "two dogs run", "a woman is cooking", "the stock fell",
             "a cat sleeps on a sofa", "rain in the city", "children play football", "a plane takes off"]
    results = []
    for chunk in (0, 3):
        torch.manual_seed(1)
        model = AutoModel.from_pretrained(tiny_text, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        enc = HFEncoder(tiny_text, pooling="mean", max_length=32, model=model)
        if kind == "pairs":
            method = PairsContrastive(enc, head="mlp", temperature=0.05, gradcache_chunk=chunk, symmetric=True,
                                      learnable_temperature=True)
            rows = [{"anchor": a, "positive": p, "negatives": [n], "group": None}
                    for a, p, n in zip(texts, texts[1:] + texts[:1], texts[2:] + texts[:2], strict=True)]
            batch = PairsCollate(enc.tokenize)(rows)
        else:
            method = SupCon(enc, head="mlp", head_dim=16, temperature=0.1, gradcache_chunk=chunk)
            batch = LabelledCollate(enc.tokenize)([(t, i % 3) for i, t in enumerate(texts)])
        method.train()  # dropout off (chunking changes which mask each row draws); the replay path runs
        torch.manual_seed(2)
        loss = method(batch).loss
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}))
    (l0, g0), (l1, g1) = results
    assert torch.allclose(l0, l1, atol=1e-5)
    assert g0.keys() == g1.keys() and len(g0) > 10
    for name in g0:
        assert torch.allclose(g0[name], g1[name], atol=1e-5, rtol=1e-4), name


def test_learnable_temperature_moves_and_is_clamped():
    torch.manual_seed(0)
    method = PairsContrastive(Table(torch.randn(4, 4)), temperature=0.05, learnable_temperature=True)
    batch = {"anchor": {"idx": _ids([0, 1])}, "positive": {"idx": _ids([2, 3])},
             "anchor_id": _ids([0, 1]), "positive_id": _ids([2, 3])}
    method(batch).loss.backward()
    assert method.temperature.value.grad is not None and method.temperature.value.grad.abs() > 0
    with torch.no_grad():
        method.temperature.value.fill_(math.log(1 / 1e-6))
    method.after_step(None)
    assert float(method.temperature().detach()) == pytest.approx(1e-3)
