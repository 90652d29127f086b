"""Build the shipped Gowalla slice for tests: ``python -m multissl.graph.make_slice``.

Seeded: 6,000 random users of LightGCN's Gowalla split, their items with >= 8 train interactions among
those users, users keeping >= 8 train items; ids remapped; written as LightGCN ``user item item ...``
lines to ``data/gowalla/slice/{train,test}.txt``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from multissl.data import project_root
from multissl.graph.data import load_interactions


def main(users: int = 6000, min_item: int = 8, min_user: int = 8, seed: int = 0) -> None:
    d = load_interactions("gowalla/s_adj_mat.npz", val_fraction=0.0)
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(d.num_users, generator=g)[:users]
    keep_u = torch.zeros(d.num_users, dtype=torch.bool)
    keep_u[chosen] = True
    tr = d.train[keep_u[d.train[:, 0]]]
    te = d.test[keep_u[d.test[:, 0]]]
    counts = torch.bincount(tr[:, 1], minlength=d.num_items)
    keep_i = counts >= min_item
    tr, te = tr[keep_i[tr[:, 1]]], te[keep_i[te[:, 1]]]
    ucount = torch.bincount(tr[:, 0], minlength=d.num_users)
    ok = ucount >= min_user
    tr, te = tr[ok[tr[:, 0]]], te[ok[te[:, 0]]]
    umap = torch.full((d.num_users,), -1, dtype=torch.long)
    uniq_u = torch.unique(tr[:, 0])
    umap[uniq_u] = torch.arange(len(uniq_u))
    imap = torch.full((d.num_items,), -1, dtype=torch.long)
    uniq_i = torch.unique(tr[:, 1])
    imap[uniq_i] = torch.arange(len(uniq_i))
    out = project_root() / "data" / "gowalla" / "slice"
    out.mkdir(parents=True, exist_ok=True)
    for name, pairs in (("train", tr), ("test", te)):
        pairs = torch.stack([umap[pairs[:, 0]], imap[pairs[:, 1]]], 1)
        pairs = pairs[(pairs >= 0).all(1)]
        lines = []
        for u in range(len(uniq_u)):
            items = pairs[pairs[:, 0] == u, 1].tolist()
            lines.append(" ".join(str(x) for x in [u, *items]))
        Path(out / f"{name}.txt").write_text("\n".join(lines) + "\n")
    print(f"{len(uniq_u)} users, {len(uniq_i)} items, {len(tr)} train / {len(te)} test pairs -> {out}")


if __name__ == "__main__":
    main()
