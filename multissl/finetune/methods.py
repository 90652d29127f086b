"""Contrastive fine-tuning methods on any encoder with a ``forward(**inputs) -> (B, H)``: text
(:class:`~multissl.encoders.hf.HFEncoder`), vision and audio (:mod:`multissl.encoders.auto`).

- :class:`PairsContrastive`: anchors vs their positives with in-batch negatives plus the given hard
  negatives: the MultipleNegativesRankingLoss of sentence-transformers (Henderson et al. 2017, "Efficient
  Natural Language Response Suggestion for Smart Reply") and supervised SimCSE (Gao, Yao, Chen, EMNLP
  2021: NLI entailment as positive, contradiction as hard negative, temperature 0.05). Reference code:
  sentence-transformers ``losses/MultipleNegativesRankingLoss.py`` and ``CachedMultipleNegativesRankingLoss.py``,
  princeton-nlp/SimCSE ``simcse/models.py`` (``cl_forward``).
- :class:`SupCon`: supervised contrastive loss (Khosla et al., NeurIPS 2020, L_out): two views of each
  sample; every other view with the same label is a positive. Reference code: HobbitLong/SupContrast
  ``losses.py``.
- :class:`CrossEntropyFineTune`: the supervised baseline those papers compare against: a linear
  classifier on the pooled features, cross-entropy on one view.

Deviations from the reference code:
- the hard negatives of every row are shared by all anchors of the batch (as sentence-transformers;
  SimCSE's code does the same), and a column whose text (or user id) equals the row's anchor or
  positive is dropped from that row's denominator (neither reference masks duplicates; sentence-
  transformers avoids them with a no-duplicates batch sampler instead);
- ``symmetric`` adds the positive -> anchor direction over in-batch anchors only (sentence-transformers'
  MultipleNegativesSymmetricRankingLoss), averaged with equal weight;
- the temperature can be learned (CLIP's log(1/T) parametrisation, clamped); both references fix it;
- SupCon's loss is the mean over anchors of the mean -log p over positives, without the reference's
  ``temperature / base_temperature`` factor (1.0 at the paper's 0.07/0.07 setting);
- across processes (``gather``, on by default) each process takes its LOCAL anchors against the
  positives and hard negatives of ALL processes, gathered with gradients (``core.gather_with_grad``),
  and the duplicate mask is built from the gathered ids, so with DDP's mean of gradients the loss and
  gradients equal the one-process loss on the global batch (open_clip's local-loss pattern).
  SimCSE's ``cl_forward`` instead gathers without gradients, puts the local chunk back, and every
  process computes the full global loss: its gradients are 1/world of the global loss's after DDP's mean;
  sentence-transformers' ``gather_across_devices`` (off by default there) takes local rows too. SupCon
  (below) gathers the same way: local anchors against every process's views and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from multissl.core import (
    MLP,
    LossOutput,
    Method,
    Progress,
    Temperature,
    all_gather_no_grad,
    gather_with_grad,
    info_nce,
)
from multissl.core.distributed import rank, world_size
from multissl.core.gradcache import cached_embeddings, split_batch

HEADS = ("none", "linear", "linear_tanh", "mlp")
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "layernorm.weight", "norm.weight")


def build_head(kind: str, in_dim: int, out_dim: int | None = None) -> nn.Module:
    """``none`` (identity), ``linear`` (one Linear), ``linear_tanh`` (Linear + Tanh: SimCSE's ``MLPLayer``,
    the shape of BERT's pooler) or ``mlp`` (Linear-ReLU-Linear, no norm, so a sentence-transformers
    Dense stack can hold it)."""
    out_dim = out_dim or in_dim
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        return MLP([in_dim, out_dim], norm=None)
    if kind == "linear_tanh":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.Tanh())
    if kind == "mlp":
        return MLP([in_dim, in_dim, out_dim], norm=None)
    raise ValueError(f"head must be one of {HEADS}, got {kind!r}")


class ContrastiveEmbedder(Method):
    """An encoder, a projection head (or none) and a fixed / learnable temperature.

    ``embed(inputs)`` = head(encoder(**inputs)): the exported model computes the same vector.
    ``gradcache_chunk`` > 0 encodes through :func:`multissl.core.gradcache.cached_embeddings`: the same
    loss and gradients with the encoder's activation memory of one chunk.
    """

    def __init__(self, encoder: nn.Module, head: str = "none", head_dim: int | None = None,
                 temperature: float = 0.05, learnable_temperature: bool = False, gradcache_chunk: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.head_kind = head
        self.head = build_head(head, encoder.hidden_size, head_dim)
        self.temperature = Temperature(temperature, learnable=learnable_temperature, min=1e-3, max=1.0,
                                       parametrization="log_inverse")
        self.gradcache_chunk = gradcache_chunk

    def encode(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, D) head outputs of prepared inputs, with a graph."""
        return self.head(self.encoder(**inputs))

    def encode_train(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Like :meth:`encode`, through GradCache when ``gradcache_chunk`` > 0 and gradients are on."""
        if self.gradcache_chunk > 0 and torch.is_grad_enabled():
            return cached_embeddings(self.encode, split_batch(inputs, self.gradcache_chunk))
        return self.encode(inputs)

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode(batch)

    def after_step(self, progress: Progress) -> None:
        if isinstance(self.temperature.value, nn.Parameter):
            self.temperature.clamp_()

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """No weight decay on biases, norms and the temperature (the BERT / CLIP convention)."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                skip = name.startswith("temperature") or any(n in name for n in NO_DECAY) or p.dim() < 2
                (no_decay if skip else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def duplicate_mask(row_ids: Sequence[torch.Tensor], column_ids: torch.Tensor) -> torch.Tensor:
    """(B, C) bool: column ``j`` carries the same id as any of row ``i``'s own items (its anchor,
    positive, user id ...), i.e. it is the same text / item and must not count as a negative."""
    mask = torch.zeros(row_ids[0].shape[0], column_ids.shape[0], dtype=torch.bool, device=column_ids.device)
    for ids in row_ids:
        mask |= ids[:, None] == column_ids[None, :]
    return mask


class PairsContrastive(ContrastiveEmbedder):
    """In-batch + hard-negative InfoNCE over (anchor, positive, negatives...) rows.

    Batch: ``anchor`` / ``positive`` (prepared inputs, B rows), optional ``negative`` (B*K rows, row
    ``i``'s negatives at ``i*K .. i*K+K-1``), and ids ``anchor_id`` (B,), ``positive_id`` (B,),
    ``negative_id`` (B*K,) (hashes of the texts, or the user's ids). Columns of row i: all positives
    then all negatives (of every process under ``gather``, rank-major); row i's positive is column
    ``rank * B + i``. With ``mask_duplicates`` a column whose id equals row i's anchor or positive id
    (the same text elsewhere in the global batch) leaves the denominator.
    """

    def __init__(self, encoder: nn.Module, head: str = "none", head_dim: int | None = None,
                 temperature: float = 0.05, learnable_temperature: bool = False, gradcache_chunk: int = 0,
                 symmetric: bool = False, mask_duplicates: bool = True, gather: bool = True) -> None:
        super().__init__(encoder, head, head_dim, temperature, learnable_temperature, gradcache_chunk)
        self.symmetric, self.mask_duplicates, self.gather = symmetric, mask_duplicates, gather

    def forward(self, batch: dict[str, Any]) -> LossOutput:
        a = self.encode_train(batch["anchor"])  # (B, D)
        p = self.encode_train(batch["positive"])  # (B, D)
        n = self.encode_train(batch["negative"]) if batch.get("negative") is not None else None  # (B*K, D)
        t = self.temperature()
        gathered = self.gather and world_size() > 1
        # info_nce gathers the in-batch keys itself (gather=); the hard negatives are gathered here.
        n_all = gather_with_grad(n) if (gathered and n is not None) else n
        ids = (lambda x: all_gather_no_grad(x)) if gathered else (lambda x: x)
        fwd_mask = bwd_mask = None
        if self.mask_duplicates:
            a_id, p_id = batch["anchor_id"], batch["positive_id"]
            cols = ids(p_id) if n is None else torch.cat([ids(p_id), ids(batch["negative_id"])])
            fwd_mask = duplicate_mask([a_id, p_id], cols)
            bwd_mask = duplicate_mask([p_id, a_id], ids(a_id))
        loss = info_nce(a, p, temperature=t, extra_keys=n_all, false_negative_mask=fwd_mask, gather=gathered)
        logs: dict[str, Any] = {"temperature": t.detach()}
        if self.symmetric:
            back = info_nce(p, a, temperature=t, false_negative_mask=bwd_mask, gather=gathered)
            logs["loss_forward"], logs["loss_backward"] = loss.detach(), back.detach()
            loss = 0.5 * (loss + back)
        if fwd_mask is not None:
            rows = torch.arange(a.shape[0], device=fwd_mask.device)
            own = fwd_mask[rows, rows + (rank() * a.shape[0] if gathered else 0)]
            logs["masked_duplicates"] = float((fwd_mask.sum() - own.sum()).item())
        return LossOutput(loss, logs)


class SupCon(ContrastiveEmbedder):
    """Supervised contrastive loss (Khosla et al. 2020), L_out, over two views per sample.

    Batch: ``views`` (a list of V prepared inputs of the same B samples; text passes the same tokens
    twice, so dropout makes the views) and ``labels`` (B,). Anchors: all V*B views; positives: every
    other view with the same label; the anchor itself leaves the denominator.

    ``gather`` (on by default): across processes each process's anchors are scored against the views
    and labels of ALL processes (gathered with gradients), so with DDP's mean of gradients the loss and
    gradients equal one process on the global batch (the reference code, ``HobbitLong/SupContrast``,
    trains on one node without gathering; Khosla et al. used large multi-device batches).
    """

    def __init__(self, *args: Any, gather: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gather = gather

    def forward(self, batch: dict[str, Any]) -> LossOutput:
        views = batch["views"]
        z = torch.cat([self.encode_train(v) for v in views], 0)  # (V*B, D)
        labels = batch["labels"].repeat(len(views))  # (V*B,)
        gathered = self.gather and world_size() > 1
        keys = gather_with_grad(z) if gathered else z  # (world*V*B, D), rank-major
        key_labels = all_gather_no_grad(labels) if gathered else labels
        rows = torch.arange(z.shape[0], device=z.device)
        own = torch.zeros(z.shape[0], keys.shape[0], dtype=torch.bool, device=z.device)
        own[rows, rows + (rank() * z.shape[0] if gathered else 0)] = True  # each anchor's own column
        positives = (labels[:, None] == key_labels[None, :].to(labels.device)) & ~own
        t = self.temperature()
        loss = info_nce(z, keys, temperature=t, positive_mask=positives, false_negative_mask=own)
        with torch.no_grad():  # collapse monitor: 1.0 = every embedding the same (loss log(V*B - 1))
            zn = F.normalize(z.detach().float(), dim=-1)
            cos = ((zn @ zn.T).sum() - zn.shape[0]) / max(1, zn.shape[0] * (zn.shape[0] - 1))
        return LossOutput(loss, {"temperature": t.detach(), "positives_per_anchor": positives.sum(1).float().mean(),
                                 "mean_cosine": cos})


class CrossEntropyFineTune(ContrastiveEmbedder):
    """Supervised baseline: a linear classifier over the head output, cross-entropy on the first view.

    ``embed`` returns the head output (the classifier is training scaffolding, as in Khosla et al.'s
    cross-entropy comparison where the representation is probed).
    """

    def __init__(self, encoder: nn.Module, num_classes: int, head: str = "none", head_dim: int | None = None,
                 gradcache_chunk: int = 0) -> None:
        super().__init__(encoder, head, head_dim, 1.0, False, gradcache_chunk)
        dim = head_dim if head != "none" and head_dim else encoder.hidden_size
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, batch: dict[str, Any]) -> LossOutput:
        logits = self.classifier(self.encode_train(batch["views"][0]))
        loss = F.cross_entropy(logits, batch["labels"])
        acc = (logits.argmax(1) == batch["labels"]).float().mean()
        return LossOutput(loss, {"train_acc": acc.detach()})
