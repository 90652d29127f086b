"""Graph adapter: loaders, negative sampling, propagation, noise, ranking metrics (fast, no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")

from multissl.graph.data import (
    holdout,
    load_interactions,
    load_node_graph,
    pair_keys,
    preprocess,
    sample_negatives,
)
from multissl.graph.models import normalized_adjacency, propagate, symmetric_spmm
from multissl.graph.ranking import full_ranking, popularity_scores


def test_cora_public_split():
    g = load_node_graph("planetoid", "cora")
    assert g.x.shape == (2708, 1433) and g.num_classes == 7
    assert (int(g.train_mask.sum()), int(g.val_mask.sum()), int(g.test_mask.sum())) == (140, 500, 1000)
    p = preprocess(g)
    assert torch.allclose(p.x.sum(1)[p.x.sum(1) > 0], torch.ones(1))  # row-normalised
    loops = p.edge_index[0] == p.edge_index[1]
    assert int(loops.sum()) == 2708  # exactly one self-loop per node
    keys = p.edge_index[0] * 2708 + p.edge_index[1]
    assert keys.unique().numel() == keys.numel()


def test_edge_list_and_pt_loaders(tmp_path):
    x = np.random.default_rng(0).random((6, 3)).astype(np.float32)
    np.save(tmp_path / "features.npy", x)
    (tmp_path / "edges.txt").write_text("0 1\n1 2\n2 3\n4 5\n")
    (tmp_path / "labels.txt").write_text("0\n0\n1\n1\n2\n2\n")
    g = load_node_graph(str(tmp_path), fractions=(0.5, 0.25, 0.25))
    assert g.x.shape == (6, 3) and g.edge_index.shape == (2, 4) and g.y.tolist() == [0, 0, 1, 1, 2, 2]
    assert int(g.train_mask.sum() + g.val_mask.sum() + g.test_mask.sum()) == 6
    from torch_geometric.data import Data

    torch.save(Data(x=torch.from_numpy(x), edge_index=g.edge_index, y=g.y), tmp_path / "g.pt")
    h = load_node_graph(str(tmp_path / "g.pt"))
    assert torch.equal(h.edge_index, g.edge_index) and h.num_nodes == 6


def test_interaction_formats_and_holdout(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2 3\n1 0 2\n2 3\n")
    (tmp_path / "test.txt").write_text("0 0\n1 3\n")
    d = load_interactions(str(tmp_path), val_fraction=0.0)
    assert (d.num_users, d.num_items, len(d.train), len(d.test)) == (3, 4, 6, 2)
    (tmp_path / "pairs.tsv").write_text("0\t1\t5\n0\t2\t3\n1\t0\t4\n")  # user item rating
    p = load_interactions(str(tmp_path / "pairs.tsv"), test_path=str(tmp_path / "test.txt"), val_fraction=0.0)
    assert p.train.tolist() == [[0, 1], [0, 2], [1, 0]]
    pairs = torch.stack([torch.arange(1000) % 50, torch.arange(1000) // 50], 1)
    tr, va = holdout(pairs, 0.1, seed=0)
    assert len(tr) + len(va) == 1000 and len(va) == 100
    assert torch.bincount(tr[:, 0], minlength=50).min() >= 1
    assert not set(map(tuple, va.tolist())) & set(map(tuple, tr.tolist()))


def test_shipped_gowalla_slice():
    d = load_interactions("gowalla/slice", val_fraction=0.1)
    assert d.num_users > 2000 and d.num_items > 3000 and len(d.test) > 10000
    assert len(d.val) > 0.05 * (len(d.train) + len(d.val))


def test_negatives_never_positive():
    g = torch.Generator().manual_seed(0)
    pairs = torch.stack([torch.randint(0, 20, (300,), generator=g), torch.randint(0, 15, (300,), generator=g)], 1)
    pairs = torch.unique(pairs, dim=0)
    keys = pair_keys(pairs, 15)
    users = pairs[:, 0].repeat(20)
    neg = sample_negatives(users, keys, 15, max_tries=200, generator=g)
    pos_set = set(map(tuple, pairs.tolist()))
    assert not any((u, n) in pos_set for u, n in zip(users.tolist(), neg.tolist()))


def test_adjacency_spmm_and_noise():
    pairs = torch.tensor([[0, 0], [0, 1], [1, 1], [2, 0], [2, 2]])
    adj = normalized_adjacency(pairs, 3, 3)
    dense = adj.to_dense()
    assert torch.allclose(dense, dense.t()) and float(dense.diagonal().abs().sum()) == 0
    deg = torch.tensor([2.0, 1, 2, 2, 2, 1])
    assert torch.isclose(dense[0, 3], 1 / (deg[0] * deg[3]).sqrt())
    e = torch.randn(6, 4, requires_grad=True)
    (symmetric_spmm(adj, e) ** 2).sum().backward()
    e2 = e.detach().clone().requires_grad_(True)
    ((dense @ e2) ** 2).sum().backward()
    assert torch.allclose(e.grad, e2.grad, atol=1e-6)
    # XSimGCL noise: each row moves by exactly eps (a unit vector scaled), same direction signs
    torch.manual_seed(0)
    clean, _ = propagate(adj, e.detach(), 1)
    noisy, cl = propagate(adj, e.detach(), 1, eps=0.2, cl_layer=1)
    assert torch.allclose((noisy - clean).norm(dim=1), torch.full((6,), 0.2), atol=1e-5)
    assert torch.equal(noisy, cl)
    assert ((noisy - clean) * clean >= -1e-7).all()


def test_full_ranking_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    nu, ni = 30, 40
    u, i = torch.randn(nu, 8, generator=g), torch.randn(ni, 8, generator=g)
    train = torch.unique(torch.stack([torch.randint(0, nu, (200,), generator=g),
                                      torch.randint(0, ni, (200,), generator=g)], 1), dim=0)
    test = torch.unique(torch.stack([torch.randint(0, nu, (100,), generator=g),
                                     torch.randint(0, ni, (100,), generator=g)], 1), dim=0)
    test = test[~torch.isin(test[:, 0] * ni + test[:, 1], train[:, 0] * ni + train[:, 1])]
    out = full_ranking(u, i, test, train, ks=(5,), batch_size=7)
    recalls, ndcgs = [], []
    for user in test[:, 0].unique().tolist():
        s = u[user] @ i.t()
        s[train[train[:, 0] == user, 1]] = -float("inf")
        top = s.topk(5).indices.tolist()
        rel = set(test[test[:, 0] == user, 1].tolist())
        hits = [t in rel for t in top]
        recalls.append(sum(hits) / len(rel))
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        ndcgs.append(dcg / sum(1 / np.log2(r + 2) for r in range(min(5, len(rel)))))
    assert out["recall@5"] == pytest.approx(np.mean(recalls), abs=1e-6)
    assert out["ndcg@5"] == pytest.approx(np.mean(ndcgs), abs=1e-6)
    pu, pi = popularity_scores(train, nu, ni)
    assert pu.shape == (nu, 1) and float(pi.sum()) == len(train)


def test_heterodata_file_gets_a_whole_plain_message(tmp_path):
    """Issue 20: the refusal of a HeteroData file names the class, says what to do, and carries no
    terminal colour codes and no sentence cut mid-word."""
    from torch_geometric.data import HeteroData

    from multissl.errors import DataError
    from multissl.graph.data import load_node_graph

    h = HeteroData()
    h["paper"].x = torch.randn(3, 2)
    h["paper", "cites", "paper"].edge_index = torch.tensor([[0, 1], [1, 2]])
    path = tmp_path / "hetero.pt"
    torch.save(h, path)
    with pytest.raises(DataError) as err:
        load_node_graph(str(path))
    msg = str(err.value)
    assert "\x1b" not in msg and "\n" not in msg
    assert "HeteroData" in msg and "heterogeneous" in msg and msg.endswith("with torch.save")


def test_string_ids_are_remapped_and_unseen_test_pairs_left_out(tmp_path, capsys):
    """Issue 20: string ids accepted and remapped over users / items WITH a training interaction; a
    weight column ignored unless asked; test pairs of unseen users or items left out with a count."""
    (tmp_path / "train.tsv").write_text("u7\tparis\t1.0\nu7\tlyon\t0.2\nu3\tparis\t5\nu9\tnice\t0.5\n")
    (tmp_path / "test.tsv").write_text("u3\tlyon\t1\nu3\tberlin\t1\nghost\tparis\t1\n")
    d = load_interactions(str(tmp_path / "train.tsv"), test_path=str(tmp_path / "test.tsv"), val_fraction=0.0)
    assert d.user_ids.tolist() == ["u3", "u7", "u9"] and d.item_ids.tolist() == ["lyon", "nice", "paris"]
    assert (d.num_users, d.num_items, len(d.train)) == (3, 3, 4)
    assert d.test.tolist() == [[0, 0]]  # u3 -> lyon; berlin and ghost were never in training
    assert "2 of 3 test pairs" in capsys.readouterr().out
    w = load_interactions(str(tmp_path / "train.tsv"), test_path=str(tmp_path / "test.tsv"), val_fraction=0.0,
                          min_weight=0.9)
    assert w.item_ids.tolist() == ["paris"] and len(w.train) == 2


def test_planetoid_lfs_pointers_are_named_as_such(tmp_path):
    from multissl.errors import DataError

    # some public copies of ind.pubmed.* are Git LFS pointer stubs (e.g. D61-IA/FisherGCN without git-lfs)
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index"):
        (tmp_path / f"ind.pubmed.{part}").write_text(
            "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 7578385\n")
    with pytest.raises(DataError, match=r"ind\.pubmed\.allx \(stands for 7578385 bytes\).*Git LFS pointers"):
        load_node_graph(str(tmp_path), "pubmed")


def test_seed_summary_has_a_t_interval():
    from multissl.graph.seeds import summarize

    rows = [{"seed": s, "test/acc": v} for s, v in enumerate([0.70, 0.72, 0.74])]
    m, sd, lo, hi = summarize(rows)["test/acc"]
    half = 4.302652729911275 * 0.02 / 3 ** 0.5  # t(0.975, 2 df) x sample std / sqrt(n)
    assert abs(m - 0.72) < 1e-12 and abs(sd - (0.0008 / 3) ** 0.5) < 1e-12
    assert abs(lo - (0.72 - half)) < 1e-9 and abs(hi - (0.72 + half)) < 1e-9


def test_missing_planetoid_set_says_how_to_get_it():
    from multissl.errors import DataError

    # the shipped folder has cora and citeseer only; PubMed's message names the download and data.path
    with pytest.raises(DataError, match=r"\['citeseer', 'cora'\], not ind\.pubmed.*Planetoid\(ROOT, 'PubMed'\).*data\.path="):
        load_node_graph("planetoid", "pubmed")
