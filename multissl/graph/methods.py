"""Graph self-supervised methods: GraphMAE (masked feature reconstruction) and XSimGCL / LightGCN
(recommendation with cross-layer noise contrast)."""

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


class XSimGCL(Method):
    """XSimGCL (Yu, Xia, Chen, Cui, Hung, Yin, TKDE 2023) and plain LightGCN (He et al., SIGIR 2020).

    LightGCN propagation over the normalised user-item graph, one sparse matmul per layer; XSimGCL adds
    E += sign(E) * normalize(U(0,1)) * eps to every layer's output in the one forward pass, takes the
    final embedding (mean of layers 1..L) for BPR and contrasts it with the perturbed layer ``cl_layer``
    output by InfoNCE over the batch's unique users and unique items (weight ``cl_weight``, temperature
    ``temperature``). L2 regularisation ``reg`` on the batch's user and positive-item final embeddings,
    ``||.||_2 / B`` each (SELFRec's ``l2_reg_loss``). LightGCN: ``eps=0, cl_weight=0``.

    The method holds the training pairs and the graph as (non-checkpointed) buffers; a batch is a
    LongTensor of training-pair ids. Negatives are sampled uniformly among each user's non-positives,
    vectorised.
    """

    def __init__(self, train_pairs: torch.Tensor, num_users: int, num_items: int, dim: int = 64,
                 num_layers: int = 2, eps: float = 0.2, cl_weight: float = 0.2, temperature: float = 0.15,
                 cl_layer: int = 1, reg: float = 1e-4, adjacency_layout: str = "csr") -> None:
        super().__init__()
        from multissl.graph.data import pair_keys

        self.num_users, self.num_items = num_users, num_items
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_users, dim)))
        self.item_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_items, dim)))
        self.register_buffer("pairs", train_pairs, persistent=False)  # (P, 2)
        self.register_buffer("keys", pair_keys(train_pairs, num_items), persistent=False)
        self.register_buffer("adj", normalized_adjacency(train_pairs, num_users, num_items, adjacency_layout),
                             persistent=False)
        self.num_layers, self.eps, self.cl_weight = num_layers, eps, cl_weight
        self.temperature, self.cl_layer, self.reg = temperature, cl_layer, reg

    def propagate(self, perturbed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_emb, self.item_emb])  # (U+I, D)
        return propagate(self.adj, ego, self.num_layers, self.eps if perturbed else 0.0, self.cl_layer)

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

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean (noise-free) final user (U, D) and item (I, D) embeddings for ranking."""
        final, _ = self.propagate(perturbed=False)
        return final.split([self.num_users, self.num_items])

    @torch.no_grad()
    def embed(self, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Final user embeddings (of user ids ``batch``, or all users)."""
        users, _ = self.embeddings()
        return users if batch is None else users[batch]
