"""frozen_scores: the shared kNN / linear-probe evaluation of frozen features."""

import torch

from multissl.eval import frozen_scores, knn_accuracy, linear_probe


def test_frozen_scores_equal_the_probes_it_wraps():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 3

    def split(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return centres[y] + torch.randn(n, 8, generator=g), y

    tr, va, te = split(90), split(30), split(30)
    out = frozen_scores(tr, va, te, knn_k=5, knn_temperature=0.1)
    assert out["val/knn_acc"] == knn_accuracy(tr[0], tr[1], va[0], va[1], 5, 0.1)
    assert out["test/knn_acc"] == knn_accuracy(tr[0], tr[1], te[0], te[1], 5, 0.1)
    probe = linear_probe(tr[0], tr[1], te[0], te[1], va[0], va[1])
    assert out["val/linear_acc"] == probe.best_val and out["test/linear_acc"] == probe.last_test
    assert out["test/knn_acc"] > 0.8  # separable clusters: not a vacuous check
    assert set(frozen_scores(tr, va, knn_k=5)) == {"val/knn_acc"}  # validation only: no test keys
