"""Bootstrap intervals (mean, paired, any statistic) and exact first-hit ranks over a whole candidate set."""

import numpy as np
import pytest
import torch

from multissl.eval.bootstrap import (
    bootstrap_mean,
    bootstrap_paired,
    bootstrap_statistic,
    resample_indices,
)
from multissl.eval.metrics import spearman
from multissl.eval.ranks import first_hit_ranks, ranking_summary, reciprocal_ranks
from multissl.eval.retrieval import retrieval_metrics


def test_bootstrap_mean_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    iv = bootstrap_mean(x, n_boot=2000, seed=1)
    half = 1.96 * x.std() / np.sqrt(len(x))  # the interval of a mean of 2,000 normal values
    assert iv.value == pytest.approx(x.mean())
    assert (iv.high - iv.low) / 2 == pytest.approx(half, rel=0.1)
    assert bootstrap_mean(x, seed=1).as_dict() == bootstrap_mean(x, seed=1).as_dict()  # seeded


def test_paired_interval_is_narrower_than_the_unpaired_one():
    rng = np.random.default_rng(0)
    base = rng.normal(size=500)
    a, b = base + 0.1, base + rng.normal(scale=0.1, size=500)  # correlated models, a better by ~0.1
    paired = bootstrap_paired(a, b, seed=0)
    assert paired.excludes_zero() and paired.low > 0
    width_a = bootstrap_mean(a, seed=0)
    assert paired.high - paired.low < 0.2 * (width_a.high - width_a.low)
    same = bootstrap_paired(a, a)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        bootstrap_paired(a, b[:10])


def test_bootstrap_statistic_of_spearman():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    y = x + rng.normal(size=300)
    iv = bootstrap_statistic(lambda i: spearman(x[i], y[i]), 300, n_boot=300)
    assert iv.value == pytest.approx(spearman(x, y)) and iv.low < iv.value < iv.high
    assert resample_indices(5, 3, 0).shape == (3, 5)


def test_first_hit_ranks_agree_with_topk_metrics():
    torch.manual_seed(0)
    q, k = torch.randn(40, 8), torch.randn(300, 8)
    rel = torch.randint(0, 300, (40,))
    ranks = first_hit_ranks(torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1), rel)
    ref = retrieval_metrics(q, k, rel, ks=(1, 5, 10), mrr_cutoff=None, normalize=True)
    got = ranking_summary(ranks)
    for key in ("mrr", "r@1", "r@5", "r@10"):
        assert got[key] == pytest.approx(ref[key], abs=1e-9)
    assert float(reciprocal_ranks(torch.tensor([1.0, 4.0, 2000.0]), cutoff=1000).sum()) == pytest.approx(1.25)
    multi = first_hit_ranks(torch.eye(3), torch.tensor([[0.0, 1, 0], [1.0, 0, 0], [0.5, 0, 0]]),
                            [[1, 2], [0], [2, 0]])
    assert multi.tolist() == [1.0, 1.0, 2.0]  # the best-scored relevant key counts; row 3 ties all: 1 + 2/2
