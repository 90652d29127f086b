"""Evaluation core against scipy / scikit-learn on random data."""

import numpy as np
import pytest
import torch
from scipy import stats

from multissl.eval import (
    accuracy, alignment, knn_accuracy, knn_predict, linear_probe, logistic_regression, mrr, pearson, ridge_fit,
    ridge_probe, retrieval_metrics, spearman, topk_retrieval, uniformity,
)

sklearn = pytest.importorskip("sklearn")


def test_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 200).astype(float)
    y = x + rng.normal(size=200)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-9)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, rel=1e-9)


def test_accuracy_and_mrr():
    assert accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])) == 0.5
    assert mrr(torch.tensor([1, 2, 0, 4])) == pytest.approx((1 + 0.5 + 0 + 0.25) / 4)
    assert mrr(torch.tensor([1, 2000]), cutoff=1000) == pytest.approx(0.5)


def test_retrieval_metrics_match_sklearn_and_brute_force():
    from sklearn.metrics import ndcg_score

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(30, 8, generator=g), torch.randn(100, 8, generator=g)
    relevant = [torch.randperm(100, generator=g)[: 1 + i % 3].tolist() for i in range(30)]
    out = retrieval_metrics(q, k, relevant, ks=(1, 5, 10), batch_size=7)
    sims = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(k, dim=1).t()
    order = sims.argsort(1, descending=True)
    first, hit5, rec10 = [], [], []
    truth = np.zeros((30, 100))
    for i, rel in enumerate(relevant):
        ranks = [int((order[i] == r).nonzero()) + 1 for r in rel]
        first.append(min(ranks))
        hit5.append(min(ranks) <= 5)
        rec10.append(sum(r <= 10 for r in ranks) / len(rel))
        truth[i, rel] = 1
    assert out["mrr"] == pytest.approx(np.mean([1 / r for r in first]), rel=1e-6)
    assert out["r@5"] == pytest.approx(np.mean(hit5))
    assert out["recall@10"] == pytest.approx(np.mean(rec10))
    assert out["ndcg@10"] == pytest.approx(ndcg_score(truth, sims.numpy(), k=10), rel=1e-5)


def test_topk_excludes_given_items():
    q, k = torch.randn(3, 4), torch.randn(10, 4)
    indptr, indices = torch.tensor([0, 2, 2, 5]), torch.tensor([1, 2, 0, 3, 4])
    _, idx = topk_retrieval(q, k, 10 - 3, exclude=(indptr, indices), batch_size=2)
    assert not set(idx[0].tolist()) & {1, 2} and not set(idx[2].tolist()) & {0, 3, 4}
    assert len(set(idx[1].tolist())) == 7


def test_weighted_knn_matches_manual_vote():
    g = torch.Generator().manual_seed(1)
    tx, ty, ex = torch.randn(50, 6, generator=g), torch.randint(0, 3, (50,), generator=g), torch.randn(5, 6, generator=g)
    scores = knn_predict(tx, ty, ex, 3, k=7, temperature=0.1)
    txn, exn = torch.nn.functional.normalize(tx, dim=1), torch.nn.functional.normalize(ex, dim=1)
    for i in range(5):
        s = exn[i] @ txn.t()
        top = s.topk(7)
        votes = torch.zeros(3)
        for v, j in zip(top.values, top.indices, strict=True):
            votes[ty[j]] += torch.exp(v / 0.1)
        assert torch.allclose(scores[i], votes, rtol=1e-5)


def test_knn_on_separable_data():
    x = torch.cat([torch.randn(40, 4) + 5, torch.randn(40, 4) - 5])
    y = torch.cat([torch.zeros(40), torch.ones(40)]).long()
    assert knn_accuracy(x, y, x, y, k=5) == 1.0


def test_logistic_regression_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=300) > 0).astype(int) + (x[:, 2] > 1)
    xs = (x - x.mean(0)) / x.std(0, ddof=1)
    c = 1.0
    ref = LogisticRegression(C=c, max_iter=2000, tol=1e-10).fit(xs, y)
    predict = logistic_regression(torch.tensor(x).float(), torch.tensor(y), weight_decay=1 / (c * 300))
    ours = torch.softmax(predict(torch.tensor(x).float()), 1).numpy()
    assert np.abs(ours - ref.predict_proba(xs)).max() < 2e-3


def test_linear_probe_reports_best_val_epoch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g)
    y = (x[:, 0] > 0).long()
    res = linear_probe(x[:100], y[:100], x[150:], y[150:], x[100:150], y[100:150], optimizer="adam", epochs=50,
                       lr=0.05)
    assert res.best_val_test == res.history[res.best_epoch]["test"] and res.last_test > 0.9
    assert linear_probe(x[:100], y[:100], x[150:], y[150:]).last_test > 0.9


def test_ridge_matches_sklearn():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 6)), rng.normal(size=100)
    xs = (x - x.mean(0)) / x.std(0, ddof=1)
    ref = Ridge(alpha=3.0).fit(xs, y)
    m = ridge_fit(torch.tensor(x), torch.tensor(y), alpha=3.0)
    assert np.allclose(m.predict(torch.tensor(x)).numpy(), ref.predict(xs), atol=1e-8)
    model, alpha = ridge_probe(torch.tensor(x[:70]), torch.tensor(y[:70]), torch.tensor(x[70:]), torch.tensor(y[70:]))
    assert alpha in (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def test_alignment_uniformity_formulas():
    x = torch.nn.functional.normalize(torch.randn(20, 3), dim=1)
    y = torch.nn.functional.normalize(torch.randn(20, 3), dim=1)
    assert alignment(x, x) == pytest.approx(0.0, abs=1e-7)
    assert alignment(x, y) == pytest.approx(((x - y).norm(dim=1) ** 2).mean().item(), rel=1e-5)
    d = torch.cdist(x, x) ** 2
    iu = torch.triu_indices(20, 20, 1)
    assert uniformity(x) == pytest.approx(torch.log(torch.exp(-2 * d[iu[0], iu[1]]).mean()).item(), rel=1e-4)
