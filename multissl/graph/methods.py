"""Graph methods: GraphMAE (masked feature reconstruction), XSimGCL (recommendation with cross-layer
noise contrast) and LightGCN (the plain graph-convolution recommender XSimGCL builds on)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from multissl.core import LossOutput, Method, info_nce, scaled_cosine_error
from multissl.graph.data import sample_negatives
from multissl.graph.models import GAT, normalized_adjacency, propagate


class GraphMAE(Method):
    """GraphMAE (Hou, Liu, Cen, Dong, Yang, Wang, Tang, KDD 2022): a masked graph autoencoder.

    A random ``mask_rate`` of the nodes is masked: of them ``1 - replace_rate`` get x = 0 plus a learnable
    mask token, ``replace_rate`` the features of random nodes. A GAT encoder embeds the corrupted graph,
    a bias-free Linear maps to the decoder space, the masked nodes are re-masked with zeros, and a
    one-layer GAT decoder reconstructs the input features; the loss is the scaled cosine error on the
    masked nodes. The method holds the graph as buffers; a batch is ignored (one full-graph step).

    Reference code: github.com/THUDM/GraphMAE (``graphmae/models/edcoder.py``, ``gat.py``, ``configs.yml``).

    Deviations from the reference code:
    - GAT layers are PyG ``GATConv`` (the reference has its own DGL GAT): same shapes, heads, dropouts and
      (with ``init="official"``) the same xavier-normal init; PyG keeps no residual / norm options, which
      the Planetoid configs leave off anyway.
    - The linear probe's weight decay is chosen on validation from a small grid (``eval.weight_decays``)
      instead of being fixed per data set, because the fixed CiteSeer value let the probe decide the
      headline (issue 20); the official value is always in the grid.
    """

    def __init__(self, x: torch.Tensor, edge_index: torch.Tensor, hidden: int = 512, heads: int = 4,
                 out_heads: int = 1, num_layers: int = 2, in_drop: float = 0.2, attn_drop: float = 0.1,
                 negative_slope: float = 0.2, mask_rate: float = 0.5, replace_rate: float = 0.05,
                 alpha: float = 3.0, init: str = "official") -> None:
        super().__init__()
        self.register_buffer("x", x, persistent=False)  # (N, F)
        self.register_buffer("edge_index", edge_index, persistent=False)  # (2, E) with self-loops
        f = x.shape[1]
        self.encoder = GAT(f, hidden, hidden // heads, num_layers, heads, heads, in_drop, attn_drop,
                           negative_slope, encoding=True, init=init)
        self.encoder_to_decoder = nn.Linear(hidden, hidden, bias=False)
        self.decoder = GAT(hidden, hidden, f, 1, heads, out_heads, in_drop, attn_drop, negative_slope,
                           encoding=False, init=init)
        self.mask_token = nn.Parameter(torch.zeros(1, f))
        self.mask_rate, self.replace_rate, self.alpha = mask_rate, replace_rate, alpha

    def mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted features (N, F), masked node ids (M,))."""
        n = x.shape[0]
        perm = torch.randperm(n, device=x.device)
        num_mask = int(self.mask_rate * n)
        masked = perm[:num_mask]
        out = x.clone()
        if self.replace_rate > 0:
            num_noise = int(self.replace_rate * num_mask)
            inner = torch.randperm(num_mask, device=x.device)
            token_nodes = masked[inner[: int((1 - self.replace_rate) * num_mask)]]
            noise_nodes = masked[inner[num_mask - num_noise:]] if num_noise else masked[:0]
            out[token_nodes] = 0.0
            out[noise_nodes] = x[torch.randperm(n, device=x.device)[:num_noise]]
        else:
            token_nodes = masked
            out[token_nodes] = 0.0
        out[token_nodes] += self.mask_token
        return out, masked

    def forward(self, batch=None) -> LossOutput:
        corrupted, masked = self.mask(self.x)
        h = self.encoder(corrupted, self.edge_index)  # (N, hidden)
        rep = self.encoder_to_decoder(h)
        rep = rep.index_fill(0, masked, 0.0)  # re-mask before decoding
        recon = self.decoder(rep, self.edge_index)  # (N, F)
        loss = scaled_cosine_error(recon[masked], self.x[masked], self.alpha)
        return LossOutput(loss)

    @torch.no_grad()
    def embed(self, batch=None) -> torch.Tensor:
        """Encoder output for every node (N, hidden) on the uncorrupted graph; ``batch`` may pick node ids."""
        h = self.encoder(self.x, self.edge_index)
        return h if batch is None or (isinstance(batch, torch.Tensor) and batch.dim() == 0) else h[batch]


class _InteractionModel(Method):
    """Shared state of the graph recommenders: user / item embedding tables, the training pairs, their
    sorted keys (negative sampling) and LightGCN's normalised adjacency, as non-checkpointed buffers."""

    def __init__(self, train_pairs: torch.Tensor, num_users: int, num_items: int, dim: int,
                 adjacency_layout: str = "csr") -> None:
        super().__init__()
        from multissl.graph.data import pair_keys

        self.num_users, self.num_items = num_users, num_items
        self.user_emb = nn.Parameter(torch.empty(num_users, dim))
        self.item_emb = nn.Parameter(torch.empty(num_items, dim))
        self.register_buffer("pairs", train_pairs, persistent=False)  # (P, 2)
        self.register_buffer("keys", pair_keys(train_pairs, num_items), persistent=False)
        self.register_buffer("adj", normalized_adjacency(train_pairs, num_users, num_items, adjacency_layout),
                             persistent=False)

    def ego(self) -> torch.Tensor:
        return torch.cat([self.user_emb, self.item_emb])  # (U+I, D)

    def final(self) -> torch.Tensor:  # noqa: D102 - the clean final (U+I, D) embeddings of each model
        raise NotImplementedError

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean (noise-free) final user (U, D) and item (I, D) embeddings for ranking."""
        return self.final().split([self.num_users, self.num_items])

    @torch.no_grad()
    def embed(self, batch: torch.Tensor | dict | None = None) -> torch.Tensor:
        """Final user embeddings (of user ids ``batch``, or all users); ``{"kind": "items", "ids": ...}``
        picks item embeddings (``multissl embed --data users|items``)."""
        users, items = self.embeddings()
        if isinstance(batch, dict):
            table = items if batch["kind"] == "items" else users
            return table[batch["ids"].to(table.device)]
        return users if batch is None else users[batch]


class XSimGCL(_InteractionModel):
    """XSimGCL (Yu, Xia, Chen, Cui, Hung, Yin, "XSimGCL: Towards Extremely Simple Graph Contrastive
    Learning for Recommendation", TKDE 2023).

    LightGCN-style propagation over the normalised user-item graph, one sparse matmul per layer, with
    E += sign(E) * normalize(U(0,1)) * eps added to every layer's output in the one forward pass; the
    final embedding is the mean of layers 1..L (layer 0, the ego embedding, is left out, as in XSimGCL's
    code) and is trained with BPR, and contrasted with the perturbed layer ``cl_layer`` output by InfoNCE
    over the batch's unique users and unique items (weight ``cl_weight``, temperature ``temperature``).
    L2 regularisation ``reg`` on the batch's user and positive-item final embeddings, ``||.||_2 / B``
    each. With ``eps=0, cl_weight=0`` this is the "XSimGCL without noise" ablation (recipe
    ``graph/xsimgcl-nonoise-gowalla``), NOT LightGCN: see :class:`LightGCN`.

    The method holds the training pairs and the graph as (non-checkpointed) buffers; a batch is a
    LongTensor of training-pair ids. Negatives are sampled uniformly among each user's non-positives,
    vectorised.

    Reference code: github.com/Coder-Yu/SELFRec (``model/graph/XSimGCL.py``, ``util/loss_torch.py``).

    Deviations from the reference code:
    - An epoch visits every training pair once in a shuffled order (the reference's ``next_batch_pairwise``
      does the same) but negatives are resampled vectorised until they are non-positives (at most 20
      tries) instead of a Python loop per pair: same distribution, faster.
    - Model selection: the epoch is chosen on a validation hold-out of train (``val/recall@20``); the
      reference reports the best test epoch.
    """

    def __init__(self, train_pairs: torch.Tensor, num_users: int, num_items: int, dim: int = 64,
                 num_layers: int = 2, eps: float = 0.2, cl_weight: float = 0.2, temperature: float = 0.15,
                 cl_layer: int = 1, reg: float = 1e-4, adjacency_layout: str = "csr") -> None:
        super().__init__(train_pairs, num_users, num_items, dim, adjacency_layout)
        nn.init.xavier_uniform_(self.user_emb)
        nn.init.xavier_uniform_(self.item_emb)
        self.num_layers, self.eps, self.cl_weight = num_layers, eps, cl_weight
        self.temperature, self.cl_layer, self.reg = temperature, cl_layer, reg

    def propagate(self, perturbed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return propagate(self.adj, self.ego(), self.num_layers, self.eps if perturbed else 0.0, self.cl_layer)

    def final(self) -> torch.Tensor:
        return self.propagate(perturbed=False)[0]

    def forward(self, batch: torch.Tensor) -> LossOutput:
        pairs = self.pairs[batch]
        users, pos = pairs[:, 0], pairs[:, 1]
        neg = sample_negatives(users, self.keys, self.num_items)
        final, cl = self.propagate(perturbed=self.eps > 0)
        u_all, i_all = final.split([self.num_users, self.num_items])
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        bpr = -F.logsigmoid((u * p).sum(1) - (u * n).sum(1)).mean()
        reg = self.reg * (u.norm(2) / u.shape[0] + p.norm(2) / p.shape[0])
        loss = bpr + reg
        logs = {"bpr": bpr.detach()}
        if self.cl_weight > 0:
            cu, ci = cl.split([self.num_users, self.num_items])
            uu, ui = torch.unique(users), torch.unique(pos)
            cl_loss = (info_nce(u_all[uu], cu[uu], temperature=self.temperature)
                       + info_nce(i_all[ui], ci[ui], temperature=self.temperature))
            loss = loss + self.cl_weight * cl_loss
            logs["cl"] = cl_loss.detach()
        return LossOutput(loss, logs)


class LightGCN(_InteractionModel):
    """LightGCN (He, Deng, Wang, Li, Zhang, Wang, "LightGCN: Simplifying and Powering Graph Convolution
    Network for Recommendation", SIGIR 2020).

    E_k = A_hat E_{k-1} over the normalised user-item graph (no self-loops, no weights, no
    non-linearity); the final embedding is the equal-weight mean of layers 0..K (alpha_k = 1 / (K + 1)),
    the ego embedding included. Loss: BPR, mean softplus(s(u, neg) - s(u, pos)), plus ``reg`` times the
    L2 penalty on the EGO (layer-0) embeddings of the batch's users, positives and negatives,
    ``0.5 * (||u0||^2 + ||p0||^2 + ||n0||^2) / B``. Embeddings start from N(0, ``init_std``^2).

    Reference code: github.com/gusye1234/LightGCN-PyTorch (``code/model.py`` ``LightGCN.computer`` /
    ``bpr_loss``, ``code/Procedure.py``); PyG's ``torch_geometric.nn.models.LightGCN`` agrees on the
    propagation and the layer-0..K mean.

    Deviations from the reference code:
    - Sampling: an epoch visits every training pair once (user, positive) in a shuffled order with one
      uniform non-positive negative each; the reference's ``UniformSample_original`` draws as many
      (user, positive, negative) triples with users uniform. Same number of steps per epoch; kept so that
      XSimGCL and LightGCN see identical batches in the comparison.
    - Model selection on a validation hold-out of train (the reference reports test every 10 epochs).
    - No dropout of edges (the reference's ``dropout`` flag is off by default too).
    """

    def __init__(self, train_pairs: torch.Tensor, num_users: int, num_items: int, dim: int = 64,
                 num_layers: int = 3, reg: float = 1e-4, init_std: float = 0.1,
                 adjacency_layout: str = "csr") -> None:
        super().__init__(train_pairs, num_users, num_items, dim, adjacency_layout)
        nn.init.normal_(self.user_emb, std=init_std)
        nn.init.normal_(self.item_emb, std=init_std)
        self.num_layers, self.reg = num_layers, reg

    def final(self) -> torch.Tensor:
        return propagate(self.adj, self.ego(), self.num_layers, include_ego=True)[0]

    def forward(self, batch: torch.Tensor) -> LossOutput:
        pairs = self.pairs[batch]
        users, pos = pairs[:, 0], pairs[:, 1]
        neg = sample_negatives(users, self.keys, self.num_items)
        u_all, i_all = self.final().split([self.num_users, self.num_items])
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        bpr = F.softplus((u * n).sum(1) - (u * p).sum(1)).mean()
        u0, p0, n0 = self.user_emb[users], self.item_emb[pos], self.item_emb[neg]
        l2 = 0.5 * (u0.pow(2).sum() + p0.pow(2).sum() + n0.pow(2).sum()) / users.shape[0]
        return LossOutput(bpr + self.reg * l2, {"bpr": bpr.detach(), "l2": l2.detach()})
