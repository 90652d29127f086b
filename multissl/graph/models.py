"""Graph encoders: GraphMAE's GAT on PyG ``GATConv`` and LightGCN propagation as sparse matmuls."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GAT(nn.Module):
    """A stack of PyG ``GATConv`` layers shaped as in GraphMAE (Hou et al., KDD 2022, ``models/gat.py``).

    Hidden layers: ``heads`` heads of ``hidden // heads`` channels each, concatenated, PReLU; dropout
    ``in_drop`` on every layer's input, ``attn_drop`` on attention, LeakyReLU(``negative_slope``) inside
    attention. The last layer has ``out_heads`` heads of ``out_dim`` channels (concatenated) and keeps
    the activation only when ``encoding`` (GraphMAE's encoder; its decoder has none). Self-loops are
    expected in ``edge_index`` already (GraphMAE removes then adds them once). ``init="official"``
    re-initialises weights and attention vectors xavier-normal with the ReLU gain (GraphMAE's
    ``GATConv.reset_parameters``); ``"pyg"`` keeps PyG's glorot-uniform.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int, heads: int, out_heads: int,
                 in_drop: float = 0.2, attn_drop: float = 0.1, negative_slope: float = 0.2,
                 encoding: bool = True, init: str = "official") -> None:
        super().__init__()
        from torch_geometric.nn import GATConv

        if hidden % heads:
            raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
        self.in_drop = in_drop
        self.convs, self.acts = nn.ModuleList(), nn.ModuleList()
        per_head = hidden // heads
        dim = in_dim
        for layer in range(num_layers):
            last = layer == num_layers - 1
            h, c = (out_heads, out_dim) if last else (heads, per_head)
            self.convs.append(GATConv(dim, c, heads=h, concat=True, negative_slope=negative_slope,
                                      dropout=attn_drop, add_self_loops=False, bias=True))
            self.acts.append(nn.PReLU() if (not last or encoding) else nn.Identity())
            dim = h * c
        self.out_dim = dim
        if init == "official":  # GraphMAE's GATConv: xavier-normal with the ReLU gain, zero bias
            gain = nn.init.calculate_gain("relu")
            for conv in self.convs:
                for name, p in conv.named_parameters():
                    if name == "bias":
                        nn.init.zeros_(p)
                    else:
                        nn.init.xavier_normal_(p.view(-1, p.shape[-1]) if p.dim() > 2 else p, gain=gain)
        elif init != "pyg":
            raise ValueError(f"init must be 'official' or 'pyg', got {init!r}")

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.acts):
            x = F.dropout(x, self.in_drop, self.training)
            x = act(conv(x, edge_index))  # (N, heads * channels)
        return x


def normalized_adjacency(pairs: torch.Tensor, num_users: int, num_items: int, layout: str = "csr") -> torch.Tensor:
    """LightGCN's A_hat = D^-1/2 A D^-1/2 of the user+item bipartite graph (no self-loops), sparse.

    ``pairs``: (P, 2) (user, item) training interactions. Returns a (U+I, U+I) sparse tensor in
    ``layout`` (``csr``: the fastest matmuls on CPU and CUDA; ``coo``).
    """
    n = num_users + num_items
    u, i = pairs[:, 0], pairs[:, 1] + num_users
    rows, cols = torch.cat([u, i]), torch.cat([i, u])
    deg = torch.bincount(rows, minlength=n).double()
    dinv = deg.clamp_min(1).pow(-0.5)
    vals = (dinv[rows] * dinv[cols]).float()
    adj = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n), check_invariants=False).coalesce()
    if layout != "csr":
        return adj
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return adj.to_sparse_csr()


class _SymmetricSpMM(torch.autograd.Function):
    """A @ X for a SYMMETRIC sparse A, whose backward is A @ grad: no transpose / format conversion."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(adj)
        return adj @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (adj,) = ctx.saved_tensors
        return None, adj @ grad


def symmetric_spmm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A @ X with autograd for X, A sparse (CSR or COO) and symmetric (LightGCN's normalised adjacency)."""
    return _SymmetricSpMM.apply(adj, x)


def propagate(adj: torch.Tensor, ego: torch.Tensor, num_layers: int, eps: float = 0.0, cl_layer: int = 1,
              include_ego: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN propagation E_l = A_hat E_{l-1}, one sparse matmul per layer; XSimGCL noise when ``eps``.

    With ``eps > 0`` every layer's output is perturbed, E <- E + sign(E) * normalize(U(0,1)) * eps
    (Yu et al., TKDE 2023). Returns (the mean of the layers, the output of layer ``cl_layer``): the mean
    runs over layers 1..L (XSimGCL / SELFRec) or, with ``include_ego``, over layers 0..L with equal
    weights 1 / (L + 1) (LightGCN, He et al. 2020, and PyG's ``LightGCN``).
    """
    h, cl = ego, ego
    acc = ego if include_ego else None
    for layer in range(1, num_layers + 1):
        h = symmetric_spmm(adj, h)  # (U+I, D)
        if eps > 0:
            with torch.no_grad():  # d(sign(h))/dh = 0: the noise adds no gradient term, so build it graph-free
                noise = torch.sign(h).mul_(F.normalize(torch.rand_like(h), dim=-1)).mul_(eps)
            h = h + noise
        acc = h if acc is None else acc + h
        if layer == cl_layer:
            cl = h
    return acc / (num_layers + int(include_ego)), cl
