"""Recipe kinds of the graph adapter: ``graph.graphmae`` (node representations, linear probe) and
``graph.xsimgcl`` (XSimGCL / LightGCN recommendation, full-ranking Recall@K / NDCG@K)."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch

from multissl.config import param
from multissl.errors import DataError
from multissl.eval import linear_probe
from multissl.tasks import Task, TaskParts

# ---------------------------------------------------------------------------------------------
# GraphMAE
# ---------------------------------------------------------------------------------------------


@dataclass
class GraphData:
    path: str = param("planetoid", "Planetoid folder (ind.<name>.*), a .pt PyG Data file, or an edges+features folder")
    name: str | None = param("cora", "Planetoid prefix (cora, citeseer, pubmed); None = the only one in the folder")
    row_normalize: bool = param(True, "row-normalise the features (GraphMAE / DGL Cora)")
    fractions: tuple[float, float, float] = param((0.1, 0.1, 0.8), "train/val/test split when the file has no masks")
    split_seed: int = param(0, "seed of that random split")


@dataclass
class GATParams:
    hidden: int = param(512, "encoder width, heads concatenated (GraphMAE Cora: 512)")
    heads: int = param(4, "attention heads of the encoder (Cora: 4)")
    out_heads: int = param(1, "heads of the decoder's layer (GraphMAE: 1)")
    num_layers: int = param(2, "encoder GAT layers (Cora: 2)")
    in_drop: float = param(0.2, "dropout on every layer's input (Cora: 0.2)")
    attn_drop: float = param(0.1, "attention dropout (Cora: 0.1)")
    negative_slope: float = param(0.2, "LeakyReLU slope inside attention")
    init: Literal["official", "pyg"] = param("official", "GAT weights: GraphMAE's xavier-normal (ReLU gain) or PyG's glorot")


@dataclass
class GraphMAEParams:
    mask_rate: float = param(0.5, "fraction of nodes masked per step (Cora: 0.5)")
    replace_rate: float = param(0.05, "fraction of the masked nodes given random nodes' features (Cora: 0.05)")
    alpha: float = param(3.0, "exponent of the scaled cosine error (Cora: 3)")


@dataclass
class NodeProbeParams:
    epochs: int = param(300, "linear-probe epochs (GraphMAE: 300)")
    lr: float = param(0.01, "linear-probe Adam lr (Cora: 0.01)")
    weight_decay: float = param(1e-4, "the paper's linear-probe weight decay (Cora: 1e-4); always in the grid")
    weight_decay_grid: list[float] = param([0.0, 1e-4, 1e-3, 1e-2], "probe weight decays tried; the one with the "
                                           "best VALIDATION accuracy is used (the floor chooses its own the same way)")
    random_init_floor: bool = param(True, "also probe the frozen random-init encoder (the floor) at the end")


@dataclass
class GraphMAEConfig:
    data: GraphData = param(GraphData(), "the graph")
    model: GATParams = param(GATParams(), "GAT encoder / decoder")
    method: GraphMAEParams = param(GraphMAEParams(), "masking and loss")
    eval: NodeProbeParams = param(NodeProbeParams(), "linear probe on frozen node embeddings")


def _id_dataset(n: int, kind: str | None = None):
    """(dataset of ids 0..n-1, collate) for ``multissl embed``: a LongTensor, or {"kind", "ids"}."""
    from multissl.data import SequenceDataset

    def collate(ids):
        t = torch.tensor(ids, dtype=torch.long)
        return t if kind is None else {"kind": kind, "ids": t}

    return SequenceDataset(list(range(n))), collate


def _save_pyg(path, x: torch.Tensor, edge_index: torch.Tensor, **extra) -> None:
    """A PyG ``Data`` whose ``x`` holds the embeddings (loadable with ``torch.load(weights_only=True)`` and
    PyG's safe globals, e.g. by ``multissl.graph.data.load_node_graph``)."""
    from torch_geometric.data import Data

    torch.save(Data(x=x.float().cpu(), edge_index=edge_index.cpu(), **extra), path)


@contextmanager
def initial_weights(method, initial: dict):
    """Temporarily load the starting (random-init) weights into ``method`` (for the baselines)."""
    current = {k: v.detach().clone() for k, v in method.state_dict().items()}
    method.load_state_dict({k: v.to(current[k].device) for k, v in initial.items()})
    try:
        yield method
    finally:
        method.load_state_dict(current)


def probe_nodes(method, graph, cfg: NodeProbeParams, seed: int) -> dict[str, float]:
    """GraphMAE's linear probe: one Linear on frozen embeddings, Adam, full batch on the train mask; test
    accuracy at the best validation epoch and at the last epoch. The weight decay is chosen on VALIDATION
    accuracy from ``cfg.weight_decay_grid`` plus ``cfg.weight_decay`` (ties: the first in sorted order)."""
    z = method.embed().float().cpu()
    y = graph.y
    tr, va, te = graph.train_mask, graph.val_mask, graph.test_mask
    best = None
    for wd in sorted({*cfg.weight_decay_grid, cfg.weight_decay}):
        r = linear_probe(z[tr], y[tr], z[te], y[te], z[va], y[va], optimizer="adam", epochs=cfg.epochs, lr=cfg.lr,
                         weight_decay=wd, standardize=False, seed=seed)
        if best is None or r.best_val > best[1].best_val:
            best = (wd, r)
    wd, r = best
    return {"val_acc": r.best_val, "test_acc": r.best_val_test, "test_acc_last": r.last_test, "weight_decay": wd}


class GraphMAETask(Task):
    embed_keywords = ("nodes", "all")  # `multissl embed --data nodes`: the run's own graph, not a path
    config_class = GraphMAEConfig
    description = "GraphMAE masked graph autoencoder on one graph (node classification probe)"

    def build(self, recipe) -> TaskParts:
        from multissl.graph.data import WholeGraph, load_node_graph, preprocess
        from multissl.graph.methods import GraphMAE

        cfg: GraphMAEConfig = recipe.config
        d, m = cfg.data, cfg.model
        graph = preprocess(load_node_graph(d.path, d.name, d.fractions, d.split_seed), d.row_normalize)
        method = GraphMAE(graph.x, graph.edge_index, m.hidden, m.heads, m.out_heads, m.num_layers, m.in_drop,
                          m.attn_drop, m.negative_slope, cfg.method.mask_rate, cfg.method.replace_rate,
                          cfg.method.alpha, m.init)
        initial = copy.deepcopy(method.state_dict()) if cfg.eval.random_init_floor else None
        seed = recipe.train.seed

        def evaluate(meth) -> dict[str, float]:
            r = probe_nodes(meth, graph, cfg.eval, seed)
            return {"val/acc": r["val_acc"], "val/probe_weight_decay": r["weight_decay"]}

        def final(meth) -> dict[str, float]:
            r = probe_nodes(meth, graph, cfg.eval, seed)
            out = {"val/acc": r["val_acc"], "val/probe_weight_decay": r["weight_decay"], "test/acc": r["test_acc"],
                   "test/acc_last": r["test_acc_last"]}
            if initial is not None:
                with initial_weights(meth, initial):
                    f = probe_nodes(meth, graph, cfg.eval, seed)
                out.update({"val/random_init_acc": f["val_acc"], "val/random_init_probe_weight_decay": f["weight_decay"],
                            "test/random_init_acc": f["test_acc"], "test/random_init_acc_last": f["test_acc_last"]})
                if out["val/acc"] <= f["val_acc"] or out["test/acc"] <= f["test_acc"]:
                    print(f"WARNING: the trained encoder does not beat its own random-init floor (val "
                          f"{out['val/acc']:.3f} vs {f['val_acc']:.3f}, test {out['test/acc']:.3f} vs "
                          f"{f['test_acc']:.3f}, each with its validation-chosen probe weight decay)")
            return out

        self._num_nodes = graph.num_nodes

        def export(meth, folder) -> None:
            """Node embeddings of the selected weights: ``node_embeddings.npy`` (row i = node i) and a PyG
            ``Data`` (``graph.pt``: x = embeddings, the graph's edges, labels and split masks)."""
            import numpy as np

            folder.mkdir(parents=True, exist_ok=True)
            z = meth.embed().float().cpu()
            np.save(folder / "node_embeddings.npy", z.numpy())
            _save_pyg(folder / "graph.pt", z, graph.edge_index, y=graph.y, train_mask=graph.train_mask,
                      val_mask=graph.val_mask, test_mask=graph.test_mask)

        return TaskParts(method, WholeGraph(), evaluate=evaluate, final_evaluate=final, export=export)

    def embed_data(self, recipe, path: str):
        """``multissl embed --data nodes``: every node, in node order."""
        if path not in ("nodes", "all"):
            raise DataError(f"graph embeddings cover the run's own graph: pass --data nodes (got {path!r})")
        return _id_dataset(self._num_nodes)


# ---------------------------------------------------------------------------------------------
# XSimGCL / LightGCN
# ---------------------------------------------------------------------------------------------


@dataclass
class InteractionData:
    path: str = param("gowalla/s_adj_mat.npz", "LightGCN s_adj_mat.npz, a folder with train.txt, or an interaction file")
    test_path: str | None = param(None, "test interactions (default: test.txt beside path)")
    format: Literal["auto", "lists", "pairs"] = param("auto", "text layout: 'user item item ...' lists or "
                                                      "'user item [rating]' pairs")
    min_weight: float | None = param(None, "pairs files: keep pairs whose weight column is >= this (None: the "
                                     "weight column is ignored)")
    val_fraction: float = param(0.1, "fraction of each user's train interactions held out for epoch selection")
    split_seed: int = param(0, "seed of the validation hold-out")


@dataclass
class RecModelParams:
    dim: int = param(64, "embedding size (XSimGCL / LightGCN: 64)")
    num_layers: int = param(2, "propagation layers (XSimGCL: 2; LightGCN on Gowalla: 3)")


@dataclass
class XSimGCLParams:
    eps: float = param(0.2, "noise magnitude added to every layer (XSimGCL: 0.2)")
    cl_weight: float = param(0.2, "contrastive weight lambda (XSimGCL: 0.2)")
    temperature: float = param(0.15, "InfoNCE temperature tau (XSimGCL: 0.15)")
    cl_layer: int = param(1, "layer l* whose perturbed output is the contrastive view (XSimGCL: 1)")
    reg: float = param(1e-4, "L2 regularisation weight (1e-4)")


@dataclass
class LightGCNParams:
    reg: float = param(1e-4, "weight of the L2 penalty on the batch's ego embeddings (LightGCN: 1e-4)")
    init_std: float = param(0.1, "std of the normal init of the embeddings (LightGCN-PyTorch: 0.1)")


@dataclass
class RankingParams:
    ks: list[int] = param([10, 20, 50], "cut-offs of Recall@K / NDCG@K, all reported in one run (papers: 20)")
    batch_size: int = param(2048, "users scored per ranking batch")
    baselines: bool = param(True, "also report the most-popular ranking and the untrained model on test")


def _check_rec(data: InteractionData, model: RecModelParams, ev: RankingParams) -> None:
    if not 0 <= data.val_fraction < 1:
        raise ValueError("data.val_fraction must be in [0, 1)")
    if not ev.ks or min(ev.ks) < 1:
        raise ValueError("eval.ks must list cut-offs >= 1")
    if model.num_layers < 1:
        raise ValueError("model.num_layers must be >= 1")


@dataclass
class XSimGCLConfig:
    data: InteractionData = param(InteractionData(), "user-item interactions")
    model: RecModelParams = param(RecModelParams(), "embeddings and propagation")
    method: XSimGCLParams = param(XSimGCLParams(), "XSimGCL noise and contrast (zeros: the no-noise ablation)")
    eval: RankingParams = param(RankingParams(), "full-ranking evaluation")

    def validate(self) -> None:
        _check_rec(self.data, self.model, self.eval)
        if not 1 <= self.method.cl_layer <= self.model.num_layers:
            raise ValueError(f"method.cl_layer={self.method.cl_layer} must be in 1..model.num_layers")


@dataclass
class LightGCNConfig:
    data: InteractionData = param(InteractionData(), "user-item interactions")
    model: RecModelParams = param(RecModelParams(num_layers=3), "embeddings and propagation (LightGCN Gowalla: 3)")
    method: LightGCNParams = param(LightGCNParams(), "LightGCN's L2 penalty and init")
    eval: RankingParams = param(RankingParams(), "full-ranking evaluation")

    def validate(self) -> None:
        _check_rec(self.data, self.model, self.eval)


class _RecTask(Task):
    embed_keywords = ("users", "items")  # `multissl embed --data users|items`: rows of the run's tables
    """Shared build of the recommender kinds: data, validation hold-out, full-ranking evaluation."""

    def make_method(self, cfg, data):  # pragma: no cover - abstract
        raise NotImplementedError

    def build(self, recipe) -> TaskParts:
        from multissl.graph.data import PairIndexDataset, load_interactions
        from multissl.graph.ranking import full_ranking, popularity_scores

        cfg = recipe.config
        d, e = cfg.data, cfg.eval
        data = load_interactions(d.path, d.test_path, d.val_fraction, d.split_seed, d.format, d.min_weight)
        sel = recipe.train.select_metric
        if not len(data.val) and sel and sel.startswith("val/"):
            print(f"note: data.val_fraction={d.val_fraction} leaves no validation pairs, so "
                  f"train.select_metric={sel} cannot select an epoch: the LAST epoch is reported")
        method = self.make_method(cfg, data)
        initial = copy.deepcopy(method.state_dict()) if e.baselines else None
        known = torch.cat([data.train, data.val])
        ks = tuple(sorted(set(e.ks)))

        def evaluate(meth) -> dict[str, float]:
            if not len(data.val):
                return {}
            u, i = meth.embeddings()
            return full_ranking(u, i, data.val, data.train, ks, e.batch_size, prefix="val/")

        def final(meth) -> dict[str, float]:
            out = evaluate(meth)
            if not len(data.test):
                print("note: no test interactions (no test file beside the data, or none with a known user and "
                      "item): no test metrics")
                return out
            u, i = meth.embeddings()
            out.update(full_ranking(u, i, data.test, known, ks, e.batch_size, prefix="test/"))
            if initial is not None:
                pu, pi = popularity_scores(data.train, data.num_users, data.num_items)
                out.update(full_ranking(pu, pi, data.test, known, ks, e.batch_size, prefix="test/popular_"))
                with initial_weights(meth, initial):
                    u0, i0 = meth.embeddings()
                out.update(full_ranking(u0, i0, data.test, known, ks, e.batch_size, prefix="test/untrained_"))
            return out

        self._sizes = (data.num_users, data.num_items)

        def export(meth, folder) -> None:
            """User / item embeddings of the selected weights with their raw ids (row i of
            ``user_embeddings.npy`` is line i of ``user_ids.txt``), and a PyG ``Data`` (``graph.pt``:
            x = user rows then item rows, the training edges)."""
            import numpy as np

            folder.mkdir(parents=True, exist_ok=True)
            u, i = (t.float().cpu() for t in meth.embeddings())
            np.save(folder / "user_embeddings.npy", u.numpy())
            np.save(folder / "item_embeddings.npy", i.numpy())
            uids = data.user_ids if data.user_ids is not None else np.arange(data.num_users)
            iids = data.item_ids if data.item_ids is not None else np.arange(data.num_items)
            for name, ids in (("user_ids.txt", uids), ("item_ids.txt", iids)):
                (folder / name).write_text("\n".join(map(str, ids.tolist())) + "\n")
            edges = torch.stack([data.train[:, 0], data.train[:, 1] + data.num_users])
            _save_pyg(folder / "graph.pt", torch.cat([u, i]), torch.cat([edges, edges.flip(0)], 1),
                      num_users=data.num_users)

        return TaskParts(method, PairIndexDataset(len(data.train)), evaluate=evaluate, final_evaluate=final,
                         export=export)

    def embed_data(self, recipe, path: str):
        """``multissl embed --data users`` / ``--data items``: every row, in index order."""
        if path not in ("users", "items"):
            raise DataError(f"recommender embeddings: pass --data users or --data items (got {path!r}); the raw "
                            "ids of each row are in the run's export/user_ids.txt / item_ids.txt")
        return _id_dataset(self._sizes[0] if path == "users" else self._sizes[1], path)


class XSimGCLTask(_RecTask):
    config_class = XSimGCLConfig
    description = "XSimGCL collaborative filtering (full-ranking Recall@K, NDCG@K)"

    def make_method(self, cfg: XSimGCLConfig, data):
        from multissl.graph.methods import XSimGCL

        mp = cfg.method
        return XSimGCL(data.train, data.num_users, data.num_items, cfg.model.dim, cfg.model.num_layers, mp.eps,
                       mp.cl_weight, mp.temperature, mp.cl_layer, mp.reg)


class LightGCNTask(_RecTask):
    config_class = LightGCNConfig
    description = "LightGCN collaborative filtering (full-ranking Recall@K, NDCG@K)"

    def make_method(self, cfg: LightGCNConfig, data):
        from multissl.graph.methods import LightGCN

        return LightGCN(data.train, data.num_users, data.num_items, cfg.model.dim, cfg.model.num_layers,
                        cfg.method.reg, cfg.method.init_std)
