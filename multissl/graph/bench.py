"""``multissl bench graph``: seconds per training epoch, side by side on the same batches.

1. XSimGCL vs the real LightGCN in our code (each with its recipe's layers: 2 and 3);
2. our LightGCN vs PyG's ``torch_geometric.nn.models.LightGCN`` (``recommendation_loss``), same batches,
   same layers, same negatives;
3. GraphMAE on Cora (one full-graph step per epoch): seconds per epoch (no peer in this process).

Epoch times are extrapolated from ``--steps`` timed steps (after 2 warm-up steps) x steps per epoch.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from multissl.bench.harness import Measurement, record


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_steps(step, n: int, device: torch.device, warmup: int = 2) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) per step; on a shared CPU the CPU time is the steadier figure."""
    for _ in range(warmup):
        step()
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    _sync(device)
    return (time.perf_counter() - t) / n, (time.process_time() - c) / n


def _ours_step(method, opt, batches):
    it = iter(batches)

    def step():
        out = method(next(it))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    return step


def _pyg_step(model, opt, pairs, keys, num_users, num_items, edge_index, batches, reg):
    from torch_geometric.utils import to_undirected  # noqa: F401  (import check)

    from multissl.graph.data import sample_negatives

    it = iter(batches)

    def step():
        b = pairs[next(it)]
        users, pos = b[:, 0], b[:, 1]
        neg = sample_negatives(users, keys, num_items)
        label_index = torch.stack([torch.cat([users, users]), torch.cat([pos, neg]) + num_users])
        rank = model(edge_index, label_index)
        pos_rank, neg_rank = rank.chunk(2)
        loss = model.recommendation_loss(pos_rank, neg_rank, node_id=label_index.unique(), lambda_reg=reg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="multissl bench graph", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="gowalla/s_adj_mat.npz", help="interactions (default: shipped full Gowalla)")
    ap.add_argument("--graph", default="planetoid", help="node graph for GraphMAE (default: shipped Cora)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per model")
    ap.add_argument("--graphmae-steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the issue's figures: 1)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-pyg", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from torch_geometric.nn.models import LightGCN as PygLightGCN

    from multissl.graph.data import load_interactions, load_node_graph, preprocess
    from multissl.graph.methods import GraphMAE, LightGCN, XSimGCL

    data = load_interactions(args.data, val_fraction=0.1)
    steps_per_epoch = math.ceil(len(data.train) / args.batch_size)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, len(data.train), (args.batch_size,), generator=g).to(device)
               for _ in range(args.steps + 2)]
    rows: list[Measurement] = []
    where = f"{device.type}, {args.threads} thread(s)" if device.type == "cpu" else torch.cuda.get_device_name(0)
    extra = {"device": where, "steps_per_epoch": steps_per_epoch, "timed_steps": args.steps,
             "users": data.num_users, "items": data.num_items, "train_pairs": len(data.train)}

    def make(eps, cl, layers):
        torch.manual_seed(0)
        m = (XSimGCL(data.train, data.num_users, data.num_items, 64, layers, eps, cl) if cl else
             LightGCN(data.train, data.num_users, data.num_items, 64, layers)).to(device)
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)

    def add(what, ours, peer, peer_name, per):
        """One wall-clock row and, on CPU, one process-CPU-time row (steady on a shared machine)."""
        rows.append(Measurement("graph", what + " (wall)", ours[0] * per, None if peer is None else peer[0] * per,
                                "s/epoch", peer_name, higher_is_better=False, extra=extra))
        if device.type == "cpu":
            rows.append(Measurement("graph", what + " (CPU time)", ours[1] * per,
                                    None if peer is None else peer[1] * per, "s/epoch", peer_name,
                                    higher_is_better=False, extra=extra))

    xs, xo = make(0.2, 0.2, 2)
    t_x = _time_steps(_ours_step(xs, xo, batches), args.steps, device)
    del xs, xo
    lg, lo = make(0.0, 0.0, 3)
    t_l = _time_steps(_ours_step(lg, lo, batches), args.steps, device)
    add("XSimGCL (L=2) vs LightGCN (L=3), Gowalla", t_x, t_l, "multissl LightGCN", steps_per_epoch)
    if not args.skip_pyg:
        torch.manual_seed(0)
        pyg = PygLightGCN(data.num_users + data.num_items, 64, 3).to(device)
        po = torch.optim.Adam(pyg.parameters(), lr=1e-3)
        from torch_geometric.utils import to_undirected

        ei = torch.stack([data.train[:, 0], data.train[:, 1] + data.num_users])
        ei = to_undirected(ei, num_nodes=data.num_users + data.num_items).to(device)
        t_p = _time_steps(_pyg_step(pyg, po, data.train.to(device), lg.keys, data.num_users, data.num_items, ei,
                                    batches, 1e-4), args.steps, device)
        add("LightGCN (L=3) ours vs PyG, Gowalla", t_l, t_p, "torch_geometric.nn.models.LightGCN", steps_per_epoch)
    del lg, lo

    graph = preprocess(load_node_graph(args.graph, "cora"))
    torch.manual_seed(0)
    gm = GraphMAE(graph.x, graph.edge_index).to(device)
    go = torch.optim.Adam(gm.parameters(), lr=1e-3, weight_decay=2e-4)
    t_g = _time_steps(_ours_step(gm, go, [None] * (args.graphmae_steps + 2)), args.graphmae_steps, device)
    extra = {"device": where}
    add("GraphMAE pre-training, Cora (hidden 512, 4 heads)", t_g, None, "", 1)
    record(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
